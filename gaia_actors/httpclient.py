"""The product's one-off HTTP requests, through `requests`, with the project's bounds.

Deploy verification, the pipeline's health and load stages, a rollback's checks and metrics
scrapes GET through `Client` (or `get` for a single request); the alert webhooks POST through
it. Health answers are judged by
the one verdict of `gaia_actors.health`, here (`check_health`, `wait_healthy`) as in the
monitor.

The one exception: the monitor's rounds
---------------------------------------
The HealthMonitor checks every environment at once, every few seconds, and must scale to
hundreds of endpoints. It keeps its own asyncio prober (`gaia_actors.monitoring.probes`),
because that fan-out is CPU-bound on the GIL and `requests` spends most of the budget in its
adapters, urllib3's pool bookkeeping and header handling. Measured on this machine (2 cores,
300 loopback endpoints each answering after 50 ms; `python benchmarks/health_fanout.py`
interleaves both): the asyncio round takes 86-115 ms at 0.07-0.27 ms of client CPU per
check, a `ThreadPoolExecutor(64)` of `requests.get` 455-619 ms at 1.2-1.7 ms per check (kept-
alive sessions included), so 0.14-0.20x the time. The candidates, measured in one run:

=============================================  =========  ===============
client (300 endpoints, 50 ms each)             round      CPU per check
=============================================  =========  ===============
ThreadPoolExecutor(64) + requests.get          431 ms     1.40 ms
64 threads, http.client keep-alive             274 ms     0.28 ms
256 threads, http.client keep-alive            125 ms     0.25 ms
one asyncio loop, streams, keep-alive          66 ms      0.07 ms
=============================================  =========  ===============

Threads over `http.client` cut the CPU, but a bounded pool serialises the waits into waves
and a thread per endpoint costs memory and switching. A request made once per deploy, stage
or scrape costs nothing that matters, and there `requests` is the simpler, better-known
client.
Both paths share the verdict and the same bounds (a connect timeout, a total deadline, a
body bound), so an answer means the same thing whichever fetched it.

Bounds, on every request (`Limits`)
-----------------------------------
- `connect_timeout`: the TCP connect (and TLS handshake).
- `deadline`: the whole request, from its start to the last body byte. `requests`' own
  timeout bounds each socket read, so a server that sends a byte a second holds a request for
  ever; here a watchdog shuts the socket down when the deadline passes, whatever the request
  is doing (reading the head or the body), and the request reports `timeout`.
- `max_body_bytes`: the body is streamed (``stream=True``) and read in pieces; a longer one is
  cut off at the bound and reported `too_large`, its connection dropped.
- Redirects are not followed: a 3xx is an answer, as for Kubernetes' HTTP probes. Proxy
  variables and ``.netrc`` are ignored (``trust_env`` off): the targets are the services this
  daemon runs.

Errors never raise out of `Client.get`: they come back in `Answer.error` (`ErrorKind`), with a
detail; only a malformed URL raises ValueError, since that is a configuration error.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection

from gaia_actors.health import BodyRule, Judgement, judge, read_json, unanswered

__all__ = [
    "Answer",
    "Client",
    "ErrorKind",
    "Limits",
    "check_health",
    "get",
    "health_verdict",
    "host_of",
    "wait_healthy",
]

USER_AGENT = "gaia-actors/0.1"
_PIECE = 64 * 1024
_HEALTH_CHECK_S = 1.0  # each check of a wait_healthy loop, at most


class ErrorKind(StrEnum):
    """Why a request has no complete answer (`Answer.error`)."""

    REFUSED = "refused"  # nothing listening
    CONNECT_TIMEOUT = "connect_timeout"
    CONNECT_ERROR = "connect_error"  # unreachable, DNS, TLS, ...
    TIMEOUT = "timeout"  # the deadline passed before the last body byte
    BROKEN = "broken"  # reset or closed mid-answer, or not HTTP
    TOO_LARGE = "too_large"  # the body exceeded max_body_bytes; cut off there


@dataclass(frozen=True, slots=True)
class Limits:
    """A request's bounds; invalid values raise ValueError naming the field."""

    connect_timeout: float = 1.0
    deadline: float = 5.0
    max_body_bytes: int = 65_536

    def __post_init__(self) -> None:
        for key in ("connect_timeout", "deadline"):
            if not getattr(self, key) > 0:
                raise ValueError(f"http limits: {key} must be > 0 seconds")
        if self.max_body_bytes < 1:
            raise ValueError("http limits: max_body_bytes must be >= 1")


@dataclass(frozen=True, slots=True)
class Answer:
    """What one GET got. `body` holds at most `Limits.max_body_bytes` bytes."""

    url: str
    status: int | None = None
    content_type: str | None = None
    body: bytes = b""
    elapsed: float = 0.0
    error: ErrorKind | None = None
    detail: str = ""

    @property
    def complete(self) -> bool:
        """A status and the whole body."""
        return self.status is not None and self.error is None

    def describe(self) -> str:
        if self.error is None:
            return f"HTTP {self.status}"
        return f"{self.error}: {self.detail}"


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    url: str
    body: bytes | None = None
    headers: Mapping[str, str] | None = None


# -- the deadline watchdog ----------------------------------------------------------------------


class _Deadline:
    """Shuts down the sockets of one request when its deadline passes."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._lock = threading.Lock()
        self._conns: list[HTTPConnection] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, conn: HTTPConnection) -> None:
        with self._lock:
            self._conns.append(conn)
            if self.expired:
                _shut(conn)

    def cancel(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for conn in self._conns:
                _shut(conn)


def _shut(conn: HTTPConnection) -> None:
    # shutdown(2), not close: it wakes a thread blocked in recv() on the socket at once.
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


# The request the calling thread is making; the connection classes below find it here, as
# urllib3 gives them no other way to learn of it.
_current = threading.local()


def _watch(conn: HTTPConnection) -> None:
    deadline: _Deadline | None = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.watch(conn)


class _WatchedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        _watch(self)  # before the connect: an expiry meanwhile is applied once connected
        super().connect()
        _watch(self)

    def request(self, *args: Any, **kwargs: Any) -> None:  # a reused connection too
        _watch(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        _watch(self)
        super().connect()
        _watch(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self)
        super().request(*args, **kwargs)


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


# -- the client -----------------------------------------------------------------------------------


class Client:
    """A `requests.Session` with the project's bounds; keeps connections alive between calls.

    One thread at a time (as a Session): give each worker thread its own.
    """

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._session = requests.Session()
        self._session.trust_env = False
        self._session.headers["User-Agent"] = USER_AGENT
        adapter = _Adapter()
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def get(self, url: str, limits: Limits | None = None) -> Answer:
        """GET ``url`` within ``limits`` (default: the client's)."""
        return self._fetch(_Request("GET", url), limits or self.limits)

    def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        limits: Limits | None = None,
    ) -> Answer:
        """POST ``body`` with ``headers`` to ``url`` within ``limits`` (default: the client's)."""
        return self._fetch(_Request("POST", url, body, headers), limits or self.limits)

    def _fetch(self, request: _Request, limits: Limits) -> Answer:
        url = request.url
        started = time.monotonic()
        deadline = _Deadline(limits.deadline)
        _current.deadline = deadline
        try:
            answer = self._send(request, limits, started)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            kind = ErrorKind.TIMEOUT if deadline.expired else _kind(exc)
            detail = _detail(kind, exc, limits, url)
            return Answer(url, elapsed=time.monotonic() - started, error=kind, detail=detail)
        finally:
            _current.deadline = None
            deadline.cancel()
        if deadline.expired:
            # The shut-down socket can read as a clean end (a head cut short, a body ending
            # at the close): what came before the deadline is not a complete answer.
            detail = _detail(ErrorKind.TIMEOUT, None, limits)
            return Answer(url, elapsed=answer.elapsed, error=ErrorKind.TIMEOUT, detail=detail)
        return answer

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send(self, request: _Request, limits: Limits, started: float) -> Answer:
        url = request.url
        try:
            response = self._session.request(
                request.method,
                url,
                data=request.body,
                headers=request.headers,
                stream=True,
                allow_redirects=False,
                timeout=(limits.connect_timeout, limits.deadline),
            )
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
            raise ValueError(f"bad URL {url!r}: {exc}") from None
        complete = False
        try:
            body, complete = _read_bounded(response, limits.max_body_bytes)
        finally:
            if complete:
                response.raw.release_conn()  # read to its end: the connection can be reused
            else:
                response.close()
        return Answer(
            url,
            status=response.status_code,
            content_type=response.headers.get("Content-Type"),
            body=body,
            elapsed=time.monotonic() - started,
            error=None if complete else ErrorKind.TOO_LARGE,
            detail="" if complete else f"body exceeds {limits.max_body_bytes} bytes",
        )


def _read_bounded(response: requests.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, and whether that was all of it."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        return b"", False  # declared too long: not one byte of it is read
    body = bytearray()
    while piece := response.raw.read(min(_PIECE, limit + 1 - len(body)), decode_content=True):
        body += piece
        if len(body) > limit:
            return bytes(body[:limit]), False
    return bytes(body), True


def _kind(exc: BaseException) -> ErrorKind:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return ErrorKind.CONNECT_TIMEOUT
    if isinstance(exc, requests.exceptions.ReadTimeout | urllib3.exceptions.ReadTimeoutError):
        return ErrorKind.TIMEOUT
    if _caused_by(exc, ConnectionRefusedError):
        return ErrorKind.REFUSED
    if _caused_by(
        exc, urllib3.exceptions.NewConnectionError, urllib3.exceptions.NameResolutionError
    ):
        return ErrorKind.CONNECT_ERROR
    if isinstance(exc, requests.exceptions.SSLError | requests.exceptions.ProxyError):
        return ErrorKind.CONNECT_ERROR
    return ErrorKind.BROKEN


def _caused_by(exc: BaseException, *kinds: type[BaseException]) -> bool:
    """Whether ``exc`` or anything it wraps (causes, contexts, urllib3's reasons) is one of
    ``kinds``."""
    seen: set[int] = set()
    pending: list[Any] = [exc]
    while pending:
        error = pending.pop()
        if not isinstance(error, BaseException) or id(error) in seen:
            continue
        if isinstance(error, kinds):
            return True
        seen.add(id(error))
        reason = getattr(error, "reason", None)
        pending += [error.__cause__, error.__context__, reason, *error.args]
    return False


def _detail(kind: ErrorKind, exc: BaseException | None, limits: Limits, url: str = "") -> str:
    if kind is ErrorKind.REFUSED:
        return f"connection refused by {host_of(url)}"
    if kind is ErrorKind.TIMEOUT:
        return f"no complete answer within {limits.deadline:g} s"
    if kind is ErrorKind.CONNECT_TIMEOUT:
        return f"no connection within {limits.connect_timeout:g} s"
    return f"{type(exc).__name__}: {exc}"[:300]


def host_of(url: str) -> str:
    """``host:port`` of ``url``, without the user and password a URL may carry: what may be
    shown of a URL whose path or query holds a secret (a chat webhook's token)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or "?"
    return f"{host}:{port}" if port else host


def get(url: str, limits: Limits | None = None) -> Answer:
    """One GET on a connection of its own."""
    with Client(limits) as client:
        return client.get(url)


# -- health ----------------------------------------------------------------------------------------


def health_verdict(answer: Answer, rule: BodyRule) -> Judgement:
    """The project's health verdict on an answer (gaia_actors/health.py)."""
    if answer.status is None or answer.error not in (None, ErrorKind.TOO_LARGE):
        return unanswered(answer.describe())
    if answer.error is ErrorKind.TOO_LARGE:
        return judge(answer.status, None, rule, body_problem=answer.describe())
    body, problem = read_json(answer.content_type, answer.body)
    return judge(answer.status, body, rule, body_problem=problem)


def check_health(
    url: str, rule: BodyRule | None = None, *, limits: Limits | None = None
) -> Judgement:
    """GET a health URL (its query string kept) once and judge the answer."""
    return health_verdict(get(url, limits), rule or BodyRule())


def wait_healthy(
    url: str,
    timeout: float,
    rule: BodyRule | None = None,
    *,
    cancel: threading.Event | None = None,
    interval: float = 0.05,
) -> Judgement:
    """Check ``url`` until it is healthy, ``timeout`` passes or ``cancel`` is set.

    Every check gets its share of what is left, so the whole wait ends by ``timeout`` even
    against a server that trickles its answers.
    """
    end = time.monotonic() + timeout
    last = unanswered("not checked")
    with Client() as client:
        while (left := end - time.monotonic()) > 0:
            limits = Limits(min(_HEALTH_CHECK_S, left), min(_HEALTH_CHECK_S, left))
            last = health_verdict(client.get(url, limits), rule or BodyRule())
            if last.healthy:
                return last
            pause = min(interval, max(0.0, end - time.monotonic()))
            if cancel is not None and cancel.wait(pause):
                return unanswered("cancelled")
            if cancel is None:
                time.sleep(pause)  # polling a service's port; nothing to wait on
    return unanswered(f"not healthy within {timeout:g}s (last: {last.reason})")
