"""A minimal HTTP/1.1 client over asyncio streams, for health checks: one GET on a kept-alive
connection, its head parsed and its body read within bounds.

Only what a health check needs is parsed: the status line, four headers (Content-Type,
Content-Length, Transfer-Encoding, Connection) and a bounded body, sized, chunked or read to
the close. Every failure is a ``ProbeFailed`` naming its kind; the prober (``probes``) turns
it into a result and never raises it further.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from enum import StrEnum
from urllib.parse import urlsplit

from gaia_actors.errors import GaiaError
from supervisors.records import record

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


class ProbeFailed(GaiaError):
    """A check ended early with a classified error; the prober makes it the check's result.

    ``stale``: a reused connection died before any response byte, so the check is tried once
    more on a new connection (as urllib3 does).
    """

    def __init__(
        self,
        kind: ProbeErrorKind,
        detail: str,
        *,
        status: int | None = None,
        connected: bool = True,
        stale: bool = False,
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.status = status
        self.connected = connected  # False: the failure happened before a TCP connection
        self.stale = stale


@record
class Endpoint:
    """The parts of a target's URL that a check needs, parsed once."""

    scheme: str
    host: str
    port: int
    host_header: str
    request_target: str
    is_ip: bool


def parse_url(name: str, url: str) -> Endpoint:
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
    return Endpoint(
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


Origin = tuple[str, str, int]  # scheme, host, port


class Connection:
    """One keep-alive connection to an origin, owned by the loop thread."""

    __slots__ = ("idle_since", "origin", "reader", "reused", "status", "writer")

    def __init__(
        self, origin: Origin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
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


@record
class _Head:
    status: int
    http10: bool
    headers: dict[str, str]  # names lower-cased; a repeated header keeps its last value


@record
class Response:
    status: int
    content_type: str | None
    body: bytes
    keep_alive: bool


# --- connecting ---------------------------------------------------------------------


async def open_stream(
    endpoint: Endpoint, tls: ssl.SSLContext | None, limit: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP (or TLS) stream to ``endpoint``, trying each address it resolves to."""
    # Resolve here rather than in open_connection: with several addresses (localhost is
    # ::1 and 127.0.0.1) asyncio folds their errors into one errno-less OSError, and a
    # refused connection must still read as "refused".
    addresses = [endpoint.host] if endpoint.is_ip else await resolve(endpoint)
    failure = ProbeFailed(
        ProbeErrorKind.DNS, f"{endpoint.host!r} resolved to no address", connected=False
    )
    for address in addresses:
        try:
            return await asyncio.open_connection(
                address, endpoint.port, limit=limit, ssl=tls,
                server_hostname=endpoint.host if tls else None,
            )  # fmt: skip
        except OSError as exc:
            failure = _connect_failure(endpoint, exc)
    raise failure


async def resolve(endpoint: Endpoint) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ProbeFailed(
            ProbeErrorKind.DNS, f"cannot resolve {endpoint.host!r}: {exc}", connected=False
        ) from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


# --- one exchange -------------------------------------------------------------------


async def exchange(
    conn: Connection,
    endpoint: Endpoint,
    max_body_bytes: int,
    *,
    user_agent: str,
    max_header_bytes: int,
) -> Response:
    """One GET on ``conn``: the request written, the head and a bounded body read."""
    conn.status = None
    conn.writer.write(
        f"GET {endpoint.request_target} HTTP/1.1\r\nHost: {endpoint.host_header}\r\n"
        f"User-Agent: {user_agent}\r\nAccept: application/json, */*;q=0.5\r\n"
        "Connection: keep-alive\r\n\r\n".encode("latin-1")
    )
    head = await _read_head(conn, max_header_bytes)
    conn.status = head.status
    body, framed = await _read_body(conn.reader, head, max_body_bytes)
    return Response(
        status=head.status,
        content_type=head.headers.get("content-type"),
        body=body,
        keep_alive=framed and _keeps_alive(head),
    )


async def _read_head(conn: Connection, max_header_bytes: int) -> _Head:
    for _ in range(_MAX_INFORMATIONAL):
        head = _parse_head(await _read_head_bytes(conn, max_header_bytes))
        if not 100 <= head.status < 200:
            return head
    raise ProbeFailed(ProbeErrorKind.BAD_RESPONSE, "too many 1xx responses")


async def _read_head_bytes(conn: Connection, max_header_bytes: int) -> bytes:
    try:
        return await conn.reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise ProbeFailed(
            ProbeErrorKind.TOO_LARGE,
            f"response head exceeds {max_header_bytes} bytes",
        ) from None
    except asyncio.IncompleteReadError as exc:
        raise ProbeFailed(
            ProbeErrorKind.CLOSED,
            f"connection closed after {len(exc.partial)} bytes of the response head",
            stale=conn.reused and not exc.partial,
        ) from None
    except (ConnectionResetError, BrokenPipeError) as exc:
        raise ProbeFailed(
            ProbeErrorKind.RESET, f"connection reset: {exc}", stale=conn.reused
        ) from None


# --- framing and parsing (pure functions on bytes) -----------------------------------


def _parse_head(head: bytes) -> _Head:
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ProbeFailed(
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
        raise ProbeFailed(
            ProbeErrorKind.CLOSED,
            f"connection closed {len(exc.partial)} bytes into a body part",
            status=status,
        ) from None
    except (ConnectionResetError, BrokenPipeError) as exc:
        raise ProbeFailed(
            ProbeErrorKind.RESET, f"connection reset in the body: {exc}", status=status
        ) from None


async def _read_sized(reader: asyncio.StreamReader, status: int, length: str, limit: int) -> bytes:
    if not length.isdigit():
        raise ProbeFailed(
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
            raise ProbeFailed(ProbeErrorKind.BAD_RESPONSE, "chunk not ended by CRLF", status=status)


async def _read_line(reader: asyncio.StreamReader, status: int) -> bytes:
    try:
        return await reader.readuntil(b"\r\n")
    except asyncio.LimitOverrunError:
        raise ProbeFailed(
            ProbeErrorKind.BAD_RESPONSE, "chunk size or trailer line too long", status=status
        ) from None


def _chunk_size(line: bytes, status: int) -> int:
    digits = line.split(b";", 1)[0].strip()
    try:
        return int(digits, 16)
    except ValueError:
        raise ProbeFailed(
            ProbeErrorKind.BAD_RESPONSE, f"bad chunk size {digits[:20]!r}", status=status
        ) from None


async def _read_until_close(reader: asyncio.StreamReader, status: int, limit: int) -> bytes:
    body = bytearray()
    while chunk := await reader.read(limit + 1 - len(body)):
        body += chunk
        if len(body) > limit:
            raise _too_large(status, f"body exceeds {limit} bytes")
    return bytes(body)


def _too_large(status: int, detail: str) -> ProbeFailed:
    return ProbeFailed(ProbeErrorKind.TOO_LARGE, detail, status=status)


def _connect_failure(endpoint: Endpoint, exc: OSError) -> ProbeFailed:
    where = f"{endpoint.host}:{endpoint.port}"
    if isinstance(exc, ConnectionRefusedError):
        return ProbeFailed(
            ProbeErrorKind.REFUSED, f"connection refused by {where}", connected=False
        )
    return ProbeFailed(
        ProbeErrorKind.CONNECT_ERROR, f"cannot connect to {where}: {exc}", connected=False
    )
