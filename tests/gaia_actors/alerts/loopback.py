"""Real receivers on 127.0.0.1 for the alert tests and benchmark: an HTTP server that records
what webhooks POST, an SMTP server (aiosmtpd) that keeps the messages it accepts, and a
self-signed certificate for their TLS."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email
import email.message
import email.policy
import http.server
import json
import queue
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclasses.dataclass(frozen=True)
class Request:
    """One request the HTTP receiver got, and when (time.monotonic) its body was in."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    delay: float = 0.0  # seconds before answering (a slow receiver)


class HookServer:
    """An HTTP receiver that records every request and answers with the queued replies, then
    with 200 "ok". ``received`` holds the JSON bodies of the requests it answered 2xx; while
    ``release`` is clear, requests wait for it (a receiver that hangs)."""

    def __init__(self) -> None:
        self.requests: queue.Queue[Request] = queue.Queue()
        self.replies: queue.Queue[Reply] = queue.Queue()
        self.received: list[dict[str, Any]] = []
        self.release = threading.Event()
        self.release.set()
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=0.02)  # shutdown() waits for it to look

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def next(self, timeout: float = 10.0) -> Request:
        return self.requests.get(timeout=timeout)

    def answer(self, *statuses: int) -> None:
        """Answer the next requests with ``statuses`` (then 200), instead of what was queued."""
        with self.lock:
            while not self.replies.empty():
                self.replies.get_nowait()
            for status in statuses:
                self.replies.put(Reply(status))

    def ids(self) -> list[str]:
        """The notification ids of the requests answered 2xx, in order."""
        with self.lock:
            return [body["id"] for body in self.received]

    def close(self) -> None:
        self.closing.set()  # slow replies answer at once
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def _reply(self, body: bytes) -> Reply:
        """The reply to a request (after ``release``), its JSON body kept if answered 2xx."""
        self.release.wait(30)
        with self.lock:
            try:
                reply = self.replies.get_nowait()
            except queue.Empty:
                reply = Reply()
            if 200 <= reply.status < 300 and body.startswith(b"{"):  # a notification's JSON
                self.received.append(json.loads(body))
        return reply

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall on keep-alive
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = dict(self.headers.items())
                server.requests.put(Request("POST", self.path, headers, body, time.monotonic()))
                reply = server._reply(body)
                if reply.delay and server.closing.wait(reply.delay):
                    return
                self.send_response(reply.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@contextlib.contextmanager
def hook_server() -> Iterator[HookServer]:
    server = HookServer()
    try:
        yield server
    finally:
        server.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound by the OS, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- TLS ------------------------------------------------------------------------------------------


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made by the openssl command line."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    argv = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    argv += ["-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1"]
    argv += ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        argv,
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def client_context(cert: Path) -> ssl.SSLContext:
    """A client context that trusts ``cert`` (and checks the host name against it)."""
    return ssl.create_default_context(cafile=str(cert))


# -- SMTP -----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Mail:
    """A message the SMTP server accepted."""

    sender: str
    recipients: list[str]
    message: email.message.EmailMessage
    secure: bool  # the session was under TLS when the data came
    login: str | None


class MailHandler:
    """aiosmtpd's handler: keeps each message; ``refuse`` answers DATA with a reply instead,
    ``unknown`` recipients are refused; ``delay`` holds the answer to DATA that long (a slow
    server)."""

    def __init__(self) -> None:
        self.mails: queue.Queue[Mail] = queue.Queue()
        self.refuse = ""
        self.unknown: set[str] = set()  # recipients refused at RCPT
        self.delay = 0.0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.unknown:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.refuse:
            return self.refuse
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        data = session.auth_data
        login = data.login.decode() if isinstance(data, LoginPassword) else None
        assert server.transport is not None
        secure = server.transport.get_extra_info("ssl_object") is not None  # TLS either way
        mail = Mail(envelope.mail_from or "", list(envelope.rcpt_tos), message, secure, login)
        self.mails.put(mail)
        return "250 2.0.0 Ok: queued"


class Authenticator:
    """Accepts one user name and password."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user.encode(), password.encode()

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            self.user,
            self.password,
        )
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)


class _AnyPortController(Controller):
    """aiosmtpd's threaded controller on a port the OS picks (it checks the port it was
    given, so it learns the bound one first)."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class MailServer:
    """A real SMTP server on 127.0.0.1 (aiosmtpd in a thread of its own)."""

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        auth: Authenticator | None = None,
    ) -> None:
        self.handler = MailHandler()
        options: dict[str, Any] = {}
        if tls is not None and not implicit_tls:
            options |= {"tls_context": tls, "require_starttls": True}
        if auth is not None:
            options |= {"authenticator": auth, "auth_require_tls": tls is not None}
        ssl_context = tls if implicit_tls else None
        self._controller = _AnyPortController(
            self.handler, hostname="127.0.0.1", port=0, ssl_context=ssl_context, **options
        )
        self._controller.start()
        self.port: int = self._controller.port

    def next(self, timeout: float = 10.0) -> Mail:
        return self.handler.mails.get(timeout=timeout)

    def close(self) -> None:
        self._controller.stop()


@contextlib.contextmanager
def mail_server(**options: Any) -> Iterator[MailServer]:
    server = MailServer(**options)
    try:
        yield server
    finally:
        server.close()
