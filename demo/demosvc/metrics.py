"""The Prometheus metrics of one service process, rendered in the text exposition format.

``path`` labels are route templates (``/items/{id}``), never raw paths, so ids do not
create a series each.

The format is written here rather than by ``prometheus_client``: importing that library
(which brings ``urllib.request``, ``wsgiref`` and its own HTTP server along) was a third
of the cost of starting this service, and the service starts at every deploy, restart and
failover. Its tests check what this renders with ``prometheus_client``'s parser.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable

# Requests here take well under a millisecond; the usual default buckets start at 5 ms.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[tuple[str, str], ...]


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
        started_at = time.monotonic() if started is None else started
        self._lock = threading.Lock()  # observe() runs in every request's thread
        self._requests: dict[Labels, float] = {}
        self._errors: dict[Labels, float] = {}
        self._durations: dict[Labels, Histogram] = {}
        self._gauges = (
            ("demo_db_size_bytes", "Database file plus WAL on disk.", db_size_bytes),
            ("demo_items", "Rows in the items table (NaN if unreadable).", items),
            ("demo_uptime_seconds", "Seconds since start.", lambda: time.monotonic() - started_at),
        )
        self._build: Labels = tuple(sorted(build.items()))

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        """Record one answered request."""
        route = (("method", method), ("path", path))
        with self._lock:
            key = (*route, ("status", str(status)))
            self._requests[key] = self._requests.get(key, 0.0) + 1
            self._durations.setdefault(route, Histogram()).observe(seconds)
            if status >= 500:
                self._errors[route] = self._errors.get(route, 0.0) + 1

    def render(self) -> bytes:
        """Every metric in the Prometheus text exposition format."""
        with self._lock:
            lines = [
                *_family(
                    "demo_requests_total",
                    "counter",
                    "HTTP requests answered, by route template and status.",
                    _samples("demo_requests_total", self._requests),
                ),
                *_family(
                    "demo_request_errors_total",
                    "counter",
                    "HTTP requests answered with a 5xx status.",
                    _samples("demo_request_errors_total", self._errors),
                ),
                *_family(
                    "demo_request_duration_seconds",
                    "histogram",
                    "Time from request line to response sent, by route template.",
                    _histogram_samples("demo_request_duration_seconds", self._durations),
                ),
            ]
        for name, documentation, read in self._gauges:  # read outside the lock: they query
            lines += _family(name, "gauge", documentation, [_sample(name, (), read())])
        info = [_sample("demo_build_info", self._build, 1.0)]
        lines += _family("demo_build_info", "gauge", "Release and version of this process.", info)
        return ("\n".join(lines) + "\n").encode()


class Histogram:
    """One series' bucket counts (each bucket alone; rendered cumulative), count and sum."""

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        index = next((i for i, b in enumerate(LATENCY_BUCKETS) if value <= b), -1)
        self.buckets[index] += 1
        self.count += 1
        self.total += value


def _family(name: str, kind: str, documentation: str, samples: Iterable[str]) -> list[str]:
    help_text = documentation.replace("\\", r"\\").replace("\n", r"\n")
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


def _samples(name: str, values: dict[Labels, float]) -> list[str]:
    return [_sample(name, labels, value) for labels, value in values.items()]


def _histogram_samples(name: str, series: dict[Labels, Histogram]) -> list[str]:
    lines = []
    for labels, histogram in series.items():
        cumulative = 0
        for bound, count in zip((*LATENCY_BUCKETS, math.inf), histogram.buckets, strict=True):
            cumulative += count
            lines.append(_sample(f"{name}_bucket", (("le", _number(bound)), *labels), cumulative))
        lines.append(_sample(f"{name}_count", labels, histogram.count))
        lines.append(_sample(f"{name}_sum", labels, histogram.total))
    return lines


def _sample(name: str, labels: Labels, value: float) -> str:
    if not labels:
        return f"{name} {_number(value)}"
    pairs = ",".join(f'{key}="{_escape(text)}"' for key, text in labels)
    return f"{name}{{{pairs}}} {_number(value)}"


def _escape(text: str) -> str:
    return text.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def _number(value: float) -> str:
    """Go's float syntax, as Prometheus writes it: ``+Inf``, ``-Inf``, ``NaN``, ``1.0``."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)
