"""The control protocol's frames as the server reads and answers them: decoding a request,
reading its fields with a clear error for each way one can be wrong, an exception as an error
reply with its code, and a reply as JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import peewee
import structlog

from gaia_actors.control.commands import UsageError
from gaia_actors.control.protocol import Code
from gaia_actors.conversion import kind_of
from gaia_actors.errors import Busy, ControlError, GaiaError, Rejected
from supervisors import AskTimeout, NotRunning

log = structlog.get_logger("gaia.control")


class FrameError(ControlError):
    """A request that cannot be served; becomes an error reply (the server carries on)."""

    def __init__(self, code: Code, message: str, field: str = "") -> None:
        self.code = code
        self.field = field
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": str(self.code), "message": str(self)}
        if self.field:
            body["field"] = self.field
        return body


def decode(line: bytes | None, limit: int) -> dict[str, Any] | None:
    if line is None:
        raise FrameError(Code.TOO_LARGE, f"frame exceeds control.max_line_bytes ({limit} bytes)")
    if not line.strip():
        return None
    try:
        frame = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise FrameError(Code.BAD_JSON, f"frame is not UTF-8: {exc}") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, digit limits, deep nesting
        raise FrameError(Code.BAD_JSON, f"frame is not JSON: {_short(exc)}") from None
    if not isinstance(frame, dict):
        raise FrameError(Code.BAD_FRAME, f"frame must be a JSON object, got {_kind(frame)}")
    return frame


def frame_id(frame: Mapping[str, Any]) -> Any:
    request_id = frame.get("id")
    valid = request_id is None or (
        isinstance(request_id, int | str) and not isinstance(request_id, bool)
    )
    if not valid or (isinstance(request_id, str) and len(request_id) > 200):
        raise FrameError(Code.BAD_FRAME, "id must be an integer or a short string", "id")
    return request_id


def get_field(
    frame: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any = ...
) -> Any:
    """A frame field of type ``kind``; missing -> ``default`` or a MISSING_FIELD error."""
    if key not in frame or frame[key] is None:
        if default is ...:
            raise FrameError(Code.MISSING_FIELD, f"field {key!r} is required", key)
        return default
    value = frame[key]
    if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
        expected = (
            kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        )
        raise FrameError(
            Code.BAD_FIELD,
            f"field {key!r} must be {_TYPE_WORDS.get(expected, expected)}, got {_kind(value)}",
            key,
        )
    return value


_TYPE_WORDS = {
    "str": "a string",
    "dict": "an object",
    "list": "a list",
    "int or float": "a number",
    "int or str": "an integer or a string",
    "bool": "a boolean",
}


def _kind(value: Any) -> str:
    return kind_of(value, mapping="an object")  # JSON's word for a mapping


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def classify(exc: Exception) -> FrameError:
    """An exception from an ask or a command as an error reply with its code."""
    if isinstance(exc, peewee.PeeweeException):  # a read of a store that is faulty
        return FrameError(Code.FAILED, f"the store cannot be read now: {exc}")
    kinds: list[tuple[type[Exception], Code]] = [
        (UsageError, Code.BAD_ARGUMENT),
        (Busy, Code.BUSY),
        (Rejected, Code.REJECTED),
        (NotRunning, Code.NOT_RUNNING),
        (AskTimeout, Code.TIMEOUT),
        (GaiaError, Code.FAILED),
    ]
    for kind, code in kinds:
        if isinstance(exc, kind):
            return FrameError(code, str(exc), getattr(exc, "param", "") or "")
    log.error("control.command_crashed", error=repr(exc), exc_info=exc)
    return FrameError(Code.INTERNAL, f"internal error in the daemon: {exc!r} (see its log)")
