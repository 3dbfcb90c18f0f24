"""Retention: what the store deletes once it is old enough, and the pages it gives back.

Every table with a time column keeps rows for its own ``retention_days``; promotions beyond
``[pipeline] keep`` go with their stages; alerts, notifications, silences and marks go once
they are over and old. Nothing still running, firing or pending is deleted, however old."""

from __future__ import annotations

import time
from typing import Any

import peewee

from gaia_actors.settings import Settings
from gaia_actors.store.models import TABLES

VACUUM_PAGES = 65_536  # pages handed back after one prune (4 KiB each: 256 MiB)


def prune(db: peewee.Database, settings: Settings) -> tuple[int, int]:
    """Delete by retention; answers the rows removed and the pages freed after them."""
    retention = {
        "events": settings.store.retention_days,
        "actor_restarts": settings.store.retention_days,
        "health_checks": settings.monitor.retention_days,
        "metric_samples": settings.metrics.retention_days,
    }
    removed = 0
    now = time.time()
    for table, days in retention.items():
        model: Any = TABLES[table]
        removed += model.delete().where(model.ts < now - days * 86400).execute(db)
    removed += prune_pipelines(db, settings.pipeline.keep)
    removed += prune_alerts(db, now - settings.alerts.retention_days * 86400)
    return removed, vacuum(db) if removed else 0


def prune_alerts(db: peewee.Database, before: float) -> int:
    """Alerts that ended, notifications no longer pending and silences over, older than
    ``before``; a firing alert or a pending notification stays however old."""
    alerts: Any = TABLES["alerts"]
    notifications: Any = TABLES["notifications"]
    silences: Any = TABLES["silences"]
    marks: Any = TABLES["alert_marks"]
    newest = marks.select(peewee.fn.MAX(marks.id)).scalar(db) or 0
    queries = (
        alerts.delete().where(alerts.started < before, alerts.status != "firing"),
        alerts.delete().where(alerts.started < before, alerts.lasting == False),  # noqa: E712 - SQL
        notifications.delete().where(
            notifications.created < before, notifications.state != "pending"
        ),
        silences.delete().where(silences.expires < before),
        marks.delete().where(marks.ts < before, marks.id < newest),  # the newest counts
    )
    return sum(int(query.execute(db)) for query in queries)


def prune_pipelines(db: peewee.Database, keep: int) -> int:
    """Promotions beyond the newest ``keep`` go, with their stages; one still running or
    waiting for its recovery stays. (Their artifact folders are the coordinator's.)"""
    pipeline: Any = TABLES["pipelines"]
    stage: Any = TABLES["stages"]
    newest = pipeline.select(peewee.fn.MAX(pipeline.id)).scalar(db)
    if newest is None or newest <= keep:
        return 0
    old = pipeline.select(pipeline.id).where(
        (pipeline.id <= newest - keep)
        & (pipeline.status != "running")
        & ((pipeline.recovery.is_null()) | (pipeline.recovery != "pending"))
    )
    ids = [row.id for row in old.execute(db)]
    removed = 0
    for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
        with db.atomic():
            removed += stage.delete().where(stage.pipeline_id << chunk).execute(db)
            removed += pipeline.delete().where(pipeline.id << chunk).execute(db)
    return int(removed)


def vacuum(database: peewee.Database) -> int:
    """Give up to ``VACUUM_PAGES`` free pages back to the file system (SQLite databases
    created with incremental auto-vacuum; for others it frees nothing). Answers how many."""
    if not isinstance(database, peewee.SqliteDatabase):
        return 0
    db: Any = database  # peewee's methods are untyped
    before = int(db.execute_sql("PRAGMA freelist_count").fetchone()[0])
    if before:
        # executescript steps the pragma to the end; execute() frees a single page.
        db.connection().executescript(f"PRAGMA incremental_vacuum({VACUUM_PAGES});")
    return before - int(db.execute_sql("PRAGMA freelist_count").fetchone()[0])
