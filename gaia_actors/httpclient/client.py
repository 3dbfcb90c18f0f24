"""`Client`: a `requests.Session` with the project's bounds (`Limits`), answering an `Answer`
that carries either the response or why there is none (`ErrorKind`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from gaia_actors.httpclient.watchdog import Deadline, DeadlineAdapter, current
from supervisors.records import record

USER_AGENT = "gaia-actors/0.1"


_PIECE = 64 * 1024


class ErrorKind(StrEnum):
    """Why a request has no complete answer (`Answer.error`)."""

    REFUSED = "refused"  # nothing listening
    CONNECT_TIMEOUT = "connect_timeout"
    CONNECT_ERROR = "connect_error"  # unreachable, DNS, TLS, ...
    TIMEOUT = "timeout"  # the deadline passed before the last body byte
    BROKEN = "broken"  # reset or closed mid-answer, or not HTTP
    TOO_LARGE = "too_large"  # the body exceeded max_body_bytes; cut off there


@record
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


@record
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


@record
class _Request:
    method: str
    url: str
    body: bytes | None = None
    headers: Mapping[str, str] | None = None


class Client:
    """A `requests.Session` with the project's bounds; keeps connections alive between calls.

    One thread at a time (as a Session): give each worker thread its own.
    """

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._session = requests.Session()
        self._session.trust_env = False
        self._session.headers["User-Agent"] = USER_AGENT
        adapter = DeadlineAdapter()
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
        deadline = Deadline(limits.deadline)
        current.deadline = deadline
        try:
            answer = self._send(request, limits, started)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            kind = ErrorKind.TIMEOUT if deadline.expired else _kind(exc)
            detail = _detail(kind, exc, limits, url)
            return Answer(url, elapsed=time.monotonic() - started, error=kind, detail=detail)
        finally:
            current.deadline = None
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
