"""Improvement cycles in the store: the previous cycle to compare with, one cycle's report, and
the trend across cycles for ``improve --history``.

Reads go straight to the peewee models from any thread (the Store initialised the database
proxy; offline commands open it themselves); writes go through the Store actor.

Findings are compared by identity (type, file, scope, normalised text; never the line), as
multisets: ``compare.diff_findings``. For the trend table only the identities of each cycle are
read, so listing many large cycles stays cheap.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gaia_actors.formatting import utc_iso
from gaia_actors.improve.compare import CycleSnapshot, compare_cycles
from gaia_actors.improve.errors import ImproveError
from gaia_actors.improve.findings import Finding, Severity
from gaia_actors.store import models

if TYPE_CHECKING:
    from gaia_actors.improve.cycle_state import PreviousCycle

# What a cycle compares itself with (``cycle_state``) and the report's view of a comparison
# (``cycle_report``) come with the cycle's machinery: imported by the functions that use them,
# so that the engine reads the store at start without importing the analysis.

# peewee's models are untyped (their ``id`` is added at class creation): read them as Any.
Cycle: Any = models.ImproveCycle
FindingRow: Any = models.FindingRow
TaskRow: Any = models.TaskRow

FINISHED = "succeeded"
SHOWN_FINDINGS = 30
SHOWN_TASKS = 10


# --- what a new cycle compares itself with -----------------------------------------------


def previous_cycle(target: str, before: int) -> PreviousCycle | None:
    """The latest finished cycle of ``target`` older than cycle ``before``."""
    from gaia_actors.improve.cycle_state import PreviousCycle

    row = (
        Cycle.select()
        .where((Cycle.target == target) & (Cycle.status == FINISHED) & (Cycle.id < before))
        .order_by(Cycle.id.desc())
        .first()
    )
    if row is None:
        return None
    return PreviousCycle(row.id, metrics_of(row), findings_of(row.id))


def previous_ops(target: str, before: int) -> tuple[int, float] | None:
    """(cycle id, ops/sec) of the latest finished cycle of ``target`` that measured one."""
    row = (
        Cycle.select(Cycle.id, Cycle.ops_per_sec)
        .where(
            (Cycle.target == target)
            & (Cycle.status == FINISHED)
            & (Cycle.id < before)
            & Cycle.ops_per_sec.is_null(False)
        )
        .order_by(Cycle.id.desc())
        .first()
    )
    return None if row is None else (row.id, float(row.ops_per_sec))


def findings_of(cycle_id: int, limit: int | None = None) -> tuple[Finding, ...]:
    """A cycle's stored findings (most important first with ``limit``)."""
    query = FindingRow.select().where(FindingRow.cycle_id == cycle_id)
    if limit is not None:
        query = query.order_by(FindingRow.priority.desc(), FindingRow.file, FindingRow.line)
        query = query.limit(limit)
    return tuple(_finding(row) for row in query)


def _finding(row: Any) -> Finding:
    return Finding(
        type=row.type,
        file=row.file,
        line=row.line,
        text=row.text,
        severity=Severity(row.severity),
        priority=row.priority,
        detector=row.detector,
        scope=row.scope or "",
        anchor=row.anchor,
    )


def metrics_of(row: Any) -> dict[str, float | None]:
    """A cycle row's metrics under the names ``compare`` knows."""
    return {
        "coverage": row.coverage,
        "pass_rate": row.pass_rate,
        "ops_per_sec": row.ops_per_sec,
        "issues_detected": _number(row.issues_detected),
        "issues_fixed": _number(row.issues_fixed),
        "build_seconds": row.build_time,
        "test_seconds": row.test_time,
        "analysis_seconds": row.analysis_time,
    }


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def last_started(target: str, trigger: str) -> float | None:
    """When the latest cycle of ``target`` started by ``trigger`` began (None: never)."""
    row = (
        Cycle.select(Cycle.started)
        .where((Cycle.target == target) & (Cycle.trigger == trigger))
        .order_by(Cycle.started.desc())
        .first()
    )
    return None if row is None else float(row.started)


def last_commit(target: str) -> str:
    """The commit the latest cycle of ``target`` read ("" when none recorded one)."""
    row = (
        Cycle.select(Cycle.commit)
        .where((Cycle.target == target) & Cycle.commit.is_null(False))
        .order_by(Cycle.id.desc())
        .first()
    )
    return "" if row is None else str(row.commit)


def running() -> list[int]:
    """Cycles a previous engine left ``running`` (it stopped or crashed mid-cycle)."""
    return [row.id for row in Cycle.select(Cycle.id).where(Cycle.status == "running")]


# --- one cycle -----------------------------------------------------------------------------


def get(cycle_id: int) -> Any:
    row = Cycle.get_or_none(Cycle.id == cycle_id)
    if row is None:
        raise ImproveError(f"no improvement cycle #{cycle_id} in the store")
    return row


def show(cycle_id: int) -> dict[str, Any]:
    """One cycle: its row, its stored report, the most important findings and the top tasks."""
    row = get(cycle_id)
    report = dict(row.report or {})
    tasks = TaskRow.select().where(TaskRow.cycle_id == cycle_id).order_by(TaskRow.rank)
    top = sorted(findings_of(cycle_id, limit=SHOWN_FINDINGS * 4), key=_importance)
    return {
        **report,
        **cycle_summary(row),
        "phases": row.phases or {},
        "error": row.error or "",
        "top_findings": [_finding_dict(f) for f in top[:SHOWN_FINDINGS]],
        "top_tasks": [_task_dict(t) for t in tasks.limit(SHOWN_TASKS)],
    }


def _importance(finding: Finding) -> tuple[int, int, str, int]:
    return (-finding.severity.rank, -finding.priority, finding.file, finding.line)


def _finding_dict(finding: Finding) -> dict[str, Any]:
    return {
        "severity": str(finding.severity),
        "priority": finding.priority,
        "type": finding.type,
        "where": f"{finding.file}:{finding.line}",
        "text": finding.text,
        "identity": finding.identity,
    }


def _task_dict(row: Any) -> dict[str, Any]:
    return {
        "rank": row.rank,
        "title": row.title,
        "score": row.score,
        "severity": row.severity,
        "effort": row.effort,
        "minutes": row.minutes,
        "files": list(row.files or [])[:5],
        "rationale": row.rationale,
    }


def cycle_summary(row: Any) -> dict[str, Any]:
    return {
        "cycle_id": row.id,
        "target": row.target,
        "trigger": row.trigger or "manual",
        "commit": row.commit,
        "status": row.status,
        "apply": bool(row.apply),
        "started": utc_iso(row.started),
        "seconds": round(row.ended - row.started, 3) if row.ended else None,
        "files": row.files,
        "lines": row.lines,
        "issues_detected": row.issues_detected,
        "issues_fixed": row.issues_fixed,
        "coverage": row.coverage,
        "pass_rate": row.pass_rate,
        "ops_per_sec": row.ops_per_sec,
        "regression": bool(row.regression),
        "build_time": row.build_time,
        "test_time": row.test_time,
        "analysis_time": row.analysis_time,
    }


# --- the trend ---------------------------------------------------------------------------


def trend(target: str, limit: int = 10, regression_threshold: float = 0.10) -> dict[str, Any]:
    """The last ``limit`` cycles of ``target``, each against the finished one before it, and
    the latest finished cycle compared in full with the one before it."""
    rows = list(
        Cycle.select().where(Cycle.target == target).order_by(Cycle.id.desc()).limit(max(1, limit))
    )[::-1]
    finished = [row for row in rows if row.status == FINISHED]
    identities = {row.id: _identities(row.id) for row in finished}
    cycles = []
    before: Any = _finished_before(target, rows[0].id) if rows else None
    before_ids = _identities(before.id) if before is not None else None
    for row in rows:
        line = cycle_summary(row)
        if row.status == FINISHED and before_ids is not None:
            now = identities[row.id]
            line["new"] = sum((now - before_ids).values())
            line["fixed"] = sum((before_ids - now).values())
        if row.status == FINISHED:
            before_ids = identities[row.id]
        cycles.append(line)
    return {
        "target": target,
        "cycles": cycles,
        "latest": latest_comparison(finished, regression_threshold),
        "other_targets": other_targets(target),
        "generated": utc_iso(time.time()),
    }


def _finished_before(target: str, cycle_id: int) -> Any:
    return (
        Cycle.select(Cycle.id)
        .where((Cycle.target == target) & (Cycle.status == FINISHED) & (Cycle.id < cycle_id))
        .order_by(Cycle.id.desc())
        .first()
    )


def _identities(cycle_id: int) -> Counter[str]:
    query = FindingRow.select(FindingRow.identity).where(FindingRow.cycle_id == cycle_id)
    return Counter(identity for (identity,) in query.tuples())


def latest_comparison(
    finished: Sequence[Any], regression_threshold: float = 0.10
) -> dict[str, Any] | None:
    """The last two finished cycles compared in full (findings by identity, metrics)."""
    from gaia_actors.improve.cycle_report import comparison_view
    from gaia_actors.improve.cycle_state import PreviousCycle

    if len(finished) < 2:
        return None
    old, new = finished[-2], finished[-1]
    comparison = compare_cycles(
        CycleSnapshot(metrics_of(old), findings_of(old.id)),
        CycleSnapshot(metrics_of(new), findings_of(new.id)),
        regression_threshold=regression_threshold,
    )
    view = comparison_view(comparison, PreviousCycle(old.id, metrics_of(old), ()))
    return {"cycle_id": new.id, **view}


def other_targets(target: str) -> list[dict[str, Any]]:
    """Other targets with cycles in the store, and how many (for a history of the wrong one)."""
    query = Cycle.select(Cycle.target).where(Cycle.target != target)
    counts = Counter(row.target for row in query)
    return [{"target": t, "cycles": n} for t, n in counts.most_common()]
