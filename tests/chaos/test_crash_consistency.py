"""Crash consistency at three kill points.

The daemon is SIGKILLed mid promote-all or mid backup (trivial stages, so each point takes
seconds); after each restart every environment serves a complete release, ``current`` is
valid, the store passes integrity_check, interrupted promotions are marked and recovered,
backups verify, and one service process runs per environment.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from benchmarks.crash_consistency import Point, describe, run

SEED = 7
POINTS = 3


@dataclass
class Run:
    random_points: list[Point]  # the first POINTS results: kills at random delays
    stage_points: list[Point]  # then one kill at each stage of promote-all
    text: str  # the run's log


@pytest.fixture(scope="module")
def crash_run() -> Run:
    """One daemon, calibrated once, for both kinds of kill point (a daemon start and a
    calibration are most of a point's cost); the stage points start from whatever the
    random ones left, which a recovered daemon must handle all the same."""
    lines: list[str] = []
    results = run(POINTS, SEED, quick=True, log=lines.append, stages=True)
    return Run(results[:POINTS], results[POINTS:], "\n".join(lines))


def test_three_kill_points_leave_everything_consistent(crash_run: Run) -> None:
    results, text = crash_run.random_points, crash_run.text

    assert len(results) == POINTS
    assert all(point.passed for point in results), text
    assert {point.scenario for point in results} <= {"promote-all", "backup"}
    assert all(describe(point).endswith("-> ok") for point in results)


def test_a_kill_at_every_stage_of_promote_all_is_resolved(crash_run: Run) -> None:
    """The daemon SIGKILLed as each stage of promote-all starts, and as each deploy is done:
    after the restart no target is left on a release that did not pass every stage (a
    promotion interrupted after its deploy is rolled back)."""
    results, text = crash_run.stage_points, crash_run.text

    assert all(point.passed for point in results), text
    scenarios = [point.scenario for point in results]
    assert scenarios == [
        "stage dev_to_staging:1 build running",
        "stage dev_to_staging:2 deploy running",
        "stage dev_to_staging:2 deploy passed",
        "stage staging_to_prod:1 backup running",
        "stage staging_to_prod:2 deploy running",
        "stage staging_to_prod:2 deploy passed",
        "stage staging_to_prod:3 prod-health running",
    ]
    # Killed after prod's deploy, before its health stage passed: prod went back.
    after_deploy = [p.notes["recovery"] for p in results[-2:]]
    assert all(list(r.values()) == ["rolled back"] for r in after_deploy), text
