"""The Prometheus metrics of one service process, in its own CollectorRegistry.

``path`` labels are route templates (``/items/{id}``), never raw paths, so ids do not
create a series each.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

# Requests here take well under a millisecond; the default buckets start at 5 ms.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Counters, the latency histogram and gauges read at scrape time."""

    def __init__(
        self,
        *,
        db_size_bytes: Callable[[], float],
        items: Callable[[], float],
        build: dict[str, str],
        started: float | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        started_at = time.monotonic() if started is None else started
        self._requests = Counter(
            "demo_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "path", "status"],
            registry=self.registry,
        )
        self._errors = Counter(
            "demo_request_errors",
            "HTTP requests answered with a 5xx status.",
            ["method", "path"],
            registry=self.registry,
        )
        self._duration = Histogram(
            "demo_request_duration_seconds",
            "Time from request line to response sent, by route template.",
            ["method", "path"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._gauge("demo_db_size_bytes", "Database file plus WAL on disk.", db_size_bytes)
        self._gauge("demo_items", "Rows in the items table (NaN if unreadable).", items)
        self._gauge(
            "demo_uptime_seconds", "Seconds since start.", lambda: time.monotonic() - started_at
        )
        Info("demo_build", "Release and version of this process.", registry=self.registry).info(
            build
        )

    def _gauge(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        Gauge(name, documentation, registry=self.registry).set_function(read)

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        """Record one answered request."""
        self._requests.labels(method, path, str(status)).inc()
        self._duration.labels(method, path).observe(seconds)
        if status >= 500:
            self._errors.labels(method, path).inc()

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)
