"""A small Go lexer: comments, strings, raw strings, runes, and the top-level func each is in.

Go's lexical grammar is regular where it matters here, so one regular expression tokenises it:
``//`` and ``/* */`` comments, interpreted strings, raw (backquoted) strings, runes, numbers,
identifiers and the brackets the scope tracker needs. A ``// TODO`` inside a string or a raw
string is therefore not a comment, and a ``panic(`` inside a comment or string is not a call.

Scope: a ``func`` in column 0 at brace depth 0 (gofmt's layout) opens a scope named ``Name``
(``Type.Name`` for a method: the receiver's type), from the first ``{`` after its signature at
bracket depth 0 (``{`` right after ``struct`` or ``interface`` is a type literal, not the body)
to the brace that closes it.
Function literals inside a body belong to the enclosing top-level function.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from supervisors.records import record

_TOKEN = re.compile(
    r"(?P<lcomment>//[^\n]*)"
    r"|(?P<bcomment>/\*[\s\S]*?\*/)"
    r"|(?P<raw>`[^`]*`)"
    r'|(?P<string>"[^"\\\n]*+(?:\\.[^"\\\n]*+)*+")'
    r"|(?P<rune>'[^'\\\n]*+(?:\\.[^'\\\n]*+)*+')"
    r"|(?P<number>\.?\d(?:[eEpP][+-]|[\w.])*)"
    r"|(?P<ident>[^\W\d]\w*)"
    r"|(?P<punct>[{}()])"
)
_CALL_PAREN = re.compile(r"[ \t]*\(")


@record
class GoComment:
    """One physical line of a comment (a block comment gives one per line it spans)."""

    line: int
    col: int
    text: str
    scope: str


@record
class GoCall:
    """A call of a builtin such as ``panic``: where, and in which function."""

    line: int
    col: int
    scope: str


@record
class GoScan:
    comments: tuple[GoComment, ...]
    panics: tuple[GoCall, ...]


@dataclass(slots=True)
class _ScopeTracker:
    """Follows braces and ``func`` headers at depth 0 (see the module docstring)."""

    depth: int = 0
    parens: int = 0
    current: str = ""
    body_depth: int = -1
    header: list[str] = field(default_factory=list)
    in_header: bool = False
    receiver: list[str] = field(default_factory=list)
    receiver_open: bool = False
    previous: str = ""

    def feed(self, kind: str, value: str, line_start: bool) -> None:
        if kind == "ident":
            self._ident(value, line_start)
        elif kind == "punct":
            self._punct(value)
        self.previous = value

    def _ident(self, value: str, line_start: bool) -> None:
        # gofmt puts every top-level declaration in column 0; a "func" elsewhere at depth 0
        # is a function type or literal ("type F func()", "var f = func() {...}").
        if value == "func" and self.depth == 0 and line_start:
            self.in_header, self.header, self.receiver = True, [], []
        elif self.in_header and self.receiver_open:
            self.receiver.append(value)
        elif self.in_header and not self.header and self.parens == 0:
            self.header.append(value)

    def _punct(self, value: str) -> None:
        if value == "(":
            self.receiver_open = self.in_header and not self.header and self.parens == 0
            self.parens += 1
        elif value == ")":
            self.parens = max(0, self.parens - 1)
            self.receiver_open = False
        elif value == "{":
            self._open_brace()
        elif value == "}":
            self.depth = max(0, self.depth - 1)
            if self.depth == self.body_depth:
                self.current, self.body_depth = "", -1

    def _open_brace(self) -> None:
        if self.in_header and self.parens == 0 and self.previous not in ("struct", "interface"):
            self.in_header = False
            name = self.header[0] if self.header else ""
            if self.receiver:
                kind = self.receiver[1] if len(self.receiver) > 1 else self.receiver[0]
                name = f"{kind}.{name}"
            self.current, self.body_depth = name, self.depth
        self.depth += 1


def scan(text: str, calls: frozenset[str] = frozenset({"panic"})) -> GoScan:
    """Comments (line by line) and calls of the builtins in ``calls``, each with its scope."""
    comments: list[GoComment] = []
    panics: list[GoCall] = []
    tracker = _ScopeTracker()
    line, counted = 1, 0
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or ""
        if kind in ("ident", "punct"):
            value = match.group()
            if kind == "ident" and value in calls and _is_call(text, match):
                line += text.count("\n", counted, match.start())
                counted = match.start()
                panics.append(GoCall(line, _column(text, match.start()), tracker.current))
            start = match.start()
            tracker.feed(kind, value, start == 0 or text[start - 1] == "\n")
        elif kind in ("lcomment", "bcomment"):
            line += text.count("\n", counted, match.start())
            counted = match.start()
            comments.extend(_comment_lines(text, match, line, tracker.current))
    return GoScan(tuple(comments), tuple(panics))


def _is_call(text: str, match: re.Match[str]) -> bool:
    if match.start() > 0 and text[match.start() - 1] == ".":
        return False  # a method or field such as t.panic(...)
    return _CALL_PAREN.match(text, match.end()) is not None


def _comment_lines(text: str, match: re.Match[str], line: int, scope: str) -> list[GoComment]:
    col = _column(text, match.start())
    return [
        GoComment(line + i, col if i == 0 else 0, part, scope)
        for i, part in enumerate(match.group().split("\n"))
    ]


def _column(text: str, offset: int) -> int:
    return offset - text.rfind("\n", 0, offset) - 1
