"""Plain text for values people read: ``key: value`` lines, aligned tables, durations, ages,
times, sizes, the supervision tree and a service's JSON log lines.

The core's part of the output: a capability's command renders its result with these, and
the console (``render``) builds the rest of its output on them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

MAX_CELL = 60


def value(result: Any, indent: str = "") -> str:
    if result is None:
        return f"{indent}ok"
    if isinstance(result, Mapping):
        return mapping(result, indent)
    if isinstance(result, list) and result and all(isinstance(r, Mapping) for r in result):
        return table(result, indent)
    if isinstance(result, list):
        return "\n".join(f"{indent}{scalar(item)}" for item in result) or f"{indent}(none)"
    return f"{indent}{scalar(result)}"


def mapping(data: Mapping[str, Any], indent: str = "") -> str:
    if not data:
        return f"{indent}(empty)"
    width = max(len(str(k)) for k in data)
    lines = []
    for key, item in data.items():
        nested = isinstance(item, Mapping) and item
        rows = isinstance(item, list) and item and all(isinstance(r, Mapping) for r in item)
        if nested or rows:
            lines.append(f"{indent}{key}:")
            lines.append(value(item, indent + "  "))
        else:
            lines.append(f"{indent}{str(key).ljust(width)}  {scalar(item)}")
    return "\n".join(lines)


def table(rows: Sequence[Mapping[str, Any]], indent: str = "") -> str:
    """Rows as aligned columns; columns in first-seen order, nested values as compact JSON.
    A column empty in every row is left out."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    columns = [c for c in columns if any(row.get(c) not in (None, "") for row in rows)]
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [_row([c.upper() for c in columns], widths, indent)]
    lines.extend(_row(r, widths, indent) for r in cells)
    return "\n".join(lines)


def _row(cells: Sequence[str], widths: Sequence[int], indent: str) -> str:
    return (indent + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))).rstrip()


def cell(item: Any) -> str:
    text = "" if item is None else scalar(item)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 3] + "..."


def scalar(item: Any) -> str:
    if isinstance(item, bool):
        return "yes" if item else "no"
    if isinstance(item, float):
        return f"{item:.3f}".rstrip("0").rstrip(".") if abs(item) < 1e12 else repr(item)
    if isinstance(item, str):
        return item
    if item is None:
        return "-"
    return json.dumps(item, separators=(",", ":"), default=str)


# Units people read: durations and ages, ISO times, MiB.


def duration(seconds: Any) -> str:
    """``4.3s``, ``1m26s``, ``2h05m``, ``3d4h``; ``-`` for no number."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "-"
    seconds = max(0.0, float(seconds))
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def ago(ts: Any, now: float | None = None) -> str:
    """How long ago Unix time ``ts`` was (never negative: a clock that stepped back reads 0)."""
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        return "-"
    return f"{duration((time.time() if now is None else now) - ts)} ago"


def iso(ts: Any) -> str:
    """Unix time ``ts`` as a local ISO 8601 date and time, to the second."""
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(ts))


def utc_iso(ts: float | None) -> str | None:
    """Unix time ``ts`` as UTC ISO 8601 to the second, for stored records; None stays None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def mib(size: Any) -> str:
    if not isinstance(size, int | float) or isinstance(size, bool):
        return "-"
    return f"{size / 2**20:.1f} MiB"


def tree(nodes: Sequence[Mapping[str, Any]]) -> str:
    """The supervision tree, children indented under their supervisor, in start order."""
    children: dict[str, list[Mapping[str, Any]]] = {}
    for node in nodes:
        children.setdefault(str(node.get("parent") or ""), []).append(node)
    # The top supervisor reports nobody's state, so it appears only as a parent.
    roots = sorted(set(children) - {str(n.get("name")) for n in nodes})
    lines: list[str] = []
    for root in roots:
        lines.append(root or "(root)")
        _branch(children, root, "", lines)
    return "\n".join(lines) or "(no actors)"


def _branch(
    children: Mapping[str, list[Mapping[str, Any]]], parent: str, prefix: str, lines: list[str]
) -> None:
    kids = children.get(parent, [])
    for i, node in enumerate(kids):
        last = i == len(kids) - 1
        lines.append(prefix + ("└── " if last else "├── ") + _node(node))
        _branch(children, str(node["name"]), prefix + ("    " if last else "│   "), lines)


def _node(node: Mapping[str, Any]) -> str:
    text = f"{node.get('name')}  {node.get('state')}"
    text += f"  restarts={node.get('restarts', 0)} gen={node.get('generation', 0)}"
    if node.get("last_error"):
        text += f"  last error: {cell(node['last_error'])}"
    return text


_LOG_HEAD = ("ts", "time", "timestamp", "level", "event", "message", "msg")


def log_lines(result: Any) -> str:
    """A service's output for people: JSON log lines as ``time level event key=value``, with
    the fields every line shares (its environment, its release) said once above them; other
    lines as they are."""
    if not isinstance(result, list) or not all(isinstance(line, str) for line in result):
        return value(result)
    parsed = [_json_object(line) for line in result]
    records = [r for r in parsed if r is not None]
    shared = _shared_fields(records) if len(records) > 1 else {}
    lines = [" ".join(f"{k}={cell(v)}" for k, v in shared.items())] if shared else []
    for line, record in zip(result, parsed, strict=True):
        lines.append(line if record is None else _log_line(record, shared))
    return "\n".join(lines) or "(no output yet)"


def _json_object(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _shared_fields(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    first = records[0]
    return {
        k: v
        for k, v in first.items()
        if k not in _LOG_HEAD and all(k in r and r[k] == v for r in records[1:])
    }


def _log_line(record: Mapping[str, Any], shared: Mapping[str, Any]) -> str:
    stamp = record.get("ts", record.get("time", record.get("timestamp")))
    if isinstance(stamp, int | float):
        clock = time.strftime("%H:%M:%S", time.localtime(stamp))
    else:  # an ISO 8601 text: its time of day
        clock = str(stamp or "").partition("T")[2].rstrip("Z")[:12] or "--:--:--"
    what = record.get("event", record.get("message", record.get("msg", "")))
    rest = " ".join(
        f"{k}={cell(v)}" for k, v in record.items() if k not in _LOG_HEAD and k not in shared
    )
    return f"{clock} {record.get('level', '')!s:<7} {what} {rest}".rstrip()
