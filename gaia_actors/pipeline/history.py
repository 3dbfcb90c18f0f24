"""The promotion history in the store: reads for ``history``, ``pipeline-status`` and the
coordinator's recovery at start.

Reads go straight to the peewee models from any thread (the Store initialised the database
proxy; offline commands open it themselves); writes go through the Store actor.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from gaia_actors.formatting import utc_iso
from gaia_actors.pipeline.errors import PromotionRefused
from gaia_actors.store import models
from supervisors.records import record

# peewee's models are untyped (their ``id`` is added at class creation): read them as Any.
Pipeline: Any = models.Pipeline
Stage: Any = models.Stage


@record
class StageRecord:
    """One stage of a stored promotion."""

    position: int
    name: str
    kind: str
    env: str
    blocking: bool
    status: str  # running | passed | failed | warned | skipped | cancelled | timed_out | ...
    started: str | None  # UTC ISO 8601
    ended: str | None
    duration: float | None
    exit_code: int | None
    summary: str
    error: str
    tests: Mapping[str, Any] | None  # the parsed JUnit report, if the stage ran tests
    output_tail: str
    detail: Any  # what the stage's kind records of itself (JSON)


@record
class PromotionRecord:
    """A stored promotion with every stage (``GetPipelineHistory`` with an id)."""

    id: int
    kind: str
    status: str
    source: str
    target: str
    release: str
    previous: str
    started: str | None
    ended: str | None
    duration: float | None
    trigger: str
    chain: int | None  # the run a promote-all leg belongs to
    backup: str
    rollback: str
    recovery: str
    error: str
    stages: tuple[StageRecord, ...]


@record
class PromotionSummary:
    """One line of the recent promotions (``GetPipelineHistory`` without an id)."""

    id: int
    kind: str
    status: str
    release: str
    started: str | None
    duration: float | None
    stages: str  # how many stages ended how ("3 passed, 1 failed")
    rollback: str
    chain: int | None
    error: str


def recent(limit: int = 20) -> list[PromotionSummary]:
    """The latest ``limit`` promotions, newest first, one line each."""
    rows = list(Pipeline.select().order_by(Pipeline.id.desc()).limit(max(1, limit)))
    counts = _stage_counts([row.id for row in rows])
    return [_summary(row, counts.get(row.id, {})) for row in rows]


def show(pipeline_id: int) -> PromotionRecord:
    """One promotion with every stage (output tail, test results, error)."""
    row = get(pipeline_id)
    stages = Stage.select().where(Stage.pipeline_id == pipeline_id).order_by(Stage.position)
    return promotion_record(row, tuple(stage_record(stage) for stage in stages))


def get(pipeline_id: int) -> Any:
    row = Pipeline.get_or_none(Pipeline.id == pipeline_id)
    if row is None:
        raise PromotionRefused(f"no promotion #{pipeline_id} in the history")
    return row


def chain(run_id: int) -> list[int]:
    """The pipeline ids of a run: the promotion itself, or both legs of a promote-all."""
    rows = Pipeline.select(Pipeline.id).where(
        (Pipeline.id == run_id) | (Pipeline.chain_id == run_id)
    )
    return sorted(row.id for row in rows)


def unfinished() -> list[Any]:
    """Promotions a daemon left behind: still ``running``, or interrupted and not yet
    checked for a half-deployed target."""
    query = Pipeline.select().where(
        (Pipeline.status == "running")
        | ((Pipeline.status == "interrupted") & (Pipeline.recovery == "pending"))
    )
    return list(query.order_by(Pipeline.id))


def running_stages(pipeline_id: int) -> list[Any]:
    return list(
        Stage.select().where((Stage.pipeline_id == pipeline_id) & (Stage.status == "running"))
    )


def next_position(pipeline_id: int) -> int:
    last = (
        Stage.select(Stage.position)
        .where(Stage.pipeline_id == pipeline_id)
        .order_by(Stage.position.desc())
        .first()
    )
    return 1 if last is None else int(last.position) + 1


def promotion_record(row: Any, stages: tuple[StageRecord, ...]) -> PromotionRecord:
    return PromotionRecord(
        id=row.id,
        kind=row.kind,
        status=row.status,
        source=row.source,
        target=row.target,
        release=row.release_id,
        previous=row.previous_release,
        started=utc_iso(row.started),
        ended=utc_iso(row.ended),
        duration=_duration(row),
        trigger=row.trigger,
        chain=row.chain_id,
        backup=row.backup or "",
        rollback=row.rollback or "",
        recovery=row.recovery or "",
        error=row.error,
        stages=stages,
    )


def stage_record(row: Any) -> StageRecord:
    return StageRecord(
        position=row.position,
        name=row.name,
        kind=row.kind,
        env=row.env or "",
        blocking=row.blocking,
        status=row.status,
        started=utc_iso(row.started),
        ended=utc_iso(row.ended),
        duration=row.duration,
        exit_code=row.exit_code,
        summary=row.summary or "",
        error=row.error,
        tests=row.tests,
        output_tail=row.output_tail,
        detail=row.detail,
    )


def _summary(row: Any, counts: dict[str, int]) -> PromotionSummary:
    done = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return PromotionSummary(
        id=row.id,
        kind=row.kind,
        status=row.status,
        release=row.release_id,
        started=utc_iso(row.started),
        duration=_duration(row),
        stages=done,
        rollback=row.rollback or "",
        chain=row.chain_id,
        error=row.error,
    )


def _stage_counts(ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {}
    if not ids:
        return counts
    for stage in Stage.select(Stage.pipeline_id, Stage.status).where(Stage.pipeline_id << ids):
        per = counts.setdefault(stage.pipeline_id, {})
        per[stage.status] = per.get(stage.status, 0) + 1
    return counts


def _duration(row: Any) -> float | None:
    if row.duration is not None:
        return float(row.duration)
    if row.status == "running":
        return round(time.time() - float(row.started), 3)
    return None if row.ended is None else round(float(row.ended) - float(row.started), 3)
