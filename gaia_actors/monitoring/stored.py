"""What ``status`` and ``health`` read from the store: each environment's newest stored check,
its recent checks, its last known state while no daemon runs, and the alerts firing.
"""

from __future__ import annotations

import time
from typing import Any

from gaia_actors import formatting
from gaia_actors.control.commands import CommandContext
from gaia_actors.events import SupervisorEvent
from gaia_actors.layout import Layout, actor_name
from gaia_actors.process import PidFileError, is_same_process, read_pidfile
from gaia_actors.store.models import ActorRestart, AlertRow, HealthCheck


def stored_snapshots(ctx: CommandContext) -> list[dict[str, Any]]:
    """Each configured environment's newest stored check, as a snapshot."""
    return [stored_snapshot(env) for env in ctx.settings.environments]


def stored_snapshot(env: str) -> dict[str, Any]:
    query = HealthCheck.select().where(HealthCheck.env == env).order_by(HealthCheck.ts.desc())
    row = query.first()
    if row is None:
        return {"env": env, "status": "unknown", "reason": "never checked"}
    return {
        "env": env,
        "status": row.status,
        "reason": row.reason,
        "last_check": row.ts,
        "response_ms": row.latency_ms,
        "http_status": row.http_status,
        "error": row.error,
        "error_rate": row.error_rate,
        "requests": row.requests,
        "errors": row.errors,
        "uptime_s": row.uptime_s,
        "pid": row.pid,
        "cpu_percent": row.cpu_percent,
        "rss_bytes": row.rss_bytes,
        "db_bytes": row.db_bytes,
        "log_bytes": row.log_bytes,
        "release": row.release,
    }


def _with_restarts_from_store(snapshot: dict[str, Any]) -> dict[str, Any]:
    child = actor_name(snapshot["env"])
    query = ActorRestart.select().where(
        (ActorRestart.child == child) & (ActorRestart.event == SupervisorEvent.RESTART)
    )
    return {**snapshot, "restarts": query.count()}


def last_known(ctx: CommandContext, snapshot: dict[str, Any]) -> dict[str, Any]:
    """A stored snapshot while no daemon runs: nobody watches the service, so its status is
    "unwatched"; what the monitor last saw is ``last_status``, ``age_s`` seconds ago, and
    ``running_pid`` is its process if that still runs (a daemon that was killed leaves it)."""
    last = _with_restarts_from_store(snapshot)
    checked = last.get("last_check")
    return {
        **last,
        "status": "unwatched",
        "last_status": snapshot["status"],
        "age_s": max(0.0, time.time() - checked) if isinstance(checked, int | float) else None,
        "running_pid": _running_pid(ctx, snapshot["env"]),
    }


def _running_pid(ctx: CommandContext, env: str) -> int | None:
    try:
        record = read_pidfile(Layout.of(ctx.settings, env).pidfile)
    except PidFileError:
        return None
    alive = record is not None and is_same_process(record.pid, record.start_time)
    return record.pid if alive and record is not None else None


def recent_checks(env: str, limit: int) -> list[dict[str, Any]]:
    """The newest stored checks of ``env``, newest first."""
    query = (
        HealthCheck.select()
        .where(HealthCheck.env == env)
        .order_by(HealthCheck.ts.desc())
        .limit(min(limit, 1000))
    )
    return [
        {
            "ts": row.ts,
            "status": row.status,
            "http": row.http_status,
            "ms": row.latency_ms,
            "error": row.error,
            "reason": row.reason,
        }
        for row in query
    ]


def firing_alerts() -> list[dict[str, Any]]:
    """The alerts firing now (the alert router stores them), oldest first."""
    model: Any = AlertRow
    rows = model.select().where(model.status == "firing", model.lasting == True)  # noqa: E712 - peewee's SQL comparison
    return [
        {
            "alert": row.name,
            "env": row.env or "-",
            "severity": row.severity,
            "since": formatting.ago(row.started),
            "summary": row.summary,
            "silenced": row.silenced_by is not None,
        }
        for row in rows.order_by(model.started)
    ]
