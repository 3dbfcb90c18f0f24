"""Two improvement cycles compared: findings by identity, metrics with their good direction.

Findings are matched by ``Finding.identity`` (type, file, scope, normalised text: no line
number), counted as a multiset: if a function held two identical ``# TODO`` comments and now
holds one, one is fixed and one unchanged.

Each metric has a direction (coverage up is better, test time down is better). A change is
"same" when its relative size is within ``tolerance`` (default 0: any change counts), and
``ops_per_sec`` dropping by more than ``regression_threshold`` (default 10%) is a regression.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from gaia_actors.improve.findings import Finding, Severity, sort_key
from supervisors.records import record


class Direction(StrEnum):
    HIGHER = "higher"  # bigger is better
    LOWER = "lower"  # smaller is better


class Verdict(StrEnum):
    BETTER = "better"
    WORSE = "worse"
    SAME = "same"
    UNKNOWN = "n/a"  # missing on one side, or a metric without a known direction


METRIC_DIRECTIONS: dict[str, Direction] = {
    "coverage": Direction.HIGHER,
    "pass_rate": Direction.HIGHER,
    "ops_per_sec": Direction.HIGHER,
    "issues_fixed": Direction.HIGHER,
    "issues_detected": Direction.LOWER,
    "build_seconds": Direction.LOWER,
    "test_seconds": Direction.LOWER,
    "analysis_seconds": Direction.LOWER,
}


@record
class CycleSnapshot:
    """What one cycle measured and found."""

    metrics: Mapping[str, float | None]
    findings: tuple[Finding, ...]


@record
class MetricDelta:
    name: str
    before: float | None
    after: float | None
    delta: float | None
    relative: float | None  # delta / |before|; None when before is 0 or missing
    verdict: Verdict


@record
class Comparison:
    """Findings new, fixed and unchanged (by identity), metric deltas, and regressions."""

    new: tuple[Finding, ...]
    fixed: tuple[Finding, ...]
    unchanged: tuple[Finding, ...]
    metrics: tuple[MetricDelta, ...]
    regressions: tuple[str, ...]

    @property
    def better(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics if m.verdict is Verdict.BETTER)

    @property
    def worse(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics if m.verdict is Verdict.WORSE)


def compare_cycles(
    before: CycleSnapshot,
    after: CycleSnapshot,
    *,
    tolerance: float = 0.0,
    regression_threshold: float = 0.10,
) -> Comparison:
    """Compare ``after`` with ``before`` (see the module docstring)."""
    new, fixed, unchanged = diff_findings(before.findings, after.findings)
    names = sorted(set(before.metrics) | set(after.metrics))
    deltas = tuple(
        metric_delta(name, before.metrics.get(name), after.metrics.get(name), tolerance)
        for name in names
    )
    regressions = tuple(
        d.name
        for d in deltas
        if d.name == "ops_per_sec" and is_regression(d.before, d.after, regression_threshold)
    )
    return Comparison(new, fixed, unchanged, deltas, regressions)


def diff_findings(
    before: Iterable[Finding], after: Iterable[Finding]
) -> tuple[tuple[Finding, ...], tuple[Finding, ...], tuple[Finding, ...]]:
    """(new, fixed, unchanged) by identity, as multisets; unchanged ones as they are now."""
    old = _by_identity(before)
    now = _by_identity(after)
    new: list[Finding] = []
    fixed: list[Finding] = []
    unchanged: list[Finding] = []
    for identity in set(old) | set(now):
        was, is_ = old.get(identity, []), now.get(identity, [])
        kept = min(len(was), len(is_))
        unchanged.extend(is_[:kept])
        new.extend(is_[kept:])
        fixed.extend(was[kept:])
    return (
        tuple(sorted(new, key=sort_key)),
        tuple(sorted(fixed, key=sort_key)),
        tuple(sorted(unchanged, key=sort_key)),
    )


def _by_identity(findings: Iterable[Finding]) -> dict[str, list[Finding]]:
    grouped: dict[str, list[Finding]] = {}
    for finding in sorted(findings, key=lambda f: (f.file, f.line)):
        grouped.setdefault(finding.identity, []).append(finding)
    return grouped


def metric_delta(
    name: str, before: float | None, after: float | None, tolerance: float = 0.0
) -> MetricDelta:
    """The change of one metric and whether it is for the better."""
    if before is None or after is None:
        return MetricDelta(name, before, after, None, None, Verdict.UNKNOWN)
    delta = after - before
    relative = delta / abs(before) if before else None
    direction = METRIC_DIRECTIONS.get(name)
    if delta == 0 or (relative is not None and abs(relative) <= tolerance):
        verdict = Verdict.SAME
    elif direction is None:
        verdict = Verdict.UNKNOWN
    else:
        up_is_good = direction is Direction.HIGHER
        verdict = Verdict.BETTER if (delta > 0) == up_is_good else Verdict.WORSE
    return MetricDelta(name, before, after, delta, relative, verdict)


def is_regression(
    before: float | None,
    after: float | None,
    threshold: float = 0.10,
    direction: Direction = Direction.HIGHER,
) -> bool:
    """Did the metric move the wrong way by more than ``threshold`` (a fraction of before)?"""
    if before is None or after is None or before == 0:
        return False
    change = (after - before) / abs(before)
    return change < -threshold if direction is Direction.HIGHER else change > threshold


@record
class AlertThresholds:
    """How far a cycle may fall behind the one before it before that is an alert."""

    coverage_drop: float = 1.0  # percentage points
    pass_rate_drop: float = 0.0  # fraction of the tests (0.0: any drop)
    benchmark_drop: float = 0.10  # relative ops/sec


def alert_reasons(comparison: Comparison, thresholds: AlertThresholds) -> list[str]:
    """What regressed past the thresholds: coverage, pass rate, benchmark, critical findings."""
    deltas = {m.name: m for m in comparison.metrics}
    reasons = []
    coverage, rate = deltas.get("coverage"), deltas.get("pass_rate")
    if coverage is not None and _drop(coverage) > thresholds.coverage_drop:
        reasons.append(f"coverage {coverage.before:.1f}% -> {coverage.after:.1f}%")
    if rate is not None and _drop(rate) > thresholds.pass_rate_drop:
        reasons.append(f"pass rate {rate.before:.1%} -> {rate.after:.1%}")
    ops = deltas.get("ops_per_sec")
    if ops is not None and is_regression(ops.before, ops.after, thresholds.benchmark_drop):
        reasons.append(f"benchmark {ops.before:,.0f} -> {ops.after:,.0f} ops/s")
    critical = [f for f in comparison.new if f.severity is Severity.CRITICAL]
    if critical:
        where = ", ".join(f"{f.file}:{f.line}" for f in critical[:3])
        reasons.append(f"{len(critical)} new critical finding(s): {where}")
    return reasons


def _drop(delta: MetricDelta) -> float:
    """How far a metric fell (0 when it rose or one side is missing)."""
    return -delta.delta if delta.delta is not None and delta.delta < 0 else 0.0
