"""Failover: how fast a SIGKILLed environment is noticed and serving again.

    python benchmarks/failover.py [--runs N]

In one run, interleaved so that both see the same machine load:

- floor: the demo service spawned bare (``sys.executable server.py`` with PORT and DATA_DIR,
  from the same release directory the managed environment runs, on a database a warm-up
  spawn created) until its first ``GET /health`` 200: what any restart costs at least;
- failover: a managed environment (an in-process tree: store, bus, the ``environments``
  supervisor with one EnvironmentActor) whose process is SIGKILLed. *Detection* is from the
  kill to the supervisor handling the child's failure (the ``supervisor.child_failed`` event,
  stamped in the supervisor's thread); the actor's own ``environment.exited`` is shown
  beside it. *MTTR* is from the kill to the first ``/health`` 200 of the new process.

Both health times come from the same poller (a fresh connection every 2 ms), so its
granularity costs both sides alike. Backoff: the first restart of a failure run is
immediate, later ones within ``stable_after`` wait. The config sets ``stable_after`` to
0.5 s and every kill waits until the environment has been up that long, so each kill is a
first failure (no backoff); the output says so.

Then a hung service, with the shipped ``[monitor]`` and ``[failover]`` settings
(config/gaia.toml: checks every 5 s, three failed checks, 2 s read timeout) and a tree that
adds the monitoring actors: the demo's ``/health`` stops answering (``POST /admin/fault
{"hang": true}``) at a random moment of the check interval. *Hang to down* is to the
``health.changed`` event, *hang to failed over* to ``failover.triggered``, *first failed check*
is the incident's start (when the check that hung began), *recovered* the incident's recovery
(a new process, healthy by the monitor). The baseline in the same run is the same tree with
``recheck_interval`` equal to the interval: one check per interval, each waiting out its read
timeout. Last, the slow case: the demo answers every request 0.8 s late (``{"slow": 0.8}``)
while the pipeline's load stage (`run_load`, 8 connections) runs against it; it must turn
degraded, never down, and never be failed over.

Goals: kill detection <= 20 ms (median), MTTR <= 1.5x the floor (median); hang: first failed
check to failed over <= 3 s and hang to failed over <= interval + 3 s (every sample); slow: no
failover, never down. The exit status is 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gaia_actors import logs, monitoring
from gaia_actors.app import build_children, start_root
from gaia_actors.environments import tree as environment_tree
from gaia_actors.environments.tree import actor_name
from gaia_actors.layout import Layout
from gaia_actors.messages import Event, Flush, GetEnvStatus, GetHealth, GetIncidents, Subscribe
from gaia_actors.monitoring.snapshot import HealthSnapshot
from gaia_actors.pipeline.load import run_load
from gaia_actors.replies import EnvStatus
from gaia_actors.settings import LoggingSettings, Settings, load
from supervisors import Registry
from tests.gaia_actors.listener import Listener

EXIT_OK = 0
EXIT_GOAL_MISSED = 1
GOAL_DETECTION_MS = 20.0
GOAL_RATIO = 1.5
POLL_S = 0.002
STABLE_AFTER = 0.5
TIMEOUT_S = 30.0
REPO = Path(__file__).resolve().parent.parent
GOAL_HANG_CHECK_S = 3.0  # first failed check -> failed over
GOAL_HANG_SLACK_S = 3.0  # hang -> failed over, beyond the check interval
SLOW_S = 0.8
SLOW_REQUESTS = 120  # 8 connections x 0.8 s: about 12 s of load


# -- health polling ---------------------------------------------------------------------------


def healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def first_healthy(port: int, since: float) -> float:
    """Seconds from ``since`` (perf_counter) to the first 200 of /health on ``port``."""
    deadline = since + TIMEOUT_S
    while time.perf_counter() < deadline:
        if healthy(port):
            return time.perf_counter() - since
        time.sleep(POLL_S)  # the poll period: the measurement's granularity, on both sides
    raise RuntimeError(f"port {port}: not healthy within {TIMEOUT_S:g}s")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the floor --------------------------------------------------------------------------------


def floor_sample(release_dir: Path, data_dir: Path) -> float:
    """Spawn the demo bare and time it to its first healthy answer."""
    port = free_port()
    environ = {**os.environ, "PORT": str(port), "DATA_DIR": str(data_dir)}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "server.py"],
        cwd=release_dir,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        return first_healthy(port, started)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- the managed environment ------------------------------------------------------------------


@dataclass
class Events:
    """Events from the bus, kept in order; waited on with a Condition."""

    items: list[Event] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def sink(self, event: Event) -> None:
        with self.changed:
            self.items.append(event)
            self.changed.notify_all()

    def wait(
        self,
        name: str,
        after: int,
        timeout: float = TIMEOUT_S,
        where: Callable[[Event], bool] = lambda e: True,
    ) -> Event:
        def find() -> Event | None:
            return next((e for e in self.items[after:] if e.name == name and where(e)), None)

        with self.changed:
            if not self.changed.wait_for(lambda: find() is not None, timeout=timeout):
                raise RuntimeError(f"no {name} event within {timeout:g}s")
            found = find()
        assert found is not None
        return found

    def mark(self) -> int:
        with self.changed:
            return len(self.items)

    def since(self, after: int, name: str) -> list[Event]:
        with self.changed:
            return [e for e in self.items[after:] if e.name == name]


def write_config(tmp: Path, source: Path, extra: str = "") -> Settings:
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "gaia.toml"
    config.write_text(
        f"""
[logging]
console = "off"
[store]
flush_interval = 0.2
[supervision]
max_restarts = 1000
max_seconds = 1
backoff_initial = 0.5
stable_after = {STABLE_AFTER}
ping_interval = 1.0
ping_timeout = 5.0
[environments.bench]
port = {free_port()}
source = "{source}"
env = {{ PORT = "{{port}}", DATA_DIR = "{{data_dir}}", RELEASE_ID = "{{release_id}}" }}
startsecs = 0.2
stop_grace = 2.0
deploy_timeout = 10.0
{extra}""",
        encoding="utf-8",
    )
    return load(config, environ={"GAIA_STATE_DIR": str(tmp / "state")})


ENVIRONMENTS = [environment_tree]
MONITORED = [*ENVIRONMENTS, monitoring]


def start_tree(
    settings: Settings, events: Events, capabilities: Sequence[ModuleType] = ENVIRONMENTS
) -> tuple[Registry, Any]:
    registry = Registry()
    children = build_children(settings, registry, capabilities=capabilities)
    root = start_root(settings, registry, children=children)
    listener = Listener(registry, events.sink, "bench.events")  # lives as long as the process
    registry.ask("bus", Subscribe(listener.name, ("*",)))
    return registry, root


@dataclass(frozen=True)
class Failover:
    exited_ms: float  # kill -> the actor handles the exit
    detected_ms: float  # kill -> the supervisor handles the failure
    spawned_ms: float  # kill -> the new process is spawned (environment.started)
    mttr_ms: float  # kill -> first /health 200 of the new process


def wait_stable(registry: Registry, port: int) -> EnvStatus:
    """Wait until the environment is healthy and has been up for ``stable_after``."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # restarting between two looks
            status: EnvStatus = registry.ask(actor_name("bench"), GetEnvStatus(), timeout=5)
            if status.healthy and status.uptime > STABLE_AFTER + 0.1 and healthy(port):
                return status
        time.sleep(0.05)  # waiting out a period of stability, not synchronising on a result
    raise RuntimeError("the environment did not become stable")


def failover_sample(registry: Registry, events: Events, port: int) -> Failover:
    status = wait_stable(registry, port)
    mark = events.mark()
    killed_wall = time.time()
    killed = time.perf_counter()
    os.kill(status.pid, signal.SIGKILL)
    mttr = first_healthy(port, killed)
    exited = events.wait("environment.exited", mark)
    failed = events.wait("supervisor.child_failed", mark)
    restart = events.wait("supervisor.restart", mark)
    started = events.wait("environment.started", mark)
    if restart.get("delay"):
        raise RuntimeError(f"the restart waited {restart.get('delay')}s of backoff")
    return Failover(
        exited_ms=(exited.ts - killed_wall) * 1000,
        detected_ms=(failed.ts - killed_wall) * 1000,
        spawned_ms=(started.ts - killed_wall) * 1000,
        mttr_ms=mttr * 1000,
    )


# -- a hung service, and a slow one ----------------------------------------------------------


def shipped() -> dict[str, Any]:
    """The shipped configuration, config/gaia.toml."""
    return tomllib.loads((REPO / "config" / "gaia.toml").read_text(encoding="utf-8"))


def shipped_monitoring(recheck_interval: float | None = None) -> str:
    """The shipped ``[monitor]`` and ``[failover]`` tables (``recheck_interval`` replaced when
    given), and no ``/metrics`` listener of the daemon's own."""
    shipped_config = shipped()
    monitor = dict(shipped_config["monitor"])
    if recheck_interval is not None:
        monitor["recheck_interval"] = recheck_interval
    lines = ["[monitor]", *(f"{k} = {v!r}" for k, v in monitor.items())]
    lines += ["[failover]", *(f"{k} = {v!r}" for k, v in shipped_config["failover"].items())]
    return "\n".join([*lines, "[metrics]", 'listen = ""', ""])


def fault(port: int, knobs: dict[str, Any]) -> None:
    body = json.dumps(knobs).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/admin/fault", body, method="POST")
    urllib.request.urlopen(request, timeout=5).close()


def wait_monitored(registry: Registry, port: int) -> None:
    """Wait until the environment is stable and the monitor calls it healthy."""
    wait_stable(registry, port)
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        health: HealthSnapshot = registry.ask("monitor", GetHealth("bench"), timeout=5)
        if health.status == "healthy":
            return
        time.sleep(0.05)  # the next check comes on the monitor's schedule
    raise RuntimeError("the monitor did not see the environment healthy")


@dataclass(frozen=True)
class HangSample:
    to_down_s: float  # hang -> health.changed to down
    to_failover_s: float  # hang -> failover.triggered
    check_to_down_s: float  # first failed check -> down
    check_to_failover_s: float  # first failed check -> failed over (time_to_detect)
    to_recovered_s: float  # hang -> a new process healthy by the monitor


def newest_incident(registry: Registry) -> dict[str, Any]:
    registry.ask("store", Flush(), timeout=5)
    rows: list[dict[str, Any]] = registry.ask("failover", GetIncidents("bench", 1), timeout=5)
    return rows[0]


def hang_sample(registry: Registry, events: Events, port: int, interval: float) -> HangSample:
    wait_monitored(registry, port)
    time.sleep(random.uniform(0, interval))  # a random moment of the check interval
    mark = events.mark()
    hung = time.time()
    fault(port, {"hang": True})
    down = events.wait("health.changed", mark, where=lambda e: e.get("new") == "down")
    triggered = events.wait("failover.triggered", mark)
    events.wait("incident.recovered", mark)
    row = newest_incident(registry)
    if row["cause"] != "hung" or row["started"] < hung:
        raise RuntimeError(f"not this hang's incident: {row}")
    return HangSample(
        to_down_s=down.ts - hung,
        to_failover_s=triggered.ts - hung,
        check_to_down_s=down.ts - row["started"],
        check_to_failover_s=row["time_to_detect"],
        to_recovered_s=row["recovered"] - hung,
    )


@dataclass(frozen=True)
class SlowRun:
    load: str  # what the load stage saw
    status: str  # the monitor's verdict at the end of the load
    downs: int
    failovers: int
    checks: int


def slow_run(registry: Registry, events: Events, port: int) -> SlowRun:
    wait_monitored(registry, port)
    mark = events.mark()
    before = registry.ask("monitor", GetHealth("bench"), timeout=5).checks
    fault(port, {"slow": SLOW_S})
    try:
        deadline = time.monotonic() + 60
        result = run_load(
            "127.0.0.1",
            port,
            "/items?limit=10",
            requests=SLOW_REQUESTS,
            concurrency=8,
            deadline=deadline,
        )
        health: HealthSnapshot = registry.ask("monitor", GetHealth("bench"), timeout=5)
    finally:
        fault(port, {"slow": 0})
    downs = [e for e in events.since(mark, "health.changed") if e.get("new") == "down"]
    return SlowRun(
        load=result.describe(),
        status=str(health.status),
        downs=len(downs),
        failovers=len(events.since(mark, "failover.triggered")),
        checks=int(health.checks) - int(before),
    )


def hang_phase(
    tmp: Path, source: Path, runs: int, recheck_interval: float | None, slow: bool
) -> tuple[list[HangSample], SlowRun | None]:
    settings = write_config(tmp, source, shipped_monitoring(recheck_interval))
    events = Events()
    registry, root = start_tree(settings, events, MONITORED)
    port = settings.environments["bench"].port
    try:
        samples = [
            hang_sample(registry, events, port, settings.monitor.interval) for _ in range(runs)
        ]
        return samples, (slow_run(registry, events, port) if slow else None)
    finally:
        root.stop(block=True, timeout=30)


# -- the run ----------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def report(floor: list[float], samples: list[Failover], runs: int) -> list[str]:
    floor_ms = median([f * 1000 for f in floor])
    exited = median([s.exited_ms for s in samples])
    detected = median([s.detected_ms for s in samples])
    spawned = median([s.spawned_ms for s in samples])
    mttr = median([s.mttr_ms for s in samples])
    ratio = mttr / floor_ms
    p90 = statistics.quantiles([s.mttr_ms for s in samples], n=10)[-1]
    print(f"failover of a SIGKILLed demo environment, medians of {runs} (interleaved)")
    print(f"backoff: none — stable_after={STABLE_AFTER}s and each kill waits until the")
    print("environment has run that long, so every restart is a first, immediate one")
    print()
    print(f"{'measure':<44}{'median ms':>10}{'goal':>14}")
    print(f"{'floor: bare spawn -> first /health 200':<44}{floor_ms:>10.1f}{'':>14}")
    print(f"{'kill -> actor sees the exit':<44}{exited:>10.1f}{'':>14}")
    print(f"{'kill -> supervisor sees the failure':<44}{detected:>10.1f}{'<= 20 ms':>14}")
    print(f"{'kill -> new process spawned':<44}{spawned:>10.1f}{'':>14}")
    print(f"{'kill -> new process /health 200 (MTTR)':<44}{mttr:>10.1f}{'':>14}")
    print(f"{'MTTR p90':<44}{p90:>10.1f}{'':>14}")
    print(f"{'MTTR / floor':<44}{ratio:>10.2f}{'<= 1.5x':>14}")
    missed = []
    if detected > GOAL_DETECTION_MS:
        missed.append(f"detection {detected:.1f} ms > {GOAL_DETECTION_MS:g} ms")
    if ratio > GOAL_RATIO:
        missed.append(f"MTTR/floor {ratio:.2f} > {GOAL_RATIO}")
    return missed


HANG_ROWS: list[tuple[str, Callable[[HangSample], float]]] = [
    ("hang -> declared down", lambda h: h.to_down_s),
    ("hang -> failed over", lambda h: h.to_failover_s),
    ("first failed check -> declared down", lambda h: h.check_to_down_s),
    ("first failed check -> failed over", lambda h: h.check_to_failover_s),
    ("hang -> recovered (new process healthy)", lambda h: h.to_recovered_s),
]


def report_hang(
    hangs: list[HangSample], baseline: list[HangSample], slow: SlowRun, interval: float
) -> list[str]:
    print()
    print(f"a hung /health, shipped [monitor]/[failover] (checks every {interval:g} s)")
    print(f"{len(hangs)} hangs re-checked; baseline: {len(baseline)} checked once per interval")
    print()
    print(f"{'measure (s)':<42}{'median':>8}{'max':>8}{'baseline':>10}{'ratio':>7}")
    for label, of in HANG_ROWS:
        ours = [of(h) for h in hangs]
        base = median([of(h) for h in baseline]) if baseline else float("nan")
        ratio = median(ours) / base if baseline else float("nan")
        print(f"{label:<42}{median(ours):>8.2f}{max(ours):>8.2f}{base:>10.2f}{ratio:>7.2f}")
    print()
    print(f"slow but answering ({SLOW_S:g} s per request) under the load stage:")
    print(f"  load: {slow.load}")
    print(f"  monitor: {slow.status} after {slow.checks} checks; down {slow.downs} times,")
    print(f"  failed over {slow.failovers} times")
    missed = []
    worst_check = max(h.check_to_failover_s for h in hangs)
    worst_hang = max(h.to_failover_s for h in hangs)
    if worst_check > GOAL_HANG_CHECK_S:
        missed.append(f"first failed check -> failed over {worst_check:.2f} s > 3 s")
    if worst_hang > interval + GOAL_HANG_SLACK_S:
        missed.append(f"hang -> failed over {worst_hang:.2f} s > {interval + 3:g} s")
    if slow.downs or slow.failovers:
        missed.append("the slow service was declared down or failed over")
    return missed


def kill_phase(tmp: Path, source: Path, runs: int) -> list[str]:
    settings = write_config(tmp, source)
    events = Events()
    registry, root = start_tree(settings, events)
    try:
        layout = Layout.of(settings, "bench")
        release_dir = layout.releases / str(layout.current_release())
        port = settings.environments["bench"].port
        # One data dir for every bare spawn, created (and migrated) by a warm-up spawn:
        # a restarted environment also opens a database that exists already.
        floor_data = tmp / "floor-data"
        floor_sample(release_dir, floor_data)
        floor: list[float] = []
        samples: list[Failover] = []
        for _ in range(runs):
            floor.append(floor_sample(release_dir, floor_data))
            samples.append(failover_sample(registry, events, port))
    finally:
        root.stop(block=True, timeout=30)
    return report(floor, samples, runs)


def run(runs: int, hang_runs: int, baseline_runs: int) -> int:
    with tempfile.TemporaryDirectory(prefix="gaia-failover-") as name:
        tmp = Path(name)
        source = tmp / "src"
        shutil.copytree(
            REPO / "demo",
            source,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "tests"),
        )
        logs.configure(LoggingSettings(console="off"), tmp / "gaia.log")
        try:
            missed = kill_phase(tmp / "kill", source, runs)
            hangs, slow = hang_phase(tmp / "hang", source, hang_runs, None, slow=True)
            interval = float(shipped()["monitor"]["interval"])
            baseline, _ = hang_phase(tmp / "base", source, baseline_runs, interval, slow=False)
        finally:
            logs.shutdown()
    assert slow is not None
    missed += report_hang(hangs, baseline, slow, interval)
    print()
    print("goals: " + ("met" if not missed else "MISSED: " + "; ".join(missed)))
    return EXIT_GOAL_MISSED if missed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="kill samples (default 20)")
    parser.add_argument("--hang-runs", type=int, default=5, help="hang samples (default 5)")
    parser.add_argument(
        "--baseline-runs", type=int, default=1, help="hang samples, once per interval (default 1)"
    )
    args = parser.parse_args(argv)
    return run(args.runs, args.hang_runs, args.baseline_runs)


if __name__ == "__main__":
    sys.exit(main())
