"""Readable text for command results, events and help (the CLI's and the REPL's output).

Everything here takes the JSON the control socket delivers (dicts, lists, scalars) and
returns text; ``Printer`` is the one place that writes it (readable, or JSON lines for
scripts: results on stdout, progress, notes and errors on stderr). A command may bring its
own renderer (``@command(..., render=fn)``); otherwise a list of objects is a table, an
object is aligned ``key: value`` lines (nested lists of objects as indented tables), and
``actors`` is drawn as a tree.
"""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from gaia_actors.commands import Command

MAX_CELL = 60
_COLORS = {"debug": "2", "warning": "33", "error": "31", "critical": "1;31"}


def render(result: Any, cmd: Command | None = None) -> str:
    """The readable form of ``cmd``'s result."""
    if cmd is not None and cmd.render is not None:
        return cmd.render(result)
    special = _SPECIAL.get(cmd.name) if cmd is not None else None
    if special is not None:
        return special(result)
    return value(result)


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
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [_row([c.upper() for c in columns], widths, indent)]
    lines.extend(_row(r, widths, indent) for r in cells)
    return "\n".join(lines)


def _row(cells: Sequence[str], widths: Sequence[int], indent: str) -> str:
    return (indent + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))).rstrip()


def _cell(item: Any) -> str:
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
        text += f"  last error: {_cell(node['last_error'])}"
    return text


def event_line(event: Mapping[str, Any], color: bool = False) -> str:
    """``12:04:05 warning supervisor.restart [root] child=bus delay=0``."""
    ts = event.get("ts")
    clock = (
        time.strftime("%H:%M:%S", time.localtime(ts)) if isinstance(ts, int | float) else "--:--:--"
    )
    level = str(event.get("level", "info"))
    head = f"{clock} {level:<7} {event.get('event', '?')}"
    if event.get("env"):
        head += f" env={event['env']}"
    if event.get("actor"):
        head += f" [{event['actor']}]"
    rest = " ".join(
        f"{k}={_cell(v)}"
        for k, v in event.items()
        if k not in ("ts", "level", "event", "env", "actor")
    )
    line = f"{head} {rest}".rstrip()
    code = _COLORS.get(level)
    return f"\x1b[{code}m{line}\x1b[0m" if color and code else line


# Progress keys meant for scripts (``--json``), not for the person reading the line.
_MACHINE_KEYS = frozenset({"event"})


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
    lines = [" ".join(f"{k}={_cell(v)}" for k, v in shared.items())] if shared else []
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
        f"{k}={_cell(v)}" for k, v in record.items() if k not in _LOG_HEAD and k not in shared
    )
    return f"{clock} {record.get('level', '')!s:<7} {what} {rest}".rstrip()


def progress_line(update: Any) -> str:
    if isinstance(update, Mapping):
        message = update.get("message") or update.get("stage") or update.get("phase")
        rest = " ".join(
            f"{k}={_cell(v)}" for k, v in update.items() if v != message and k not in _MACHINE_KEYS
        )
        return f"... {message or ''} {rest}".rstrip()
    return f"... {scalar(update)}"


def plain(text: str) -> str:
    """Help text without its reStructuredText quoting (```x``` and ``x`` read as x)."""
    return re.sub(r"`+([^`]*)`+", r"\1", text)


Listing = Sequence[tuple[str, Sequence[tuple[str, str]]]]


def listing(groups: Listing, width: int = 100, column: int = 34) -> str:
    """Titled groups of (synopsis, help) lines: help aligned in one column and wrapped at
    ``width``; a synopsis wider than the column gets a line of its own."""
    widest = max((len(s) for _, entries in groups for s, _ in entries), default=0)
    indent = min(widest, column) + 4
    lines: list[str] = []
    for title, entries in groups:
        lines += ["", f"{title}:"] if lines else [f"{title}:"]
        for synopsis, text in entries:
            wrapped = textwrap.wrap(plain(text), max(20, width - indent)) or [""]
            if len(synopsis) + 4 > indent:
                lines.append(f"  {synopsis}")
            else:
                lines.append(f"  {synopsis.ljust(indent - 4)}  {wrapped.pop(0)}")
            lines.extend(" " * indent + rest for rest in wrapped)
    return "\n".join(lines)


def command_help(cmd: Command) -> str:
    lines = [f"usage: {cmd.usage()}", "", *textwrap.wrap(plain(cmd.help), 100)]
    params = [*cmd.args, *cmd.options]
    if params:
        lines.append("")
    for arg in cmd.args:
        extra = "" if arg.required else " (optional" + default_note(arg.default, ", ") + ")"
        lines.append(f"  {arg.name.upper():<16} {arg.type.__name__}{extra}  {arg.help}".rstrip())
    for opt in cmd.options:
        note = default_note(opt.default, " (", ")")
        lines.append(f"  {opt.flag:<16} {opt.type.__name__}{note}  {opt.help}".rstrip())
    if cmd.offline:
        lines += ["", "works without a daemon (reads the store)"]
    return "\n".join(lines)


def default_note(default: Any, before: str = "", after: str = "") -> str:
    """``default X`` for help, or nothing when there is no meaningful default (None, '',
    False: an option left out does nothing)."""
    if default is None or default == "" or default is False:
        return ""
    return f"{before}default {default!r}{after}"


def message_help(name: str, doc: str, fields: Sequence[Mapping[str, Any]]) -> str:
    lines = [f"{name}: {plain(doc)}" if doc else name]
    if not fields:
        lines.append("  (no fields)")
    for f in fields:
        default = f.get("default")
        nothing = default in ("None", "''", "()", "")  # left out, the field means nothing
        need = "required" if f.get("required") else "optional" if nothing else f"default {default}"
        lines.append(f"  {f.get('name')}: {f.get('type')}  ({need})")
    return "\n".join(lines)


def message_list(result: Any) -> str:
    """``messages``: one line per type, ``Name(field: type, ...)`` and its doc."""
    if not isinstance(result, list):
        return value(result)
    lines = []
    for item in result:
        fields = ", ".join(
            f"{f.get('name')}: {f.get('type')}" + ("" if f.get("required") else "?")
            for f in item.get("fields", [])
        )
        lines.append(f"{item.get('name')}({fields})\n    {plain(str(item.get('doc', '')))}")
    return "\n".join(lines)


_SPECIAL: dict[str, Callable[[Any], str]] = {
    "actors": lambda result: tree(result) if isinstance(result, list) else value(result),
    "messages": message_list,
}


class Printer:
    """Writes results, events, progress and errors, readable or as JSON lines."""

    def __init__(
        self, json_output: bool = False, out: TextIO | None = None, err: TextIO | None = None
    ) -> None:
        self.json_output = json_output
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.color = self.out.isatty() and not os.environ.get("NO_COLOR")  # no-color.org

    def result(self, result: Any, cmd: Command | None = None) -> None:
        self._write(self.out, _json(result) if self.json_output else render(result, cmd))

    def event(self, event: Mapping[str, Any]) -> None:
        self._write(self.out, _json(event) if self.json_output else event_line(event, self.color))

    def progress(self, update: Any) -> None:
        self._write(
            self.err, _json({"progress": update}) if self.json_output else progress_line(update)
        )

    def note(self, text: str) -> None:
        self._write(self.err, _json({"note": text}) if self.json_output else text)

    def error(self, text: str) -> None:
        self._write(self.err, _json({"error": text}) if self.json_output else f"error: {text}")

    def screen(self, result: Any, cmd: Command, footer: str) -> None:
        """A full-screen refresh (``monitor``); one JSON line per view in JSON mode."""
        if self.json_output:
            self.result(result, cmd)
            return
        clear = "\x1b[H\x1b[2J" if self.color else ""
        stamp = time.strftime("%H:%M:%S")
        self._write(self.out, f"{clear}{render(result, cmd)}\n\n{stamp}  {footer}")

    def _write(self, stream: TextIO, text: str) -> None:
        stream.write(text + "\n")
        stream.flush()


def _json(data: Any) -> str:
    return json.dumps(data, default=str)
