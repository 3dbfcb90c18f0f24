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
from dataclasses import dataclass

from gaia_actors.improve.pysource import LexResult, lex

_NAME = re.compile(r"[ \t]+(\w+)")

_BLANKS = (" ", "\t")
_LINE_BLANKS = (" ", "\t", "\n")


@dataclass(frozen=True, slots=True)
class _Header:
    offset: int  # start of its line
    col: int
    name: str


_UNSEEN = _Header(-1, -1, "")  # not looked at yet (None: looked at, no header there)


class ScopeFinder:
    """The qualified name of the def/class scope a position is in (see this module's docstring).

    Headers are searched backwards from each position, lazily, with ``str.rfind`` for the
    keywords: a marker comment usually sits a few lines below its function's ``def``, a comment
    in column 0 needs no search at all, and what was found at a keyword is kept for the next
    position asked about (the comments of a file share most of their way back).
    """

    def __init__(self, text: str, string_starts: Sequence[int], string_ends: Sequence[int]) -> None:
        self._text = text
        self._starts = string_starts
        self._ends = string_ends
        self._headers: dict[int, _Header | None] = {}  # by keyword offset, for later positions
        self._scans: dict[int, tuple[int, int]] = {}  # by header offset: see _dedents

    def scope(self, offset: int, col: int) -> str:
        """The scope of a token starting at ``offset`` in column ``col``."""
        if col == 0:
            return ""  # nothing encloses column 0
        text = self._text
        line_start = text.rfind("\n", 0, offset) + 1
        names: list[str] = []
        limit = col
        # The nearest keyword first; "class" is only looked for after the next "def" back, so
        # the search never goes further back than the headers it needs.
        pos, next_def = offset, text.rfind("def", 0, offset)
        while limit > 0:
            found = text.rfind("class", next_def + 1, pos)
            if found >= 0:
                pos, keyword = found, "class"
            elif next_def >= 0:
                pos, keyword = next_def, "def"
                next_def = text.rfind(keyword, 0, pos)
            else:
                break
            header = self._headers.get(pos, _UNSEEN)
            if header is _UNSEEN:
                header = self._headers[pos] = self._header_at(pos, keyword)
            if header is not None and header.col < limit and not self._dedents(header, line_start):
                names.append(header.name)
                limit = header.col
        return ".".join(reversed(names))

    def _header_at(self, pos: int, keyword: str) -> _Header | None:
        """The header whose keyword is at ``pos``, if only indentation (and ``async``) precedes
        it on its line, a name follows it, and it is not inside a string. The cheap tests come
        first: most candidates (``default``, ``subclass``) fail them."""
        text = self._text
        after = pos + len(keyword)
        if text[after : after + 1] not in _BLANKS or (pos and text[pos - 1] not in _LINE_BLANKS):
            return None
        line_start = text.rfind("\n", 0, pos) + 1
        prefix = text[line_start:pos]
        col = len(prefix) - len(prefix.lstrip(" \t"))
        if prefix[col:].rstrip(" \t") not in ("", "async"):
            return None
        name = _NAME.match(text, after)
        if name is None or self._string_end(line_start + col) is not None:
            return None
        return _Header(line_start, col, name.group(1))

    def _dedents(self, header: _Header, until: int) -> bool:
        """Is there a code line indented at most ``header.col`` between the header and ``until``?

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
            span_end = self._string_end(match.end())
            if span_end is None:
                found = match.end()  # the first character of the code line
            else:
                resume = span_end
        self._scans[header.offset] = (resume, found)
        return 0 <= found < until

    def _string_end(self, offset: int) -> int | None:
        """The end of the string literal ``offset`` is strictly inside (its opening quote is
        code, not inside), or None."""
        index = bisect.bisect_right(self._starts, offset) - 1
        if index >= 0 and self._starts[index] < offset < self._ends[index]:
            return self._ends[index]
        return None


@functools.cache
def _dedent_pattern(col: int) -> re.Pattern[str]:
    """A line start followed by code indented at most ``col``."""
    return re.compile(rf"\n[ \t]{{0,{col}}}(?=[^\s#])")


def scope_finder(text: str, lexed: LexResult | None = None) -> ScopeFinder:
    """A ``ScopeFinder`` for ``text``, from a ``lex`` result that reached the positions to be
    asked about (or from a full lex of the text)."""
    result = lexed if lexed is not None else lex(text, want=_NOTHING)
    return ScopeFinder(text, result.string_starts, result.string_ends)


_NOTHING = re.compile(r"(?!)")
