"""The ``environments`` supervisor: one EnvironmentActor per configured environment.

Each child carries the recovery ladder of DESIGN.md (Supervision): when its restart budget
is spent, restore the newest verified backup (or, for ``reset_on_error`` environments such
as dev, reset the data) and restart; then roll back to the last release that was healthy
and restart; then park it as FAILED with an alert until an operator resets it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from gaia_actors import process
from gaia_actors.environments import releases
from gaia_actors.environments.environment import (
    EnvironmentActor,
    _reset_data,
    _restore_data,
    stop_leftover,
)
from gaia_actors.environments.layout import Layout
from gaia_actors.errors import EnvironmentFailure
from gaia_actors.messages import Event, fields_of
from gaia_actors.settings import Settings
from supervisors import ChildSpec, Link, NotRunning, Registry, Strategy, Supervisor
from supervisors.spec import Exhausted, LadderStep
from supervisors.supervisor import SupervisorConfig

SUPERVISOR = "environments"


def actor_name(env: str) -> str:
    return f"environment.{env}"


def child_specs(
    settings: Settings, registry: Registry, listener: Any, supervisor_config: Any
) -> list[ChildSpec]:
    children = [environment_spec(settings, env, registry) for env in settings.environments]
    if not children:
        return []
    config = supervisor_config(settings, Strategy.ONE_FOR_ONE)
    return [
        Supervisor.child_spec(
            SUPERVISOR,
            children,
            config=dataclasses.replace(config, ping_timeout=ping_timeout(settings, config)),
            listener=_alerting(listener, registry),
            shutdown_timeout=sum(s.shutdown_timeout for s in children) + 5,
        )
    ]


def ping_timeout(settings: Settings, config: SupervisorConfig) -> float:
    """The liveness timeout for environment actors: longer than the longest handler.

    Deploy, rollback, restore and reset stop the process inside the mailbox: SIGTERM, up to
    ``stop_grace``, then SIGKILL and up to ``process.KILL_TIMEOUT`` for the group to go. A
    ping waits behind that handler, so a timeout shorter than the stop would take a process
    that is slow to stop for a hung actor, and the next generation would adopt the very
    process being stopped. The configured timeout is kept on top, for the rest of the work.
    """
    longest_stop = max(env.stop_grace for env in settings.environments.values())
    return max(config.ping_timeout, longest_stop + process.KILL_TIMEOUT + config.ping_timeout)


def environment_spec(settings: Settings, env: str, registry: Registry) -> ChildSpec:
    config = settings.environments[env]

    def factory(link: Link) -> Any:
        return EnvironmentActor.start(link, settings, env)

    return ChildSpec(
        actor_name(env),
        factory,
        # on_stop stops the process: SIGTERM, stop_grace, SIGKILL, up to KILL_TIMEOUT more.
        shutdown_timeout=config.stop_grace + process.KILL_TIMEOUT + 5,
        start_timeout=config.build_timeout + config.stop_grace + 30,
        ladder=ladder(settings, env, registry),
        exhausted=Exhausted.PARK,
    )


def ladder(settings: Settings, env: str, registry: Registry) -> tuple[tuple[str, LadderStep], ...]:
    layout = Layout.of(settings, env)
    publish = _publisher(registry, env)

    def restore() -> None:
        stop_leftover(layout)
        detail = _restore_data(layout)
        publish("environment.restored", "warning", reason="recovery ladder", **detail)

    def reset() -> None:
        stop_leftover(layout)
        detail = _reset_data(layout)
        publish("environment.reset", "warning", reason="recovery ladder", **detail)

    def rollback() -> None:
        stop_leftover(layout)
        current = layout.current_release()
        target = rollback_target(layout)
        releases.switch_current(layout.root, target)
        publish(
            "environment.rolled_back",
            "warning",
            reason="recovery ladder",
            release=target,
            previous=current,
        )

    first = ("reset", reset) if layout.config.reset_on_error else ("restore", restore)
    return (first, ("rollback", rollback))


def rollback_target(layout: Layout) -> str:
    """The last release that was healthy, unless that is the current one; else the one before."""
    current = layout.current_release()
    healthy = releases.last_healthy(layout.root)
    if healthy and healthy != current and (layout.releases / healthy).is_dir():
        return healthy
    ids = [r.id for r in releases.list_releases(layout.root)]
    older = ids[ids.index(current) + 1 :] if current in ids else []
    if not older:
        raise EnvironmentFailure(layout.name, f"no release to roll back to (current {current})")
    return older[0]


def _publisher(registry: Registry, env: str) -> Callable[..., None]:
    def publish(name: str, level: str = "info", **data: Any) -> None:
        with contextlib.suppress(NotRunning):
            registry.tell(
                "bus", Event(name, level=level, actor=SUPERVISOR, env=env, data=fields_of(**data))
            )

    return publish


def _alerting(listener: Callable[[str, Mapping[str, Any]], None], registry: Registry) -> Any:
    """Pass supervision events on; a parked environment is also an ``environment.failed`` alert."""

    def alerting(event: str, data: Mapping[str, Any]) -> None:
        listener(event, data)
        child = str(data.get("child", ""))
        if event == "supervisor.child_parked" and child.startswith("environment."):
            env = child.removeprefix("environment.")
            _publisher(registry, env)(
                "environment.failed",
                "critical",
                error=str(data.get("error", "")),
                action=f"fix the cause, then: python run.py reset {env}",
            )

    return alerting
