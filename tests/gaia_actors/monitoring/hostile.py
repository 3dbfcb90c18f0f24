"""Misbehaving HTTP servers on 127.0.0.1, for probe and monitor tests.

`HostileServer` is a small threaded socket server (a thread per connection, HTTP/1.1
keep-alive) that routes each request path to a `Behaviour`: answer (optionally slowly), hang,
reset, close silently, trickle, send a huge or endless body, huge headers, garbage. It counts
accepted connections and requests, so tests can see connection reuse from the server side.

    with HostileServer({"/health": Respond(), "/hang": Hang()}) as server:
        server.url("/hang")

Leaving the `with` block stops the server: blocked behaviours wake up (they wait on the
server's stop event, never on a bare sleep), every connection is shut down, and every thread
is joined; a thread that does not end raises `RuntimeError` so a leak fails the test.

`Switch` changes a path's behaviour while the server runs; `Script` plays a list of behaviours
in order. `refused_port()` and `unaccepting_port()` give ports that refuse connections and
that never complete a handshake (connect timeout), respectively.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import struct
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

_MAX_REQUEST_HEAD = 64 * 1024
_JOIN_TIMEOUT_S = 5.0
_SEND_PIECE = 64 * 1024


@dataclass(frozen=True, slots=True)
class Request:
    """What the server saw of one request."""

    method: str
    target: str
    headers: dict[str, str]
    index: int  # 0 for the first request on its connection, 1 for the next, ...

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]


class Behaviour:
    """How the server answers one request; `serve` returns whether to keep the connection."""

    def serve(self, conn: socket.socket, request: Request, stop: threading.Event) -> bool:
        raise NotImplementedError


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Whatever')}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_REASONS = {200: "OK", 204: "No Content", 404: "Not Found", 429: "Too Many Requests"}
_REASONS |= {500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass(frozen=True, slots=True)
class Respond(Behaviour):
    """A well-formed answer, after `delay` seconds; `close` ends the connection after it."""

    status: int = 200
    body: bytes = b'{"status": "ok"}'
    content_type: str | None = "application/json"
    delay: float = 0.0
    close: bool = False
    version: str = "HTTP/1.1"
    extra_headers: tuple[tuple[str, str], ...] = ()

    def serve(self, conn: socket.socket, request: Request, stop: threading.Event) -> bool:
        if self.delay and stop.wait(self.delay):
            return False
        headers = [("Content-Length", str(len(self.body))), *self.extra_headers]
        if self.content_type is not None:
            headers.append(("Content-Type", self.content_type))
        if self.close:
            headers.append(("Connection", "close"))
        head = _head(self.status, headers)
        if self.version != "HTTP/1.1":
            head = self.version.encode() + head[len(b"HTTP/1.1") :]
        conn.sendall(head + self.body)
        return not self.close


@dataclass(frozen=True, slots=True)
class Hang(Behaviour):
    """Reads the request and never answers (until the server stops)."""

    def serve(self, conn: socket.socket, request: Request, stop: threading.Event) -> bool:
        stop.wait()
        return False


@dataclass(frozen=True, slots=True)
class Reset(Behaviour):
    """Closes with SO_LINGER 0, so the client gets a TCP RST instead of an answer."""

    def serve(self, conn: socket.socket, request: Request, stop: threading.Event) -> bool:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        return False


@dataclass(frozen=True, slots=True)
class CloseSilently(Behaviour):
    """Closes the connection (FIN) without a byte of answer."""

    def serve(self, conn: socket.socket, request: Request, stop: threading.Event) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class FirstOnly(Behaviour):
    """Answers the first request of each connection; closes silently on any later one.

    Models a keep-alive connection the server dropped just as the client reused it.
    """

    first: Behaviour = field(default_factory=Respond)

    def serve(self, conn: socket.socket, request: Request, stop: threading.Event) -> bool:
        if request.index == 0:
            return self.first.serve(conn, request, stop)
        return False


@dataclass(frozen=True, slots=True)
class Raw(Behaviour):
    """Sends these bytes verbatim, then closes (e.g. something that is not HTTP)."""

    data: bytes

    def serve(self, conn: socket.socket, request: Request, stop: threading.Event) -> bool:
        conn.sendall(self.data)
        return False


@dataclass(frozen=True, slots=True)
class HugeBody(Behaviour):
    """A `size`-byte body, framed by Content-Length, chunks, or the connection's close."""

    size: int = 8 * 1024 * 1024
    framing: str = "length"  # "length" | "chunked" | "close"

    def serve(self, conn: socket.socket, request: Request, stop: threading.Event) -> bool:
        headers = [("Content-Type", "application/json")]
        if self.framing == "length":
            headers.append(("Content-Length", str(self.size)))
        elif self.framing == "chunked":
            headers.append(("Transfer-Encoding", "chunked"))
        conn.sendall(_head(200, headers))
        piece = b"x" * _SEND_PIECE
        for start in range(0, self.size, _SEND_PIECE):
            if stop.is_set():
                return False
            data = piece[: min(_SEND_PIECE, self.size - start)]
            conn.sendall(_chunk(data) if self.framing == "chunked" else data)
        if self.framing == "chunked":
            conn.sendall(b"0\r\n\r\n")
        return self.framing != "close"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


@dataclass(frozen=True, slots=True)
class EndlessChunked(Behaviour):
    """A chunked body that never ends: a chunk of `piece` bytes every `interval` seconds."""

    piece: int = 16 * 1024
    interval: float = 0.0

    def serve(self, conn: socket.socket, request: Request, stop: threading.Event) -> bool:
        conn.sendall(_head(200, [("Transfer-Encoding", "chunked")]))
        chunk = _chunk(b"{" * self.piece)
        while not stop.wait(self.interval):
            conn.sendall(chunk)
        return False


@dataclass(frozen=True, slots=True)
class Trickle(Behaviour):
    """Slowloris in reverse: headers, then one body byte every `interval` seconds."""

    interval: float = 0.1
    length: int = 10_000

    def serve(self, conn: socket.socket, request: Request, stop: threading.Event) -> bool:
        conn.sendall(_head(200, [("Content-Length", str(self.length))]))
        for _ in range(self.length):
            if stop.wait(self.interval):
                return False
            conn.sendall(b" ")
        return True


@dataclass(frozen=True, slots=True)
class TrickleHead(Behaviour):
    """A status line, then the response head one byte every `interval` seconds, never ending."""

    interval: float = 0.1

    def serve(self, conn: socket.socket, request: Request, stop: threading.Event) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        while not stop.wait(self.interval):
            conn.sendall(b"a")
        return False


@dataclass(frozen=True, slots=True)
class HugeHeaders(Behaviour):
    """A response head with one header of `size` bytes."""

    size: int = 1024 * 1024

    def serve(self, conn: socket.socket, request: Request, stop: threading.Event) -> bool:
        conn.sendall(_head(200, [("X-Padding", "a" * self.size), ("Content-Length", "0")]))
        return True


class Switch(Behaviour):
    """Delegates to a behaviour the test changes while the server runs (``set``)."""

    def __init__(self, behaviour: Behaviour) -> None:
        self._lock = threading.Lock()
        self._current = behaviour

    def set(self, behaviour: Behaviour) -> None:
        with self._lock:
            self._current = behaviour

    def serve(self, conn: socket.socket, request: Request, stop: threading.Event) -> bool:
        with self._lock:
            current = self._current
        return current.serve(conn, request, stop)


class Script(Behaviour):
    """Serves the i-th request (server-wide, on this path) with ``steps[i]``, then ``then``."""

    def __init__(self, steps: list[Behaviour], then: Behaviour) -> None:
        self._lock = threading.Lock()
        self._steps = list(steps)
        self._then = then
        self.served = 0

    def serve(self, conn: socket.socket, request: Request, stop: threading.Event) -> bool:
        with self._lock:
            index, self.served = self.served, self.served + 1
        step = self._steps[index] if index < len(self._steps) else self._then
        return step.serve(conn, request, stop)


def garbage_body() -> Respond:
    return Respond(body=b"\x00<html>not json at all", content_type="application/json")


def invalid_utf8() -> Respond:
    return Respond(body=b'{"status": "\xff\xfe\xfd"}', content_type="application/json")


class HostileServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 whose paths misbehave on purpose."""

    def __init__(
        self,
        routes: Mapping[str, Behaviour],
        *,
        default: Behaviour | None = None,
        tls: ssl.SSLContext | None = None,
        port: int = 0,
    ) -> None:
        self.routes = dict(routes)
        self.default = default or Respond(404, b'{"error": "no such path"}')
        self._tls = tls
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._conns: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._accepts = 0
        self._requests: list[Request] = []
        self._listener = socket.create_server(("127.0.0.1", port), backlog=128)
        self.port: int = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._acceptor = threading.Thread(target=self._accept_loop, name="hostile-accept")

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> HostileServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self._acceptor.start()

    def stop(self) -> None:
        """Wake every behaviour, close every socket, join every thread (or raise)."""
        self._stop.set()
        self._wake_w.send(b"x")
        self._acceptor.join(_JOIN_TIMEOUT_S)
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(_JOIN_TIMEOUT_S)
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()
        alive = [t.name for t in [self._acceptor, *threads] if t.is_alive()]
        if alive:
            raise RuntimeError(f"hostile server on port {self.port}: threads leaked: {alive}")

    # -- what tests look at --------------------------------------------------------------

    def url(self, path: str = "/", *, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    @property
    def accepts(self) -> int:
        with self._lock:
            return self._accepts

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> None:
        """Block until the server has read `count` requests; AssertionError after `timeout`."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._requests) >= count, timeout):
                raise AssertionError(f"{len(self._requests)}/{count} requests within {timeout} s")

    # -- the server ----------------------------------------------------------------------

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._listener:
                        self._accept()

    def _accept(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        thread = threading.Thread(target=self._serve, args=(conn,), name="hostile-conn")
        with self._lock:
            self._accepts += 1
            self._conns.add(conn)
            self._threads.add(thread)
        thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self._tls is not None:
                conn = self._wrap_tls(conn)
            self._serve_requests(conn)
        except OSError:
            pass  # the client went away, or stop() shut the socket: both end this connection
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def _wrap_tls(self, conn: socket.socket) -> socket.socket:
        assert self._tls is not None
        with self._lock:
            self._conns.discard(conn)  # wrap_socket takes over the descriptor
        wrapped = self._tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        with self._lock:
            self._conns.add(wrapped)
        wrapped.do_handshake()
        return wrapped

    def _serve_requests(self, conn: socket.socket) -> None:
        buffer = b""
        index = 0
        while not self._stop.is_set():
            request, buffer = _read_request(conn, buffer, index)
            if request is None:
                return
            with self._arrived:
                self._requests.append(request)
                self._arrived.notify_all()
            behaviour = self.routes.get(request.path, self.default)
            if not behaviour.serve(conn, request, self._stop):
                return
            index += 1


def _read_request(conn: socket.socket, buffer: bytes, index: int) -> tuple[Request | None, bytes]:
    while b"\r\n\r\n" not in buffer:
        if len(buffer) > _MAX_REQUEST_HEAD:
            return None, b""
        data = conn.recv(65536)
        if not data:
            return None, b""
        buffer += data
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = [*lines[0].split(" "), "", ""][:3]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Request(method, target, headers, index), rest


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A port where connections are refused: bound (so nobody else takes it), not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@contextlib.contextmanager
def unaccepting_port() -> Iterator[int]:
    """A port where connect() hangs: its accept queue is full, so Linux drops further SYNs."""
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port: int = listener.getsockname()[1]
        for _ in range(4):  # listen(0) queues one; the rest stay half-open and keep it full
            filler = stack.enter_context(socket.socket())
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        yield port
