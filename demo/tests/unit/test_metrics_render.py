from __future__ import annotations

import math

from demosvc.metrics import Metrics
from prometheus_client.parser import text_string_to_metric_families


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def make(items: float = 3.0) -> Metrics:
    return Metrics(
        db_size_bytes=lambda: 4096.0,
        items=lambda: items,
        build={"release": "r1", "version": "1.0.0"},
        started=0.0,
    )


def test_requests_are_counted_by_route_template_and_status() -> None:
    metrics = make()
    metrics.observe("GET", "/items/{id}", 200, 0.002)
    metrics.observe("GET", "/items/{id}", 200, 0.003)
    metrics.observe("GET", "/health", 503, 0.001)
    got = samples(metrics)
    ok = (("method", "GET"), ("path", "/items/{id}"), ("status", "200"))
    assert got[("demo_requests_total", ok)] == 2
    assert got[("demo_request_errors_total", (("method", "GET"), ("path", "/health")))] == 1
    assert ("demo_request_errors_total", (("method", "GET"), ("path", "/items/{id}"))) not in got
    count = ("demo_request_duration_seconds_count", (("method", "GET"), ("path", "/items/{id}")))
    assert got[count] == 2
    bucket = (
        "demo_request_duration_seconds_bucket",
        (("le", "0.0025"), ("method", "GET"), ("path", "/items/{id}")),
    )
    assert got[bucket] == 1


def test_gauges_are_read_at_scrape_time() -> None:
    got = samples(make(items=7.0))
    assert got[("demo_db_size_bytes", ())] == 4096
    assert got[("demo_items", ())] == 7
    assert got[("demo_uptime_seconds", ())] > 0
    assert got[("demo_build_info", (("release", "r1"), ("version", "1.0.0")))] == 1


def test_unreadable_item_count_renders_as_nan() -> None:
    assert math.isnan(samples(make(items=math.nan))[("demo_items", ())])


def test_each_instance_has_its_own_registry() -> None:
    # Two registrations of the same names would raise on a shared (global) registry.
    first, second = make(), make()
    first.observe("GET", "/health", 200, 0.001)
    assert (
        "demo_requests_total",
        (("method", "GET"), ("path", "/health"), ("status", "200")),
    ) not in samples(second)
