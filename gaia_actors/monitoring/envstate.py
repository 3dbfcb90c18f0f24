"""One environment's health as the monitor keeps it: its classifier, its last results and
process facts, its start window and re-checks, and the report, snapshot and row made of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from gaia_actors.messages import HealthReport
from gaia_actors.monitoring.checks import ProbeResult
from gaia_actors.monitoring.classify import Classifier, HealthStatus, Observation, Verdict
from gaia_actors.monitoring.healthround import ProcessInfo
from gaia_actors.monitoring.snapshot import HealthSnapshot


@dataclass
class EnvState:
    env: str
    url: str
    classifier: Classifier
    since: float = field(default_factory=time.time)  # when the status last changed
    failing_since: float | None = None
    result: ProbeResult | None = None
    verdict: Verdict | None = None
    proc: ProcessInfo = field(default_factory=ProcessInfo)
    requests: float | None = None
    errors: float | None = None
    start_window: float = 30.0  # how long a just-started process may refuse connections
    window_until: float | None = None  # monotonic end of a start window an event opened
    answered_pid: int | None = None  # the process that last answered a check

    def rechecking(self, needed: int) -> bool:
        """Whether its state is about to change: its last check failed and fewer than
        ``needed`` in a row have (down, or a blip), or it is down and answers again (up once
        ``success_threshold`` checks answer)."""
        verdict = self.verdict
        if verdict is None:
            return False
        failing = 0 < verdict.consecutive_failures < needed
        answering = verdict.observation is not Observation.FAIL
        return failing or (verdict.status is HealthStatus.DOWN and answering)

    def starting(self) -> bool:
        """Whether the process has just started and not answered yet: told so by its
        environment actor, or seen so (alive, younger than the window, not verified)."""
        if self.window_until is not None and time.monotonic() < self.window_until:
            return True
        proc = self.proc
        young = proc.uptime_s is not None and proc.uptime_s < self.start_window
        return bool(proc.alive and young and not proc.verified and proc.pid != self.answered_pid)

    def observe(self, result: ProbeResult, proc: ProcessInfo) -> Verdict:
        self.proc = proc
        verdict = self.classifier.observe(result, starting=self.starting())
        if verdict.observation is not Observation.FAIL:
            self.window_until, self.answered_pid = None, proc.pid  # it answers: started
        if verdict.changed:
            self.since = result.checked_at
        if verdict.observation is Observation.FAIL:
            self.failing_since = self.failing_since or result.checked_at
        else:
            self.failing_since = None
        self.result, self.verdict, self.proc = result, verdict, proc
        return verdict

    @property
    def release(self) -> str:
        if self.proc.release:
            return self.proc.release
        body = self.result.body_json if self.result is not None else None
        value = body.get("release") if body else None
        return value if isinstance(value, str) else ""

    def report(self) -> HealthReport:
        verdict, result = self.verdict, self.result
        assert verdict is not None
        assert result is not None
        return HealthReport(
            env=self.env,
            status=verdict.status.value,
            previous=verdict.previous.value,
            observation=verdict.observation.value,
            consecutive_failures=verdict.consecutive_failures,
            failing_since=self.failing_since,
            latency_s=result.latency_s,
            http_status=result.status,
            checked_at=result.checked_at,
            reason=verdict.reason,
            pid=self.proc.pid,
            alive=self.proc.alive,
            uptime_s=self.proc.uptime_s,
            verified=self.proc.verified,
        )

    def snapshot(self) -> HealthSnapshot:
        verdict, result, stats = self.verdict, self.result, self.proc.stats
        rate = None
        if self.requests and self.errors is not None:
            rate = round(self.errors / self.requests, 6)
        return HealthSnapshot(
            env=self.env,
            status=self.classifier.status.value,
            reason=verdict.reason if verdict else "not checked yet",
            since=self.since,
            last_check=result.checked_at if result else None,
            url=self.url,
            response_ms=round(result.latency_s * 1000, 3) if result else None,
            http_status=result.status if result else None,
            error=f"{result.error}: {result.detail}" if result and result.error else "",
            checks=verdict.checks if verdict else 0,
            check_errors=verdict.errors if verdict else 0,
            error_rate=verdict.error_rate if verdict else 0.0,
            consecutive_failures=verdict.consecutive_failures if verdict else 0,
            requests=self.requests,
            errors=self.errors,
            service_error_rate=rate,
            uptime_s=round(self.proc.uptime_s, 3) if self.proc.uptime_s is not None else None,
            pid=self.proc.pid,
            alive=self.proc.alive,
            cpu_percent=round(stats.cpu_percent, 3) if stats else None,
            rss_bytes=stats.rss_bytes if stats else None,
            db_bytes=self.proc.db_bytes,
            log_bytes=self.proc.log_bytes,
            release=self.release,
        )

    def row(self) -> dict[str, Any]:
        """The ``health_checks`` row of the last check."""
        snap = self.snapshot()
        return {
            "ts": snap.last_check,
            "env": self.env,
            "status": snap.status,
            "http_status": snap.http_status,
            "latency_ms": snap.response_ms,
            "error": snap.error,
            "reason": snap.reason,
            "error_rate": snap.error_rate,
            "release": snap.release,
            "uptime_s": snap.uptime_s,
            "cpu_percent": snap.cpu_percent,
            "rss_bytes": snap.rss_bytes,
            "db_bytes": snap.db_bytes,
            "log_bytes": snap.log_bytes,
            "pid": snap.pid,
            "requests": snap.requests,
            "errors": snap.errors,
        }
