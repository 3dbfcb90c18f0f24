"""One health round's I/O, in the monitor's worker thread: every environment checked at once,
then each one's process facts gathered from its directory.

The process facts: pid (the pid file, with its start time against pid reuse), CPU and memory
(/proc), uptime, database and log sizes, and the release ``current`` points to. Nothing an
environment does (hanging, garbage, a vanished directory) can raise out of a round: the prober
reports errors in its results, and the per-environment file work is guarded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import replace

from gaia_actors import process
from gaia_actors.layout import Layout
from gaia_actors.monitoring.checks import ProbeResult, ProbeTarget
from gaia_actors.monitoring.probes import Prober
from gaia_actors.settings import Settings
from supervisors.records import record


@record
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


@record
class HealthTarget:
    env: str
    probe: ProbeTarget
    layout: Layout

    @property
    def start_window(self) -> float:
        """How long a just-started process may refuse connections before that counts."""
        return self.layout.config.deploy_timeout


def health_targets(settings: Settings) -> tuple[HealthTarget, ...]:
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
        targets.append(HealthTarget(env, probe, layout))
    return tuple(targets)


RoundValue = tuple[tuple[tuple[ProbeResult, ...], ...], tuple[ProcessInfo, ...]]


@record
class Recheck:
    """How a round re-checks an environment slow to answer (`Prober.checks`)."""

    after: float  # seconds without an answer before the next check starts
    checks: int  # at most this many checks of one environment in one round


def run_round(
    prober: Prober,
    targets: Sequence[HealthTarget],
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
