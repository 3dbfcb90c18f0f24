"""Two cycles compared: fixed and new findings by identity, metric directions, regressions."""

from __future__ import annotations

from pathlib import Path

from gaia_actors.improve.analysis import analyse_batch
from gaia_actors.improve.compare import (
    AlertThresholds,
    CycleSnapshot,
    Direction,
    Verdict,
    alert_reasons,
    compare_cycles,
    diff_findings,
    is_regression,
    metric_delta,
)
from gaia_actors.improve.files import walk
from gaia_actors.improve.findings import Finding, Severity
from gaia_actors.improve.sources import AnalysisSettings
from tests.gaia_actors.improve.conftest import write


def analyse(root: Path) -> tuple[Finding, ...]:
    results = analyse_batch(walk(root).files, root, AnalysisSettings())
    return tuple(f for r in results for f in r.findings)


FIRST = """\
def load():
    # TODO: cache the result
    return 1


def save():
    # FIXME: not atomic
    try:
        pass
    except:
        pass
"""

# Moved down by new code; the first cycle's fix-me marker and bare except are gone; a new one.
SECOND = """\
import json


def load():
    # TODO: cache the result
    return json.loads("1")


def save():
    # TODO: retry on EBUSY
    return None
"""


def test_second_cycle_shows_fixed_and_new_findings_by_identity(tmp_path: Path) -> None:
    write(tmp_path, "store.py", FIRST)
    first = CycleSnapshot({"coverage": 40.0, "issues_detected": 3.0}, analyse(tmp_path))
    write(tmp_path, "store.py", SECOND)
    second = CycleSnapshot({"coverage": 55.0, "issues_detected": 2.0}, analyse(tmp_path))
    result = compare_cycles(first, second)
    assert [(f.type, f.line) for f in result.fixed] == [("fixme", 7), ("bare_except", 10)]
    assert [(f.type, f.text) for f in result.new] == [("todo", "# TODO: retry on EBUSY")]
    assert [(f.type, f.line) for f in result.unchanged] == [("todo", 5)]  # moved from line 2
    assert result.better == ("coverage", "issues_detected")
    assert result.worse == ()


def test_identical_findings_are_counted_as_a_multiset() -> None:
    def todo(line: int) -> Finding:
        return Finding("todo", "a.py", line, "# TODO", Severity.MEDIUM, 5, "markers", "f")

    new, fixed, unchanged = diff_findings([todo(1), todo(2)], [todo(7)])
    assert (len(new), len(fixed), len(unchanged)) == (0, 1, 1)


def test_metric_directions() -> None:
    assert metric_delta("coverage", 50.0, 60.0).verdict is Verdict.BETTER
    assert metric_delta("test_seconds", 10.0, 12.0).verdict is Verdict.WORSE
    assert metric_delta("issues_detected", 10.0, 4.0).verdict is Verdict.BETTER
    assert metric_delta("pass_rate", 1.0, 1.0).verdict is Verdict.SAME
    assert metric_delta("ops_per_sec", None, 5.0).verdict is Verdict.UNKNOWN
    assert metric_delta("mystery", 1.0, 2.0).verdict is Verdict.UNKNOWN
    assert metric_delta("build_seconds", 100.0, 101.0, tolerance=0.05).verdict is Verdict.SAME
    delta = metric_delta("coverage", 40.0, 50.0)
    assert (delta.delta, delta.relative) == (10.0, 0.25)


def test_ops_per_sec_regression_beyond_the_threshold_is_flagged() -> None:
    before = CycleSnapshot({"ops_per_sec": 1000.0}, ())
    assert compare_cycles(before, CycleSnapshot({"ops_per_sec": 850.0}, ())).regressions == (
        "ops_per_sec",
    )
    assert compare_cycles(before, CycleSnapshot({"ops_per_sec": 950.0}, ())).regressions == ()
    assert not is_regression(1000.0, 2000.0)
    assert is_regression(10.0, 12.0, threshold=0.1, direction=Direction.LOWER)


def test_alert_reasons_name_each_regression_past_its_threshold() -> None:
    critical = Finding("syntax_error", "app.py", 3, "invalid syntax", Severity.CRITICAL, 9, "ast")
    low = Finding("todo", "app.py", 1, "TODO: later", Severity.LOW, 1, "markers")
    before = CycleSnapshot({"coverage": 80.0, "pass_rate": 1.0, "ops_per_sec": 1000.0}, (low,))
    after = CycleSnapshot(
        {"coverage": 79.5, "pass_rate": 0.9, "ops_per_sec": 850.0}, (low, critical)
    )
    comparison = compare_cycles(before, after)

    reasons = alert_reasons(comparison, AlertThresholds(coverage_drop=1.0, benchmark_drop=0.1))
    assert reasons == [
        "pass rate 100.0% -> 90.0%",
        "benchmark 1,000 -> 850 ops/s",
        "1 new critical finding(s): app.py:3",
    ]  # coverage fell 0.5 points: within its threshold
    strict = AlertThresholds(coverage_drop=0.1, pass_rate_drop=0.2, benchmark_drop=0.2)
    assert alert_reasons(comparison, strict) == [
        "coverage 80.0% -> 79.5%",
        "1 new critical finding(s): app.py:3",
    ]
    assert alert_reasons(compare_cycles(after, before), AlertThresholds()) == []
