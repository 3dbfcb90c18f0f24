"""The store's write cost: ``synchronous=off`` (no fsync, the old setting) against ``full`` (each
commit on disk before it returns, the setting the store uses).

    python benchmarks/store_durability.py [--rounds 30] [--daemon-seconds 20] [--dir DIR]

Batch path: a real ``Store`` actor (``start_root`` with no capabilities, the shipped
``[store]`` settings) on a new store file in ``--dir`` (default: the temp directory; put it on
the disk the state directory is on). Each round tells ``batch_size`` (500) ``Insert`` rows of
the ``events`` table, as the bus does, and asks ``Flush``: one transaction, timed from the
first tell to the answer. Then the commits the store makes one at a time, median of
``--rounds``: a ``Flush`` of one row (a quiet daemon's flush) and an ``InsertNow`` (an alert
notification recorded before it is sent, an incident opening, a promotion starting). Both
settings run in this process, interleaved round by round, so both see the same load.

Daemon: the real daemon (``run.py`` on the shipped configuration on free loopback ports, as
chaos_soak.py's ``local_config``) is started; once every environment is healthy, the store's
``written`` and ``commits`` counters are read over the control socket at the start and the end
of ``--daemon-seconds``: the rows and commits a second it really makes. The cost of ``full`` at
that rate is commits/s x (a one-row commit with full - with off): the store's time per second,
and per row. ``--daemon-seconds 0`` skips it.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import structlog

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.chaos_soak import local_config, running_daemon, wait_for  # noqa: E402
from gaia_actors.app import start_root  # noqa: E402
from gaia_actors.messages import Flush, GetState, Insert, InsertNow, fields_of  # noqa: E402
from gaia_actors.settings import Settings, load  # noqa: E402
from gaia_actors.store import database  # noqa: E402
from supervisors import Registry  # noqa: E402

MODES = ("off", "full")
BATCH = 500  # the shipped [store] batch_size


@contextlib.contextmanager
def store_tree(directory: Path, mode: str) -> Iterator[Registry]:
    """A root supervisor with the store and the bus on a new file, with ``synchronous=mode``."""
    saved = database.SQLITE_PRAGMAS["synchronous"], database.READER_PRAGMAS["synchronous"]
    database.SQLITE_PRAGMAS["synchronous"] = database.READER_PRAGMAS["synchronous"] = mode
    state = Path(tempfile.mkdtemp(prefix=f"store-{mode}-", dir=directory))
    config = state / "gaia.toml"
    config.write_text("[logging]\nconsole = 'off'\n", encoding="utf-8")
    settings: Settings = load(config, environ={"GAIA_STATE_DIR": str(state / "state")})
    registry = Registry()
    root = start_root(settings, registry, capabilities=())
    try:
        yield registry
    finally:
        root.stop(block=True, timeout=30)
        database.SQLITE_PRAGMAS["synchronous"], database.READER_PRAGMAS["synchronous"] = saved
        shutil.rmtree(state, ignore_errors=True)


def event_row(i: int) -> Any:
    return fields_of(
        ts=time.time(), name="health.changed", level="info", actor="monitor", env="prod",
        data={"old": "healthy", "new": "degraded", "latency_ms": float(i)},
    )  # fmt: skip


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def batch(registry: Registry) -> float:
    def write() -> None:
        for i in range(BATCH):
            registry.tell("store", Insert("events", event_row(i)))
        registry.ask("store", Flush(), timeout=60)  # the 500th row flushed them: a barrier

    return timed(write)


def one_row(registry: Registry) -> float:
    def write() -> None:
        registry.tell("store", Insert("events", event_row(0)))
        registry.ask("store", Flush(), timeout=60)

    return timed(write)


def insert_now(registry: Registry) -> float:
    values = fields_of(kind="dev_to_staging", status="running", started=time.time())
    return timed(lambda: registry.ask("store", InsertNow("pipelines", values), timeout=60))


def measure(directory: Path, rounds: int) -> dict[str, dict[str, list[float]]]:
    samples: dict[str, dict[str, list[float]]] = {
        mode: {"batch": [], "one_row": [], "insert_now": []} for mode in MODES
    }
    with store_tree(directory, "off") as off, store_tree(directory, "full") as full:
        trees = {"off": off, "full": full}
        for mode, registry in trees.items():
            registry.ask("store", Flush(), timeout=60)  # the start's events out of the way
            in_effect = registry.ask("store", GetState(), timeout=10)["synchronous"]
            assert in_effect == mode, f"the {mode} store runs with synchronous={in_effect}"
        for _ in range(rounds):
            for mode, registry in trees.items():
                samples[mode]["batch"].append(batch(registry))
                samples[mode]["one_row"].append(one_row(registry))
                samples[mode]["insert_now"].append(insert_now(registry))
    return samples


def daemon_rate(seconds: float) -> tuple[float, float]:
    """Rows and commits a second of the real daemon's store, once its environments run."""
    with running_daemon(local_config()) as harness:
        harness.start()
        if not wait_for(harness.all_healthy, timeout=120.0):
            raise SystemExit(f"the daemon did not get healthy:\n{harness.tail()}")

        def counters() -> tuple[float, int, int]:
            state = harness.call("ask", actor="store", message="GetState", fields={})
            return time.monotonic(), int(state["written"]), int(state["commits"])

        t0, rows0, commits0 = counters()
        time.sleep(seconds)
        t1, rows1, commits1 = counters()
    return (rows1 - rows0) / (t1 - t0), (commits1 - commits0) / (t1 - t0)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def report(samples: dict[str, dict[str, list[float]]], rate: tuple[float, float] | None) -> None:
    median = {m: {k: statistics.median(v) for k, v in s.items()} for m, s in samples.items()}
    off, full = median["off"], median["full"]
    print(f"{'':28}{'off':>12}{'full':>12}{'time x':>10}")
    rows_s = {m: BATCH / median[m]["batch"] for m in MODES}
    print(f"{'batch of 500: rows/s':28}{rows_s['off']:>12,.0f}{rows_s['full']:>12,.0f}"
          f"{rows_s['off'] / rows_s['full']:>9.1f}x")  # fmt: skip
    for key, label in (
        ("batch", "batch of 500: per commit"),
        ("one_row", "flush of 1 row: per commit"),
        ("insert_now", "InsertNow: per commit"),
    ):
        print(f"{label:28}{ms(off[key]):>12}{ms(full[key]):>12}{full[key] / off[key]:>9.1f}x")
    if rate is None:
        return
    rows, commits = rate
    print(f"daemon (shipped config, 3 environments): {rows:.1f} rows/s in {commits:.2f} commits/s")
    busy = {m: commits * median[m]["one_row"] for m in MODES}  # seconds of commits a second
    per_row = {m: busy[m] / rows if rows else 0.0 for m in MODES}
    print(f"{'  store time in commits':28}{ms(busy['off']) + '/s':>12}{ms(busy['full']) + '/s':>12}"
          f"{busy['full'] / busy['off'] if busy['off'] else 0:>9.1f}x")  # fmt: skip
    print(f"{'  per row written':28}{ms(per_row['off']):>12}{ms(per_row['full']):>12}"
          f"{per_row['full'] / per_row['off'] if per_row['off'] else 0:>9.1f}x")  # fmt: skip
    print(f"  full costs {busy['full'] * 100:.2f}% of the store's thread at that rate")


def main() -> None:
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())  # the actors' log lines
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--daemon-seconds", type=float, default=20.0)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    samples = measure(args.dir, args.rounds)
    rate = daemon_rate(args.daemon_seconds) if args.daemon_seconds > 0 else None
    report(samples, rate)


if __name__ == "__main__":
    main()
