"""Crash consistency at three kill points (issue 7, part 2).

The daemon is SIGKILLed mid promote-all or mid backup (trivial stages, so each point takes
seconds); after each restart every environment serves a complete release, ``current`` is
valid, the store passes integrity_check, interrupted promotions are marked and recovered,
backups verify, and one service process runs per environment.
"""

from __future__ import annotations

from benchmarks.crash_consistency import describe, run

SEED = 7
POINTS = 3


def test_three_kill_points_leave_everything_consistent() -> None:
    lines: list[str] = []
    results = run(POINTS, SEED, quick=True, log=lines.append)
    text = "\n".join(lines)

    assert len(results) == POINTS
    assert all(point.passed for point in results), text
    assert {point.scenario for point in results} <= {"promote-all", "backup"}
    assert all(describe(point).endswith("-> ok") for point in results)
