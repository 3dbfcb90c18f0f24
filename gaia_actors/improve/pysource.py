"""Python comments and string literals: found by ``tokenize``, or by a fast lexer.

``comments_via_tokenize`` is the reference: the standard tokenizer, so a ``#`` inside a string,
docstring or f-string is never a comment. It is pure Python and slow (~3 MB/s here: 12.8 s for
the 42.7 MB of standard-library files that contain "TODO" or "FIXME", where grep scans all
161 MB in 0.43 s), so the analysis uses ``lex`` instead (tokenize only reads files that do not
parse): it recognises exactly the two token kinds that matter — comments and string literals
(all quote forms; prefixes need no special case because a backslash escapes a quote in raw
strings too) — and skips the code between them in C. ASCII text (nearly every source file) is
lexed over its bytes: quotes translated to ``#`` so one ``bytes.find`` reaches the next token,
docstrings closed by ``find``; other text by one compiled regular expression. The test suite
checks that they give the same comments as tokenize on crafted edge cases and on real modules,
and ``benchmarks/analysis_speed.py`` compares every finding with tokenize's over the whole
standard library (0 differences).

Where they differ: only on files that do not tokenize (an unterminated string, say), where
``tokenize`` stops at the error and the lexer carries on; such files are ``syntax_error``
findings in the full analysis anyway.

Scopes (the function or class a comment sits in, for a finding's identity) come from one
function, ``ScopeFinder``, used by both paths so their identities agree: the innermost
``def``/``class`` header before the comment that is indented less than the comment and that no
code line between them dedents out of. Lines inside brackets or after a backslash are taken as
code lines (a rare misattribution, harmless for an identity that only has to be stable).
"""

from __future__ import annotations

import bisect
import codecs
import functools
import io
import itertools
import re
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass

# A comment, or a string literal in any of its four quote forms, factored by first character
# and without named groups: that lets the engine skip the code between candidates with its
# first-character check (2.8x faster here than the same alternatives as named groups).
# Possessive quantifiers keep it from backtracking into long strings.
_SQ_BODY = (
    r"(?:''[^'\\]*+(?:(?:\\[\s\S]|'(?!''))[^'\\]*+)*+'''|[^'\\\r\n]*+(?:\\[\s\S][^'\\\r\n]*+)*+')"
)
_DQ_BODY = (
    r'(?:""[^"\\]*+(?:(?:\\[\s\S]|"(?!""))[^"\\]*+)*+"""|[^"\\\r\n]*+(?:\\[\s\S][^"\\\r\n]*+)*+")'
)
_LEXER = re.compile(rf"#[^\r\n]*|'{_SQ_BODY}|\"{_DQ_BODY}")
_NAME = re.compile(r"[ \t]+(\w+)")
_STRING_BYTES = re.compile(rf"'{_SQ_BODY}|\"{_DQ_BODY}".encode("ascii"))
_QUOTES_TO_HASH = bytes.maketrans(b"'\"", b"##")
_HASH = ord("#")
_BACKSLASH = ord("\\")
_TRIPLE_QUOTES = (b"'''", b'"""')


@dataclass(frozen=True, slots=True)
class Comment:
    """One comment: 1-based line, 0-based column and offset (characters), text with ``#``."""

    line: int
    col: int
    text: str
    offset: int


@dataclass(frozen=True, slots=True)
class TokenizeProblem:
    """Why ``tokenize`` stopped early (the comments before it are still reported)."""

    message: str
    line: int


@dataclass(frozen=True, slots=True)
class LexResult:
    """Comments and string literals (start and end offsets) found by ``lex``, up to its stop."""

    comments: tuple[Comment, ...]
    string_starts: list[int]
    string_ends: list[int]


def comments_via_tokenize(text: str) -> tuple[list[Comment], TokenizeProblem | None]:
    """Every comment, per the standard tokenizer, and the error that stopped it, if any."""
    comments: list[Comment] = []
    starts: list[int] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                starts = starts or line_starts(text)
                line, col = tok.start
                comments.append(Comment(line, col, tok.string, starts[line - 1] + col))
    except tokenize.TokenError as exc:
        message, (line, _col) = exc.args
        return comments, TokenizeProblem(str(message), int(line))
    except SyntaxError as exc:  # IndentationError and friends, raised by tokenize itself
        return comments, TokenizeProblem(exc.msg, exc.lineno or 1)
    return comments, None


def lex(text: str, stop: int | None = None, want: re.Pattern[str] | None = None) -> LexResult:
    """Comments (those ``want`` matches, or all) and string spans, until offset ``stop``."""
    limit = len(text) if stop is None else stop
    if text.isascii():  # one byte per character: offsets in the bytes are the text's
        data = text.encode("ascii")
        return _lex_bytes(data, limit, None if want is None else _bytes_pattern(want))
    return _lex_text(text, limit, want)


def _lex_text(text: str, limit: int, want: re.Pattern[str] | None) -> LexResult:
    """``lex`` by one regular expression over any text."""
    comments: list[Comment] = []
    starts: list[int] = []
    ends: list[int] = []
    line, counted = 1, 0
    for match in _LEXER.finditer(text):
        start = match.start()
        if start > limit:
            break
        if text[start] != "#":  # a string literal
            starts.append(start)
            ends.append(match.end())
            continue
        body = match.group()
        if want is not None and want.search(body) is None:
            continue
        line += text.count("\n", counted, start)
        counted = start
        comments.append(Comment(line, start - text.rfind("\n", 0, start) - 1, body, start))
    return LexResult(tuple(comments), starts, ends)


def _lex_bytes(data: bytes, limit: int, want: re.Pattern[bytes] | None) -> LexResult:
    """``lex`` over ASCII bytes, the same tokens as ``_lex_text`` several times faster.

    The regular expression engine looks for the first character of its three alternatives
    with a per-character set test; here every quote is first translated into ``#`` (a C table
    lookup per byte), so the next token start is one ``bytes.find`` of a single byte, and the
    expression only matches a string literal where one starts. As there, a quote that opens no
    valid literal (an unterminated string) is passed over and the search goes on after it.
    """
    starts_at = data.translate(_QUOTES_TO_HASH).find
    match_string = _STRING_BYTES.match
    comments: list[Comment] = []
    starts: list[int] = []
    ends: list[int] = []
    line, counted = 1, 0
    pos = starts_at(b"#")
    while 0 <= pos <= limit:
        if data[pos] != _HASH:
            string_end = _triple_quoted_end(data, pos)
            if string_end < 0:
                string = match_string(data, pos)
                if string is None:
                    pos = starts_at(b"#", pos + 1)
                    continue
                string_end = string.end()
            starts.append(pos)
            ends.append(string_end)
            pos = starts_at(b"#", string_end)
            continue
        end = _line_end(data, pos)
        if want is None or want.search(data, pos, end) is not None:
            line += data.count(b"\n", counted, pos)
            counted = pos
            col = pos - data.rfind(b"\n", 0, pos) - 1
            comments.append(Comment(line, col, data[pos:end].decode("ascii"), pos))
        pos = starts_at(b"#", end)
    return LexResult(tuple(comments), starts, ends)


def _triple_quoted_end(data: bytes, pos: int) -> int:
    """The end of the triple-quoted string opening at ``pos`` (its first unescaped closing
    triple quote, found with ``bytes.find``: docstrings are the longest tokens), or -1 when
    none opens there or it is unterminated (left to the regular expression)."""
    quotes = data[pos : pos + 3]
    if quotes not in _TRIPLE_QUOTES:
        return -1
    close = data.find(quotes, pos + 3)
    while close >= 0:
        run = close
        while data[run - 1] == _BACKSLASH:  # stops at the opening quotes at the latest
            run -= 1
        if (close - run) % 2 == 0:  # an odd run of backslashes escapes the first quote
            return close + 3
        close = data.find(quotes, close + 1)
    return -1


def _line_end(data: bytes, pos: int) -> int:
    """Where the line holding ``pos`` ends: its ``\\n`` or ``\\r``, or the end of the data."""
    end = data.find(b"\n", pos)
    end = len(data) if end < 0 else end
    carriage = data.find(b"\r", pos, end)
    return end if carriage < 0 else carriage


@functools.cache
def _bytes_pattern(pattern: re.Pattern[str]) -> re.Pattern[bytes]:
    """``pattern`` for ASCII bytes (markers are ASCII words; ``\\b`` means the same there)."""
    return re.compile(pattern.pattern.encode("ascii"), pattern.flags & ~re.UNICODE)


def last_hash_marker(text: str, markers: Sequence[str]) -> int:
    """Offset of the last marker with a ``#`` before it on its line, or -1.

    A comment starts with ``#`` on its own line, so a marker without one before it cannot be in
    a comment: this bounds how far ``lex`` must go, and spares it files whose markers all sit
    in strings or names.
    """
    best = -1
    for marker in markers:
        pos = text.rfind(marker)
        while pos > best:
            if text.find("#", text.rfind("\n", 0, pos) + 1, pos) >= 0:
                best = pos
                break
            pos = text.rfind(marker, 0, pos)
    return best


def declared_encoding(data: bytes) -> str | None:
    """The PEP 263 coding declaration (or UTF-8 BOM) of a Python file's bytes, normalised as
    ``tokenize.detect_encoding`` does ("utf-8-sig" for a BOM), or None when there is neither.

    Only the first two lines can declare an encoding, so a file whose head has no ``coding``
    and no BOM costs two ``find`` calls. Raises SyntaxError for an unknown or contradictory
    declaration, as the tokenizer does.
    """
    if data.startswith(codecs.BOM_UTF8):
        return tokenize.detect_encoding(io.BytesIO(data).readline)[0]
    first = data.find(b"\n")
    second = data.find(b"\n", first + 1) if first >= 0 else -1
    if data.find(b"coding", 0, len(data) if second < 0 else second) < 0:
        return None
    encoding = tokenize.detect_encoding(io.BytesIO(data).readline)[0]
    return None if encoding == "utf-8" else encoding


def line_starts(text: str) -> list[int]:
    """Offset of the start of each line (index 0 is line 1)."""
    lengths = (len(line) + 1 for line in text.split("\n"))
    return [0, *itertools.accumulate(lengths)]


@dataclass(frozen=True, slots=True)
class _Header:
    offset: int  # start of its line
    col: int
    name: str


class ScopeFinder:
    """The qualified name of the def/class scope a position is in (see the module docstring).

    Headers are searched backwards from each position, lazily, with ``str.rfind`` for the
    keywords: a marker comment usually sits a few lines below its function's ``def``, a comment
    in column 0 needs no search at all, and a candidate indented too deeply is dismissed by its
    column before anything else is looked at.
    """

    def __init__(self, text: str, string_starts: Sequence[int], string_ends: Sequence[int]) -> None:
        self._text = text
        self._starts = string_starts
        self._ends = string_ends
        self._dedent_rx: dict[int, re.Pattern[str]] = {}

    def scope(self, offset: int, col: int) -> str:
        """The scope of a token starting at ``offset`` in column ``col``."""
        text = self._text
        line_start = text.rfind("\n", 0, offset) + 1
        names: list[str] = []
        limit = col
        nearest = {"def": text.rfind("def", 0, offset), "class": text.rfind("class", 0, offset)}
        while limit > 0 and max(nearest.values()) >= 0:
            keyword = "def" if nearest["def"] > nearest["class"] else "class"
            pos = nearest[keyword]
            nearest[keyword] = text.rfind(keyword, 0, pos)
            header = self._header_at(pos, keyword, limit)
            if header is not None and not self._dedents(header, line_start):
                names.append(header.name)
                limit = header.col
        return ".".join(reversed(names))

    def _header_at(self, pos: int, keyword: str, limit: int) -> _Header | None:
        """The header whose keyword is at ``pos``, if it is indented less than ``limit``, only
        indentation (and ``async``) precedes it on its line, a name follows it, and it is not
        inside a string. The cheap tests come first: most candidates fail them."""
        text = self._text
        line_start = text.rfind("\n", 0, pos) + 1
        if pos - line_start >= limit + len("async "):
            return None
        prefix = text[line_start:pos]
        col = len(prefix) - len(prefix.lstrip(" \t"))
        stripped = prefix[col:].rstrip(" \t")
        if col >= limit or (stripped and not (stripped == "async" and prefix[-1] in " \t")):
            return None
        name = _NAME.match(text, pos + len(keyword))
        if name is None or self._string_end(line_start + col) is not None:
            return None
        return _Header(line_start, col, name.group(1))

    def _dedents(self, header: _Header, until: int) -> bool:
        """Is there a code line indented at most ``header.col`` between the header and ``until``?"""
        pattern = self._dedent_rx.get(header.col)
        if pattern is None:
            pattern = re.compile(rf"\n[ \t]{{0,{header.col}}}(?=[^\s#])")
            self._dedent_rx[header.col] = pattern
        pos = self._text.find("\n", header.offset)
        while 0 <= pos < until:
            match = pattern.search(self._text, pos, until)
            if match is None:
                return False
            span_end = self._string_end(match.end())
            if span_end is None:
                return True
            pos = span_end  # the next candidate is the next newline after the string
        return False

    def _string_end(self, offset: int) -> int | None:
        """The end of the string literal ``offset`` is strictly inside (its opening quote is
        code, not inside), or None."""
        index = bisect.bisect_right(self._starts, offset) - 1
        if index >= 0 and self._starts[index] < offset < self._ends[index]:
            return self._ends[index]
        return None


def scope_finder(text: str, lexed: LexResult | None = None) -> ScopeFinder:
    """A ``ScopeFinder`` for ``text``, from a ``lex`` result that reached the positions to be
    asked about (or from a full lex of the text)."""
    result = lexed if lexed is not None else lex(text, want=_NOTHING)
    return ScopeFinder(text, result.string_starts, result.string_ends)


_NOTHING = re.compile(r"(?!)")
