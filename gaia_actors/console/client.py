"""The control protocol's client side: ``Client`` sends requests on the daemon's socket and
reads their replies, progress and events (the wire format is
``gaia_actors/control/protocol.py``'s)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

from gaia_actors.control.protocol import (
    USAGE_CODES,
    Code,
    LineReader,
    connect_socket,
    encode,
)
from gaia_actors.errors import EXIT_FAILED, EXIT_USAGE, ControlError, DaemonUnreachable

CLIENT_MAX_LINE = 64 * 1024 * 1024  # replies (a big `history`) may exceed the request bound


class RemoteError(ControlError):
    """The daemon answered a request with an error frame."""

    def __init__(self, code: str, message: str, field: str = "", kind: str = "") -> None:
        self.code = code
        self.field = field
        self.kind = kind
        self.exit_code = EXIT_USAGE if self.usage else EXIT_FAILED
        super().__init__(message)

    @property
    def usage(self) -> bool:
        return self.code in USAGE_CODES

    @classmethod
    def from_frame(cls, error: Any) -> RemoteError:
        if not isinstance(error, Mapping):
            return cls(Code.INTERNAL, f"malformed error frame: {error!r}")
        return cls(
            str(error.get("code", Code.INTERNAL)),
            str(error.get("message", "")),
            str(error.get("field", "")),
            str(error.get("type", "")),
        )


class ConnectionLost(DaemonUnreachable):
    """The daemon closed the connection (it stopped, or its control server restarted)."""

    def __init__(self, socket_path: str, detail: str = "") -> None:
        self.socket_path = socket_path
        ControlError.__init__(
            self,
            f"the daemon closed the connection on {socket_path}{f' ({detail})' if detail else ''}",
        )


# --- the client -----------------------------------------------------------------------------

FrameHandler = Callable[[dict[str, Any]], None]


class Client:
    """One connection to the daemon, for one thread.

    Several requests may be open at once (a stream and the asks beside it): frames of an
    open request wait in its backlog until it is read; frames of a request given up on
    (Ctrl-C) are dropped.
    """

    def __init__(self, sock: socket.socket, path: Path) -> None:
        self.sock = sock
        self.path = path
        self.reader = LineReader(CLIENT_MAX_LINE)
        self.pending: deque[bytes | None] = deque()
        self.ids = itertools.count(1)
        self.open: dict[int, deque[dict[str, Any]]] = {}

    @classmethod
    def connect(cls, path: Path, timeout: float = 2.0, grace: float = 5.0) -> Client:
        """Connect or raise DaemonUnreachable (with the command that starts a daemon).

        While a live daemon holds the state directory but its socket is missing or refuses,
        the control server is being restarted by its supervisor: retry for ``grace`` seconds.
        """
        deadline = time.monotonic() + grace
        while True:
            try:
                return cls(connect_socket(path, timeout), path)
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                if time.monotonic() < deadline and daemon_pid(path.parent) is not None:
                    time.sleep(0.05)  # the control server is restarting; bounded by grace
                    continue
                detail = (
                    "no socket"
                    if isinstance(exc, FileNotFoundError)
                    else ("stale socket, nothing listening")
                )
                raise DaemonUnreachable(str(path), detail) from None
            except OSError as exc:
                raise DaemonUnreachable(str(path), exc.strerror or str(exc)) from None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # Requests

    def call(self, op: str, on_frame: FrameHandler | None = None, **fields: Any) -> Any:
        """Send one request and wait for its final reply; stream frames go to ``on_frame``."""
        request_id = self.send(op, **fields)
        return self.wait(request_id, on_frame)

    def send(self, op: str, **fields: Any) -> int:
        request_id = next(self.ids)
        self.open[request_id] = deque()
        self.write({"id": request_id, "op": op, **fields})
        return request_id

    def write(self, frame: Mapping[str, Any]) -> None:
        try:
            self.sock.sendall(encode(frame))
        except OSError as exc:
            raise ConnectionLost(str(self.path), exc.strerror or str(exc)) from None

    def wait(self, request_id: int, on_frame: FrameHandler | None = None) -> Any:
        """The final reply of ``request_id``; its stream frames go to ``on_frame``."""
        stream = self.frames(request_id)
        while True:
            try:
                frame = next(stream)
            except StopIteration as end:
                return end.value
            if on_frame is not None:
                on_frame(frame)

    def frames(self, request_id: int) -> Generator[dict[str, Any], None, Any]:
        """The stream frames of ``request_id``; returns its result, raises its error."""
        try:
            while True:
                frame = self._next(request_id)
                if "ok" not in frame:
                    yield frame
                    continue
                if frame["ok"]:
                    return frame.get("result")
                raise RemoteError.from_frame(frame.get("error"))
        finally:
            self.open.pop(request_id, None)

    def _next(self, request_id: int) -> dict[str, Any]:
        backlog = self.open[request_id]
        while not backlog:
            frame = self.read_frame()
            if frame.get("id") is None and frame.get("ok") is False:
                raise RemoteError.from_frame(frame.get("error"))  # about the connection
            waiting = self.open.get(frame["id"]) if isinstance(frame.get("id"), int) else None
            if waiting is not None:
                waiting.append(frame)
        return backlog.popleft()

    def read_frame(self) -> dict[str, Any]:
        while not self.pending:
            try:
                chunk = self.sock.recv(65536)
            except OSError as exc:
                raise ConnectionLost(str(self.path), exc.strerror or str(exc)) from None
            if not chunk:
                raise ConnectionLost(str(self.path))
            self.pending.extend(self.reader.feed(chunk))
        line = self.pending.popleft()
        if line is None:
            raise ControlError(f"a reply from the daemon exceeded {CLIENT_MAX_LINE} bytes")
        frame = json.loads(line)
        if not isinstance(frame, dict):
            raise ControlError(f"the daemon sent a frame that is not an object: {line[:200]!r}")
        return frame

    # Operations

    def ping(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("ping")
        return result

    def actors(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("actors")
        return result

    def messages(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("messages")
        return result

    def tell(self, actor: str, message: str, fields: Mapping[str, Any] | None = None) -> Any:
        return self.call("tell", actor=actor, message=message, fields=dict(fields or {}))

    def ask(
        self,
        actor: str,
        message: str,
        fields: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        return self.call("ask", actor=actor, message=message, fields=dict(fields or {}), **extra)

    def command(
        self,
        name: str,
        args: Mapping[str, Any] | None = None,
        on_progress: Callable[[Any], None] | None = None,
    ) -> Any:
        def progress(frame: dict[str, Any]) -> None:
            if on_progress is not None and "progress" in frame:
                on_progress(frame["progress"])

        return self.call("command", progress, name=name, args=dict(args or {}))

    def subscribe(
        self,
        patterns: Sequence[str] = ("*",),
        env: str | None = None,
        since: float | None = None,
    ) -> Generator[dict[str, Any], None, Any]:
        """Stream frames (``subscribed``, ``event``, ``dropped``) until the stream ends."""
        fields: dict[str, Any] = {"patterns": list(patterns)}
        if env:
            fields["env"] = env
        if since is not None:
            fields["since"] = since
        return self.frames(self.send("subscribe", **fields))


def parse_fields(words: Sequence[str], verb: str = "send") -> dict[str, str]:
    """``key=value`` words into a mapping; a word without '=' is a usage error."""
    from gaia_actors.control.commands import UsageError

    fields: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise UsageError(verb, f"expected FIELD=VALUE, got {word!r}")
        fields[key] = value
    return fields


def daemon_pid(state_dir: Path) -> int | None:
    """The pid of the daemon holding ``state_dir``, or None when none seems to run.

    Reads the pid the daemon wrote into its lock file and checks that process exists. It
    does not take the lock itself: a check racing a starting daemon must not make it refuse.
    """
    try:
        text = (state_dir / "daemon.lock").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not text.isdigit():
        return None
    try:
        os.kill(int(text), 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it exists, under another user
    return int(text)
