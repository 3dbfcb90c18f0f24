"""One JSON object per line on stdout: ``{"ts", "level", "event", ...fields}``.

The orchestrator captures stdout into a file; every line is flushed at once so the file is
current while the process runs (a block-buffered stdout would hold lines back for minutes).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import TextIO

LEVEL_ORDER = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class EventLog:
    """A thread-safe JSON-lines writer with a level threshold and bound fields."""

    def __init__(self, stream: TextIO, level: str = "info", **bound: object) -> None:
        self._stream = stream
        self._threshold = LEVEL_ORDER[level]
        self._bound = bound
        self._lock = threading.Lock()

    def bind(self, **fields: object) -> EventLog:
        """A logger that adds ``fields`` to every line and shares this one's stream."""
        child = EventLog.__new__(EventLog)
        child._stream, child._threshold, child._lock = self._stream, self._threshold, self._lock
        child._bound = {**self._bound, **fields}
        return child

    def enabled(self, level: str) -> bool:
        return LEVEL_ORDER[level] >= self._threshold

    def debug(self, event: str, **fields: object) -> None:
        self.log("debug", event, **fields)

    def info(self, event: str, **fields: object) -> None:
        self.log("info", event, **fields)

    def warning(self, event: str, **fields: object) -> None:
        self.log("warning", event, **fields)

    def error(self, event: str, **fields: object) -> None:
        self.log("error", event, **fields)

    def log(self, level: str, event: str, **fields: object) -> None:
        if not self.enabled(level):
            return
        line = json.dumps(format_record(level, event, {**self._bound, **fields}), default=str)
        with self._lock:
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (OSError, ValueError):
                # stdout gone (closed pipe or file): keep serving; there is nowhere to report it.
                pass


def format_record(level: str, event: str, fields: dict[str, object]) -> dict[str, object]:
    """The dict written for one line; ``ts`` is UTC ISO-8601 with milliseconds."""
    ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"ts": ts, "level": level, "event": event, **fields}
