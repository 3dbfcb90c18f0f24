"""The monitor's answer to ``GetHealth``: one environment's health as the monitor sees it."""

from __future__ import annotations

import dataclasses

from supervisors.records import record


@record
class HealthSnapshot:
    """One environment's verdict, its last check and its process facts.

    The fields are in display order: the control protocol sends them as a JSON object in
    this order, and ``status`` shows them so."""

    env: str
    status: str  # healthy | degraded | down | unknown
    reason: str
    since: float  # when the status last changed (epoch seconds)
    last_check: float | None
    url: str
    response_ms: float | None
    http_status: int | None
    error: str
    checks: int
    check_errors: int
    error_rate: float
    consecutive_failures: int
    requests: float | None  # the service's own totals, from its last metrics scrape
    errors: float | None
    service_error_rate: float | None
    uptime_s: float | None
    pid: int | None
    alive: bool | None  # None: no pid file, so nobody knows
    cpu_percent: float | None
    rss_bytes: int | None
    db_bytes: int | None
    log_bytes: int | None
    release: str


def snapshot_fields() -> tuple[str, ...]:
    """The keys of a health snapshot, in display order."""
    return tuple(f.name for f in dataclasses.fields(HealthSnapshot))


__all__ = ["HealthSnapshot", "snapshot_fields"]
