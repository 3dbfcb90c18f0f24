"""The control protocol's wire format, which the daemon's server and its clients share.

Frames are JSON objects, one per line (UTF-8, ``\\n``-terminated), over the daemon's Unix
socket. A request carries an ``id`` (int or string, echoed back) and an ``op``::

    {"id": 1, "op": "ask", "actor": "store", "message": "GetState", "fields": {}}
    {"id": 1, "ok": true, "result": {...}}
    {"id": 1, "ok": false, "error": {"code": "unknown_actor", "message": "...", "field": "actor"}}

Streaming requests (``command``, ``subscribe``) send frames before their one final reply:
``{"id": 1, "progress": {...}}``, ``{"id": 1, "subscribed": {...}}``,
``{"id": 1, "event": {...}}`` and ``{"id": 1, "dropped": N}``. See gaia_actors/control/server.py
for the operations.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import os
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

PROTOCOL_VERSION = 1
_SUN_PATH_MAX = 100  # sockaddr_un.sun_path is 108 bytes; leave room for the terminator


class Code(enum.StrEnum):
    """Machine-readable error codes of the control protocol."""

    BAD_JSON = "bad_json"  # not UTF-8 JSON
    BAD_FRAME = "bad_frame"  # JSON, but not an object or with a bad id
    TOO_LARGE = "too_large"  # the line exceeds control.max_line_bytes
    UNKNOWN_OP = "unknown_op"
    MISSING_FIELD = "missing_field"  # a required frame or message field is absent
    BAD_FIELD = "bad_field"  # a frame or message field has the wrong type or value
    UNKNOWN_FIELD = "unknown_field"  # the message has no such field
    UNKNOWN_ACTOR = "unknown_actor"
    UNKNOWN_MESSAGE = "unknown_message"
    UNKNOWN_COMMAND = "unknown_command"
    BAD_ARGUMENT = "bad_argument"  # a command argument is unknown, missing or unconvertible
    DUPLICATE_ID = "duplicate_id"  # the id of a request still in flight on this connection
    NOT_RUNNING = "not_running"  # the actor exists but is down (restarting, failed)
    TIMEOUT = "timeout"  # an ask got no reply in time
    REJECTED = "rejected"  # the actor refused the message (Rejected)
    BUSY = "busy"  # a resource is taken, or too many requests in flight
    ACTOR_ERROR = "actor_error"  # the actor answered the ask with an exception
    FAILED = "failed"  # the command failed (a GaiaError)
    INTERNAL = "internal"  # an unexpected error in the daemon (logged with its traceback)
    TOO_MANY_CLIENTS = "too_many_clients"
    CANCELLED = "cancelled"


# Errors the person typed (exit code 2); every other code is a failed operation (1).
USAGE_CODES = frozenset(
    {
        Code.BAD_JSON,
        Code.BAD_FRAME,
        Code.TOO_LARGE,
        Code.UNKNOWN_OP,
        Code.MISSING_FIELD,
        Code.BAD_FIELD,
        Code.UNKNOWN_FIELD,
        Code.UNKNOWN_ACTOR,
        Code.UNKNOWN_MESSAGE,
        Code.UNKNOWN_COMMAND,
        Code.BAD_ARGUMENT,
        Code.DUPLICATE_ID,
    }
)


# --- replies as JSON -----------------------------------------------------------------------


# A reply's field declared with ``dataclasses.field(default=None, metadata=OMIT_NONE)`` is left
# out of its JSON object while it is None (a part the asker did not ask for).
OMIT_NONE = {"json": "omit if None"}


def to_json(value: Any) -> Any:
    """A JSON-friendly copy of a reply: dataclasses (as objects of their fields, in field
    order), tuples, enums, paths, exceptions. The one place typed replies become JSON: the
    control server sends every result through it, and the CLI's offline commands too."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_json(item)
            for f in dataclasses.fields(value)
            if (item := getattr(value, f.name)) is not None or f.metadata != OMIT_NONE
        }
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if isinstance(value, BaseException):
        return {"error": type(value).__name__, "message": str(value)}
    return str(value)


# --- frames ---------------------------------------------------------------------------------


def encode(frame: Mapping[str, Any]) -> bytes:
    return json.dumps(frame, separators=(",", ":"), default=str).encode() + b"\n"


class LineReader:
    """Splits a byte stream into lines, never holding more than ``limit`` bytes of one line."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buffer = bytearray()
        self.skipping = False  # inside a line that already exceeded the limit

    def feed(self, chunk: bytes) -> Iterator[bytes | None]:
        """Complete lines in ``chunk`` order; ``None`` marks one dropped for its size (once)."""
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            piece = chunk[start:end]
            start = end + 1
            if self.skipping:
                self.skipping = False
                continue
            if len(self.buffer) + len(piece) > self.limit:
                self.buffer.clear()
                yield None
                continue
            self.buffer += piece
            line, self.buffer = bytes(self.buffer), bytearray()
            yield line
        self._keep(chunk[start:])
        if not self.skipping and len(self.buffer) > self.limit:
            self.buffer.clear()
            self.skipping = True
            yield None

    def _keep(self, rest: bytes) -> None:
        if not self.skipping:
            self.buffer += rest


# --- addresses ------------------------------------------------------------------------------


@contextlib.contextmanager
def unix_address(path: Path) -> Iterator[str]:
    """An address for ``path`` that fits sun_path: long paths go through /proc/self/fd."""
    text = str(path)
    if len(os.fsencode(text)) <= _SUN_PATH_MAX:
        yield text
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def connect_socket(path: Path, timeout: float | None = 2.0) -> socket.socket:
    """Connect to the Unix socket at ``path``; raises OSError as the system reports it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        with unix_address(path) as address:
            sock.connect(address)
    except BaseException:
        sock.close()
        raise
    sock.settimeout(None)
    return sock
