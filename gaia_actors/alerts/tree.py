"""The alerts supervisor: the router, then one actor per receiver (one_for_one).

A receiver that keeps failing is restarted alone; the router and the other receivers carry
on. The router only stores and tells, so none of them waits on another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gaia_actors.alerts.delivery import ReceiverActor, receiver_name
from gaia_actors.alerts.messages import ROUTER
from gaia_actors.alerts.receivers import Receiver, build_receiver
from gaia_actors.alerts.router import AlertRouter
from gaia_actors.settings import ReceiverSettings, Settings
from supervisors import ChildSpec, Link, Registry, Strategy, Supervisor

ReceiverFactory = Callable[[ReceiverSettings], Receiver]


def child_specs(
    settings: Settings,
    registry: Registry,
    listener: Any,
    supervisor_config: Any,
    make_receiver: ReceiverFactory = build_receiver,
) -> list[ChildSpec]:
    """The ``alerts`` supervisor's spec (the app's capability hook); ``make_receiver``
    builds what sends to a receiver (by default the receiver of its configured kind)."""

    def router(link: Link) -> Any:
        return AlertRouter.start(link, settings)

    def receiver(config: ReceiverSettings) -> Callable[[Link], Any]:
        return lambda link: ReceiverActor.start(
            link, settings.alerts, config, make_receiver(config)
        )

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
