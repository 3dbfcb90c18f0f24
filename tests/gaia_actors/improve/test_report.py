"""The readable report and the history table of ``improve``."""

from __future__ import annotations

from typing import Any

from gaia_actors.improve.report import render_cycle, render_history

CYCLE: dict[str, Any] = {
    "cycle_id": 7,
    "target": "/src/app",
    "status": "succeeded",
    "apply": False,
    "seconds": 75.5,
    "phases": {"analyse": 1.25, "detect": 0.5, "test": 70.0, "persist": 0.2},
    "analysis": {
        "files": 1200,
        "lines": 250000,
        "bytes": 9_500_000,
        "batches": 38,
        "workers": 4,
        "requeued": 1,
        "skipped": {"binary": 2},
        "skipped_examples": [{"path": "a.py", "reason": "binary", "detail": "NUL byte"}],
    },
    "detect": {
        "findings": 3,
        "by_severity": {"high": 1, "medium": 2},
        "by_type": {"fixme": 1, "todo": 2},
        "linters": [
            {"name": "ruff", "status": "ran", "reason": "", "seconds": 0.4, "findings": 0},
            {"name": "go vet", "status": "skipped", "reason": "go not found", "seconds": 0},
        ],
    },
    "tests": {
        "kind": "pytest",
        "status": "failed",
        "seconds": 70.0,
        "tests": 10,
        "passed": 9,
        "failed": 1,
        "errors": 0,
        "skipped": 0,
        "pass_rate": 0.9,
        "coverage": 81.25,
        "coverage_gaps": 4,
        "failures": [{"test": "t.test_x", "outcome": "failed", "message": "assert 1 == 2"}],
    },
    "fixes": {
        "status": "tests_failed",
        "reason": "tests exit code 1",
        "files": ["a.py"],
        "fixers": [{"name": "ruff format", "status": "ran"}],
    },
    "verify": {
        "status": "ran",
        "ops_per_sec": 80000.0,
        "seconds": 1.0,
        "previous": {"cycle_id": 6, "ops_per_sec": 100000.0},
        "change": -0.2,
        "regression": True,
    },
    "comparison": {
        "previous_cycle": 6,
        "new": 1,
        "fixed": 2,
        "unchanged": 2,
        "better": ["coverage"],
        "worse": ["ops_per_sec"],
        "new_examples": [
            {"severity": "high", "type": "fixme", "where": "b.py:3", "text": "# FIXME: x"}
        ],
        "fixed_examples": [],
    },
    "top_findings": [
        {"severity": "high", "type": "fixme", "where": "b.py:3", "text": "# FIXME: x"},
    ],
    "top_tasks": [
        {
            "rank": 1,
            "score": 28.0,
            "effort": "small",
            "minutes": 20,
            "title": "1 FIXME finding in b.py",
        }
    ],
    "tasks": {"count": 1, "note": "rule-based ranking"},
}


def test_the_report_says_what_each_phase_found() -> None:
    text = render_cycle(CYCLE)
    lines = text.splitlines()
    assert lines[0] == "improvement cycle #7 of /src/app: succeeded in 1m15.5s (report only)"
    assert lines[1] == "phases: analyse 1.25s · detect 0.50s · test 1m10.0s · persist 0.20s"
    for expected in (
        "analysis   1,200 files, 250,000 lines, 9.5 MB in 38 batches on 4 workers "
        "(1 batches re-queued after a worker failure)",
        "           skipped: 2 binary",
        "findings   3 (1 high, 2 medium)",
        "linters    ruff: 0 findings in 0.40s; go vet: skipped (go not found)",
        "tests      pytest: failed in 1m10.0s - 10 tests, 9 passed, 1 failed, 0 errors, 0 skipped",
        "           pass rate 90.0%, coverage 81.2% (4 coverage gaps)",
        "fixes      rolled back: the tests fail with the changes of ruff format (tests exit code "
        "1); the tree is untouched",
        "benchmark  80,000 ops/sec in 1.00s (cycle #6: 100,000, -20.0%) - REGRESSION beyond the "
        "threshold",
        "compared   with cycle #6: 1 new, 2 fixed, 2 unchanged findings (by identity, not line)",
        "           better: coverage; worse: ops_per_sec",
        "             new: high fixme b.py:3 # FIXME: x",
        "tasks (1 of 1; rule-based ranking):",
    ):
        assert expected in lines, expected


def test_the_history_lists_cycles_with_new_and_fixed_findings() -> None:
    row = {
        "cycle_id": 1,
        "started": "2026-01-01T10:00:00+00:00",
        "status": "succeeded",
        "files": 10,
        "issues_detected": 4,
        "coverage": 50.0,
        "pass_rate": 1.0,
        "ops_per_sec": None,
        "test_time": 2.0,
        "seconds": 3.0,
    }
    latest = {
        "cycle_id": 2,
        "previous_cycle": 1,
        "new": 1,
        "fixed": 2,
        "unchanged": 3,
        "better": ["issues_detected"],
        "worse": [],
        "metrics": [{"name": "issues_detected", "before": 4, "after": 3, "verdict": "better"}],
        "new_examples": [{"severity": "high", "type": "fixme", "where": "a.py:1", "text": "x"}],
        "fixed_examples": [],
    }
    text = render_history(
        {
            "target": "/src/app",
            "cycles": [
                row,
                {**row, "cycle_id": 2, "issues_detected": 3, "new": 1, "fixed": 2}
                | {"trigger": "schedule", "regression": True, "issues_fixed": 4},
            ],
            "latest": latest,
            "other_targets": [{"target": "/usr/lib", "cycles": 2}],
        }
    )
    lines = text.splitlines()
    assert lines[0] == "improvement cycles of /src/app (oldest first):"
    assert lines[1].split() == [
        "CYCLE", "STARTED", "BY", "STATUS", "FILES", "FINDINGS", "NEW", "FIXED", "COVERAGE",
        "PASS", "OPS/SEC", "FIXES", "ALERT", "TESTS", "TOOK",
    ]  # fmt: skip
    assert lines[3].split()[:9] == [
        "2",
        "2026-01-01",
        "10:00:00Z",
        "schedule",
        "succeeded",
        "10",
        "3",
        "1",
        "2",
    ]
    assert lines[2].split()[3] == "manual"  # a row without a trigger: run by hand
    assert lines[3].split()[-4:-2] == ["4", "REGRESSED"]
    assert "cycle #2 against #1: 1 new, 2 fixed, 3 unchanged findings (matched by identity)" in text
    assert "  new: high fixme a.py:1 x" in lines
    assert lines[-1] == "other targets (improve --history --target PATH): /usr/lib (2)"
