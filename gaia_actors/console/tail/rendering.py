"""A record printed for a reader: time, level, event, then ``key=value`` pairs, colored on a
terminal, with control characters shown escaped so log text cannot drive the terminal."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

from gaia_actors.console.tail.records import LEVELS, Entry, level_rank, record_time

_RESET = "\x1b[0m"


_DIM = "\x1b[2m"


_BOLD = "\x1b[1m"


_KEY = "\x1b[36m"  # cyan


_SCOPE = "\x1b[35m"  # magenta: actor, env, pipeline


_MARK = "\x1b[1;31m"


_LEVEL_STYLE = {
    "debug": "\x1b[34m",
    "info": "\x1b[32m",
    "warning": "\x1b[33m",
    "error": "\x1b[31m",
    "critical": "\x1b[1;37;41m",
}


_LAYOUT = ("timestamp", "level", "event")


_SCOPE_KEYS = ("actor", "env", "pipeline_id")


_TRAILING_KEYS = ("exception", "stack", "traceback")  # multi-line text, printed under the line


_EVENT_WIDTH = 24


_BARE = re.compile(r'[^\s"=\\]+')


# Log text must not drive the terminal: C0/C1 controls are shown escaped.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}


_CONTROL_CHAR = re.compile("[\x00-\x1f\x7f-\x9f]")


_CONTROLS_BUT_LAYOUT = {c: v for c, v in _CONTROLS.items() if chr(c) not in "\n\t"}


MALFORMED_MARK = "[malformed]"


def render(record: Mapping[str, Any], color: bool, tz: tzinfo | None = None) -> str:
    """A readable line: ``HH:MM:SS.mmm level event actor=.. env=.. key=value ...``.

    The time is shown in ``tz`` (default: local time). Multi-line ``exception``/``stack``
    values follow on indented lines.
    """
    level = _printable(str(record.get("level", "-")))
    head = [
        _paint(_clock(record, tz), _DIM, color),
        _paint(f"{level:<8}", _LEVEL_STYLE.get(_canonical_level(level), ""), color),
    ]
    pairs = _pairs(record, color)
    event = _headline(record.get("event", "-"))
    head.append(_paint(event.ljust(_EVENT_WIDTH) if pairs else event, _BOLD, color))
    return " ".join(head + pairs) + _trailing(record)


def render_malformed(raw: str, color: bool) -> str:
    """A line that is not a JSON object: shown as written, marked."""
    return f"{_paint(MALFORMED_MARK, _MARK, color)} {_printable(raw)}"


def _canonical_level(level: str) -> str:
    rank = level_rank(level)
    return LEVELS[rank] if rank is not None else ""


def _clock(record: Mapping[str, Any], tz: tzinfo | None) -> str:
    moment = record_time(record)
    if moment is None:
        return _printable(str(record.get("timestamp", "-"))).ljust(12)
    local = moment.astimezone(tz)
    return f"{local:%H:%M:%S}.{local.microsecond // 1000:03d}"


def _pairs(record: Mapping[str, Any], color: bool) -> list[str]:
    scope = [k for k in _SCOPE_KEYS if k in record]
    rest = [k for k in record if k not in _LAYOUT and k not in _SCOPE_KEYS]
    rest = [k for k in rest if not (k in _TRAILING_KEYS and isinstance(record[k], str))]
    if "actor" in record:  # the logger name only repeats the actor; keep it for foreign records
        rest = [k for k in rest if k != "logger"]
    pairs = [_pair(k, record[k], _SCOPE, color) for k in scope]
    return pairs + [_pair(k, record[k], "", color) for k in rest]


def _pair(key: str, value: object, style: str, color: bool) -> str:
    return f"{_paint(_printable(key), _KEY, color)}={_paint(_value(value), style, color)}"


def _headline(event: object) -> str:
    # Bare even with spaces: stdlib records (pykka's) carry a sentence as their event.
    return _printable(event) if isinstance(event, str) else _value(event)


def _value(value: object) -> str:
    if isinstance(value, str) and _BARE.fullmatch(value):
        return _printable(value)
    return _printable(json.dumps(value, ensure_ascii=False, default=str))


def _trailing(record: Mapping[str, Any]) -> str:
    blocks = [record[k] for k in _TRAILING_KEYS if isinstance(record.get(k), str)]
    lines = [line for block in blocks for line in block.rstrip("\n").splitlines()]
    return "".join("\n    " + line.translate(_CONTROLS_BUT_LAYOUT) for line in lines)


def _printable(text: str) -> str:
    # The search is in C; translate() with a dict is per character in Python, ~10x slower.
    return text.translate(_CONTROLS) if _CONTROL_CHAR.search(text) else text


def _paint(text: str, style: str, color: bool) -> str:
    return f"{style}{text}{_RESET}" if color and style else text


def format_entry(entry: Entry, *, as_json: bool, color: bool) -> str:
    """The output line for an entry: readable, or (``--json``) the record exactly as written.

    In JSON mode a malformed line becomes ``{"event": "tail.malformed", "raw": ...}`` so that a
    ``jq`` reading the stream sees it, marked, instead of choking on it.
    """
    if as_json:
        if entry.record is not None:
            return entry.raw
        return json.dumps({"event": "tail.malformed", "level": "warning", "raw": entry.raw})
    if entry.record is None:
        return render_malformed(entry.raw, color)
    return render(entry.record, color)
