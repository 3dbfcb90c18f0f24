"""Crash consistency at three kill points.

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


def test_a_kill_at_every_stage_of_promote_all_is_resolved() -> None:
    """The daemon SIGKILLed as each stage of promote-all starts, and as each deploy is done:
    after the restart no target is left on a release that did not pass every stage (a
    promotion interrupted after its deploy is rolled back)."""
    lines: list[str] = []
    results = run(0, SEED, quick=True, log=lines.append, stages=True)
    text = "\n".join(lines)

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
