"""The ``environments`` supervisor: one EnvironmentActor per configured environment.

Each child carries the recovery ladder, which reads the evidence
before it touches data:

- after any failure, a cause the environment cannot fix by itself (its port held by another
  program, a command that is not installed, an unknown placeholder) blocks it at once, with
  that reason in an alert; it starts again by itself once the cause is gone;
- when the restart budget is spent, or the failure itself says the data fails its check
  (the environment looks when its process exits, is declared down or never gets healthy,
  so a service that stays up on a broken database is not restarted for ever), the live
  data is checked (``quick_check`` of every
  database, every database of the newest backup present). Only data that fails is replaced:
  restored from the newest verified backup (or, for ``reset_on_error`` environments such as
  dev, reset), the replaced data kept and named in the alert, the incident and ``status``;
- then roll back, if the last release that was healthy is older than the current one;
- else park as FAILED with an alert that says why, until an operator resets it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from gaia_actors import process
from gaia_actors.environments import alerts, data, evidence, releases
from gaia_actors.environments.environment import EnvironmentActor
from gaia_actors.environments.recovery import reset_data, restore_data, stop_leftover
from gaia_actors.events import DATA_OPERATION_REPLACED, EnvironmentEvent, SupervisorEvent
from gaia_actors.layout import Layout, actor_name
from gaia_actors.settings import Settings
from supervisors import ChildSpec, Link, Registry, Strategy, Supervisor
from supervisors.spec import Exhausted, LadderStep, ParkNow, StepSkipped, SupervisorConfig

SUPERVISOR = "environments"
BLOCKED_POLL = 0.5  # seconds between looks at a blocked environment's cause (a bind probe)


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
            # Environments are independent: their starts (a first release, a spawn) overlap.
            config=dataclasses.replace(
                config, ping_timeout=ping_timeout(settings, config), concurrent_start=True
            ),
            listener=_alerting(listener, registry),
            shutdown_timeout=sum(s.shutdown_timeout for s in children) + 5,
        )
    ]


def ping_timeout(settings: Settings, config: SupervisorConfig) -> float:
    """The liveness timeout for environment actors: longer than the longest handler.

    Deploy and rollback stop the process inside the mailbox: SIGTERM, up to ``stop_grace``,
    then SIGKILL and up to ``process.KILL_TIMEOUT`` for the group to go (a restore, reset or
    undo stops it in its data job, off the mailbox). A ping waits behind that handler, so a
    timeout shorter than the stop would take a process that is slow to stop for a hung actor,
    and the next generation would adopt the very process being stopped. The configured
    timeout is kept on top, for the rest of the work.
    """
    longest_stop = max(env.stop_grace for env in settings.environments.values())
    return max(config.ping_timeout, longest_stop + process.KILL_TIMEOUT + config.ping_timeout)


def environment_spec(settings: Settings, env: str, registry: Registry) -> ChildSpec:
    config = settings.environments[env]
    layout = Layout.of(settings, env)

    def factory(link: Link) -> Any:
        return EnvironmentActor.start(link, settings, env)

    return ChildSpec(
        actor_name(env),
        factory,
        # on_stop stops the process: SIGTERM, stop_grace, SIGKILL, up to KILL_TIMEOUT more.
        shutdown_timeout=config.stop_grace + process.KILL_TIMEOUT + 5,
        # A first start may wait for another environment's build of the same source, then
        # build itself when that one failed: two builds at most.
        start_timeout=2 * config.build_timeout + config.stop_grace + 30,
        ladder=ladder(settings, env, registry),
        exhausted=Exhausted.PARK,
        blocked=lambda _error: evidence.blocked_reason(layout),
        blocked_poll=BLOCKED_POLL,
        needs_ladder=lambda error: data.DATA_FAILS in error,
    )


def ladder(settings: Settings, env: str, registry: Registry) -> tuple[tuple[str, LadderStep], ...]:
    layout = Layout.of(settings, env)
    publish = _publisher(registry, env)

    def replace_data() -> None:
        stop_leftover(layout)
        problems = data.live_problems(layout.data, layout.config.databases, layout.backups)
        if not problems:
            raise StepSkipped(f"{_data_verdict(layout, problems)}: it is not replaced")
        kind = "reset" if layout.config.reset_on_error else "restore"
        detail = reset_data(layout) if kind == "reset" else restore_data(layout)
        why = "; ".join(problems)
        publish(
            DATA_OPERATION_REPLACED[kind],
            "warning",
            reason="recovery ladder",
            problems=problems,
            **detail,
        )
        alerts.data_replaced(registry, SUPERVISOR, env, kind=kind, why=why, detail=detail)

    def rollback() -> None:
        stop_leftover(layout)
        current = layout.current_release()
        target = rollback_target(layout)
        releases.switch_current(layout.root, target)
        publish(
            EnvironmentEvent.ROLLED_BACK,
            "warning",
            reason="recovery ladder",
            release=target,
            previous=current,
        )

    first = "reset" if layout.config.reset_on_error else "restore"
    return ((first, replace_data), ("rollback", rollback))


def _data_verdict(layout: Layout, problems: list[str]) -> str:
    if problems:
        return "the live data does not verify (" + "; ".join(problems) + ")"
    found = data.find_databases(layout.data, layout.config.databases)
    return f"the live data verifies ({len(found)} database(s) pass quick_check)"


def rollback_target(layout: Layout) -> str:
    """The last release that was healthy, when the current one is newer; else ParkNow, saying
    why there is nothing safe left to try."""
    current = layout.current_release()
    healthy = releases.last_healthy(layout.root)
    ids = [r.id for r in releases.list_releases(layout.root)]  # newest first
    problems = data.live_problems(layout.data, layout.config.databases, layout.backups)
    verdict = _data_verdict(layout, problems)
    if healthy is None or healthy not in ids:
        why = "no release has been healthy" if healthy is None else f"{healthy} is gone"
        raise ParkNow(f"no release to roll back to ({why}); {verdict}")
    if healthy == current:
        raise ParkNow(
            f"the current release {current} is the last that was healthy, so a rollback "
            f"cannot help; {verdict}"
        )
    if current in ids and ids.index(current) > ids.index(healthy):
        raise ParkNow(
            f"the current release {current} is older than the last healthy {healthy}; {verdict}"
        )
    return healthy


def _publisher(registry: Registry, env: str) -> Callable[..., None]:
    def publish(name: str, level: str = "info", **fields: Any) -> None:
        alerts.publish(registry, SUPERVISOR, env, name, level, **fields)

    return publish


def _alerting(listener: Callable[[str, Mapping[str, Any]], None], registry: Registry) -> Any:
    """Pass supervision events on; a parked or blocked environment is also an alert."""

    def alerting(event: str, fields: Mapping[str, Any]) -> None:
        listener(event, fields)
        child = str(fields.get("child", ""))
        if not child.startswith("environment."):
            return
        env = child.removeprefix("environment.")
        publish = _publisher(registry, env)
        error, reason = str(fields.get("error", "")), str(fields.get("reason") or "")
        if event == SupervisorEvent.CHILD_PARKED:
            publish(
                EnvironmentEvent.FAILED,
                "critical",
                error=error,
                reason=reason or error,
                action=f"fix the cause, then: python run.py reset {env}",
            )
        elif event == SupervisorEvent.CHILD_BLOCKED:
            publish(
                EnvironmentEvent.BLOCKED,
                "critical",
                error=error,
                reason=reason,
                action="it starts again by itself once the cause is gone",
            )
        elif event == SupervisorEvent.CHILD_UNBLOCKED:
            publish(EnvironmentEvent.UNBLOCKED, "info", previous_error=error)

    return alerting
