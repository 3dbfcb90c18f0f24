"""Health-check fan-out: time per round and client CPU per check.

    python benchmarks/health_fanout.py [--rounds N] [--quick]

In one run, for 3, 30 and 300 local endpoints that each answer after 50 ms, it measures the
median time of a round (every endpoint checked once) after a warm-up round, for:

- ideal: the endpoints' own 50 ms;
- sequential: a `requests.get` loop (3 and 30 endpoints only: at 300 a round takes 15 s);
- threadpool: a plain `ThreadPoolExecutor(64)` + `requests.get` (a new connection per check);
- ours: the monitor's probe engine, `gaia_actors.monitoring.probes.Prober`, called directly;
- monitor: through the monitor, i.e. the HealthMonitor actor's round in a real supervision
  tree (store and bus too) with one configured environment per endpoint: `CheckNow` told to
  the actor, its worker thread runs the prober and reads each environment's pid file and
  directories, the actor classifies every result, stores one `health_checks` row per check
  and reports the round. The round time ends when the actor has done all that (its
  `on_round` hook); its CPU also covers the store writing the round's rows (a `Flush`).

Client CPU per check is the `time.process_time()` delta of this process over a round, divided
by the endpoints. The endpoints run in a separate process (this script with `--serve`) so their
CPU is not counted: one asyncio loop serving every port, each reply scheduled 50 ms after its
request (no thread per request), with TCP_NODELAY on every connection (Nagle plus delayed ACK
would add ~44 ms per kept-alive request). The footnote shows how busy that server process was
during each client's rounds, to show that the server kept up.

Goals at 300 endpoints, for ours and for the monitor: <= 0.6x the threadpool's round time, and
<= 1 ms of client CPU per check. The exit status is 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gaia_actors.monitoring.checks import ProbeTarget
from gaia_actors.monitoring.probes import Prober

EXIT_OK = 0
EXIT_GOAL_MISSED = 1
SIZES = (3, 30, 300)
SEQUENTIAL_MAX = 30
DELAY_S = 0.05
POOL_WORKERS = 64
GOAL_RATIO = 0.6
GOAL_CPU_MS = 1.0
BODY = b'{"status": "ok"}'
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%b" % (
    len(BODY),
    BODY,
)


# -- the endpoints (child process) -----------------------------------------------------------


class DelayedEndpoint(asyncio.Protocol):
    """Answers every request on a connection `delay` seconds after it arrived."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            close = b"connection: close" in head.lower()
            asyncio.get_running_loop().call_later(self.delay, self.reply, close)

    def reply(self, close: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(RESPONSE)
        if close:
            self.transport.close()


async def serve(count: int, delay: float) -> None:
    loop = asyncio.get_running_loop()
    servers = [
        await loop.create_server(lambda: DelayedEndpoint(delay), "127.0.0.1", 0, backlog=1024)
        for _ in range(count)
    ]
    print(json.dumps([s.sockets[0].getsockname()[1] for s in servers]), flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin


class Endpoints:
    """The endpoint server process: start, its ports, its CPU time, stop."""

    def __init__(self, count: int, delay: float) -> None:
        command = [sys.executable, __file__, "--serve", str(count), "--delay", str(delay)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"endpoint server exited with {self.process.wait()}")
        self.ports: list[int] = json.loads(line)

    def cpu_seconds(self) -> float | None:
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- the clients ------------------------------------------------------------------------------


def get_ok(url: str) -> bool:
    return requests.get(url, timeout=5).status_code == 200


@dataclass
class Client:
    """One way of running a round, and what its measured rounds cost."""

    name: str
    run_round: Callable[[], int]  # returns how many checks were ok
    times: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    server_cpu: float = 0.0
    failures: int = 0
    # When set, the round's own duration (run_round may go on to settle work it caused).
    round_time: Callable[[], float] | None = None

    def measure(self, endpoints: Endpoints, count: int) -> None:
        server_before = endpoints.cpu_seconds()
        cpu, started = time.process_time(), time.perf_counter()
        ok = self.run_round()
        wall = time.perf_counter() - started
        self.times.append(self.round_time() if self.round_time else wall)
        self.cpus.append(time.process_time() - cpu)
        server_after = endpoints.cpu_seconds()
        if server_before is not None and server_after is not None:
            self.server_cpu += server_after - server_before
        self.failures += count - ok

    def round_ms(self) -> float:
        return statistics.median(self.times) * 1000

    def cpu_ms_per_check(self, count: int) -> float:
        return statistics.median(self.cpus) * 1000 / count

    def server_busy(self) -> float:
        return self.server_cpu / sum(self.times)


def make_clients(
    urls: list[str], pool: ThreadPoolExecutor, prober: Prober, monitor: MonitorTree
) -> list[Client]:
    targets = [ProbeTarget(f"endpoint-{i}", url) for i, url in enumerate(urls)]
    clients = [
        Client("threadpool", lambda: sum(pool.map(get_ok, urls))),
        Client("ours", lambda: sum(r.ok for r in prober.round(targets))),
        Client("monitor", monitor.run_round, round_time=lambda: monitor.last_round),
    ]
    if len(urls) <= SEQUENTIAL_MAX:
        clients.insert(0, Client("sequential", lambda: sum(map(get_ok, urls))))
    return clients


# -- through the monitor: the HealthMonitor actor in a real tree ------------------------------


class MonitorTree:
    """Store, bus and a HealthMonitor over one environment per port; rounds on demand."""

    def __init__(self, ports: Sequence[int], state_dir: Path) -> None:
        from gaia_actors.app import build_children, start_root
        from gaia_actors.monitoring.monitor import HealthMonitor
        from gaia_actors.settings import load
        from supervisors import ChildSpec, Registry

        settings = load(self._config(ports, state_dir), environ={"GAIA_STATE_DIR": str(state_dir)})
        self.registry = Registry()
        self.done = threading.Event()
        self.last_round = 0.0
        self.ok = 0
        self.started = 0.0
        monitor = ChildSpec(
            "monitor", lambda link: HealthMonitor.start(link, settings, on_round=self._on_round)
        )
        self.root = start_root(
            settings,
            self.registry,
            children=[*build_children(settings, self.registry, capabilities=()), monitor],
        )
        self.done.wait(30)  # the round the monitor starts with: its warm-up

    @staticmethod
    def _config(ports: Sequence[int], state_dir: Path) -> Path:
        # Rounds only on CheckNow (the interval is an hour); timeouts as the client loops'.
        lines = ["[monitor]", "interval = 3600", "read_timeout = 5.0", "connect_timeout = 2.0"]
        for i, port in enumerate(ports):
            lines += [f"[environments.e{i}]", f"port = {port}"]
        path = state_dir / "gaia.toml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def _on_round(self, health_round: Any) -> None:
        # Called in the actor's thread once the round is classified, stored and reported.
        self.last_round = time.perf_counter() - self.started
        self.ok = sum(r.observation == "pass" for r in health_round.reports)
        self.done.set()

    def run_round(self) -> int:
        from gaia_actors.messages import CheckNow, Flush

        self.done.clear()
        self.started = time.perf_counter()
        self.registry.tell("monitor", CheckNow())
        if not self.done.wait(60):
            raise RuntimeError("the monitor did not finish a round within 60 s")
        self.registry.ask("store", Flush(), timeout=30)  # the round's rows, written
        return self.ok

    def stop(self) -> None:
        self.root.stop(block=True, timeout=30)


@contextmanager
def monitor_tree(ports: Sequence[int]) -> Iterator[MonitorTree]:
    with tempfile.TemporaryDirectory(prefix="health-fanout-") as state:
        tree = MonitorTree(ports, Path(state))
        try:
            yield tree
        finally:
            tree.stop()


def quiet_logs() -> None:
    """Only warnings and errors from the actors: 300 environments starting would flood stdout."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


@dataclass
class Row:
    count: int
    clients: dict[str, Client]


def measure_size(endpoints: Endpoints, count: int, rounds: int) -> Row:
    ports = endpoints.ports[:count]
    urls = [f"http://127.0.0.1:{port}/health" for port in ports]
    with ThreadPoolExecutor(POOL_WORKERS) as pool, Prober() as prober, monitor_tree(ports) as tree:
        clients = make_clients(urls, pool, prober, tree)
        for client in clients:
            client.run_round()  # warm-up: imports, threads, ours opens its connections
        for _ in range(rounds):  # interleaved, so drift in the machine hits every client
            for client in clients:
                client.measure(endpoints, count)
    return Row(count, {client.name: client for client in clients})


# -- report -----------------------------------------------------------------------------------

HEADER = (
    f"{'endpoints':>9}  {'ideal ms':>8}  {'sequential ms':>13}  {'threadpool ms':>13}  "
    f"{'ours ms':>7}  {'ours/threadpool':>15}  {'ours/ideal':>10}  "
    f"{'monitor ms':>10}  {'monitor/threadpool':>18}  {'monitor/ideal':>13}  "
    f"{'cpu ms/check threadpool':>23}  {'cpu ms/check ours':>17}  {'cpu ms/check monitor':>20}"
)


def format_row(row: Row, delay: float) -> str:
    pool, ours, monitor = row.clients["threadpool"], row.clients["ours"], row.clients["monitor"]
    sequential = row.clients.get("sequential")
    seq = f"{sequential.round_ms():.1f}" if sequential else "skipped"
    ideal = delay * 1000
    return (
        f"{row.count:>9}  {ideal:>8.1f}  {seq:>13}  {pool.round_ms():>13.1f}  "
        f"{ours.round_ms():>7.1f}  {ours.round_ms() / pool.round_ms():>14.2f}x  "
        f"{ours.round_ms() / ideal:>9.2f}x  "
        f"{monitor.round_ms():>10.1f}  {monitor.round_ms() / pool.round_ms():>17.2f}x  "
        f"{monitor.round_ms() / ideal:>12.2f}x  "
        f"{pool.cpu_ms_per_check(row.count):>23.2f}  {ours.cpu_ms_per_check(row.count):>17.3f}  "
        f"{monitor.cpu_ms_per_check(row.count):>20.3f}"
    )


def footnotes(rows: Sequence[Row]) -> list[str]:
    lines = []
    for row in rows:
        busy = ", ".join(f"{c.name} {c.server_busy():.0%}" for c in row.clients.values())
        failed = sum(c.failures for c in row.clients.values())
        lines.append(
            f"  {row.count:>3} endpoints: server process busy {busy}; failed checks {failed}"
        )
    return lines


def goals(rows: Sequence[Row]) -> tuple[bool, str]:
    last = rows[-1]
    pool = last.clients["threadpool"]
    lines, all_met = [], True
    for name in ("ours", "monitor"):
        client = last.clients[name]
        ratio = client.round_ms() / pool.round_ms()
        cpu = client.cpu_ms_per_check(last.count)
        met = ratio <= GOAL_RATIO and cpu <= GOAL_CPU_MS
        all_met = all_met and met
        lines.append(
            f"goals at {last.count} endpoints: {name}/threadpool {ratio:.2f} <= {GOAL_RATIO}, "
            f"client CPU {cpu:.3f} ms/check <= {GOAL_CPU_MS} ms: {'met' if met else 'MISSED'}"
        )
    return all_met, "\n".join(lines)


# -- command line -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per size (5)")
    parser.add_argument("--quick", action="store_true", help="2 measured rounds per size")
    parser.add_argument("--serve", type=int, metavar="N", help=argparse.SUPPRESS)
    parser.add_argument("--delay", type=float, default=DELAY_S, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.serve, args.delay))
        return EXIT_OK
    rounds = 2 if args.quick else args.rounds
    quiet_logs()
    endpoints = Endpoints(max(SIZES), args.delay)
    try:
        rows = [measure_size(endpoints, count, rounds) for count in SIZES]
    finally:
        endpoints.stop()
    print(
        f"health fan-out: endpoints answer after {args.delay * 1000:.0f} ms; median of {rounds} "
        f"rounds after 1 warm-up; {os.cpu_count()} CPUs; sequential skipped above "
        f"{SEQUENTIAL_MAX} endpoints (300 x 50 ms = 15 s a round)"
    )
    print(HEADER)
    for row in rows:
        print(format_row(row, args.delay))
    print("\n".join(footnotes(rows)))
    met, summary = goals(rows)
    print(summary)
    return EXIT_OK if met else EXIT_GOAL_MISSED


if __name__ == "__main__":
    sys.exit(main())
