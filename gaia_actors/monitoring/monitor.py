"""HealthMonitor (``monitor``): every environment's health, checked in rounds.

The actor is a scheduler over the probe engine (`probes.Prober`) and the classifier
(`classify.Classifier`); it holds no HTTP or threshold logic of its own. A round checks every
environment at once in a worker thread, so the mailbox keeps answering ``GetHealth`` (and
liveness pings) while a round waits on a hung endpoint. One round runs at a time: the next is
due ``interval`` seconds after the previous one *started*, and a round that overruns the
interval delays the next instead of piling rounds up. ``CheckNow`` during a round asks for one
more round right after it, however many times it is sent.

Failures: a check that fails, or has not answered within ``[monitor] recheck_interval``, is
followed by re-checks every ``recheck_interval`` until the environment has failed enough checks
in a row to be called down and failed over (``failure_threshold``, ``[failover] down_checks``),
instead of one check per ``interval``. A hung service (it accepts, never answers) is re-checked
within the same round without waiting for its read timeout, so its consecutive failures all
end within one read timeout plus a few ``recheck_interval``; a quick failure (an error status)
paces the next rounds at ``recheck_interval``. A single blip is still smoothed: the first
answer resets the run. A down environment that answers again is re-checked as often until it
is up (``success_threshold``). A round's report has one entry per check, in the order they started.

The first minute: an environment whose process has just started (its environment actor
published ``environment.started``, or its pid file names a live process younger than the
environment's ``deploy_timeout`` that has not passed its start-up check) is *starting* until it
first answers. Meanwhile rounds come every ``[monitor] start_interval`` instead of
``interval``, and its refused connections are no errors (nothing listens yet); an
``environment.healthy`` (its own start-up check passed) asks for a round at once. So ``status``
shows a started environment healthy within a fraction of a second of its answering, with no
error from its start. The start ends early when the process exits, fails or is stopped.

What a round produces:

- one ``health_checks`` row per check (every check is stored);
- a ``health.changed`` event on the bus, only when an environment's state changes (warning
  for degraded, error for down, info for a recovery);
- a ``HealthRound`` told to every watcher (``WatchHealth``): the failover agent counts
  consecutive failures from it and the metrics collector feeds its latency histograms. These
  go to named actors, not the bus, which would log and store every check. A watcher sends
  ``WatchHealth`` when it starts and again when a new monitor starts (``monitor_restarted``:
  the ``supervisor.child_started`` event), so a restart on either side loses nothing.

A round's I/O (the checks, then each environment's process facts) is ``healthround``'s; what
the monitor keeps of one environment, ``envstate``'s. The service's own request and error totals
arrive from the metrics collector (``ServiceCounters``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from gaia_actors.actor import GaiaActor
from gaia_actors.errors import InvalidMessage
from gaia_actors.events import EnvironmentEvent, HealthEvent, SupervisorEvent
from gaia_actors.health import BodyRule
from gaia_actors.messages import (
    CheckNow,
    Event,
    GetHealth,
    HealthRound,
    ServiceCounters,
    Subscribe,
    Unsubscribe,
    WatchHealth,
)
from gaia_actors.monitoring.classify import Classifier, HealthStatus, Thresholds, Verdict
from gaia_actors.monitoring.envstate import EnvState
from gaia_actors.monitoring.healthround import Recheck, RoundValue, health_targets, run_round
from gaia_actors.monitoring.probes import Prober
from gaia_actors.monitoring.rounds import Finished, Rounds, close_in_background
from gaia_actors.monitoring.snapshot import HealthSnapshot
from gaia_actors.settings import MonitorSettings, Settings
from supervisors import Link

__all__ = ["HealthMonitor", "monitor_restarted", "thresholds"]

# The bus level of a transition *to* each state.
TRANSITION_LEVELS = {
    HealthStatus.HEALTHY: "info",
    HealthStatus.UNKNOWN: "info",
    HealthStatus.DEGRADED: "warning",
    HealthStatus.DOWN: "error",
}
# Beyond the prober's own bound (every check's connect + read timeout): the file work.
_OVERDUE_SLACK_S = 20.0
# An environment's process started (a start window opens), passed its own start-up check (check
# it now), or is gone (the window closes: from now on a refused connection is an outage).
EVENT_PATTERNS = (
    EnvironmentEvent.STARTED,
    EnvironmentEvent.HEALTHY,
    EnvironmentEvent.EXITED,
    EnvironmentEvent.FAILED,
    EnvironmentEvent.STOPPED,
)
_WINDOW_CLOSERS = frozenset(EVENT_PATTERNS[2:])

RoundHook = Callable[[HealthRound], None]


def monitor_restarted(event: Event) -> bool:
    """Whether ``event`` says a new monitor has started: its watchers must watch it again
    (a restarted monitor starts with no watchers, and its siblings may not restart with it)."""
    return event.name == SupervisorEvent.CHILD_STARTED and event.get("child") == "monitor"


def thresholds(cfg: MonitorSettings) -> Thresholds:
    """The classifier thresholds the ``[monitor]`` settings describe."""
    return Thresholds(
        latency_degraded_s=cfg.latency_degraded,
        error_rate_degraded=cfg.error_rate_degraded,
        window=cfg.window,
        failure_threshold=cfg.failure_threshold,
        success_threshold=cfg.success_threshold,
    )


# -- the actor ---------------------------------------------------------------------------------


class HealthMonitor(GaiaActor):
    """Checks every environment's health URL on a schedule.

    ``on_round`` (optional) is called in the actor's thread after each round has been
    classified, stored and reported; the benchmark times rounds with it.
    """

    def __init__(self, link: Link, settings: Settings, on_round: RoundHook | None = None) -> None:
        super().__init__(link)
        self.settings = settings
        self.cfg = settings.monitor
        self.targets = health_targets(settings)
        limits = thresholds(self.cfg)
        self.envs = {
            t.env: EnvState(
                t.env,
                t.probe.url,
                Classifier(limits, BodyRule.of(t.layout.config)),
                start_window=t.start_window,
            )
            for t in self.targets
        }
        self.on_round = on_round
        self.prober: Prober | None = None
        self.watchers: list[str] = []
        # Enough checks in a row to call an environment down and to fail it over; one round
        # holds as many as start before the first can time out (the next rounds the rest).
        self.needed = max(self.cfg.failure_threshold, settings.failover.down_checks)
        per_check = self.cfg.connect_timeout + self.cfg.read_timeout
        fits = 1 + math.ceil(per_check / self.cfg.recheck_interval)
        self.recheck = Recheck(self.cfg.recheck_interval, min(self.needed, fits))
        self.rounds: Rounds[RoundValue] = Rounds(
            self,
            interval=self.cfg.interval,
            overdue_after=self._overdue_after(),
            prepare=self._prepare,
            on_result=self._classify,
            on_failure=self._round_failed,
        )

    def on_start(self) -> None:
        self.tell("bus", Subscribe(self.name, EVENT_PATTERNS))
        self.prober = Prober(max_concurrency=self.cfg.max_concurrency)
        if self.targets:
            self.rounds.start()

    def on_stop(self) -> None:
        super().on_stop()
        self.tell("bus", Unsubscribe(self.name))

    def on_terminate(self) -> None:
        if self.prober is not None:
            self.prober.close()  # a round in flight is cancelled and reports to nobody

    def receive(self, message: Any) -> Any:
        if self.rounds.handle(message):
            return None
        match message:
            case GetHealth(env=env):
                return self._health(env)
            case CheckNow():
                if self.targets:
                    self.rounds.request()
            case WatchHealth(subscriber=name):
                if name not in self.watchers:
                    self.watchers.append(name)
            case ServiceCounters():
                self._counters(message)
            case Event():
                self._on_event(message)
            case _:
                return self.unhandled(message)
        return None

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            **self.rounds.state(),
            "environments": len(self.targets),
            "watchers": list(self.watchers),
        }

    # Queries

    def _health(self, env: str) -> HealthSnapshot | list[HealthSnapshot]:
        if not env:
            return [state.snapshot() for state in self.envs.values()]
        state = self.envs.get(env)
        if state is None:
            known = ", ".join(self.envs) or "none"
            problem = f"no environment {env!r}; environments: {known}"
            raise InvalidMessage("GetHealth", problem, "env")
        return state.snapshot()

    def _counters(self, message: ServiceCounters) -> None:
        state = self.envs.get(message.env)
        if state is not None:
            state.requests, state.errors = message.requests, message.errors

    # Start windows and failures: check an environment often while it starts (until it first
    # answers) and while it fails (until it is down)

    def _on_event(self, event: Event) -> None:
        if event.env not in self.envs:
            return
        if event.name == EnvironmentEvent.STARTED:
            self._open_window(event.env)
            self.rounds.request()
        elif event.name == EnvironmentEvent.HEALTHY:
            self.rounds.request()  # its own start-up check passed: show it now
        elif event.name in _WINDOW_CLOSERS:
            self.envs[event.env].window_until = None

    def _open_window(self, env: str) -> None:
        state = self.envs[env]
        state.window_until = time.monotonic() + state.start_window
        self._pace()

    def _pace(self) -> None:
        """Rounds come every ``start_interval`` while an environment is starting, and every
        ``recheck_interval`` while one has failed checks and is not yet down and failed over,
        or is down and answers again."""
        cfg, states = self.cfg, self.envs.values()
        paces = [cfg.interval]
        if any(state.starting() for state in states):
            paces.append(cfg.start_interval)
        if any(state.rechecking(self.needed) for state in states):
            paces.append(cfg.recheck_interval)
        self.rounds.interval = min(paces)

    # Rounds

    def _overdue_after(self) -> float:
        # Re-checks take slots too: a hung environment holds up to `checks` of them.
        checks = len(self.targets) * self.recheck.checks
        waves = -(-checks // self.cfg.max_concurrency)
        rechecks = (self.recheck.checks - 1) * self.cfg.recheck_interval
        per_check = self.cfg.connect_timeout + self.cfg.read_timeout
        return waves * per_check + rechecks + _OVERDUE_SLACK_S

    def _prepare(self) -> Callable[[], RoundValue]:
        prober, targets, recheck = self.prober, self.targets, self.recheck
        assert prober is not None  # rounds start after on_start made it
        previous = [self.envs[t.env].proc.stats for t in targets]
        return lambda: run_round(prober, targets, previous, recheck)

    def _round_failed(self, error: str) -> None:
        self.log.error("health.round_failed", error=error)
        # The engine itself failed or hangs: start afresh.
        old, self.prober = self.prober, Prober(max_concurrency=self.cfg.max_concurrency)
        close_in_background(old, f"{self.name}-close")

    def _classify(self, value: RoundValue, finished: Finished[RoundValue]) -> None:
        results, procs = value
        reports = []
        for target, checks, proc in zip(self.targets, results, procs, strict=True):
            state = self.envs[target.env]
            for result in checks:
                verdict = state.observe(result, proc)
                if verdict.changed:
                    self._publish_change(state, verdict)
                self.record("health_checks", **state.row())
                reports.append(state.report())
        self._pace()
        health_round = HealthRound(tuple(reports), finished.started, finished.elapsed)
        for watcher in self.watchers:
            self.tell(watcher, health_round)
        if self.on_round is not None:
            self.on_round(health_round)

    def _publish_change(self, state: EnvState, verdict: Verdict) -> None:
        snap = state.snapshot()
        self.publish(
            HealthEvent.CHANGED,
            level=TRANSITION_LEVELS[verdict.status],
            env=state.env,
            old=verdict.previous.value,
            new=verdict.status.value,
            reason=verdict.reason,
            response_ms=snap.response_ms,
            http_status=snap.http_status,
            consecutive_failures=verdict.consecutive_failures,
            pid=snap.pid,
            alive=snap.alive,
        )
