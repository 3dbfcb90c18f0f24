"""The alerts supervisor: the router, then one actor per receiver (one_for_one).

A receiver that keeps failing is restarted alone; the router and the other receivers carry
on. The router only stores and tells, so none of them waits on another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gaia_actors.alerts.delivery import ReceiverActor, Sender, receiver_name
from gaia_actors.alerts.receivers import build_receiver
from gaia_actors.alerts.router import ROUTER, AlertRouter
from gaia_actors.settings import ReceiverSettings, Settings
from supervisors import ChildSpec, Link, Registry, Strategy, Supervisor

SenderFactory = Callable[[ReceiverSettings], Sender]


def child_specs(
    settings: Settings,
    registry: Registry,
    listener: Any,
    supervisor_config: Any,
    make_sender: SenderFactory | None = None,
) -> list[ChildSpec]:
    """The ``alerts`` supervisor's spec (the app's capability hook); ``make_sender`` builds
    what sends to a receiver (by default the receiver of its configured kind)."""
    factory = make_sender or default_sender

    def router(link: Link) -> Any:
        return AlertRouter.start(link, settings)

    def receiver(config: ReceiverSettings) -> Callable[[Link], Any]:
        return lambda link: ReceiverActor.start(link, settings.alerts, config, factory(config))

    children = [ChildSpec(ROUTER, router)]
    children += [ChildSpec(receiver_name(r.name), receiver(r)) for r in settings.alerts.receivers]
    return [
        Supervisor.child_spec(
            "alerts",
            children,
            config=supervisor_config(settings, Strategy.ONE_FOR_ONE),
            listener=listener,
        )
    ]


def default_sender(receiver: ReceiverSettings) -> Sender:
    """What sends to ``receiver`` as its kind says; answers what the receiver said."""
    built = build_receiver(receiver)
    return lambda notification: built.send(notification).answer
