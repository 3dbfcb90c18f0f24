"""The daemon's own ``/metrics``: a CollectorRegistry fed from health rounds, bus events and
scrapes, served on a loopback address.

Health rounds give status gauges, probe latency histograms and check counts; bus events give
actor restarts (``supervisor.restart``), failovers, recoveries and recovery actions, and
pipeline and stage durations (``pipeline.*``/``stage.*`` events with a duration).
"""

from __future__ import annotations

import ipaddress
import math
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from gaia_actors.events import (
    AlertRouterEvent,
    EnvironmentEvent,
    FailoverEvent,
    IncidentEvent,
    PipelineEvent,
    StageEvent,
    SupervisorEvent,
    matches,
)
from gaia_actors.messages import Event, HealthRound
from gaia_actors.monitoring.scrape import ScrapeResult

STATUSES = ("healthy", "degraded", "down", "unknown")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
# The alert actors' events and the result each counts as (gaia_alert_notifications).
ALERT_DELIVERIES = {
    AlertRouterEvent.NOTIFICATION_SENT: "sent",
    AlertRouterEvent.DELIVERY_FAILED: "failed",
    AlertRouterEvent.DELIVERY_ABANDONED: "abandoned",
}


class Exporter:
    """The daemon's CollectorRegistry and, when listening, its HTTP endpoint."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.status = Gauge(
            "gaia_environment_status",
            "1 for an environment's current health status, 0 for the others.",
            ["env", "status"],
            registry=reg,
        )
        self.latency = Histogram(
            "gaia_probe_latency_seconds",
            "Health check latency, by environment.",
            ["env"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.checks = Counter(
            "gaia_health_checks", "Health checks, by result.", ["env", "result"], registry=reg
        )
        self.restarts = Counter(
            "gaia_actor_restarts", "Restarts by a supervisor, by actor.", ["child"], registry=reg
        )
        self.failovers = Counter(
            "gaia_failovers", "Environments failed over as hung or down.", ["env"], registry=reg
        )
        self.recoveries = Counter(
            "gaia_recoveries",
            "Incidents that ended healthy again, by cause.",
            ["env", "cause"],
            registry=reg,
        )
        self.recovery_actions = Counter(
            "gaia_recovery_actions",
            "Data restores, rollbacks and resets, by the recovery ladder or an operator.",
            ["env", "action"],
            registry=reg,
        )
        self.pipelines = Histogram(
            "gaia_pipeline_duration_seconds",
            "Promotion pipeline durations, by kind and outcome.",
            ["kind", "status"],
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.stages = Histogram(
            "gaia_stage_duration_seconds",
            "Pipeline stage durations, by stage and outcome.",
            ["stage", "status"],
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.scrapes = Counter(
            "gaia_metrics_scrapes", "Scrapes, by result.", ["env", "result"], registry=reg
        )
        self.parse_problems = Counter(
            "gaia_metrics_parse_problems",
            "Skipped lines and samples of scraped metrics, by kind.",
            ["env", "kind"],
            registry=reg,
        )
        self.alerts = Counter(
            "gaia_alerts", "Alerts raised, by alert name and severity.", ["alert", "severity"],
            registry=reg,
        )  # fmt: skip
        self.alert_notifications = Counter(
            "gaia_alert_notifications",
            "Notification sends to alert receivers, by result: sent, failed (an attempt, "
            "retried) or abandoned (retried for [alerts] retry_for in vain).",
            ["receiver", "result"],
            registry=reg,
        )
        self.server: WSGIServer | None = None
        self.address = ""

    # Feeding

    def observe_round(self, health_round: HealthRound) -> None:
        for report in health_round.reports:
            for status in STATUSES:
                self.status.labels(report.env, status).set(float(report.status == status))
            self.latency.labels(report.env).observe(report.latency_s)
            self.checks.labels(report.env, report.observation).inc()

    def observe_event(self, event: Event) -> None:
        name = event.name
        if name == SupervisorEvent.RESTART:
            self.restarts.labels(str(event.get("child", ""))).inc()
        elif name == FailoverEvent.TRIGGERED:
            self.failovers.labels(event.env).inc()
        elif name == IncidentEvent.RECOVERED:
            self.recoveries.labels(event.env, str(event.get("cause", ""))).inc()
        elif name in ALERT_DELIVERIES:
            receiver = str(event.get("receiver", ""))
            self.alert_notifications.labels(receiver, ALERT_DELIVERIES[name]).inc()
        elif name == AlertRouterEvent.FIRING:
            self.alerts.labels(str(event.get("alert", "")), event.level).inc()
        elif matches(name, EnvironmentEvent.ALL):
            self.recovery_actions.labels(event.env, name.partition(".")[2]).inc()
        elif matches(name, PipelineEvent.ALL, StageEvent.ALL):
            self._observe_duration(event)

    def _observe_duration(self, event: Event) -> None:
        duration = _duration(event)
        if duration is None:
            return
        kind, _, outcome = event.name.partition(".")
        status = str(event.get("status") or outcome)
        if kind == "pipeline":
            self.pipelines.labels(str(event.get("kind", "")), status).observe(duration)
        else:
            stage = event.get("stage") or event.get("name") or ""
            self.stages.labels(str(stage), status).observe(duration)

    def observe_scrape(self, result: ScrapeResult) -> None:
        self.scrapes.labels(result.env, "ok" if result.outcome == "ok" else "error").inc()
        report = result.report
        if report is None:
            return
        for kind in ("parse_errors", "dropped_labels", "nonfinite", "truncated", "over_budget"):
            count = getattr(report, kind)
            if count:
                self.parse_problems.labels(result.env, kind).inc(count)

    # Serving

    def serve(self, listen: str) -> str:
        """Start the endpoint on ``host:port``; returns the bound address. Raises OSError or
        ValueError (not loopback, malformed)."""
        host, port = parse_listen(listen)
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self.server = server
        bound_port = server.server_address[1]
        self.address = f"[{host}]:{bound_port}" if ":" in host else f"{host}:{bound_port}"
        return self.address

    def close(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()


def parse_listen(listen: str) -> tuple[str, int]:
    """``127.0.0.1:9464`` or ``[::1]:9464`` into (host, port); loopback hosts only."""
    host, sep, port_text = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"[metrics] listen = {listen!r}: expected host:port")
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(
                f"[metrics] listen = {listen!r}: the daemon's /metrics has no authentication, "
                "so it listens on a loopback address only"
            )
    return host, int(port_text)


def _duration(event: Event) -> float | None:
    value = event.get("duration")
    if value is None and event.get("ended") is not None and event.get("started") is not None:
        value = float(event.get("ended")) - float(event.get("started"))
    try:
        duration = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return duration if duration is not None and math.isfinite(duration) else None
