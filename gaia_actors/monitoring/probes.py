"""HTTP health probes: one round checks many targets at once over kept-alive connections.

The engine under the HealthMonitor actor. It knows nothing of actors,
environments or thresholds: it takes `ProbeTarget`s, returns one `ProbeResult` per target,
and never raises because a target misbehaved.

Why asyncio streams here, when every other request goes through `requests`: see
`gaia_actors/httpclient/`, which records the measurements. In short, a fan-out to hundreds
of endpoints is CPU-bound on the GIL, and a single event loop waits on every socket at once
and parses only what a health check needs (status line, four headers, a bounded body). The
loop runs in one thread owned by the `Prober`, so the calling actor stays a plain blocking
caller, idle keep-alive connections notice a server's close while nobody is probing, and the
DNS look-ups it needs run in the loop's own small executor.

Bounds and errors (every one reported in `ProbeResult.error`, never raised)
---------------------------------------------------------------------------
- `connect_timeout`: name resolution plus TCP connect (plus TLS handshake for https).
- `read_timeout`: a *deadline* for the whole exchange, from sending the request to the last
  body byte. Unlike `requests`' per-read timeout, a server that trickles one byte every
  100 ms cannot stretch a check past it. A check lasts at most connect + read timeout.
- `max_body_bytes`: a longer body (declared, chunked or close-delimited) is cut off at the
  bound and reported `too_large`; `max_header_bytes` bounds the response head the same way.
- A body is parsed as JSON when its Content-Type is JSON (`application/json`, `*/*+json`) or
  absent (`gaia_actors.health.read_json`); a body that declares JSON and is invalid JSON,
  invalid UTF-8, nested too deep or not an object is `bad_body`.
- A kept-alive connection that the server closed while idle is replaced once, transparently
  (as urllib3 does): only a reused connection that fails before any response byte is retried.

Every mutable thing (the idle-connection pool, the concurrency semaphore) lives in the loop
thread; `round()` only hands work over and waits, so calling it from any one thread at a time
(one actor) is safe, and so are concurrent calls. There is no module-level state.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import math
import socket
import ssl
import threading
import time
from collections.abc import Collection, Coroutine, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlsplit

from gaia_actors.health import DEFAULT_EXPECTED_STATUS, read_json

__all__ = [
    "DEFAULT_EXPECTED_STATUS",
    "ProbeErrorKind",
    "ProbeResult",
    "ProbeTarget",
    "Prober",
]

DEFAULT_USER_AGENT = "gaia-actors-probe/0.1"
_ROUND_SLACK_S = 10.0  # beyond the per-check deadlines: only a bug in the engine can use it
_MAX_INFORMATIONAL = 5  # 1xx heads skipped before the real response
_NO_BODY_STATUSES = frozenset({204, 304})


class ProbeErrorKind(StrEnum):
    """Why a check did not produce a clean answer (`ProbeResult.error`)."""

    REFUSED = "refused"  # nothing listening: TCP RST on connect
    CONNECT_TIMEOUT = "connect_timeout"  # resolve + connect (+ TLS) exceeded connect_timeout
    DNS = "dns"  # the host name did not resolve
    CONNECT_ERROR = "connect_error"  # any other connect failure (unreachable, TLS, ...)
    TIMEOUT = "timeout"  # the response did not complete within read_timeout
    RESET = "reset"  # the server reset the connection
    CLOSED = "closed"  # the server closed the connection without a complete answer
    BAD_RESPONSE = "bad_response"  # not HTTP/1.x, or broken framing
    TOO_LARGE = "too_large"  # head or body longer than its bound; cut off there
    BAD_BODY = "bad_body"  # JSON expected but invalid, not UTF-8, or not an object
    INTERNAL = "internal"  # a bug in this module; reported so a round still completes


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """The parts of a target's URL that a check needs, parsed once."""

    scheme: str
    host: str
    port: int
    host_header: str
    request_target: str
    is_ip: bool


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """One URL to check, with its bounds. Invalid settings raise ValueError naming them."""

    name: str
    url: str
    expected_status: Collection[int] = DEFAULT_EXPECTED_STATUS  # a range or a frozenset
    connect_timeout: float = 2.0
    read_timeout: float = 5.0
    max_body_bytes: int = 64 * 1024
    raw_body: bool = False  # keep the body's bytes (`ProbeResult.body`) instead of parsing JSON
    _endpoint: _Endpoint = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError(f"probe target for {self.url!r}: name must not be empty")
        for key in ("connect_timeout", "read_timeout"):
            if not getattr(self, key) > 0:
                raise ValueError(f"probe target {self.name!r}: {key} must be > 0 seconds")
        if self.max_body_bytes < 1:
            raise ValueError(f"probe target {self.name!r}: max_body_bytes must be >= 1")
        if not isinstance(self.expected_status, range):
            # A set, list or tuple from configuration becomes a hashable frozenset.
            object.__setattr__(self, "expected_status", frozenset(self.expected_status))
        object.__setattr__(self, "_endpoint", _parse_url(self.name, self.url))


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The outcome of one check of one target.

    `body_json` is a fresh dict per result (parsed from at most `max_body_bytes`); treat it
    as read-only. For a `raw_body` target, `body` holds the bytes instead (a scrape of
    /metrics) and no JSON is parsed. `latency_s` runs from the start of the check (connect
    included when a new connection was needed) to the last byte read. `checked_at` is
    wall-clock (time.time()).
    """

    name: str
    url: str
    ok_connect: bool
    status: int | None
    status_expected: bool
    latency_s: float
    error: ProbeErrorKind | None
    detail: str | None
    body_json: dict[str, Any] | None
    checked_at: float
    reused: bool = False
    body: bytes | None = None

    @property
    def ok(self) -> bool:
        """Connected, got an expected status and a clean body."""
        return self.ok_connect and self.status_expected and self.error is None


def _parse_url(name: str, url: str) -> _Endpoint:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"probe target {name!r}: url {url!r} must be http:// or https://")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"probe target {name!r}: url {url!r} has a bad port") from exc
    host = parts.hostname
    if not host:
        raise ValueError(f"probe target {name!r}: url {url!r} has no host")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if parts.scheme == "https" else 80
    return _Endpoint(
        scheme=parts.scheme,
        host=host,
        port=port or default_port,
        host_header=parts.netloc.rpartition("@")[2],
        request_target=target,
        is_ip=_is_ip(host),
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _CheckFailed(Exception):
    """Internal: ends a check early with a classified error."""

    def __init__(
        self,
        kind: ProbeErrorKind,
        detail: str,
        *,
        status: int | None = None,
        connected: bool = True,
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.status = status
        self.connected = connected  # False: the failure happened before a TCP connection


class _StaleConnection(Exception):
    """Internal: a reused connection died before any response byte; retry on a new one."""


_Origin = tuple[str, str, int]  # scheme, host, port
_T = TypeVar("_T")


class _Connection:
    """One keep-alive connection to an origin, owned by the loop thread."""

    __slots__ = ("idle_since", "origin", "reader", "reused", "status", "writer")

    def __init__(
        self, origin: _Origin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.origin = origin
        self.reader = reader
        self.writer = writer
        self.reused = False
        self.idle_since = 0.0
        self.status: int | None = None  # of the exchange in progress, once its head is read

    def usable(self) -> bool:
        # A server's FIN or RST on an idle connection has already been processed by the
        # loop (it runs while nobody probes), so this catches most closed connections.
        reader = self.reader
        return not (self.writer.is_closing() or reader.at_eof() or reader.exception())

    def close(self) -> None:
        self.writer.close()


@dataclass(frozen=True, slots=True)
class _Head:
    status: int
    http10: bool
    headers: dict[str, str]  # names lower-cased; a repeated header keeps its last value


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    content_type: str | None
    body: bytes
    keep_alive: bool


class Prober:
    """Checks many `ProbeTarget`s in parallel, reusing one keep-alive connection per check.

    `max_concurrency` bounds the checks (and sockets) in flight; a check's timeouts start
    when it gets a slot. Idle connections unused for `idle_timeout_s` are closed. Use as a
    context manager or call `close()`; a round running while `close()` is called is
    cancelled (its `round()` raises `concurrent.futures.CancelledError`).
    """

    def __init__(
        self,
        *,
        max_concurrency: int = 512,
        max_header_bytes: int = 64 * 1024,
        idle_timeout_s: float = 120.0,
        user_agent: str = DEFAULT_USER_AGENT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_concurrency < 1 or max_header_bytes < 1 or idle_timeout_s <= 0:
            raise ValueError(
                "Prober: max_concurrency and max_header_bytes must be >= 1, "
                f"idle_timeout_s > 0 (got {max_concurrency}, {max_header_bytes}, "
                f"{idle_timeout_s})"
            )
        self._max_concurrency = max_concurrency
        self._max_header_bytes = max_header_bytes
        self._idle_timeout_s = idle_timeout_s
        self._user_agent = user_agent
        self._ssl_context = ssl_context
        self._idle: dict[_Origin, list[_Connection]] = {}  # loop thread only
        self._opened = 0  # connections opened; the loop thread writes, anyone reads
        self._closed = False
        self._close_lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._slots = asyncio.Semaphore(max_concurrency)
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="gaia-prober", daemon=True
        )
        self._thread.start()

    # -- public API, called from the owner's thread ------------------------------------

    def round(self, targets: Sequence[ProbeTarget]) -> list[ProbeResult]:
        """Check every target at once; one result per target, in the same order."""
        if not targets:
            return []
        future = self._submit(self._round(tuple(targets)))
        try:
            return future.result(timeout=self._round_bound(targets))
        except TimeoutError:
            future.cancel()
            raise TimeoutError(
                f"probe round over {len(targets)} targets overran every per-check deadline"
            ) from None

    def checks(
        self, targets: Sequence[ProbeTarget], *, recheck_after: float, max_checks: int
    ) -> list[tuple[ProbeResult, ...]]:
        """Check every target at once, re-checking one that is slow to answer.

        A target none of whose checks has finished within ``recheck_after`` seconds is
        checked again on a new connection, without waiting for the first check to time out,
        and again every ``recheck_after`` seconds, up to ``max_checks`` checks in flight. A
        hung target thus fails ``max_checks`` checks within one read timeout plus
        ``(max_checks - 1) * recheck_after``, instead of ``max_checks`` read timeouts. Once any
        check of the target finishes, no more are started. Results per target, in the order
        the checks started; the round waits for every check.
        """
        if recheck_after <= 0 or max_checks < 1:
            raise ValueError(
                f"Prober.checks: recheck_after must be > 0 and max_checks >= 1 "
                f"(got {recheck_after}, {max_checks})"
            )
        if not targets:
            return []
        future = self._submit(self._checks(tuple(targets), recheck_after, max_checks))
        bound = self._round_bound(targets) + (max_checks - 1) * recheck_after
        try:
            return future.result(timeout=bound)
        except TimeoutError:
            future.cancel()
            raise TimeoutError(
                f"probe round over {len(targets)} targets overran every per-check deadline"
            ) from None

    def check(self, target: ProbeTarget) -> ProbeResult:
        """Check one target (a round of one)."""
        return self.round([target])[0]

    @property
    def connections_opened(self) -> int:
        """How many connections this prober has opened so far (reuse shows as no growth)."""
        return self._opened

    def idle_connections(self) -> int:
        """How many kept-alive connections wait in the pool."""
        return self._submit(self._count_idle()).result(timeout=5.0)

    def close(self) -> None:
        """Cancel running checks, close every connection, stop the loop thread."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10.0)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10.0)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> Prober:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        if self._closed:
            coro.close()
            raise RuntimeError("Prober is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _round_bound(self, targets: Sequence[ProbeTarget]) -> float:
        waves = math.ceil(len(targets) / self._max_concurrency)
        longest = max(t.connect_timeout + t.read_timeout for t in targets)
        return waves * longest + _ROUND_SLACK_S

    # -- the loop thread -----------------------------------------------------------------

    async def _round(self, targets: tuple[ProbeTarget, ...]) -> list[ProbeResult]:
        self._prune_idle()
        return list(await asyncio.gather(*(self._guarded_check(t) for t in targets)))

    async def _checks(
        self, targets: tuple[ProbeTarget, ...], recheck_after: float, max_checks: int
    ) -> list[tuple[ProbeResult, ...]]:
        self._prune_idle()
        runs = (self._rechecked(t, recheck_after, max_checks) for t in targets)
        return list(await asyncio.gather(*runs))

    async def _rechecked(
        self, target: ProbeTarget, recheck_after: float, max_checks: int
    ) -> tuple[ProbeResult, ...]:
        tasks = [asyncio.ensure_future(self._guarded_check(target))]
        try:
            while len(tasks) < max_checks:
                done, _ = await asyncio.wait(
                    tasks, timeout=recheck_after, return_when=asyncio.FIRST_COMPLETED
                )
                if done:
                    break
                tasks.append(asyncio.ensure_future(self._guarded_check(target)))
            return tuple(await asyncio.gather(*tasks))
        finally:
            for task in tasks:
                task.cancel()  # only a cancelled round leaves any running

    async def _guarded_check(self, target: ProbeTarget) -> ProbeResult:
        async with self._slots:
            checked_at = time.time()
            started = time.perf_counter()
            try:
                return await self._check(target, checked_at, started)
            except Exception as exc:  # noqa: BLE001 - a bug here must not sink the round
                failed = _CheckFailed(
                    ProbeErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}", connected=False
                )
                return _failed_result(target, checked_at, started, failed)

    async def _check(self, target: ProbeTarget, checked_at: float, started: float) -> ProbeResult:
        try:
            conn = await self._checkout(target)
            response, conn = await self._exchange_with_retry(conn, target)
        except _CheckFailed as failed:
            return _failed_result(target, checked_at, started, failed)
        self._release(conn, response.keep_alive)
        return _answered_result(target, checked_at, started, response, conn.reused)

    async def _exchange_with_retry(
        self, conn: _Connection, target: ProbeTarget
    ) -> tuple[_Response, _Connection]:
        # One deadline covers the exchange and, for a stale reused connection, the
        # reconnect and second exchange: a check never exceeds connect + read timeout.
        try:
            async with asyncio.timeout(target.read_timeout):
                try:
                    return await self._exchange(conn, target), conn
                except _StaleConnection:
                    conn.close()
                    conn = await self._connect(target)
                    return await self._exchange(conn, target), conn
        except TimeoutError:
            conn.close()
            raise _CheckFailed(
                ProbeErrorKind.TIMEOUT,
                f"no complete response within {target.read_timeout} s",
                status=conn.status,
            ) from None
        except BaseException:
            conn.close()
            raise

    # -- connections ----------------------------------------------------------------------

    async def _checkout(self, target: ProbeTarget) -> _Connection:
        pool = self._idle.get(_origin(target))
        while pool:
            conn = pool.pop()
            if conn.usable():
                conn.reused = True
                return conn
            conn.close()
        return await self._connect(target)

    async def _connect(self, target: ProbeTarget) -> _Connection:
        endpoint = target._endpoint
        try:
            async with asyncio.timeout(target.connect_timeout):
                reader, writer = await self._open(endpoint)
        except TimeoutError:
            raise _CheckFailed(
                ProbeErrorKind.CONNECT_TIMEOUT,
                f"no connection to {endpoint.host}:{endpoint.port} "
                f"within {target.connect_timeout} s",
                connected=False,
            ) from None
        self._opened += 1
        return _Connection(_origin(target), reader, writer)

    async def _open(self, endpoint: _Endpoint) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        # Resolve here rather than in open_connection: with several addresses (localhost is
        # ::1 and 127.0.0.1) asyncio folds their errors into one errno-less OSError, and a
        # refused connection must still read as "refused".
        addresses = [endpoint.host] if endpoint.is_ip else await self._resolve(endpoint)
        tls = self._tls_context() if endpoint.scheme == "https" else None
        failure = _CheckFailed(
            ProbeErrorKind.DNS, f"{endpoint.host!r} resolved to no address", connected=False
        )
        for address in addresses:
            try:
                return await asyncio.open_connection(
                    address, endpoint.port, limit=self._max_header_bytes, ssl=tls,
                    server_hostname=endpoint.host if tls else None,
                )  # fmt: skip
            except OSError as exc:
                failure = _connect_failure(endpoint, exc)
        raise failure

    async def _resolve(self, endpoint: _Endpoint) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise _CheckFailed(
                ProbeErrorKind.DNS, f"cannot resolve {endpoint.host!r}: {exc}", connected=False
            ) from None
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _release(self, conn: _Connection, keep_alive: bool) -> None:
        if not keep_alive or not conn.usable():
            conn.close()
            return
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.origin, []).append(conn)

    def _prune_idle(self) -> None:
        cutoff = time.monotonic() - self._idle_timeout_s
        for origin, pool in list(self._idle.items()):
            keep = []
            for conn in pool:
                if conn.idle_since >= cutoff and conn.usable():
                    keep.append(conn)
                else:
                    conn.close()
            if keep:
                self._idle[origin] = keep
            else:
                del self._idle[origin]

    async def _count_idle(self) -> int:
        return sum(len(pool) for pool in self._idle.values())

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        running = [t for t in asyncio.all_tasks() if t is not current]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for pool in self._idle.values():
            for conn in pool:
                conn.close()
        self._idle.clear()
        # Joins the executor threads that ran getaddrinfo; a hung resolver is abandoned.
        loop = asyncio.get_running_loop()
        await asyncio.wait({loop.create_task(loop.shutdown_default_executor())}, timeout=2.0)

    # -- one HTTP/1.1 exchange --------------------------------------------------------------

    async def _exchange(self, conn: _Connection, target: ProbeTarget) -> _Response:
        endpoint = target._endpoint
        conn.status = None
        conn.writer.write(
            f"GET {endpoint.request_target} HTTP/1.1\r\nHost: {endpoint.host_header}\r\n"
            f"User-Agent: {self._user_agent}\r\nAccept: application/json, */*;q=0.5\r\n"
            "Connection: keep-alive\r\n\r\n".encode("latin-1")
        )
        head = await self._read_head(conn)
        conn.status = head.status
        body, framed = await _read_body(conn.reader, head, target.max_body_bytes)
        return _Response(
            status=head.status,
            content_type=head.headers.get("content-type"),
            body=body,
            keep_alive=framed and _keeps_alive(head),
        )

    async def _read_head(self, conn: _Connection) -> _Head:
        for _ in range(_MAX_INFORMATIONAL):
            head = _parse_head(await self._read_head_bytes(conn))
            if not 100 <= head.status < 200:
                return head
        raise _CheckFailed(ProbeErrorKind.BAD_RESPONSE, "too many 1xx responses")

    async def _read_head_bytes(self, conn: _Connection) -> bytes:
        try:
            return await conn.reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise _CheckFailed(
                ProbeErrorKind.TOO_LARGE,
                f"response head exceeds {self._max_header_bytes} bytes",
            ) from None
        except asyncio.IncompleteReadError as exc:
            if conn.reused and not exc.partial:
                raise _StaleConnection from None
            raise _CheckFailed(
                ProbeErrorKind.CLOSED,
                f"connection closed after {len(exc.partial)} bytes of the response head",
            ) from None
        except (ConnectionResetError, BrokenPipeError) as exc:
            if conn.reused:
                raise _StaleConnection from None
            raise _CheckFailed(ProbeErrorKind.RESET, f"connection reset: {exc}") from None


# -- framing and parsing (pure functions on bytes) ------------------------------------------


def _origin(target: ProbeTarget) -> _Origin:
    endpoint = target._endpoint
    return (endpoint.scheme, endpoint.host, endpoint.port)


def _parse_head(head: bytes) -> _Head:
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise _CheckFailed(
            ProbeErrorKind.BAD_RESPONSE, f"not an HTTP/1.x status line: {lines[0][:80]!r}"
        )
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return _Head(int(code), version == "HTTP/1.0", headers)


def _keeps_alive(head: _Head) -> bool:
    connection = head.headers.get("connection", "").lower()
    if head.http10:
        return "keep-alive" in connection
    return "close" not in connection


async def _read_body(reader: asyncio.StreamReader, head: _Head, limit: int) -> tuple[bytes, bool]:
    """Read a bounded body; the flag says whether the framing allows reusing the connection."""
    status, headers = head.status, head.headers
    try:
        if status in _NO_BODY_STATUSES:
            return b"", True
        if headers.get("transfer-encoding", "").lower().endswith("chunked"):
            return await _read_chunked(reader, status, limit), True
        length = headers.get("content-length")
        if length is not None:
            return await _read_sized(reader, status, length, limit), True
        return await _read_until_close(reader, status, limit), False
    except asyncio.IncompleteReadError as exc:
        raise _CheckFailed(
            ProbeErrorKind.CLOSED,
            f"connection closed {len(exc.partial)} bytes into a body part",
            status=status,
        ) from None
    except (ConnectionResetError, BrokenPipeError) as exc:
        raise _CheckFailed(
            ProbeErrorKind.RESET, f"connection reset in the body: {exc}", status=status
        ) from None


async def _read_sized(reader: asyncio.StreamReader, status: int, length: str, limit: int) -> bytes:
    if not length.isdigit():
        raise _CheckFailed(
            ProbeErrorKind.BAD_RESPONSE, f"bad Content-Length {length[:40]!r}", status=status
        )
    size = int(length)
    if size > limit:
        # Declared too long: not one byte of it is read.
        raise _too_large(status, f"Content-Length {size} exceeds {limit} bytes")
    return await reader.readexactly(size)


async def _read_chunked(reader: asyncio.StreamReader, status: int, limit: int) -> bytes:
    body = bytearray()
    while True:
        size = _chunk_size(await _read_line(reader, status), status)
        if size == 0:
            while await _read_line(reader, status) != b"\r\n":  # trailers
                pass
            return bytes(body)
        if len(body) + size > limit:
            raise _too_large(status, f"chunked body exceeds {limit} bytes")
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise _CheckFailed(
                ProbeErrorKind.BAD_RESPONSE, "chunk not ended by CRLF", status=status
            )


async def _read_line(reader: asyncio.StreamReader, status: int) -> bytes:
    try:
        return await reader.readuntil(b"\r\n")
    except asyncio.LimitOverrunError:
        raise _CheckFailed(
            ProbeErrorKind.BAD_RESPONSE, "chunk size or trailer line too long", status=status
        ) from None


def _chunk_size(line: bytes, status: int) -> int:
    digits = line.split(b";", 1)[0].strip()
    try:
        return int(digits, 16)
    except ValueError:
        raise _CheckFailed(
            ProbeErrorKind.BAD_RESPONSE, f"bad chunk size {digits[:20]!r}", status=status
        ) from None


async def _read_until_close(reader: asyncio.StreamReader, status: int, limit: int) -> bytes:
    body = bytearray()
    while chunk := await reader.read(limit + 1 - len(body)):
        body += chunk
        if len(body) > limit:
            raise _too_large(status, f"body exceeds {limit} bytes")
    return bytes(body)


def _too_large(status: int, detail: str) -> _CheckFailed:
    return _CheckFailed(ProbeErrorKind.TOO_LARGE, detail, status=status)


def _connect_failure(endpoint: _Endpoint, exc: OSError) -> _CheckFailed:
    where = f"{endpoint.host}:{endpoint.port}"
    if isinstance(exc, ConnectionRefusedError):
        return _CheckFailed(
            ProbeErrorKind.REFUSED, f"connection refused by {where}", connected=False
        )
    return _CheckFailed(
        ProbeErrorKind.CONNECT_ERROR, f"cannot connect to {where}: {exc}", connected=False
    )


# -- results --------------------------------------------------------------------------------


def _result(
    target: ProbeTarget,
    checked_at: float,
    started: float,
    *,
    ok_connect: bool,
    status: int | None = None,
    error: ProbeErrorKind | None = None,
    detail: str | None = None,
    body_json: dict[str, Any] | None = None,
    reused: bool = False,
    body: bytes | None = None,
) -> ProbeResult:
    return ProbeResult(
        name=target.name,
        url=target.url,
        ok_connect=ok_connect,
        status=status,
        status_expected=status is not None and status in target.expected_status,
        latency_s=time.perf_counter() - started,
        error=error,
        detail=detail,
        body_json=body_json,
        checked_at=checked_at,
        reused=reused,
        body=body,
    )


def _failed_result(
    target: ProbeTarget, checked_at: float, started: float, failed: _CheckFailed
) -> ProbeResult:
    return _result(
        target, checked_at, started, ok_connect=failed.connected, status=failed.status,
        error=failed.kind, detail=failed.detail,
    )  # fmt: skip


def _answered_result(
    target: ProbeTarget, checked_at: float, started: float, response: _Response, reused: bool
) -> ProbeResult:
    if target.raw_body:
        return _result(
            target, checked_at, started, ok_connect=True, status=response.status,
            reused=reused, body=response.body,
        )  # fmt: skip
    body_json, problem = read_json(response.content_type, response.body)
    return _result(
        target, checked_at, started, ok_connect=True, status=response.status,
        error=ProbeErrorKind.BAD_BODY if problem else None, detail=problem,
        body_json=body_json, reused=reused,
    )  # fmt: skip
