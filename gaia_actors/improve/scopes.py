"""The function or class a comment sits in, for a finding's identity.

``ScopeFinder`` serves the tokenizer's path and the lexer's alike, so their identities agree:
the scope is the innermost ``def``/``class`` header before the comment that is indented less
than the comment and that no code line between them dedents out of. Lines inside brackets or
after a backslash are taken as code lines (a rare misattribution, harmless for an identity
that only has to be stable).
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Sequence
from typing import NamedTuple

from gaia_actors.improve.pysource import LexResult, lex

_NAME = re.compile(r"[ \t]+(\w+)")

_BLANKS = (" ", "\t")
_LINE_BLANKS = (" ", "\t", "\n")


class _Header(NamedTuple):  # a tuple: thousands are made per file
    offset: int  # start of its line
    col: int
    name: str
    keyword: int  # offset of its "def" or "class"


_UNSEEN = _Header(-1, -1, "", -1)  # not looked at yet (None: looked at, nothing there)


class ScopeFinder:
    """The qualified name of the def/class scope a position is in (see this module's docstring).

    Headers are searched backwards from each position, lazily, with ``str.rfind`` for the
    keywords: a marker comment usually sits a few lines below its function's ``def``, and a
    comment in column 0 needs no search at all. What is found is kept for the next position
    asked about: each header's parent (the header enclosing it) and qualified name, so a
    search that meets a header whose parent is known jumps straight to that parent. Every
    header between the two was already found not to enclose the header, so none encloses a
    later position indented no deeper than the header either.
    """

    def __init__(self, text: str, string_starts: Sequence[int], string_ends: Sequence[int]) -> None:
        self._text = text
        self._starts = string_starts
        self._ends = string_ends
        self._headers: dict[int, _Header | None] = {}  # by keyword offset
        self._scans: dict[int, tuple[int, int]] = {}  # by header offset: see _dedent
        self._parents: dict[int, _Header | None] = {}  # by header offset
        self._names: dict[int, str] = {}  # by header offset: its qualified name

    def scope(self, offset: int, col: int) -> str:
        """The scope of a token starting at ``offset`` in column ``col``."""
        header = self._innermost(offset, col) if col else None  # nothing encloses column 0
        return "" if header is None else self._qualified_name(header)

    def _qualified_name(self, header: _Header) -> str:
        name = self._names.get(header.offset)
        if name is None:
            parent = self._parent(header)
            name = (
                header.name if parent is None else f"{self._qualified_name(parent)}.{header.name}"
            )
            self._names[header.offset] = name
        return name

    def _parent(self, header: _Header) -> _Header | None:
        """The header enclosing ``header``: what encloses a header encloses every position
        inside it (no line between the header and such a position can dedent out of an outer
        scope without dedenting out of the header's first)."""
        parent = self._parents.get(header.offset, _UNSEEN)
        if parent is _UNSEEN:
            parent = self._innermost(header.offset + header.col, header.col) if header.col else None
            self._parents[header.offset] = parent
        return parent

    def _innermost(self, offset: int, col: int) -> _Header | None:
        """The nearest header before ``offset`` indented less than ``col`` that no code line
        between it and the line of ``offset`` dedents out of.

        The headers indented exactly ``col`` that the search passes on its way (a class's
        earlier methods, for a method's parent) get their parent from its answer: the search
        passed every header between them and it, and found none that encloses ``offset``
        (that dedents out of nothing in between), so none that encloses them either, unless a
        dedent was found after them (then they are not kept)."""
        text = self._text
        line_start = text.rfind("\n", 0, offset) + 1
        siblings: list[_Header] = []
        # The nearest keyword first; "class" is only looked for after the next "def" back, so
        # the search never goes further back than the header it needs.
        pos, next_def = offset, text.rfind("def", 0, offset)
        while True:
            found = text.rfind("class", next_def + 1, pos)
            if found >= 0:
                pos, keyword = found, "class"
            elif next_def >= 0:
                pos, keyword = next_def, "def"
                next_def = text.rfind(keyword, 0, pos)
            else:
                return self._adopted(siblings, None)
            after = pos + len(keyword)
            if text[after : after + 1] not in _BLANKS or (
                pos and text[pos - 1] not in _LINE_BLANKS
            ):
                continue  # most keywords found fail here: "default", "subclass"
            header = self._headers.get(pos, _UNSEEN)
            if header is _UNSEEN:
                header = self._headers[pos] = self._header_at(pos, keyword)
            while header is not None:
                if header.col < col:
                    dedent = self._dedent(header, line_start)
                    if dedent < 0:
                        return self._adopted(siblings, header)
                    # That code line dedents out of every header before it indented as deep
                    # as it: only one indented less can still enclose ``offset``.
                    col = dedent
                    siblings.clear()
                    if not col:
                        return None
                    break
                jump = self._parents.get(header.offset, _UNSEEN)  # see the class docstring
                if jump is _UNSEEN:
                    if header.col == col:
                        siblings.append(header)
                    break
                if jump is None:
                    return self._adopted(siblings, None)
                header = jump
                pos, next_def = jump.keyword, text.rfind("def", 0, jump.keyword)

    def _adopted(self, siblings: list[_Header], parent: _Header | None) -> _Header | None:
        """``parent``, now known as the parent of each of ``siblings`` too."""
        for sibling in siblings:
            self._parents[sibling.offset] = parent
        return parent

    def _header_at(self, pos: int, keyword: str) -> _Header | None:
        """The header whose keyword is at ``pos``, if only indentation (and ``async``) precedes
        it on its line, a name follows it, and it is not inside a string (the caller has
        checked the blanks around the keyword)."""
        text = self._text
        line_start = text.rfind("\n", 0, pos) + 1
        prefix = text[line_start:pos]
        code = prefix.lstrip(" \t")
        if code and code.rstrip(" \t") != "async":
            return None
        name = _NAME.match(text, pos + len(keyword))
        col = len(prefix) - len(code)
        if name is None or self._string_end(line_start + col) is not None:
            return None
        return _Header(line_start, col, name.group(1), pos)

    def _dedent(self, header: _Header, until: int) -> int:
        """The indentation of the first code line indented at most ``header.col`` between the
        header and ``until``, or -1 if there is none.

        The search goes on where the last one for the same header stopped (a file's comments
        come in order, and often share their outer headers)."""
        resume, found = self._scans.get(header.offset, (-2, -1))
        if resume == -2:
            resume = self._text.find("\n", header.offset)
        pattern = _dedent_pattern(header.col)
        while found < 0 and 0 <= resume < until:
            match = pattern.search(self._text, resume, until)
            if match is None:
                resume = until - 1  # that line end is still to be tried with the next line
                break
            code = match.end() - 1  # the first character of the code line
            span_end = self._string_end(code)
            if span_end is None:
                found = code
            else:
                resume = span_end
        self._scans[header.offset] = (resume, found)
        if not 0 <= found < until:
            return -1
        return found - self._text.rfind("\n", 0, found) - 1

    def _string_end(self, offset: int) -> int | None:
        """The end of the string literal ``offset`` is strictly inside (its opening quote is
        code, not inside), or None."""
        index = bisect.bisect_right(self._starts, offset) - 1
        if index >= 0 and self._starts[index] < offset < self._ends[index]:
            return self._ends[index]
        return None


@functools.cache
def _dedent_pattern(col: int) -> re.Pattern[str]:
    """A line start followed by code indented at most ``col``, up to the code's first
    character. Possessive, without a lookahead: the scans of long class bodies take a quarter
    less time so."""
    return re.compile(rf"\n[ \t]{{0,{col}}}+[^\s#]" if col else r"\n[^\s#]")


def scope_finder(text: str, lexed: LexResult | None = None) -> ScopeFinder:
    """A ``ScopeFinder`` for ``text``, from a ``lex`` result that reached the positions to be
    asked about (or from a full lex of the text)."""
    result = lexed if lexed is not None else lex(text, want=_NOTHING)
    return ScopeFinder(text, result.string_starts, result.string_ends)


_NOTHING = re.compile(r"(?!)")
