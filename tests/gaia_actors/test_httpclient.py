"""The product's one-off HTTP client against real misbehaving servers on 127.0.0.1."""

from __future__ import annotations

import threading
import time

import pytest

from gaia_actors.health import Health
from gaia_actors.httpclient import Client, ErrorKind, Limits, check_health, get, wait_healthy
from gaia_actors.pipeline.load import run_load
from tests.gaia_actors.monitoring.hostile import (
    EndlessChunked,
    Hang,
    HostileServer,
    HugeBody,
    Raw,
    Reset,
    Respond,
    Trickle,
    TrickleHead,
    refused_port,
)

SHORT = Limits(connect_timeout=0.5, deadline=0.5)


@pytest.mark.parametrize(
    "behaviour",
    [Trickle(interval=0.05), TrickleHead(interval=0.05), EndlessChunked(interval=0.01), Hang()],
    ids=["trickled body", "trickled head", "endless chunks", "hang"],
)
def test_the_deadline_bounds_the_whole_request(behaviour: object) -> None:
    with HostileServer({"/x": behaviour}) as server:  # type: ignore[dict-item]
        started = time.monotonic()
        answer = get(server.url("/x"), Limits(0.5, 0.5, max_body_bytes=10**9))
        elapsed = time.monotonic() - started
    assert answer.error is ErrorKind.TIMEOUT
    assert "within 0.5 s" in answer.detail
    assert elapsed < 0.9


def test_a_trickling_health_endpoint_cannot_stretch_a_wait_past_its_timeout() -> None:
    with HostileServer({"/health": Trickle(interval=0.2)}) as server:
        started = time.monotonic()
        verdict = wait_healthy(server.url("/health"), 1.5)
        elapsed = time.monotonic() - started
    assert not verdict.healthy
    assert "not healthy within 1.5s" in verdict.reason
    assert elapsed < 1.9


def test_a_body_over_its_bound_is_cut_off_and_reported() -> None:
    routes = {"/declared": HugeBody(size=10**6), "/chunked": HugeBody(10**6, framing="chunked")}
    with HostileServer(routes) as server:
        limits = Limits(max_body_bytes=1000)
        declared = get(server.url("/declared"), limits)
        chunked = get(server.url("/chunked"), limits)
    assert (declared.status, declared.error, declared.body) == (200, ErrorKind.TOO_LARGE, b"")
    assert (chunked.status, chunked.error, len(chunked.body)) == (200, ErrorKind.TOO_LARGE, 1000)


def test_errors_come_back_classified() -> None:
    routes = {"/reset": Reset(), "/garbage": Raw(b"SSH-2.0-OpenSSH\r\n")}
    with HostileServer(routes) as server, refused_port() as port:
        refused = get(f"http://127.0.0.1:{port}/health", SHORT)
        reset = get(server.url("/reset"), SHORT)
        garbage = get(server.url("/garbage"), SHORT)
    assert refused.error is ErrorKind.REFUSED
    assert reset.error is ErrorKind.BROKEN
    assert garbage.error is ErrorKind.BROKEN
    assert refused.status is None


def test_a_5xx_is_an_answer_and_an_unhealthy_verdict() -> None:
    with HostileServer({"/health": Respond(503, b'{"status": "ok"}')}) as server:
        answer = get(server.url("/health"))
        verdict = check_health(server.url("/health"))
    assert (answer.status, answer.error, answer.body) == (503, None, b'{"status": "ok"}')
    assert (verdict.health, verdict.reason) == (Health.UNHEALTHY, "HTTP 503")


def test_a_client_keeps_its_connection_and_the_query_string() -> None:
    with HostileServer({"/health": Respond()}) as server, Client() as client:
        for _ in range(3):
            assert client.get(server.url("/health?deep=1")).complete
        assert server.accepts == 1
        assert {r.target for r in server.requests} == {"/health?deep=1"}


def test_redirects_are_answers_not_followed() -> None:
    moved = Respond(302, b"", extra_headers=(("Location", "/elsewhere"),))
    with HostileServer({"/health": moved}) as server:
        answer = get(server.url("/health"))
        assert answer.status == 302
        assert [r.path for r in server.requests] == ["/health"]


def test_a_cancelled_wait_says_so() -> None:
    cancel = threading.Event()
    cancel.set()
    with HostileServer({"/health": Respond(503)}) as server:
        verdict = wait_healthy(server.url("/health"), 5.0, cancel=cancel)
    assert verdict.reason == "cancelled"


def test_a_malformed_url_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="bad URL"):
        get("not a url")


def test_an_ok_json_status_is_healthy_and_a_down_one_is_not() -> None:
    routes = {"/ok": Respond(200, b'{"status": "ok"}'), "/bad": Respond(200, b'{"status": "down"}')}
    with HostileServer(routes) as server:
        assert check_health(server.url("/ok")).healthy
        verdict = check_health(server.url("/bad"))
    assert not verdict.healthy
    assert "down" in verdict.reason


def test_the_load_stage_cannot_be_stretched_past_its_deadline() -> None:
    with HostileServer({"/items": Trickle(interval=0.1)}) as server:
        started = time.monotonic()
        result = run_load(
            "127.0.0.1", server.port, "/items", requests=50, concurrency=2,
            deadline=started + 1.0,
        )  # fmt: skip
        elapsed = time.monotonic() - started
    assert elapsed < 1.6
    assert not result.complete
    assert result.errors == result.sent
    assert result.first_error.startswith("connection: timeout")
