"""A shortened chaos soak of the real daemon: ~30 s of seeded faults.

benchmarks/chaos_soak.py runs it for minutes; here a fixed seed and half a minute. The
daemon must end with every actor running, every environment healthy, nothing lost and no
threads or descriptors left over, and stop cleanly; the restore after each corrupted backup
must have skipped the corrupt one.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.chaos_soak import Fault, SoakOptions, match_faults, render, run_soak

SEED = 20261128
DURATION_S = 30.0


def test_chaos_soak_ends_with_nothing_stuck_unhealthy_or_lost(tmp_path: Path) -> None:
    lines: list[str] = []
    options = SoakOptions(SEED, DURATION_S, settle=45.0, workdir=tmp_path)
    report = run_soak(options, log=lines.append)
    text = render(report) + "\n" + "\n".join(lines)

    assert report.ok, text  # nothing stuck, unhealthy, lost or leaked
    assert report.daemon_exit == 0, text
    assert not report.fault_problems, text
    injected = sum(report.faults.values())
    assert injected >= 8, text
    assert len(report.faults) >= 3, text  # several kinds, not one repeated
    assert report.recoveries >= 0.8 * (injected - report.cleared_at_end), text


def test_a_fault_is_not_credited_with_the_detection_of_the_next_one_on_its_target() -> None:
    missed, seen = Fault("deleted_db", "staging", 100.0), Fault("deleted_db", "staging", 500.0)
    events = [
        {"ts_": 500.8, "name": "alert.data_loss", "env": "staging"},
        {"ts_": 501.2, "name": "environment.restore", "env": "staging"},
    ]

    match_faults([missed, seen], events)

    assert missed.detected is None  # the watch missed it: not detected 400 s late
    assert (seen.detected, seen.recovered) == (500.8, 501.2)
