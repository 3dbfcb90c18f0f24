"""peewee models: every table of the store in one module.

The models bind to ``database``, a proxy the Store initialises at start; readers in any
thread use the same proxy (peewee keeps one connection per thread), and only the Store
actor writes. Timestamps are Unix seconds (float) in UTC.

A thread that read through the models must close its connections before it ends
(``close_thread_connections``; ``closing_connections`` wraps a thread's target): a sqlite3
connection sits in a reference cycle, so one left behind keeps its two file descriptors until
a full garbage collection, and a daemon that restarts actors or runs a control request per
thread would pile them up.
"""

from __future__ import annotations

import contextlib
import functools
import json
import weakref
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import peewee

from gaia_actors.events import SupervisorEvent

database = peewee.DatabaseProxy()
_OPENED: weakref.WeakSet[peewee.Database] = weakref.WeakSet()  # every generation's database
P = ParamSpec("P")
R = TypeVar("R")


def track(db: peewee.Database) -> None:
    """Remember ``db`` so threads can close their connections to it (``open_database``)."""
    _OPENED.add(db)


def close_thread_connections() -> None:
    """Close the calling thread's connections to every database opened in this process
    (the proxy's current one and those of earlier store generations)."""
    for db in list(_OPENED):
        with contextlib.suppress(peewee.PeeweeException):
            if not db.is_closed() and not db.in_transaction():
                db.close()


def closing_connections(target: Callable[P, R]) -> Callable[P, R]:
    """``target``, closing the thread's connections when it returns or raises."""

    @functools.wraps(target)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return target(*args, **kwargs)
        finally:
            close_thread_connections()

    return run


class JSONField(peewee.TextField):
    """A JSON document in a text column."""

    def db_value(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value, default=str, separators=(",", ":"))

    def python_value(self, value: str | None) -> Any:
        return None if value is None else json.loads(value)


class BaseModel(peewee.Model):
    class Meta:
        database = database


class EventRow(BaseModel):
    ts = peewee.FloatField(index=True)
    name = peewee.CharField(index=True)
    level = peewee.CharField(default="info")
    actor = peewee.CharField(default="")
    env = peewee.CharField(default="", index=True)
    data = JSONField(default=dict)

    class Meta:
        table_name = "events"


class ActorRestart(BaseModel):
    ts = peewee.FloatField(index=True)
    supervisor = peewee.CharField()
    child = peewee.CharField(index=True)
    generation = peewee.IntegerField(default=0)
    event = peewee.CharField(default=SupervisorEvent.RESTART)
    reason = peewee.TextField(default="")
    delay = peewee.FloatField(default=0.0)

    class Meta:
        table_name = "actor_restarts"


class HealthCheck(BaseModel):
    ts = peewee.FloatField(index=True)
    env = peewee.CharField(index=True)
    status = peewee.CharField()  # healthy | degraded | down | unknown
    http_status = peewee.IntegerField(null=True)
    latency_ms = peewee.FloatField(null=True)
    error = peewee.TextField(default="")
    reason = peewee.TextField(default="")
    error_rate = peewee.FloatField(default=0.0)
    release = peewee.CharField(default="")
    uptime_s = peewee.FloatField(null=True)
    cpu_percent = peewee.FloatField(null=True)
    rss_bytes = peewee.IntegerField(null=True)
    db_bytes = peewee.IntegerField(null=True)
    log_bytes = peewee.IntegerField(null=True)
    pid = peewee.IntegerField(null=True)
    requests = peewee.FloatField(null=True)  # the service's own totals, from its /metrics
    errors = peewee.FloatField(null=True)

    class Meta:
        table_name = "health_checks"


class MetricSample(BaseModel):
    ts = peewee.FloatField(index=True)
    env = peewee.CharField(index=True)
    name = peewee.CharField(index=True)
    labels = JSONField(default=dict)
    value = peewee.FloatField()

    class Meta:
        table_name = "metric_samples"


class BackupRow(BaseModel):
    ts = peewee.FloatField(index=True)
    env = peewee.CharField(index=True)
    path = peewee.TextField()
    size = peewee.IntegerField(default=0)
    sha256 = peewee.CharField(default="")
    integrity = peewee.TextField(default="")
    verified = peewee.BooleanField(default=False)
    reason = peewee.CharField(default="manual")  # manual | scheduled | pipeline | ladder
    pipeline_id = peewee.IntegerField(null=True)

    class Meta:
        table_name = "backups"


class ReleaseRow(BaseModel):
    ts = peewee.FloatField(index=True)
    env = peewee.CharField(index=True)
    release_id = peewee.CharField(index=True)
    source = peewee.TextField(default="")
    content_hash = peewee.CharField(default="")
    status = peewee.CharField(default="built")

    class Meta:
        table_name = "releases"


class Deployment(BaseModel):
    ts = peewee.FloatField(index=True)
    env = peewee.CharField(index=True)
    release_id = peewee.CharField()
    previous = peewee.CharField(default="")
    status = peewee.CharField()  # deployed | rolled_back | failed
    kind = peewee.CharField(default="deploy")  # deploy | rollback
    duration = peewee.FloatField(default=0.0)
    error = peewee.TextField(default="")
    pipeline_id = peewee.IntegerField(null=True)

    class Meta:
        table_name = "deployments"


class Pipeline(BaseModel):
    kind = peewee.CharField()  # dev_to_staging | staging_to_prod
    status = peewee.CharField(index=True)  # running | succeeded | failed | cancelled | interrupted
    started = peewee.FloatField(index=True)
    ended = peewee.FloatField(null=True)
    source = peewee.CharField(default="")
    target = peewee.CharField(default="")
    release_id = peewee.CharField(default="")
    previous_release = peewee.CharField(default="")
    trigger = peewee.CharField(default="")
    error = peewee.TextField(default="")
    chain_id = peewee.IntegerField(null=True)
    duration = peewee.FloatField(null=True)
    backup = peewee.CharField(default="")  # taken by the promotion's backup stage
    rollback = peewee.CharField(default="")  # "" | code | data | code+data | verified | failed
    # after an interruption: pending | rolled back | not needed | failed: <why>
    recovery = peewee.CharField(default="")

    class Meta:
        table_name = "pipelines"


class Stage(BaseModel):
    pipeline_id = peewee.IntegerField(index=True)
    position = peewee.IntegerField()
    name = peewee.CharField()
    kind = peewee.CharField()
    blocking = peewee.BooleanField(default=True)
    # running | passed | failed | warned | skipped | cancelled | timed_out | interrupted
    status = peewee.CharField()
    started = peewee.FloatField(null=True)
    ended = peewee.FloatField(null=True)
    duration = peewee.FloatField(null=True)
    exit_code = peewee.IntegerField(null=True)
    output_tail = peewee.TextField(default="")
    tests = JSONField(null=True)
    error = peewee.TextField(default="")
    env = peewee.CharField(default="")
    summary = peewee.TextField(default="")
    detail = JSONField(null=True)

    class Meta:
        table_name = "stages"


class Incident(BaseModel):
    env = peewee.CharField(index=True)
    cause = peewee.CharField()  # exited | down | hung
    started = peewee.FloatField(index=True)
    detected = peewee.FloatField(null=True)
    recovered = peewee.FloatField(null=True)
    time_to_detect = peewee.FloatField(null=True)
    time_to_recover = peewee.FloatField(null=True)
    status = peewee.CharField(default="open")  # open | recovered | failed | superseded | closed
    detail = peewee.TextField(default="")
    failovers = peewee.IntegerField(default=0)  # Fail messages the failover agent sent

    class Meta:
        table_name = "incidents"


class ImproveCycle(BaseModel):
    started = peewee.FloatField(index=True)
    ended = peewee.FloatField(null=True)
    target = peewee.TextField()
    status = peewee.CharField(default="running")
    coverage = peewee.FloatField(null=True)
    pass_rate = peewee.FloatField(null=True)
    ops_per_sec = peewee.FloatField(null=True)
    issues_detected = peewee.IntegerField(default=0)
    issues_fixed = peewee.IntegerField(default=0)
    build_time = peewee.FloatField(null=True)
    test_time = peewee.FloatField(null=True)
    files = peewee.IntegerField(default=0)
    phases = JSONField(null=True)
    report = JSONField(null=True)
    apply = peewee.BooleanField(default=False)
    lines = peewee.IntegerField(null=True)
    analysis_time = peewee.FloatField(null=True)
    regression = peewee.BooleanField(default=False)
    error = peewee.TextField(default="")
    trigger = peewee.CharField(null=True)  # manual | schedule | commit (NULL: manual)
    commit = peewee.CharField(null=True)  # the target's git HEAD when the cycle read it

    class Meta:
        table_name = "improve_cycles"


class FindingRow(BaseModel):
    cycle_id = peewee.IntegerField(index=True)
    identity = peewee.CharField(index=True)
    type = peewee.CharField()
    file = peewee.TextField()
    line = peewee.IntegerField(default=0)
    text = peewee.TextField(default="")
    severity = peewee.CharField()
    priority = peewee.IntegerField(default=0)
    detector = peewee.CharField(default="")
    scope = peewee.TextField(default="")  # with anchor: what the identity is made of
    anchor = peewee.TextField(null=True)

    class Meta:
        table_name = "findings"


class TaskRow(BaseModel):
    cycle_id = peewee.IntegerField(index=True)
    title = peewee.TextField()
    score = peewee.FloatField()
    effort = peewee.CharField(default="")
    severity = peewee.CharField(default="")
    findings = JSONField(null=True)
    status = peewee.CharField(default="open")
    rank = peewee.IntegerField(default=0)
    type = peewee.CharField(default="")
    files = JSONField(null=True)
    minutes = peewee.IntegerField(default=0)
    rationale = peewee.TextField(default="")

    class Meta:
        table_name = "tasks"


class AlertRow(BaseModel):
    """An alert the router raised: ``key`` is stable while its condition lasts; an alert
    without a resolved counterpart (``lasting`` false) ends when it is notified."""

    key = peewee.CharField(index=True)
    name = peewee.CharField(index=True)
    severity = peewee.CharField()
    status = peewee.CharField(default="firing", index=True)  # firing | resolved
    env = peewee.CharField(default="", index=True)
    summary = peewee.TextField(default="")
    event = peewee.CharField(default="")
    started = peewee.FloatField(index=True)
    ended = peewee.FloatField(null=True)
    lasting = peewee.BooleanField(default=True)
    silenced_by = peewee.IntegerField(null=True)  # the silence that held it back
    details = JSONField(default=dict)

    class Meta:
        table_name = "alerts"


class NotificationRow(BaseModel):
    """One message to one receiver, stored before it is sent; ``uid`` stays the same across
    retries and restarts. ``body`` holds the notification itself, to resend it unchanged."""

    uid = peewee.CharField(unique=True)
    receiver = peewee.CharField(index=True)
    group = peewee.CharField(default="")
    status = peewee.CharField(default="firing")  # firing | resolved
    created = peewee.FloatField(index=True)
    state = peewee.CharField(default="pending", index=True)  # pending | delivered | abandoned
    attempts = peewee.IntegerField(default=0)
    next_attempt = peewee.FloatField(null=True)
    delivered = peewee.FloatField(null=True)
    answer = peewee.TextField(default="")  # what the receiver answered ("HTTP 200")
    error = peewee.TextField(default="")  # the last failed attempt's reason
    alert_ids = JSONField(default=list)
    body = JSONField(default=dict)

    class Meta:
        table_name = "notifications"


class SilenceRow(BaseModel):
    """Alerts matching ``env`` and ``alert`` (globs) are not sent from ``created`` until
    ``expires``, or ``ended`` if an operator lifted it earlier."""

    env = peewee.CharField(default="*")
    alert = peewee.CharField(default="*")
    reason = peewee.TextField(default="")
    created = peewee.FloatField(index=True)
    expires = peewee.FloatField(index=True)
    ended = peewee.FloatField(null=True)

    class Meta:
        table_name = "silences"


class AlertMarkRow(BaseModel):
    """The last bus event the alert router took in (``ts``, ``name`` and ``actor`` name it in
    ``events``): a router that starts takes in the stored events after it. One row per event,
    the newest counts."""

    ts = peewee.FloatField()
    name = peewee.CharField(default="")  # '' for a mark that names only a time
    actor = peewee.CharField(default="")

    class Meta:
        table_name = "alert_marks"


MODELS: list[type[BaseModel]] = [
    EventRow,
    ActorRestart,
    HealthCheck,
    MetricSample,
    BackupRow,
    ReleaseRow,
    Deployment,
    Pipeline,
    Stage,
    Incident,
    ImproveCycle,
    FindingRow,
    TaskRow,
    AlertRow,
    NotificationRow,
    SilenceRow,
    AlertMarkRow,
]
TABLES: dict[str, type[BaseModel]] = {m._meta.table_name: m for m in MODELS}
