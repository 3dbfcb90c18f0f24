"""Resource bounds of the daemon.

    python benchmarks/resources.py [--envs 50] [--window 30] [--json]
    python benchmarks/resources.py --scale 3,50,200

``--scale`` measures only the cost per environment, at each count side by side: the bare
demo services alone (spawned at once, until all answer /health) as the baseline, then the
daemon on a fresh state with that many environments (start to all healthy, and after a few
seconds its threads by name, its RSS, its service and helper processes), and the cost of each
environment added between the counts. Where the start's time goes is printed beside it: the
CPU seconds the daemon, its services and its helpers used until all were healthy (and the
bare services' own), and the floor they set on this machine's cores, with the load average.


In one run, on the shipped ``config/gaia.toml`` (its intervals kept; only ports, paths and
the console changed, as in chaos_soak.py's ``local_config``):

1. start to all environments healthy: ``run.py`` spawned until every environment's
   ``/health`` answers 200, on a fresh state directory (builds the releases) and again on
   the state the first start left (releases exist; services are started anew);
2. steady state of the daemon with the three shipped environments: RSS and thread count from
   /proc/<pid>/status, sampled every 0.5 s over ``--window`` seconds after a 10 s settle
   (median and max), and the services' RSS beside it;
3. the same with ``--envs`` environments of the demo service;
4. the store over one simulated hour: the rows an hour produces at the configured rates (one
   health check per environment every ``[monitor] interval``, one scrape per environment
   every ``[metrics] interval`` with as many samples as a real scrape of the demo stored,
   events at the rate the steady-state run stored them) inserted through the Store actor
   with hour-old to current timestamps, then its Prune; rows per table and the database file
   size (with its WAL). Retention: the configured one (7 days for checks and samples, 30 for
   events) prunes nothing within an hour, so the run repeats with retention set to 30 minutes
   to show the prune bounding the tables, and projects the size at the retention horizon.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import itertools
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.chaos_soak import (  # noqa: E402 - needs the sys.path entry above
    DEMO,
    Harness,
    free_ports,
    http_get,
    local_config,
    proc_status,
    running_daemon,
    wait_for,
)
from gaia_actors import logs  # noqa: E402
from gaia_actors.app import start_root  # noqa: E402
from gaia_actors.messages import Flush, Insert, Prune, fields_of  # noqa: E402
from gaia_actors.settings import load  # noqa: E402
from supervisors import Registry  # noqa: E402

SETTLE_S = 10.0
SAMPLE_S = 0.5
UP_TIMEOUT = 600.0
HOUR = 3600.0
CHUNK = 20_000  # rows told to the store before waiting for it to write them


@dataclass
class Steady:
    since: float  # the sampling window, Unix seconds
    until: float
    rss_median: float
    rss_max: float
    threads_median: float
    threads_max: int
    services_rss: float  # total of the environments' service processes
    samples: int


@dataclass
class Rates:
    """What a steady daemon stored per hour, measured over the window."""

    checks_per_env_hour: float
    samples_per_scrape: float
    events_per_hour: float


def start_to_healthy(h: Harness) -> float:
    """Seconds from spawning the daemon to every environment answering /health 200."""
    started = h.start()

    def up() -> bool:
        if not h.alive():
            raise RuntimeError(f"the daemon exited: {h.tail()}")
        return h.all_healthy()

    if not wait_for(up, UP_TIMEOUT, interval=0.02):
        raise RuntimeError(f"not all healthy within {UP_TIMEOUT:g}s")
    return time.monotonic() - started


def steady_state(h: Harness, window: float) -> Steady:
    """RSS and threads of the daemon over ``window`` seconds after a settle period."""
    time.sleep(SETTLE_S)  # let the first rounds, scrapes and timers pass before sampling
    rss: list[int] = []
    threads: list[int] = []
    since = time.time()
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        status = proc_status(h.pid)
        rss.append(status["rss"])
        threads.append(status["threads"])
        time.sleep(SAMPLE_S)  # the sampling period
    services = sum(
        proc_status(pid).get("rss", 0) for env in h.envs if (pid := h.service_pid(env)) is not None
    )
    return Steady(
        since=since,
        until=time.time(),
        rss_median=statistics.median(rss),
        rss_max=max(rss),
        threads_median=statistics.median(threads),
        threads_max=max(threads),
        services_rss=services,
        samples=len(rss),
    )


def measured_rates(h: Harness, since: float, until: float) -> Rates:
    hours = (until - since) / HOUR
    with contextlib.closing(sqlite3.connect(f"file:{h.db_path}?mode=ro", uri=True)) as conn:
        checks = conn.execute(
            "SELECT count(*) FROM health_checks WHERE ts BETWEEN ? AND ?", (since, until)
        ).fetchone()[0]
        samples, scrapes = conn.execute(
            "SELECT count(*), count(DISTINCT env || ts) FROM metric_samples "
            "WHERE ts BETWEEN ? AND ?",
            (since, until),
        ).fetchone()
        events = conn.execute(
            "SELECT count(*) FROM events WHERE ts BETWEEN ? AND ?", (since, until)
        ).fetchone()[0]
    return Rates(
        checks_per_env_hour=checks / len(h.envs) / hours,
        samples_per_scrape=samples / max(1, scrapes),
        events_per_hour=events / hours,
    )


def templates(db_path: Path) -> dict[str, list[dict[str, Any]]]:
    """Real rows to copy: health checks, one scrape's samples, events."""
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        checks = [dict(r) for r in conn.execute("SELECT * FROM health_checks LIMIT 50")]
        last = conn.execute(
            "SELECT env, ts FROM metric_samples ORDER BY ts DESC LIMIT 1"
        ).fetchone()
        samples = [
            dict(r)
            for r in conn.execute(
                "SELECT * FROM metric_samples WHERE env = ? AND ts = ?", (last[0], last[1])
            )
        ]
        events = [dict(r) for r in conn.execute("SELECT * FROM events LIMIT 200")]
    for rows in (checks, samples, events):
        for row in rows:
            row.pop("id", None)
    for row in samples:
        row["labels"] = json.loads(row["labels"])
    for row in events:
        row["data"] = json.loads(row["data"])
    return {"health_checks": checks, "metric_samples": samples, "events": events}


# --------------------------------------------------------------------------- the store


@dataclass
class StoreGrowth:
    envs: int
    retention: str
    rows_inserted: dict[str, int]
    rows_after_prune: dict[str, int]
    db_bytes: int
    wal_bytes: int
    insert_seconds: float


def simulate_hour(
    config: dict[str, Any],
    envs: int,
    rates: Rates,
    rows: dict[str, list[dict[str, Any]]],
    retention_days: float | None = None,
) -> StoreGrowth:
    """One hour of rows through a real Store actor on a fresh database, then its Prune."""
    with tempfile.TemporaryDirectory(prefix="gaia-store-") as tmp:
        h = Harness(Path(tmp), config)
        h.write_config()
        settings = load(h.config_path, environ={"GAIA_STATE_DIR": str(h.state_dir)})
        if retention_days is not None:
            settings = replace(
                settings,
                monitor=replace(settings.monitor, retention_days=retention_days),
                metrics=replace(settings.metrics, retention_days=retention_days),
                store=replace(settings.store, retention_days=retention_days),
            )
        logs.configure(replace(settings.logging, console="off"), None)  # quiet, no file
        registry = Registry()
        root = start_root(settings, registry, capabilities=())
        try:
            inserted, seconds = _insert_hour(registry, settings, envs, rates, rows)
            registry.ask("store", Prune(), timeout=600)
            after = _counts(settings.state_dir / "gaia.db")
        finally:
            root.stop(block=True, timeout=60)
        db = settings.state_dir / "gaia.db"
        wal = db.with_name("gaia.db-wal")
        return StoreGrowth(
            envs=envs,
            retention="configured" if retention_days is None else f"{retention_days * 24:g} h",
            rows_inserted=inserted,
            rows_after_prune=after,
            db_bytes=db.stat().st_size,
            wal_bytes=wal.stat().st_size if wal.exists() else 0,
            insert_seconds=round(seconds, 2),
        )


def _insert_hour(
    registry: Registry,
    settings: Any,
    envs: int,
    rates: Rates,
    rows: dict[str, list[dict[str, Any]]],
) -> tuple[dict[str, int], float]:
    now = time.time()
    start = now - HOUR
    counts = {"health_checks": 0, "metric_samples": 0, "events": 0}
    began = time.monotonic()
    names = [f"env{i:02d}" for i in range(envs)]

    def tell(table: str, row: dict[str, Any]) -> None:
        registry.tell("store", Insert(table, fields_of(**row)))
        counts[table] += 1
        if sum(counts.values()) % CHUNK == 0:
            # Wait for the store to catch up: a mailbox backlog longer than the liveness
            # ping timeout would get it declared hung (a real hour arrives far slower).
            registry.ask("store", Flush(), timeout=60)

    check_every = settings.monitor.interval
    for i in range(int(HOUR / check_every)):
        for k, env in enumerate(names):
            template = rows["health_checks"][(i + k) % len(rows["health_checks"])]
            tell("health_checks", {**template, "ts": start + i * check_every, "env": env})
    scrape_every = settings.metrics.interval
    for i in range(int(HOUR / scrape_every)):
        for env in names:
            for template in rows["metric_samples"]:
                tell("metric_samples", {**template, "ts": start + i * scrape_every, "env": env})
    events = round(rates.events_per_hour * envs / 3)  # measured with the 3 shipped ones
    for i in range(events):
        template = rows["events"][i % len(rows["events"])]
        tell("events", {**template, "ts": start + i * HOUR / max(1, events)})
    registry.ask("store", Flush(), timeout=600)
    return counts, time.monotonic() - began


def _counts(db: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[
                0
            ]  # table names are ours
            for table in ("health_checks", "metric_samples", "events")
        }


# --------------------------------------------------------------------------- the run


def run(envs: int, window: float, log: Callable[[str], None] = print) -> dict[str, Any]:
    results: dict[str, Any] = {}
    config = local_config()
    with running_daemon(config) as h:
        fresh = start_to_healthy(h)
        log(f"shipped config: start to all healthy (fresh state) {fresh:.2f}s")
        shipped = steady_state(h, window)
        log(f"shipped config: steady {_steady(shipped)}")
        h.stop()
        rates = measured_rates(h, shipped.since, shipped.until)
        rows = templates(h.db_path)
        existing = start_to_healthy(h)
        log(f"shipped config: start to all healthy (existing state) {existing:.2f}s")
        h.stop()
    results["shipped"] = {"fresh_start_s": fresh, "existing_start_s": existing,
                          "steady": shipped.__dict__, "rates": rates.__dict__}  # fmt: skip
    many = local_config({f"env{i:02d}": {} for i in range(envs)})
    with running_daemon(many) as h:
        start = start_to_healthy(h)
        log(f"{envs} environments: start to all healthy (fresh state) {start:.2f}s")
        steady = steady_state(h, window)
        log(f"{envs} environments: steady {_steady(steady)}")
    results["many"] = {"envs": envs, "fresh_start_s": start, "steady": steady.__dict__}
    log(
        f"rates measured: {rates.checks_per_env_hour:.0f} checks/env/h, "
        f"{rates.samples_per_scrape:.0f} samples/scrape, {rates.events_per_hour:.0f} events/h"
    )
    growth = [
        simulate_hour(config, 3, rates, rows),
        simulate_hour(config, 3, rates, rows, retention_days=0.5 / 24),
        simulate_hour(config, envs, rates, rows),
    ]
    for g in growth:
        log(_growth(g))
    results["store"] = [g.__dict__ for g in growth]
    return results


# --------------------------------------------------------------------------- cost per environment


@dataclass
class Scale:
    """What ``envs`` environments cost: the daemon beside the bare services alone."""

    envs: int
    bare_start_s: float  # the services alone, spawned at once, until all answer /health
    bare_rss: int  # their total RSS
    bare_cpu: float  # CPU seconds the bare services used until then
    start_s: float  # the daemon, fresh state, until all answer /health
    daemon_cpu: float  # CPU seconds until then: the daemon (its imports included) ...
    services_cpu: float  # ... its services ...
    helpers_cpu: float  # ... and its helper processes (the log pump), alive at that moment
    load: float  # the 1-minute load average when all were healthy
    threads: int  # the daemon's
    rss: int  # the daemon's
    services: int  # service processes (pid files)
    helpers: int  # every other process the daemon started that is alive
    names: dict[str, int]  # the daemon's threads by name, digits folded to '#'


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (0 when it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bare_services(envs: int) -> tuple[float, int, float]:
    """Start ``envs`` demo services with no daemon; seconds until all answer, total RSS and
    the CPU seconds they used until then."""
    with tempfile.TemporaryDirectory(prefix="gaia-bare-") as tmp:
        ports = free_ports(envs)
        started = time.monotonic()
        children = [
            subprocess.Popen(
                [sys.executable, str(DEMO / "server.py")],
                cwd=DEMO,
                env={**os.environ, "PORT": str(port), "DATA_DIR": f"{tmp}/{port}",
                     "RELEASE_ID": "bare", "ENV_NAME": f"bare{port}", "LOG_LEVEL": "info"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            for port in ports
        ]  # fmt: skip
        try:
            pending = set(ports)

            def up() -> bool:
                pending.difference_update([p for p in pending if http_get(p, "/health")[0] == 200])
                return not pending

            if not wait_for(up, UP_TIMEOUT, interval=0.02):
                raise RuntimeError(f"bare services not all healthy within {UP_TIMEOUT:g}s")
            seconds = time.monotonic() - started
            cpu = sum(cpu_seconds(child.pid) for child in children)
            rss = sum(proc_status(child.pid).get("rss", 0) for child in children)
        finally:
            for child in children:
                with contextlib.suppress(OSError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        return seconds, rss, cpu


def thread_names(h: Harness) -> dict[str, int]:
    """The daemon's threads by name (its ``resources`` command), digits folded to '#'."""
    names: collections.Counter[str] = collections.Counter()
    for name, count in h.command("resources")["threads_by_name"].items():
        names[re.sub(r"\d+", "#", name)] += count
    return dict(names.most_common())


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError):
            raw = stat.read_bytes()
            fields = raw[raw.rindex(b")") + 2 :].split()
            if int(fields[1]) == pid and fields[0] != b"Z":
                found.append(int(stat.parent.name))
    return found


def scale_point(envs: int, settle: float) -> Scale:
    bare_s, bare_rss, bare_cpu = bare_services(envs)
    with running_daemon(local_config({f"env{i:03d}": {} for i in range(envs)})) as h:
        start = start_to_healthy(h)
        load = os.getloadavg()[0]
        services = {pid for env in h.envs if (pid := h.service_pid(env)) is not None}
        helpers = [pid for pid in children_of(h.pid) if pid not in services]
        cpu = [
            cpu_seconds(h.pid),
            sum(cpu_seconds(pid) for pid in services),
            sum(cpu_seconds(pid) for pid in helpers),
        ]
        time.sleep(settle)  # let the first health rounds and timers pass before counting
        status = proc_status(h.pid)
        helpers = [pid for pid in children_of(h.pid) if pid not in services]
        return Scale(
            envs, bare_s, bare_rss, bare_cpu, start, *cpu, load, status["threads"],
            status["rss"], len(services), len(helpers), thread_names(h),
        )  # fmt: skip


def scale_table(points: list[Scale]) -> list[str]:
    """The points side by side, then the cost of each added environment between them."""
    mib = 2**20
    rows = [
        ("environments", lambda p: f"{p.envs}"),
        ("bare services: start to all healthy", lambda p: f"{p.bare_start_s:.2f} s"),
        ("daemon: start to all healthy", lambda p: f"{p.start_s:.2f} s"),
        ("daemon / bare start", lambda p: f"{p.start_s / p.bare_start_s:.2f}x"),
        ("load average (1 min) at all healthy", lambda p: f"{p.load:.1f}"),
        ("bare services: CPU until healthy", lambda p: f"{p.bare_cpu:.2f} s"),
        ("daemon: its own CPU until healthy", lambda p: f"{p.daemon_cpu:.2f} s"),
        ("daemon: its services' CPU", lambda p: f"{p.services_cpu:.2f} s"),
        ("daemon: its helpers' CPU", lambda p: f"{p.helpers_cpu:.2f} s"),
        (f"CPU floor on {CORES} cores: bare / daemon", _floors),
        ("daemon threads", lambda p: f"{p.threads}"),
        ("daemon RSS", lambda p: f"{p.rss / mib:.1f} MiB"),
        ("service processes", lambda p: f"{p.services}"),
        ("helper processes", lambda p: f"{p.helpers}"),
        ("bare services' RSS", lambda p: f"{p.bare_rss / mib:.1f} MiB"),
    ]
    lines = [f"{label:<38}" + "".join(f"{cell(p):>14}" for p in points) for label, cell in rows]
    for low, high in itertools.pairwise(points):
        n = high.envs - low.envs
        lines.append(
            f"per environment added, {low.envs} -> {high.envs}: "
            f"{(high.threads - low.threads) / n:.2f} threads, "
            f"{(high.helpers - low.helpers) / n:.2f} helper processes, "
            f"{(high.rss - low.rss) / n / 1024:.0f} KiB daemon RSS, "
            f"{(high.start_s - low.start_s) / n * 1000:.1f} ms start "
            f"(bare {(high.bare_start_s - low.bare_start_s) / n * 1000:.1f} ms); CPU "
            f"{(high.daemon_cpu - low.daemon_cpu) / n * 1000:.0f} ms daemon + "
            f"{(high.services_cpu - low.services_cpu) / n * 1000:.0f} ms its service "
            f"(bare service {(high.bare_cpu - low.bare_cpu) / n * 1000:.0f} ms)"
        )
    top = points[-1]
    lines.append(f"daemon threads at {top.envs} environments by name: {top.names}")
    return lines


CORES = os.cpu_count() or 1


def _floors(p: Scale) -> str:
    """The least time the CPU work could take on every core of this machine, idle."""
    daemon = p.daemon_cpu + p.services_cpu + p.helpers_cpu
    return f"{p.bare_cpu / CORES:.1f} / {daemon / CORES:.1f} s"


def scale(counts: Sequence[int], settle: float, log: Callable[[str], None]) -> list[Scale]:
    points = []
    for envs in counts:
        points.append(scale_point(envs, settle))
        log(f"measured {envs} environments")
    for line in scale_table(points):
        log(line)
    return points


def _steady(s: Steady) -> str:
    return (
        f"daemon RSS {s.rss_median / 2**20:.1f} MiB (max {s.rss_max / 2**20:.1f}), "
        f"threads {s.threads_median:.0f} (max {s.threads_max}); services RSS total "
        f"{s.services_rss / 2**20:.1f} MiB ({s.samples} samples)"
    )


def _growth(g: StoreGrowth) -> str:
    inserted = ", ".join(f"{k} {v}" for k, v in g.rows_inserted.items())
    kept = ", ".join(f"{k} {v}" for k, v in g.rows_after_prune.items())
    text = (
        f"store, one simulated hour, {g.envs} envs, retention {g.retention}: inserted {inserted} "
        f"in {g.insert_seconds:.1f}s; after prune {kept}; file {g.db_bytes / 2**20:.2f} MiB "
        f"+ WAL {g.wal_bytes / 2**20:.2f} MiB"
    )
    if g.retention == "configured":
        # Checks and samples are kept 7 days (events 30): the tables stop growing there.
        text += f"; at the 7-day horizon ~{g.db_bytes * 24 * 7 / 2**30:.2f} GiB"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--envs", type=int, default=50)
    parser.add_argument("--window", type=float, default=30.0, help="seconds of sampling")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--scale",
        metavar="N,N,...",
        help="only the cost per environment at these counts, e.g. 3,50,200",
    )
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before counting")
    args = parser.parse_args(argv)
    say = lambda s: print(s, flush=True)  # noqa: E731
    if args.scale:
        counts = [int(n) for n in args.scale.split(",")]
        points = scale(counts, args.settle, say)
        if args.json:
            print(json.dumps([p.__dict__ for p in points], indent=2))
        return 0
    results = run(args.envs, args.window, say)
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
