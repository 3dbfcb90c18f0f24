from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import prometheus_client as prometheus
from demosvc.metrics import LATENCY_BUCKETS, Metrics
from prometheus_client.parser import text_string_to_metric_families


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return samples_of(metrics.render().decode())


def samples_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
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


def test_each_instance_counts_on_its_own() -> None:
    first, second = make(), make()
    first.observe("GET", "/health", 200, 0.001)
    assert (
        "demo_requests_total",
        (("method", "GET"), ("path", "/health"), ("status", "200")),
    ) not in samples(second)


def families(text: str) -> list[tuple[str, str, str, list[tuple[str, dict[str, str], float]]]]:
    """Each family as prometheus_client's parser reads it (NaN made comparable)."""
    return [
        (
            family.name,
            family.type,
            family.documentation,
            [(s.name, s.labels, -1.0 if math.isnan(s.value) else s.value) for s in family.samples],
        )
        for family in text_string_to_metric_families(text)
    ]


def reference_text(
    observed: list[tuple[str, str, int, float]], build: dict[str, str], uptime: float
) -> str:
    """What prometheus_client itself writes for the same metrics and observations."""
    registry = prometheus.CollectorRegistry()
    requests = prometheus.Counter(
        "demo_requests",
        "HTTP requests answered, by route template and status.",
        ["method", "path", "status"],
        registry=registry,
    )
    errors = prometheus.Counter(
        "demo_request_errors",
        "HTTP requests answered with a 5xx status.",
        ["method", "path"],
        registry=registry,
    )
    duration = prometheus.Histogram(
        "demo_request_duration_seconds",
        "Time from request line to response sent, by route template.",
        ["method", "path"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    for name, documentation, value in (
        ("demo_db_size_bytes", "Database file plus WAL on disk.", 4096.0),
        ("demo_items", "Rows in the items table (NaN if unreadable).", math.nan),
        ("demo_uptime_seconds", "Seconds since start.", uptime),
    ):
        prometheus.Gauge(name, documentation, registry=registry).set(value)
    info = prometheus.Info("demo_build", "Release and version of this process.", registry=registry)
    info.info(build)
    for method, path, status, seconds in observed:
        requests.labels(method, path, str(status)).inc()
        duration.labels(method, path).observe(seconds)
        if status >= 500:
            errors.labels(method, path).inc()
    return prometheus.generate_latest(registry).decode()


def test_the_text_reads_as_prometheus_client_own_rendering_of_the_same_metrics() -> None:
    observed = [
        ("GET", "/items/{id}", 200, 0.0005),  # on a bucket's bound: counted in it
        ("GET", "/items/{id}", 404, 0.0031),
        ("GET", "/health", 503, 0.00001),
        ("POST", "/items", 201, 12.0),  # past the last bound: +Inf only
        ("DELETE", 'odd "path"\\\n', 500, 0.2),
    ]
    build = {"release": 'r"1\\x\n', "version": "1.0.0"}
    metrics = Metrics(
        db_size_bytes=lambda: 4096.0, items=lambda: math.nan, build=build, started=0.0
    )
    for method, path, status, seconds in observed:
        metrics.observe(method, path, status, seconds)
    text = metrics.render().decode()
    uptime = samples_of(text)[("demo_uptime_seconds", ())]
    with disabled_created_series():
        assert families(text) == families(reference_text(observed, build, uptime))


@contextlib.contextmanager
def disabled_created_series() -> Iterator[None]:
    """prometheus_client without its ``*_created`` series, which the service never had."""
    prometheus.disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        prometheus.enable_created_metrics()  # type: ignore[no-untyped-call]
