"""The first minute: from ``python run.py`` to ``status`` showing every environment healthy.

    python benchmarks/first_minute.py [--runs 3] [--watch 12]

On the shipped ``config/gaia.toml`` (its intervals kept; ports, paths and the console changed
as in chaos_soak.py's ``local_config``), each run spawns the daemon on a fresh state directory
and polls every 20 ms, until all are true:

- services answering: every environment's ``/health`` answers 200 (what the operator's own
  ``curl`` would see);
- status healthy: ``status`` (over the control socket, as the CLI asks it) shows every
  environment ``healthy``.

It prints both times from the spawn and the gap between them (the goal: at most 1.5 s), then
watches ``status`` for ``--watch`` seconds more and prints the highest health-check error rate
it showed for any environment (the goal: 0% on freshly started healthy environments).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.chaos_soak import Harness, local_config, running_daemon  # noqa: E402

POLL_S = 0.02
UP_TIMEOUT_S = 120.0
GAP_GOAL_S = 1.5


def status_rows(h: Harness) -> list[dict[str, Any]]:
    try:
        result = h.command("status", timeout=5.0)
    except Exception:
        return []
    rows: list[dict[str, Any]] = result.get("environments", []) if isinstance(result, dict) else []
    return rows


def one_run(h: Harness, watch: float) -> tuple[float, float, float]:
    """(services answering, status healthy, highest error rate) of one fresh start."""
    started = h.start()
    answering = healthy = None
    while healthy is None:
        if not h.alive():
            raise RuntimeError(f"the daemon exited: {h.tail()}")
        now = time.monotonic() - started
        if now > UP_TIMEOUT_S:
            raise RuntimeError(f"not healthy within {UP_TIMEOUT_S:g}s")
        if answering is None and h.all_healthy():
            answering = time.monotonic() - started
        rows = status_rows(h)
        if answering is not None and rows and all(r["status"] == "healthy" for r in rows):
            healthy = time.monotonic() - started
        time.sleep(POLL_S)
    worst = 0.0
    until = time.monotonic() + watch
    while time.monotonic() < until:
        worst = max([worst, *(float(r.get("error_rate") or 0.0) for r in status_rows(h))])
        time.sleep(0.5)
    h.stop()
    h.kill_services()
    return answering or 0.0, healthy, worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--watch", type=float, default=12.0, help="seconds of status after")
    args = parser.parse_args(argv)
    gaps = []
    for run in range(args.runs):
        with running_daemon(local_config()) as h:
            answering, healthy, worst = one_run(h, args.watch)
        gaps.append(healthy - answering)
        print(
            f"run {run + 1}: services answering {answering:.2f}s, status healthy {healthy:.2f}s"
            f" (gap {healthy - answering:.2f}s), highest error rate {worst:.0%} over "
            f"{args.watch:g}s"
        )
    median = statistics.median(gaps)
    print(f"median gap {median:.2f}s (goal <= {GAP_GOAL_S:g}s)")
    return 0 if median <= GAP_GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
