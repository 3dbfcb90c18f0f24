"""The Prometheus text parser on its own: clean, malformed, hostile and oversized bodies."""

from __future__ import annotations

import time

import pytest

from gaia_actors.monitoring.exposition import Limits, Sample, parse_exposition, total
from tests.gaia_actors.monitoring.conftest import GOOD, HOSTILE

LIMITS = Limits(max_samples=100, max_labels=8, max_label_bytes=256)


def test_a_clean_body_gives_every_sample() -> None:
    report = parse_exposition(GOOD.decode(), LIMITS)
    assert [(s.name, dict(s.labels), s.value) for s in report.samples] == [
        ("app_requests_total", {"path": "/a"}, 3.0),
        ("app_requests_total", {"path": "/b"}, 4.0),
        ("app_request_errors_total", {"path": "/a"}, 1.0),
        ("app_up", {}, 1.0),
    ]
    assert report.problems == 0


def test_malformed_lines_are_counted_and_the_rest_is_kept() -> None:
    report = parse_exposition(HOSTILE.decode(), LIMITS)
    assert [s.name for s in report.samples] == ["app_requests_total", "app_after_garbage"]
    assert report.parse_errors == 2
    assert report.first_error
    assert (report.nonfinite, report.dropped_labels) == (2, 1)


def test_samples_beyond_the_bound_are_cut_off_and_counted() -> None:
    body = "".join(f'app_series{{i="{i}"}} {i}\n' for i in range(150))
    report = parse_exposition(body, LIMITS)
    assert (len(report.samples), report.truncated) == (100, 50)


def test_binary_garbage_is_only_errors() -> None:
    report = parse_exposition(b"\x00\xff\xfe garbage\n\x01".decode("utf-8", "replace"), LIMITS)
    assert report.samples == ()
    assert report.parse_errors >= 1


def test_totals_sum_the_samples_a_glob_matches() -> None:
    samples = parse_exposition(GOOD.decode(), LIMITS).samples
    assert total(samples, "*requests_total") == 7.0
    assert total(samples, "*errors_total") == 1.0
    assert total(samples, "nothing_*") is None


def test_a_body_of_malformed_lines_costs_bounded_cpu_and_says_what_was_dropped() -> None:
    body = b"".join(
        b'x{a="%d" garbage line that is not a sample %d\n' % (i, i) for i in range(80_000)
    )
    assert len(body) > 4_000_000
    started = time.thread_time()
    report = parse_exposition(body, Limits(max_parse_cpu=0.05))
    spent = time.thread_time() - started
    assert report.samples == ()
    assert report.parse_errors > 0
    assert report.over_budget > 0
    assert report.parse_errors + report.over_budget == pytest.approx(80_000, abs=1)
    assert spent < 0.5


def test_a_sample_limit_stops_reading_and_counts_the_lines_left() -> None:
    body = b"# TYPE app_series gauge\n" + b"".join(
        b'app_series{i="%d"} %d\n' % (i, i) for i in range(5000)
    )
    report = parse_exposition(body, Limits(max_samples=100))
    assert (len(report.samples), report.truncated) == (100, 4900)
    assert report.samples[-1] == Sample("app_series", (("i", "99"),), 99.0)


def test_label_values_are_unescaped_and_timestamps_accepted() -> None:
    body = b'app_x{path="/a\\"b\\\\c\\nd",code="200"} 1.5e3 1700000000000\n'
    (sample,) = parse_exposition(body, Limits()).samples
    assert sample == Sample("app_x", (("code", "200"), ("path", '/a"b\\c\nd')), 1500.0)
