"""The probe engine against real misbehaving HTTP servers on 127.0.0.1."""

from __future__ import annotations

import concurrent.futures
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gaia_actors import monitoring
from gaia_actors.monitoring.checks import ProbeResult, ProbeTarget
from gaia_actors.monitoring.http11 import ProbeErrorKind
from gaia_actors.monitoring.probes import Prober
from tests.gaia_actors.monitoring.hostile import (
    Behaviour,
    CloseSilently,
    EndlessChunked,
    FirstOnly,
    Hang,
    HostileServer,
    HugeBody,
    HugeHeaders,
    Raw,
    Reset,
    Respond,
    Trickle,
    garbage_body,
    invalid_utf8,
    refused_port,
    unaccepting_port,
)

# Short bounds keep the suite fast; the hostile behaviours outlast them on purpose.
TIMEOUT = 0.5
SLACK = 0.4  # scheduling noise on a loaded 2-core machine


@pytest.fixture
def prober() -> Iterator[Prober]:
    with Prober() as engine:
        yield engine


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    """One server with a path per behaviour; tests pick theirs."""
    routes: dict[str, Behaviour] = {
        "/ok": Respond(),
        "/slow": Respond(delay=0.3),
        "/500": Respond(500, b'{"status": "error"}'),
        "/hang": Hang(),
        "/reset": Reset(),
        "/close": CloseSilently(),
        "/garbage": garbage_body(),
        "/utf8": invalid_utf8(),
        "/text": Respond(body=b"OK, \xff not json", content_type="text/plain"),
        "/array": Respond(body=b"[1, 2, 3]"),
        "/deep": Respond(body=b"[" * 200_000),
        "/huge": HugeBody(),
        "/huge-chunked": HugeBody(framing="chunked"),
        "/huge-close": HugeBody(framing="close"),
        "/endless": EndlessChunked(),
        "/trickle": Trickle(interval=0.1),
        "/headers": HugeHeaders(),
        "/not-http": Raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"),
        "/chunked": HugeBody(size=100, framing="chunked"),
        "/http10": Respond(version="HTTP/1.0", content_type=None),
        "/204": Respond(204, b""),
        "/503": Respond(503, b""),
    }
    with HostileServer(routes) as server:
        yield server


def target(server: HostileServer, path: str, **kwargs: object) -> ProbeTarget:
    bounds: dict[str, object] = {"connect_timeout": TIMEOUT, "read_timeout": TIMEOUT}
    return ProbeTarget(path.strip("/") or "root", server.url(path), **(bounds | kwargs))  # type: ignore[arg-type]


def timed_check(prober: Prober, probe: ProbeTarget) -> tuple[ProbeResult, float]:
    started = time.perf_counter()
    result = prober.check(probe)
    return result, time.perf_counter() - started


# -- answers ---------------------------------------------------------------------------------


def test_healthy_json_answer_is_ok_with_parsed_body(prober: Prober, hostile: HostileServer) -> None:
    before = time.time()
    result = prober.check(target(hostile, "/ok"))
    assert result.ok
    assert (result.status, result.error, result.body_json) == (200, None, {"status": "ok"})
    assert result.ok_connect
    assert result.status_expected
    assert 0 < result.latency_s < TIMEOUT
    assert before <= result.checked_at <= time.time()


def test_slow_answer_within_the_timeout_reports_its_latency(
    prober: Prober, hostile: HostileServer
) -> None:
    result = prober.check(target(hostile, "/slow", read_timeout=2.0))
    assert result.ok
    assert 0.3 <= result.latency_s < 0.3 + SLACK


def test_server_error_is_an_unexpected_status_not_an_error(
    prober: Prober, hostile: HostileServer
) -> None:
    result = prober.check(target(hostile, "/500"))
    assert (result.status, result.status_expected, result.error) == (500, False, None)
    assert result.ok_connect
    assert not result.ok
    assert result.body_json == {"status": "error"}


def test_expected_status_set_accepts_a_503(prober: Prober, hostile: HostileServer) -> None:
    probe = target(hostile, "/503", expected_status={503})
    assert probe.expected_status == frozenset({503})
    assert prober.check(probe).ok


def test_no_content_answer_is_ok_without_body(prober: Prober, hostile: HostileServer) -> None:
    result = prober.check(target(hostile, "/204"))
    assert result.ok
    assert result.body_json is None


def test_chunked_body_is_reassembled(prober: Prober, hostile: HostileServer) -> None:
    result = prober.check(target(hostile, "/chunked", max_body_bytes=1000))
    assert result.status == 200
    assert result.error is ProbeErrorKind.BAD_BODY  # 100 bytes of "x": framed right, not JSON
    assert "not JSON" in (result.detail or "")


def test_http10_answer_without_content_type_is_parsed_and_not_kept(
    prober: Prober, hostile: HostileServer
) -> None:
    first = prober.check(target(hostile, "/http10"))
    second = prober.check(target(hostile, "/http10"))
    assert first.ok
    assert first.body_json == {"status": "ok"}
    assert second.ok
    assert not second.reused
    assert hostile.accepts == 2


def test_request_carries_path_query_and_host(prober: Prober, hostile: HostileServer) -> None:
    prober.check(target(hostile, "/ok?verbose=1"))
    (request,) = hostile.requests
    assert (request.method, request.target) == ("GET", "/ok?verbose=1")
    assert request.headers["host"] == f"127.0.0.1:{hostile.port}"
    assert request.headers["user-agent"].startswith("gaia-actors-probe/")


# -- connection failures -----------------------------------------------------------------------


def test_refused_connection_is_reported_fast() -> None:
    with Prober() as prober, refused_port() as port:
        probe = ProbeTarget("gone", f"http://127.0.0.1:{port}/health", connect_timeout=TIMEOUT)
        result, elapsed = timed_check(prober, probe)
    assert (result.ok_connect, result.status, result.error) == (False, None, "refused")
    assert elapsed < TIMEOUT


def test_refused_on_localhost_is_refused_not_a_generic_error() -> None:
    # localhost resolves to ::1 and 127.0.0.1: both refusals must still read as "refused".
    with Prober() as prober, refused_port() as port:
        result = prober.check(ProbeTarget("gone", f"http://localhost:{port}/"))
    assert result.error is ProbeErrorKind.REFUSED


def test_connect_that_never_completes_hits_the_connect_timeout() -> None:
    with Prober() as prober, unaccepting_port() as port:
        probe = ProbeTarget("syn", f"http://127.0.0.1:{port}/", connect_timeout=TIMEOUT)
        result, elapsed = timed_check(prober, probe)
    assert (result.ok_connect, result.error) == (False, ProbeErrorKind.CONNECT_TIMEOUT)
    assert TIMEOUT <= elapsed < TIMEOUT + SLACK


def test_unknown_host_is_a_dns_error(prober: Prober) -> None:
    result = prober.check(ProbeTarget("nx", "http://no-such-host.invalid/", connect_timeout=2.0))
    assert (result.ok_connect, result.error) == (False, ProbeErrorKind.DNS)


def test_reset_connection_is_reported(prober: Prober, hostile: HostileServer) -> None:
    result = prober.check(target(hostile, "/reset"))
    assert (result.ok_connect, result.status, result.error) == (True, None, "reset")


def test_close_without_answer_is_reported(prober: Prober, hostile: HostileServer) -> None:
    result = prober.check(target(hostile, "/close"))
    assert (result.ok_connect, result.error) == (True, ProbeErrorKind.CLOSED)


def test_not_http_is_a_bad_response(prober: Prober, hostile: HostileServer) -> None:
    result = prober.check(target(hostile, "/not-http"))
    assert result.error is ProbeErrorKind.BAD_RESPONSE
    assert "SSH-2.0" in (result.detail or "")


# -- time bounds ----------------------------------------------------------------------------


def test_hanging_endpoint_is_cut_off_at_the_read_timeout(
    prober: Prober, hostile: HostileServer
) -> None:
    result, elapsed = timed_check(prober, target(hostile, "/hang"))
    assert (result.ok_connect, result.status, result.error) == (True, None, "timeout")
    assert TIMEOUT <= elapsed < TIMEOUT + SLACK


def test_trickling_body_cannot_stretch_the_read_deadline(
    prober: Prober, hostile: HostileServer
) -> None:
    # A byte every 100 ms would satisfy a per-read timeout forever; the deadline still ends it.
    result, elapsed = timed_check(prober, target(hostile, "/trickle"))
    assert (result.status, result.error) == (200, ProbeErrorKind.TIMEOUT)
    assert TIMEOUT <= elapsed < TIMEOUT + SLACK


# -- size bounds and garbage ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/huge", "/huge-chunked", "/huge-close", "/endless"])
def test_oversized_body_is_cut_off_as_too_large(
    prober: Prober, hostile: HostileServer, path: str
) -> None:
    result, elapsed = timed_check(prober, target(hostile, path, read_timeout=5.0))
    assert (result.status, result.error) == (200, ProbeErrorKind.TOO_LARGE)
    assert result.body_json is None
    assert elapsed < 1.0  # not the 5 s deadline: it stopped reading at the bound


def test_declared_oversized_body_is_not_read_at_all(prober: Prober, hostile: HostileServer) -> None:
    result = prober.check(target(hostile, "/huge"))
    assert f"Content-Length {8 * 1024 * 1024}" in (result.detail or "")


def test_huge_headers_are_too_large(prober: Prober, hostile: HostileServer) -> None:
    result = prober.check(target(hostile, "/headers"))
    assert (result.ok_connect, result.error) == (True, ProbeErrorKind.TOO_LARGE)
    assert "head exceeds" in (result.detail or "")


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/garbage", "not JSON"),
        ("/utf8", "not UTF-8"),
        ("/array", "expected an object"),
        ("/deep", "nests too deeply"),
    ],
)
def test_bad_json_body_is_reported_not_raised(
    prober: Prober, hostile: HostileServer, path: str, why: str
) -> None:
    result = prober.check(target(hostile, path, max_body_bytes=256 * 1024))
    assert (result.status, result.error, result.body_json) == (200, "bad_body", None)
    assert why in (result.detail or "")


def test_non_json_content_type_is_not_parsed(prober: Prober, hostile: HostileServer) -> None:
    result = prober.check(target(hostile, "/text"))
    assert result.ok
    assert result.body_json is None


# -- rounds and connection reuse ----------------------------------------------------------------


def test_round_over_50_targets_reuses_their_connections(
    prober: Prober, hostile: HostileServer
) -> None:
    # Timeouts far past what 50 connects and answers need even on a loaded machine: what is
    # measured is how many connections the rounds open, not how fast they are.
    bounds = {"connect_timeout": 10.0, "read_timeout": 10.0}
    targets = [target(hostile, f"/ok?n={i}", **bounds) for i in range(50)]
    rounds = [prober.round(targets) for _ in range(3)]
    assert all(r.ok for results in rounds for r in results)
    assert [r.name for r in rounds[0]] == [t.name for t in targets]
    assert hostile.accepts == 50  # the first round's connections served all three
    assert len(hostile.requests) == 150
    assert not any(r.reused for r in rounds[0])
    assert all(r.reused for results in rounds[1:] for r in results)
    assert prober.connections_opened == 50
    assert prober.idle_connections() == 50


def test_round_of_every_misbehaviour_never_raises_and_keeps_order(
    prober: Prober, hostile: HostileServer
) -> None:
    targets = [target(hostile, path) for path in hostile.routes]
    started = time.perf_counter()
    results = prober.round(targets)
    assert time.perf_counter() - started < 2 * TIMEOUT + SLACK
    assert [r.name for r in results] == [t.name for t in targets]
    assert {r.error for r in results} >= {None, "timeout", "reset", "too_large", "bad_body"}


def test_connection_dropped_by_the_server_is_replaced_transparently(prober: Prober) -> None:
    with HostileServer({"/once": FirstOnly()}) as server:
        probe = target(server, "/once")
        first = prober.check(probe)
        second = prober.check(probe)  # reuses, gets EOF before any byte, retries on a new one
    assert first.ok
    assert second.ok
    assert not second.reused
    assert server.accepts == 2
    assert len(server.requests) == 3


def test_restarted_server_on_the_same_port_is_reached_again(prober: Prober) -> None:
    with HostileServer({"/ok": Respond()}) as server:
        probe = target(server, "/ok")
        assert prober.check(probe).ok
    assert prober.check(probe).error is ProbeErrorKind.REFUSED
    with HostileServer({"/ok": Respond()}, port=server.port) as restarted:
        again = prober.check(probe)
    assert again.ok
    assert not again.reused
    assert restarted.accepts == 1


def test_concurrency_limit_queues_checks_without_eating_their_timeouts(
    hostile: HostileServer,
) -> None:
    targets = [target(hostile, f"/slow?n={i}", read_timeout=0.45) for i in range(6)]
    with Prober(max_concurrency=2) as prober:
        started = time.perf_counter()
        results = prober.round(targets)
        elapsed = time.perf_counter() - started
    assert all(r.ok for r in results)  # each waited for a slot before its clock started
    assert elapsed >= 3 * 0.3
    assert max(r.latency_s for r in results) < 0.45


def test_empty_round_is_empty(prober: Prober) -> None:
    assert prober.round([]) == []


# -- lifecycle --------------------------------------------------------------------------------


def test_close_stops_every_thread_it_started(hostile: HostileServer) -> None:
    before = set(threading.enumerate())
    prober = Prober()
    prober.check(target(hostile, "/ok"))
    prober.check(ProbeTarget("dns", "http://localhost:1/"))  # starts resolver threads
    prober.close()
    prober.close()  # idempotent
    # The server's thread for the closed connection ends on its own time; only the prober's
    # threads must be gone when close returns.
    started = set(threading.enumerate()) - before
    assert {t for t in started if t.name != "hostile-conn"} == set()


def test_round_after_close_raises(hostile: HostileServer) -> None:
    prober = Prober()
    prober.close()
    with pytest.raises(RuntimeError, match="closed"):
        prober.round([target(hostile, "/ok")])


def test_close_during_a_round_cancels_it(hostile: HostileServer) -> None:
    prober = Prober()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(prober.round, [target(hostile, "/hang", read_timeout=30.0)])
        hostile.wait_for_requests(1)  # the check is in flight once the server has the request
        started = time.perf_counter()
        prober.close()
        with pytest.raises(concurrent.futures.CancelledError):
            running.result(timeout=5.0)
    assert time.perf_counter() - started < 2.0


def test_rounds_from_two_threads_at_once_both_complete(
    prober: Prober, hostile: HostileServer
) -> None:
    targets = [target(hostile, f"/slow?n={i}", read_timeout=2.0) for i in range(10)]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        rounds = list(pool.map(prober.round, [targets, targets]))
    assert all(r.ok for results in rounds for r in results)


# -- targets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kwargs", "message"),
    [
        ("ftp://host/", {}, "must be http"),
        ("http:///path", {}, "no host"),
        ("http://host:99999/", {}, "bad port"),
        ("http://host/", {"read_timeout": 0}, "read_timeout"),
        ("http://host/", {"connect_timeout": -1}, "connect_timeout"),
        ("http://host/", {"max_body_bytes": 0}, "max_body_bytes"),
    ],
)
def test_invalid_target_names_the_problem(url: str, kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        ProbeTarget("prod", url, **kwargs)
    assert "'prod'" in str(raised.value)


def test_targets_are_hashable_values() -> None:
    a = ProbeTarget("prod", "http://127.0.0.1:8080/health", expected_status=[200, 204])
    b = ProbeTarget("prod", "http://127.0.0.1:8080/health", expected_status={204, 200})
    assert a == b
    assert hash(a) == hash(b)


def test_package_exports_the_public_api() -> None:
    assert set(monitoring.__all__) == {
        "DEFAULT_EXPECTED_STATUS",
        "Assessment",
        "Classifier",
        "FailoverAgent",
        "HealthMonitor",
        "HealthStatus",
        "LoadBalancer",
        "MetricsCollector",
        "NoEnvironmentAvailable",
        "Observation",
        "ProbeErrorKind",
        "ProbeResult",
        "ProbeTarget",
        "Prober",
        "Thresholds",
        "Verdict",
        "assess",
        "child_specs",
    }
    assert all(hasattr(monitoring, name) for name in monitoring.__all__)


# -- https ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed; it makes the test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", str(key),
         "-out", str(cert), "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


def test_https_target_is_checked_and_kept_alive(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))
    with (
        HostileServer({"/ok": Respond()}, tls=server_tls) as server,
        Prober(ssl_context=client_tls) as prober,
    ):
        probe = ProbeTarget("tls", server.url("/ok", scheme="https"))
        first, second = prober.check(probe), prober.check(probe)
    assert first.ok
    assert second.ok
    assert second.reused
    assert server.accepts == 1


def test_https_with_an_untrusted_certificate_is_a_connect_error(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    with HostileServer({"/ok": Respond()}, tls=server_tls) as server, Prober() as prober:
        result = prober.check(ProbeTarget("tls", server.url("/ok", scheme="https")))
    assert (result.ok_connect, result.error) == (False, ProbeErrorKind.CONNECT_ERROR)
    assert "CERTIFICATE_VERIFY_FAILED" in (result.detail or "")


class TestRechecks:
    """`Prober.checks`: a target slow to answer is re-checked without waiting for its timeout."""

    def test_a_hung_target_fails_every_recheck_within_one_timeout(
        self, prober: Prober, hostile: HostileServer
    ) -> None:
        started = time.perf_counter()
        [results] = prober.checks([target(hostile, "/hang")], recheck_after=0.05, max_checks=3)
        elapsed = time.perf_counter() - started
        assert [r.error for r in results] == [ProbeErrorKind.TIMEOUT] * 3
        assert results[0].checked_at < results[1].checked_at < results[2].checked_at
        assert results[2].checked_at - results[0].checked_at >= 0.1  # one recheck_after apart
        assert elapsed < 2 * TIMEOUT  # not three timeouts one after another

    def test_a_prompt_answer_is_checked_once_and_a_slow_one_rechecked(
        self, prober: Prober, hostile: HostileServer
    ) -> None:
        probes = [target(hostile, "/ok"), target(hostile, "/500"), target(hostile, "/slow")]
        ok, error, slow = prober.checks(probes, recheck_after=0.1, max_checks=3)
        assert [r.status for r in ok] == [200]
        assert [r.status for r in error] == [500]  # a quick failure: paced by the monitor
        assert len(slow) >= 2  # 0.3 s to answer: re-checked at 0.1 s (and 0.2 s)
        assert all(r.status == 200 for r in slow)

    def test_bad_recheck_arguments_are_refused(self, prober: Prober) -> None:
        with pytest.raises(ValueError, match="recheck_after"):
            prober.checks([], recheck_after=0, max_checks=3)
