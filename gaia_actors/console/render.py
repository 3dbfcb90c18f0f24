"""Readable text for command results, events and help (the CLI's and the REPL's output).

Everything here takes the JSON the control socket delivers (dicts, lists, scalars) and
returns text; ``Printer`` is the one place that writes it (readable, or JSON lines for
scripts: results on stdout, progress, notes and errors on stderr). A command may bring its
own renderer (``@command(..., render=fn)``); otherwise a list of objects is a table, an
object is aligned ``key: value`` lines (nested lists of objects as indented tables), and
``actors`` is drawn as a tree (the value formatting it builds on is ``formatting``'s).
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

from gaia_actors.control.commands import Command
from gaia_actors.formatting import cell, scalar, tree, value

_COLORS = {"debug": "2", "warning": "33", "error": "31", "critical": "1;31"}


def render(result: Any, cmd: Command | None = None) -> str:
    """The readable form of ``cmd``'s result."""
    if cmd is not None and cmd.render is not None:
        return cmd.render(result)
    special = _SPECIAL.get(cmd.name) if cmd is not None else None
    if special is not None:
        return special(result)
    return value(result)


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
        f"{k}={cell(v)}"
        for k, v in event.items()
        if k not in ("ts", "level", "event", "env", "actor")
    )
    line = f"{head} {rest}".rstrip()
    code = _COLORS.get(level)
    return f"\x1b[{code}m{line}\x1b[0m" if color and code else line


# Progress keys meant for scripts (``--json``), not for the person reading the line.
_MACHINE_KEYS = frozenset({"event"})


def progress_line(update: Any) -> str:
    if isinstance(update, Mapping):
        message = update.get("message") or update.get("stage") or update.get("phase")
        rest = " ".join(
            f"{k}={cell(v)}" for k, v in update.items() if v != message and k not in _MACHINE_KEYS
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
