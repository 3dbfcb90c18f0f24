"""Hostile HTTP peers meet the real daemon's monitor and metrics collector.

Five environments run ``hostile_service.py`` (behaviours from the monitoring tests'
``hostile.py``): a trickled body, slowloris headers, an endless chunked body, invalid UTF-8
with a broken exposition, a megabyte of headers. A sixth runs the demo service. The daemon
must keep checking and scraping everything on schedule, each hostile check bounded by its
timeouts, its memory and threads bounded, and no actor may restart.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from benchmarks.chaos_soak import Harness, proc_status, running_daemon, soak_config
from tests.conftest import wait_until

HERE = Path(__file__).resolve().parent
HOSTILE_PY = HERE.parent / "gaia_actors" / "monitoring" / "hostile.py"
KINDS = ("trickle", "slowloris", "endless", "utf8", "headers")
# These never give a complete answer within the timeouts (utf8 answers 200 with a garbage
# body, which a probe may take for healthy: HTTP status is what a probe judges, as in k8s).
NEVER_ANSWER = ("trickle", "slowloris", "endless", "headers")
MIN_ROUNDS = 4
WATCH_S = 12.0  # seconds of hostility watched
RSS_GROWTH_LIMIT = 100 * 2**20
THREAD_GROWTH_LIMIT = 40


def _source(tmp_path: Path) -> Path:
    source = tmp_path / "hostile_src"
    source.mkdir()
    shutil.copy(HERE / "hostile_service.py", source)
    shutil.copy(HOSTILE_PY, source)
    return source


def _config(tmp_path: Path) -> dict[str, Any]:
    source = _source(tmp_path)
    hostile = {
        kind: {
            "source": str(source),
            "command": ["{python}", "hostile_service.py", kind],
            "env": {"PORT": "{port}"},
            "build": [],
            "backup_schedule": "none",
            "deploy_timeout": 2.0,
        }
        for kind in KINDS
    }
    config = soak_config(monitor_interval=0.5, metrics_interval=1.0,
                         environments={"good": {"backup_schedule": "none"}, **hostile})  # fmt: skip
    for kind in KINDS:  # soak_config points every environment at the demo; these are not
        config["environments"][kind]["source"] = str(source)
    # The hostile services never answer well: leave them running, so the monitor meets them
    # for the whole test instead of failing them over.
    config["failover"] = {**config.get("failover", {}), "down_checks": 1_000_000}
    return config


def _up(h: Harness) -> bool:
    assert h.alive(), h.tail()
    return h.ping()


def _rows(h: Harness, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{h.db_path}?mode=ro", uri=True)) as conn:
        return conn.execute(query, args).fetchall()


def test_hostile_peers_are_bounded_and_never_fatal(tmp_path: Path) -> None:
    with running_daemon(_config(tmp_path), tmp_path / "daemon") as h:
        h.start()
        wait_until(lambda: _up(h) and h.healthy("good"), timeout=60, interval=0.1)
        wait_until(lambda: all(h.service_pid(k) for k in KINDS), timeout=30, interval=0.1)
        generations = {a["name"]: a["generation"] for a in h.actors()}
        start = proc_status(h.pid)
        since = time.time()
        peak = dict(start)
        deadline = time.monotonic() + WATCH_S

        def watched() -> bool:
            """Samples the daemon while it is attacked; done after WATCH_S and enough rounds."""
            for key, value in proc_status(h.pid).items():
                peak[key] = max(peak[key], value)
            counts = dict(_rows(h, "SELECT env, count(*) FROM health_checks WHERE ts >= ? "
                                "GROUP BY env", since))  # fmt: skip
            rounds = min(counts.get(env, 0) for env in ("good", *KINDS))
            return time.monotonic() >= deadline and rounds >= MIN_ROUNDS

        wait_until(watched, timeout=WATCH_S + 30, interval=0.2)
        until = time.time()
        # Rows the store still holds in its batch count too: it writes them now.
        h.client(10.0).ask("store", "Flush", timeout=10)

        assert h.alive()
        actors = {a["name"]: a for a in h.actors()}
        restarted = {
            name: a["generation"]
            for name, a in actors.items()
            if a["generation"] != generations.get(name) or a["state"] != "running"
        }
        assert not restarted, f"actors restarted or not running: {restarted}"

        monitor = h.config["monitor"]
        bound_ms = 1000 * (monitor["connect_timeout"] + monitor["read_timeout"]) + 500
        for env in ("good", *KINDS):
            rows = _rows(
                h,
                "SELECT ts, status, latency_ms FROM health_checks WHERE env = ? AND ts >= ?",
                env,
                since,
            )
            # Every round checks every environment: a hostile one delays a round by its
            # timeouts at most (~2.5 s here), never stops the schedule.
            assert len(rows) >= (until - since) / 3.0, (env, len(rows))
            slowest = max((r[2] or 0.0) for r in rows)
            assert slowest <= bound_ms, f"{env}: a check took {slowest:.0f} ms"
            statuses = {r[1] for r in rows}
            if env == "good":
                assert statuses == {"healthy"}
            elif env in NEVER_ANSWER:
                assert "healthy" not in statuses, (env, statuses)

        good_samples = _rows(
            h, "SELECT count(*) FROM metric_samples WHERE env = 'good' AND ts >= ?", since
        )[0][0]
        assert good_samples > 0  # the collector kept scraping the sane one
        hostile_samples = _rows(
            h, "SELECT env, count(*) FROM metric_samples WHERE ts >= ? GROUP BY env", since
        )
        assert dict(hostile_samples).get("endless", 0) == 0
        assert h.healthy("good")
        assert peak["rss"] - start["rss"] < RSS_GROWTH_LIMIT, (start, peak)
        assert peak["threads"] - start["threads"] < THREAD_GROWTH_LIMIT, (start, peak)
        assert until - since >= WATCH_S
        assert h.stop(timeout=60) == 0
