"""The threaded HTTP/1.1 server and its request handler.

Keep-alive without the ~44 ms stall: ``http.server`` writes headers and body in separate
sends; with Nagle on, the second waits for the client's delayed ACK. ``disable_nagle_algorithm``
sets TCP_NODELAY on every accepted socket.
"""

from __future__ import annotations

import socket
import socketserver
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast

from . import __version__
from .api import Api, Request, Response, error_response
from .logs import EventLog
from .metrics import Metrics

MAX_BODY_BYTES = 1 << 20
IDLE_KEEPALIVE_S = 60


class DemoServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that counts requests in flight so shutdown can drain them."""

    daemon_threads = True  # a hung request (the `hang` fault) must not block exit
    # server_close() would otherwise join every handler thread, including idle keep-alive
    # connections waiting up to IDLE_KEEPALIVE_S for a next request; drain() bounds the wait.
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: Api, metrics: Metrics, log: EventLog) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.api, self.metrics, self.log = api, metrics, log
        self.closing = False  # set on shutdown: responses then carry Connection: close
        self._in_flight = 0
        self._idle = threading.Condition()
        super().__init__(address, DemoHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can take
        # seconds on a machine without a resolver; the service never needs the name.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """Called by socketserver for an exception escaping a connection's handler.

        The default prints a traceback to stderr. A client resetting its keep-alive
        connection (closing with a response unread) is routine, so it is a debug line.
        """
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            self.log.debug("http.connection_lost", client=client_address[0], error=repr(exc))
            return
        self.log.error(
            "http.connection_error",
            client=client_address[0],
            error=repr(exc),
            traceback=traceback.format_exc(),
        )

    def begin_request(self) -> None:
        with self._idle:
            self._in_flight += 1

    def end_request(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def drain(self, timeout: float) -> int:
        """Wait up to ``timeout`` for requests in flight to finish; return how many remain."""
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout)
            return self._in_flight


class DemoHandler(BaseHTTPRequestHandler):
    """Reads a request, hands it to the Api, writes the response, records metrics and a log line."""

    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # TCP_NODELAY: see the module docstring
    server_version = f"demo/{__version__}"
    timeout = IDLE_KEEPALIVE_S  # an idle keep-alive connection is closed after this

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    @property
    def _server(self) -> DemoServer:
        return cast(DemoServer, self.server)

    def _dispatch(self) -> None:
        server = self._server
        started = time.perf_counter()
        server.begin_request()
        try:
            route, response = self._respond_to(server.api)
            sent = self._send(response, closing=server.closing)
            duration = time.perf_counter() - started
            server.metrics.observe(self.command, route, response.status, duration)
            server.log.info(
                "http.request",
                method=self.command,
                path=self.path.partition("?")[0],
                route=route,
                status=response.status,
                duration_ms=round(duration * 1000, 3),
                client=self.client_address[0],
                sent=sent,
            )
        finally:
            server.end_request()

    def _respond_to(self, api: Api) -> tuple[str, Response]:
        path, _, query = self.path.partition("?")
        try:
            body = self._read_body()
            if isinstance(body, Response):
                return api.route_template(path), body
            return api.handle(Request(self.command, path, query, body, self.client_address[0]))
        except Exception as exc:  # noqa: BLE001 - request boundary: answer 500, keep serving
            self._server.log.error(
                "http.error", path=path, error=repr(exc), traceback=traceback.format_exc()
            )
            return api.route_template(path), error_response(500, "internal error")

    def _read_body(self) -> bytes | Response:
        """The request body, or an error Response (the connection is then closed: the
        unread body would otherwise be parsed as the next request)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            return error_response(411, "chunked bodies are not supported; send Content-Length")
        raw = self.headers.get("Content-Length", "0")
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            return error_response(400, f"bad Content-Length {raw!r}", field="Content-Length")
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return error_response(413, f"body over {MAX_BODY_BYTES} bytes")
        return self.rfile.read(length) if length else b""

    def _send(self, response: Response, *, closing: bool) -> bool:
        """Write ``response``; False if the client went away first."""
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                self.send_header(name, value)
            if closing:
                self.send_header("Connection", "close")  # also sets close_connection
            self.end_headers()
            if response.body:
                self.wfile.write(response.body)
            return True
        except OSError:
            self.close_connection = True
            return False

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: _dispatch writes one structured line per request instead."""

    def log_message(self, format: str, *args: object) -> None:
        # Reached for malformed requests and idle keep-alive timeouts (send_error, log_error).
        self._server.log.info("http.protocol", message=format % args, client=self.client_address[0])
