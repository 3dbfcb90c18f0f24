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

Beside the check, the worker gathers each environment's process facts from its directory:
pid (the pid file, with its start time against pid reuse), CPU and memory (/proc), uptime,
database and log sizes, and the release ``current`` points to. The service's own request and
error totals arrive from the metrics collector (``ServiceCounters``). Nothing an environment
does (hanging, garbage, a vanished directory) can raise out of a round: the prober reports
errors in its results, and the per-environment file work is guarded.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from gaia_actors import process
from gaia_actors.actor import GaiaActor
from gaia_actors.errors import InvalidMessage
from gaia_actors.events import EnvironmentEvent, HealthEvent, SupervisorEvent
from gaia_actors.health import BodyRule
from gaia_actors.layout import Layout
from gaia_actors.messages import (
    CheckNow,
    Event,
    GetHealth,
    HealthReport,
    HealthRound,
    ServiceCounters,
    Subscribe,
    Unsubscribe,
    WatchHealth,
)
from gaia_actors.monitoring.checks import ProbeResult, ProbeTarget
from gaia_actors.monitoring.classify import (
    Classifier,
    HealthStatus,
    Observation,
    Thresholds,
    Verdict,
)
from gaia_actors.monitoring.probes import Prober
from gaia_actors.monitoring.rounds import Finished, Rounds, close_in_background
from gaia_actors.settings import MonitorSettings, Settings
from supervisors import Link

__all__ = [
    "HealthMonitor",
    "ProcessInfo",
    "gather_process",
    "monitor_restarted",
    "snapshot_fields",
    "thresholds",
]

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


# -- the process facts of one environment (gathered in the worker thread) ---------------------


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """What an environment's directory and /proc say about it at one check."""

    pid: int | None = None
    alive: bool | None = None  # None: no pid file (or an unreadable one)
    stats: process.ProcStats | None = None
    uptime_s: float | None = None
    verified: bool = False  # this process passed its environment's start-up check
    db_bytes: int | None = None
    log_bytes: int | None = None
    release: str = ""
    error: str = ""


def gather_process(layout: Layout, previous: process.ProcStats | None) -> ProcessInfo:
    """Pid, CPU, memory, uptime, sizes and release of one environment; never raises."""
    try:
        return _gather(layout, previous)
    except Exception as exc:  # noqa: BLE001 - one environment's files must not sink a round
        return ProcessInfo(error=f"{type(exc).__name__}: {exc}")


def _gather(layout: Layout, previous: process.ProcStats | None) -> ProcessInfo:
    base = ProcessInfo(
        db_bytes=layout.data_bytes() if layout.data.is_dir() else None,
        log_bytes=layout.log_bytes() if layout.logs.is_dir() else None,
        release=_release(layout),
    )
    try:
        record = process.read_pidfile(layout.pidfile)
    except process.PidFileError as exc:
        return replace(base, error=str(exc))
    if record is None:
        return base
    if not process.is_same_process(record.pid, record.start_time):
        return replace(base, pid=record.pid, alive=False)
    stats = process.proc_stats(record.pid, since=previous)
    uptime = None if stats is None else _uptime(stats)
    try:
        verified = process.read_pidfile(layout.verified) == record
    except process.PidFileError:
        verified = False
    return replace(
        base,
        pid=record.pid,
        alive=stats is not None,
        stats=stats,
        uptime_s=uptime,
        verified=verified,
    )


def _release(layout: Layout) -> str:
    try:
        return layout.current_release() or ""
    except Exception:  # noqa: BLE001 - a broken `current` link is the environment's business
        return ""


def _uptime(stats: process.ProcStats) -> float:
    started = stats.start_time / os.sysconf("SC_CLK_TCK")
    return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - started)


@dataclass(frozen=True, slots=True)
class _Target:
    env: str
    probe: ProbeTarget
    layout: Layout

    @property
    def start_window(self) -> float:
        """How long a just-started process may refuse connections before that counts."""
        return self.layout.config.deploy_timeout


def _targets(settings: Settings) -> tuple[_Target, ...]:
    cfg = settings.monitor
    targets = []
    for env in settings.environments:
        layout = Layout.of(settings, env)
        probe = ProbeTarget(
            env,
            layout.health_url,
            connect_timeout=cfg.connect_timeout,
            read_timeout=cfg.read_timeout,
            max_body_bytes=cfg.max_body_bytes,
        )
        targets.append(_Target(env, probe, layout))
    return tuple(targets)


RoundValue = tuple[tuple[tuple[ProbeResult, ...], ...], tuple[ProcessInfo, ...]]


@dataclass(frozen=True, slots=True)
class Recheck:
    """How a round re-checks an environment slow to answer (`Prober.checks`)."""

    after: float  # seconds without an answer before the next check starts
    checks: int  # at most this many checks of one environment in one round


def run_round(
    prober: Prober,
    targets: Sequence[_Target],
    previous: Sequence[process.ProcStats | None],
    recheck: Recheck,
) -> RoundValue:
    """One round's I/O: every check at once, then every environment's process facts.

    An environment that has not answered within ``recheck.after`` is checked again meanwhile
    (its results come in the order the checks started). Raises only when the prober itself
    fails (a closed prober, its own overall bound).
    """
    probes = [t.probe for t in targets]
    results = tuple(prober.checks(probes, recheck_after=recheck.after, max_checks=recheck.checks))
    procs = tuple(gather_process(t.layout, p) for t, p in zip(targets, previous, strict=True))
    return results, procs


# -- one environment's state (actor-private) ---------------------------------------------------


@dataclass
class _EnvState:
    env: str
    url: str
    classifier: Classifier
    since: float = field(default_factory=time.time)  # when the status last changed
    failing_since: float | None = None
    result: ProbeResult | None = None
    verdict: Verdict | None = None
    proc: ProcessInfo = field(default_factory=ProcessInfo)
    requests: float | None = None
    errors: float | None = None
    counters_at: float | None = None
    start_window: float = 30.0  # how long a just-started process may refuse connections
    window_until: float | None = None  # monotonic end of a start window an event opened
    answered_pid: int | None = None  # the process that last answered a check

    def rechecking(self, needed: int) -> bool:
        """Whether its state is about to change: its last check failed and fewer than
        ``needed`` in a row have (down, or a blip), or it is down and answers again (up once
        ``success_threshold`` checks answer)."""
        verdict = self.verdict
        if verdict is None:
            return False
        failing = 0 < verdict.consecutive_failures < needed
        answering = verdict.observation is not Observation.FAIL
        return failing or (verdict.status is HealthStatus.DOWN and answering)

    def starting(self) -> bool:
        """Whether the process has just started and not answered yet: told so by its
        environment actor, or seen so (alive, younger than the window, not verified)."""
        if self.window_until is not None and time.monotonic() < self.window_until:
            return True
        proc = self.proc
        young = proc.uptime_s is not None and proc.uptime_s < self.start_window
        return bool(proc.alive and young and not proc.verified and proc.pid != self.answered_pid)

    def observe(self, result: ProbeResult, proc: ProcessInfo) -> Verdict:
        self.proc = proc
        verdict = self.classifier.observe(result, starting=self.starting())
        if verdict.observation is not Observation.FAIL:
            self.window_until, self.answered_pid = None, proc.pid  # it answers: started
        if verdict.changed:
            self.since = result.checked_at
        if verdict.observation is Observation.FAIL:
            self.failing_since = self.failing_since or result.checked_at
        else:
            self.failing_since = None
        self.result, self.verdict, self.proc = result, verdict, proc
        return verdict

    @property
    def release(self) -> str:
        if self.proc.release:
            return self.proc.release
        body = self.result.body_json if self.result is not None else None
        value = body.get("release") if body else None
        return value if isinstance(value, str) else ""

    def report(self) -> HealthReport:
        verdict, result = self.verdict, self.result
        assert verdict is not None
        assert result is not None
        return HealthReport(
            env=self.env,
            status=verdict.status.value,
            previous=verdict.previous.value,
            observation=verdict.observation.value,
            consecutive_failures=verdict.consecutive_failures,
            failing_since=self.failing_since,
            latency_s=result.latency_s,
            http_status=result.status,
            checked_at=result.checked_at,
            reason=verdict.reason,
            pid=self.proc.pid,
            alive=self.proc.alive,
            uptime_s=self.proc.uptime_s,
            verified=self.proc.verified,
        )

    def snapshot(self) -> dict[str, Any]:
        verdict, result, stats = self.verdict, self.result, self.proc.stats
        rate = None
        if self.requests and self.errors is not None:
            rate = round(self.errors / self.requests, 6)
        return {
            "env": self.env,
            "status": self.classifier.status.value,
            "reason": verdict.reason if verdict else "not checked yet",
            "since": self.since,
            "last_check": result.checked_at if result else None,
            "url": self.url,
            "response_ms": round(result.latency_s * 1000, 3) if result else None,
            "http_status": result.status if result else None,
            "error": f"{result.error}: {result.detail}" if result and result.error else "",
            "checks": verdict.checks if verdict else 0,
            "check_errors": verdict.errors if verdict else 0,
            "error_rate": verdict.error_rate if verdict else 0.0,
            "consecutive_failures": verdict.consecutive_failures if verdict else 0,
            "requests": self.requests,
            "errors": self.errors,
            "service_error_rate": rate,
            "uptime_s": round(self.proc.uptime_s, 3) if self.proc.uptime_s is not None else None,
            "pid": self.proc.pid,
            "alive": self.proc.alive,
            "cpu_percent": round(stats.cpu_percent, 3) if stats else None,
            "rss_bytes": stats.rss_bytes if stats else None,
            "db_bytes": self.proc.db_bytes,
            "log_bytes": self.proc.log_bytes,
            "release": self.release,
        }

    def row(self) -> dict[str, Any]:
        snap = self.snapshot()
        return {
            "ts": snap["last_check"],
            "env": self.env,
            "status": snap["status"],
            "http_status": snap["http_status"],
            "latency_ms": snap["response_ms"],
            "error": snap["error"],
            "reason": snap["reason"],
            "error_rate": snap["error_rate"],
            "release": snap["release"],
            "uptime_s": snap["uptime_s"],
            "cpu_percent": snap["cpu_percent"],
            "rss_bytes": snap["rss_bytes"],
            "db_bytes": snap["db_bytes"],
            "log_bytes": snap["log_bytes"],
            "pid": snap["pid"],
            "requests": snap["requests"],
            "errors": snap["errors"],
        }


def snapshot_fields() -> tuple[str, ...]:
    """The keys of a health snapshot (``GetHealth``), in display order."""
    state = _EnvState("", "", Classifier())
    return tuple(state.snapshot())


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
        self.targets = _targets(settings)
        limits = thresholds(self.cfg)
        self.envs = {
            t.env: _EnvState(
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

    def _health(self, env: str) -> Any:
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
            state.counters_at = message.scraped_at

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

    def _publish_change(self, state: _EnvState, verdict: Verdict) -> None:
        snap = state.snapshot()
        self.publish(
            HealthEvent.CHANGED,
            level=TRANSITION_LEVELS[verdict.status],
            env=state.env,
            old=verdict.previous.value,
            new=verdict.status.value,
            reason=verdict.reason,
            response_ms=snap["response_ms"],
            http_status=snap["http_status"],
            consecutive_failures=verdict.consecutive_failures,
            pid=snap["pid"],
            alive=snap["alive"],
        )
