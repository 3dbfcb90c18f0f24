"""Alerts: from the event to a webhook receiver holding the alert, and a burst of alerts.

    python benchmarks/alerts.py [--rounds 20] [--burst 1000]

The real daemon (``run.py``) on the shipped configuration on free loopback ports (as
chaos_soak.py's ``local_config``: three demo environments running), with one ``webhook``
receiver: a loopback HTTP server in this process (the tests' ``HookServer``), which stamps
each request with ``time.monotonic()`` once it has read the body.

Latency (``[alerts] group_wait = 0``, so what is measured is the machinery, not the grouping
window; the receiver's rate limit lifted, as the rounds send more than 20 notifications a
minute): each round tells the bus, over the control socket as ``send bus Event`` does, the
event the environment actor publishes when it parks prod FAILED (``environment.failed``,
env prod), and is timed from just before the tell to the server holding the notification
that carries the alert. Then ``environment.healthy`` resolves it and the resolved
notification is awaited, so every round starts from no alert. Baseline, in the same round
(so both see the same load): a bare ``requests.post`` of the same body to the same server (a
new connection each, as a one-off script would send it), timed the same way. Medians of
``--rounds``.

Burst (the shipped grouping and rate limit: ``group_wait`` 1 s, ``group_interval`` 30 s, one
group per alert name, 20 notifications a minute): ``--burst`` distinct
``environment.rolled_back`` events (one-off alerts, each its own) told through four control
connections at once. Reported: the messages the receiver got and the alerts in each, the time
from the first tell to the last alert held, and the round trips of ``status`` asked every
50 ms over another connection, while the burst is told and after, against the same for 2 s
before the burst.

Goal: latency <= 50 ms on loopback; the burst in few messages, ``status`` answered throughout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import queue
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.chaos_soak import Harness, local_config, running_daemon  # noqa: E402
from gaia_actors.alerts.rules import ENVIRONMENT_FAILED as FAILED  # noqa: E402
from gaia_actors.alerts.rules import ENVIRONMENT_ROLLED_BACK as ROLLED_BACK  # noqa: E402
from gaia_actors.console.client import Client  # noqa: E402
from gaia_actors.events import EnvironmentEvent  # noqa: E402
from tests.gaia_actors.alerts.loopback import HookServer, Request  # noqa: E402

UP_TIMEOUT_S = 120.0
WAIT_S = 60.0  # for one notification; the shipped group_interval is 30 s
STATUS_EVERY_S = 0.05
TELLERS = 4  # control connections the burst is told through (each may send 400 at once)


def alerts_of(request: Request) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = json.loads(request.body)["alerts"]
    return alerts


def wait_for(hooks: HookServer, wanted: Callable[[Request], bool]) -> Request:
    """The first request ``wanted`` accepts (others are dropped)."""
    deadline = time.monotonic() + WAIT_S
    others = []
    while (left := deadline - time.monotonic()) > 0:
        try:
            request = hooks.next(timeout=left)
        except queue.Empty:
            break
        if wanted(request):
            return request
        others.append([(a["name"], a["status"]) for a in alerts_of(request)])
    raise TimeoutError(f"no such notification within {WAIT_S:g} s; others: {others}")


def has(name: str, status: str) -> Callable[[Request], bool]:
    return lambda request: any(
        a["name"] == name and a["status"] == status for a in alerts_of(request)
    )


def event(name: str, env: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {"name": name, "env": env, "level": "error"}
    if data:
        fields["data"] = [[key, value] for key, value in data.items()]
    return fields


# --------------------------------------------------------------------------- latency


def latency(h: Harness, hooks: HookServer, rounds: int) -> tuple[list[float], list[float]]:
    """Per round: the event told to the alert held; then, interleaved so both see the same
    load, a bare POST of the same body."""
    ours, bare = [], []
    failed = event(EnvironmentEvent.FAILED, "prod", {"error": "benchmark: ladder exhausted"})
    healthy = event(EnvironmentEvent.HEALTHY, "prod")
    for _ in range(rounds):
        started = time.monotonic()
        h.call("tell", actor="bus", message="Event", fields=failed)
        held = wait_for(hooks, has(FAILED, "firing"))
        ours.append(held.at - started)
        h.call("tell", actor="bus", message="Event", fields=healthy)
        wait_for(hooks, has(FAILED, "resolved"))
        bare.append(bare_post(hooks, held.body))
    return ours, bare


def bare_post(hooks: HookServer, body: bytes) -> float:
    """The baseline: a bare requests.post of ``body`` to the same server."""
    started = time.monotonic()
    requests.post(hooks.url(), data=body, headers={"Content-Type": "application/json"}, timeout=10)
    return hooks.next().at - started


# --------------------------------------------------------------------------- burst


class StatusProbe:
    """Asks ``status`` every 50 ms on a connection of its own; keeps (asked at, round trip)."""

    def __init__(self, h: Harness) -> None:
        self._client = Client.connect(h.socket_path, timeout=10.0)
        self._stop = threading.Event()
        self.round_trips: list[tuple[float, float]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StatusProbe:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.wait(STATUS_EVERY_S):
            started = time.monotonic()
            self._client.call("command", name="status", args={})
            self.round_trips.append((started, time.monotonic() - started))


def tell_burst(h: Harness, count: int) -> None:
    """``count`` distinct environment.rolled_back events, through TELLERS connections."""

    def teller(first: int) -> None:
        with Client.connect(h.socket_path, timeout=10.0) as client:
            for i in range(first, count, TELLERS):
                data = {"release": f"r{i}", "previous": f"r{i + 1}", "reason": "benchmark"}
                fields = event(EnvironmentEvent.ROLLED_BACK, "prod", data)
                fields["ts"] = time.time() + i * 1e-6  # distinct: a one-off's key holds it
                client.tell("bus", "Event", fields)

    threads = [threading.Thread(target=teller, args=(i,)) for i in range(TELLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@dataclass
class Burst:
    told: float = 0.0  # seconds from the first tell to the last
    held: float = 0.0  # seconds from the first tell to the last alert held
    sizes: list[int] = field(default_factory=list)  # alerts per message
    keys: set[str] = field(default_factory=set)  # distinct alerts held
    idle: list[float] = field(default_factory=list)  # status round trips before
    telling: list[float] = field(default_factory=list)  # ... while the burst was told
    after: list[float] = field(default_factory=list)  # ... after, until the last alert held


def burst(h: Harness, hooks: HookServer, count: int) -> Burst:
    result = Burst()
    with StatusProbe(h) as idle:
        time.sleep(2.0)  # the idle sample: a fixed window of status round trips
    result.idle = [rtt for _, rtt in idle.round_trips]
    with StatusProbe(h) as busy:
        started = time.monotonic()
        tell_burst(h, count)
        result.told = time.monotonic() - started
        while len(result.keys) < count:
            request = wait_for(hooks, has(ROLLED_BACK, "firing"))
            alerts = alerts_of(request)
            result.sizes.append(len(alerts))
            result.keys |= {a["key"] for a in alerts}
            result.held = request.at - started
    told_at = started + result.told
    result.telling = [rtt for at, rtt in busy.round_trips if at < told_at]
    result.after = [rtt for at, rtt in busy.round_trips if at >= told_at]
    return result


# --------------------------------------------------------------------------- report


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def spread(samples: list[float]) -> str:
    if not samples:
        return "no asks"
    ordered = sorted(samples)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return (
        f"p50 {ms(statistics.median(ordered))}, p95 {ms(p95)}, max {ms(ordered[-1])} "
        f"({len(ordered)} asks)"
    )


@contextlib.contextmanager
def started_daemon(url: str, alerts: dict[str, Any], rate_limit: int) -> Iterator[Harness]:
    config = local_config()
    receiver = {"name": "bench", "kind": "webhook", "url": url, "min_severity": "info"}
    config["alerts"] = {**alerts, "receivers": [{**receiver, "rate_limit": rate_limit}]}
    with running_daemon(config) as h:
        h.start()
        if not h.wait_up(UP_TIMEOUT_S):
            raise RuntimeError(f"the daemon did not come up: {h.tail()}")
        yield h


def report(rounds: int, ours: list[float], bare: list[float], result: Burst) -> None:
    ratio = statistics.median(ours) / statistics.median(bare)
    print(
        f"event to alert held, median of {rounds}: {ms(statistics.median(ours))} "
        f"(min {ms(min(ours))}, max {ms(max(ours))})"
    )
    print(
        f"bare requests.post of the same body, median of {rounds}: "
        f"{ms(statistics.median(bare))} (min {ms(min(bare))}, max {ms(max(bare))}); "
        f"ratio {ratio:.2f}"
    )
    sizes = " + ".join(map(str, result.sizes))
    print(
        f"burst: told in {result.told:.2f} s; {len(result.keys)} distinct alerts held in "
        f"{len(result.sizes)} messages ({sizes}), the last {result.held:.2f} s after the "
        "first tell"
    )
    print(f"status while idle: {spread(result.idle)}")
    print(f"status while the burst was told: {spread(result.telling)}")
    print(f"status after, until the last alert was held: {spread(result.after)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--burst", type=int, default=1000)
    args = parser.parse_args(argv)
    hooks = HookServer()
    try:
        # The rate limit lifted: the rounds send two notifications each, past 20 a minute.
        quick = {"group_wait": 0.0, "group_interval": 0.2}
        with started_daemon(hooks.url(), quick, rate_limit=100_000) as h:
            ours, bare = latency(h, hooks, args.rounds)
        with started_daemon(hooks.url(), {}, rate_limit=20) as h:
            result = burst(h, hooks, args.burst)
    finally:
        hooks.close()
    report(args.rounds, ours, bare, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
