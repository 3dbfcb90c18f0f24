"""Python comments and string literals: found by ``tokenize``, or by a fast lexer.

``comments_via_tokenize`` is the reference: the standard tokenizer, so a ``#`` inside a string,
docstring or f-string is never a comment. It is pure Python and slow (~3 MB/s here: 12.8 s for
the 42.7 MB of standard-library files that contain "TODO" or "FIXME", where grep scans all
161 MB in 0.43 s), so the analysis uses ``lex`` instead (tokenize only reads files that do not
parse): it recognises exactly the two token kinds that matter — comments and string literals
(all quote forms; prefixes need no special case because a backslash escapes a quote in raw
strings too) — and skips the code between them in C. ASCII text (nearly every source file) is
lexed over its bytes: quotes translated to ``#`` so one ``bytes.find`` reaches the next token,
docstrings closed by ``find``; other text by one compiled regular expression. For marker
comments the analysis asks ``marker_comments``, which takes the same tokens but only on the
lines that can hold a marker after a ``#`` or carry a string literal on to the next line (any
text, as its UTF-8 bytes). The test suite checks that they give the same comments as tokenize
on crafted edge cases and on real modules, and ``benchmarks/analysis_speed.py`` compares every
finding with tokenize's over the whole standard library (0 differences).

Where they differ: only on files that do not tokenize (an unterminated string, say), where
``tokenize`` stops at the error and the lexer carries on; such files are ``syntax_error``
findings in the full analysis anyway.

Scopes (the function or class a comment sits in) are found by ``scopes``, from the string
spans a lex records.
"""

from __future__ import annotations

import codecs
import functools
import io
import itertools
import re
import tokenize
from collections.abc import Sequence

from gaia_actors.improve import bytesearch
from supervisors.records import record

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
_STRING_BYTES = re.compile(rf"'{_SQ_BODY}|\"{_DQ_BODY}".encode("ascii"))
_QUOTES_TO_HASH = bytes.maketrans(b"'\"", b"##")
_HASH = ord("#")
_BACKSLASH = ord("\\")
_TRIPLE_QUOTES = (b"'''", b'"""')


@record
class Comment:
    """One comment: 1-based line, 0-based column and offset (characters), text with ``#``."""

    line: int
    col: int
    text: str
    offset: int


@record
class TokenizeProblem:
    """Why ``tokenize`` stopped early (the comments before it are still reported)."""

    message: str
    line: int


@record
class Utf8:
    """A text's UTF-8 bytes as the reader has them, and where the markers are in them
    (``bytesearch.find_all``; None: not searched)."""

    data: bytes
    marker_starts: list[int] | None = None


@record
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
    starts_at = data[: limit + 1].translate(_QUOTES_TO_HASH).find  # no token past the limit
    tokens = _Tokens(data, want)
    pos = starts_at(b"#")
    while pos >= 0:
        pos = starts_at(b"#", tokens.take(pos))
    return tokens.result()


class _Tokens:
    """The comments and string literals found so far by one of the byte lexers."""

    def __init__(self, data: bytes, want: re.Pattern[bytes] | None) -> None:
        self._data = data
        self._want = want
        self.comments: list[Comment] = []
        self.starts: list[int] = []
        self.ends: list[int] = []
        self._line, self._counted = 1, 0

    def take(self, pos: int) -> int:
        """Take the token that may start at ``pos`` (a ``#`` or a quote); where to go on."""
        data = self._data
        if data[pos] != _HASH:
            string_end = _triple_quoted_end(data, pos)
            if string_end < 0:
                string = _STRING_BYTES.match(data, pos)
                if string is None:
                    return pos + 1  # no valid literal opens here: passed over
                string_end = string.end()
            self.starts.append(pos)
            self.ends.append(string_end)
            return string_end
        end = _line_end(data, pos)
        if self._want is None or self._want.search(data, pos, end) is not None:
            self._line += data.count(b"\n", self._counted, pos)
            self._counted = pos
            col = pos - data.rfind(b"\n", 0, pos) - 1
            # latin-1 maps any byte: ASCII as ASCII, UTF-8 for the caller to decode
            self.comments.append(Comment(self._line, col, data[pos:end].decode("latin-1"), pos))
        return end

    def result(self) -> LexResult:
        return LexResult(tuple(self.comments), self.starts, self.ends)


_TOKEN_START = re.compile(rb"[#'\"]")
_CROSSINGS = (b'"""', b"'''", b"\\\n")  # where a string literal can go on past a line end


def _lex_lines(data: bytes, want: re.Pattern[bytes] | None, candidates: list[int]) -> LexResult:
    """``lex`` up to the last of ``candidates``, on only the lines that need it: those holding
    a candidate (a marker with a ``#`` before it) or a ``_CROSSINGS`` sequence. Any other line
    starts and ends outside every string literal (a literal crosses a line end only as a
    triple-quoted string or after a backslash), so it is passed over unless a comment there
    could be wanted. Each token on a lexed line is taken as ``_lex_bytes`` takes it."""
    tokens = _Tokens(data, want)
    take, find_token = tokens.take, _TOKEN_START.search
    find, rfind, size = data.find, data.rfind, len(data)  # locals: this loop runs per line
    pos = 0  # outside every token from here on
    for at in _lines_to_lex(data, candidates):
        if at < pos:
            continue  # on a line already lexed, or inside a string already taken
        line_end = find(b"\n", at)
        if line_end < 0:
            line_end = size
        pos = max(pos, rfind(b"\n", 0, at) + 1)
        while pos <= line_end:  # until a string goes on past the line
            token = find_token(data, pos, line_end)
            if token is None:
                pos = line_end
                break
            pos = take(token.start())
    return tokens.result()


def _lines_to_lex(data: bytes, candidates: list[int]) -> list[int]:
    """The candidates and the ``_CROSSINGS`` before the last of them, in order."""
    return sorted([*candidates, *bytesearch.find_all(_CROSSINGS, data, candidates[-1] + 1)])


def marker_comments(
    text: str, markers: Sequence[str], want: re.Pattern[str], utf8: Utf8 | None = None
) -> LexResult:
    """The comments ``want`` matches (each must hold one of ``markers``), as ``lex`` finds
    them, and the string literals that span lines before the last of them (all a
    ``ScopeFinder`` asks about, as it only looks at the first non-blank character of a line).

    Only the lines a marker-bearing comment could be on, or a string could go on from, are
    lexed (``_lex_lines``); a file whose markers all lack a ``#`` before them on their line
    (so none can be in a comment) is not lexed at all. Other than ASCII text is lexed as its
    UTF-8 bytes, whose quotes, ``#``, backslashes and line ends are the text's, and the
    offsets found are turned back into characters. ``utf8``: those bytes (and where the
    markers are in them), if the caller has them.
    """
    is_ascii = text.isascii()
    data = utf8.data if utf8 is not None else text.encode("utf-8", "surrogatepass")
    starts = utf8.marker_starts if utf8 is not None else None
    if starts is None:
        starts = bytesearch.find_all(encoded_markers(tuple(markers)), data)
    candidates = _hash_marked(data, starts)
    if not candidates:
        return LexResult((), [], [])
    lexed = _lex_lines(data, _bytes_pattern(want) if is_ascii else None, candidates)
    return lexed if is_ascii else _in_characters(data, lexed, want)


def _hash_marked(data: bytes, marker_starts: list[int]) -> list[int]:
    """Those of ``marker_starts`` (sorted offsets in ``data``) that have a ``#`` before them
    on their line."""
    find, rfind = data.find, data.rfind
    return [pos for pos in marker_starts if find(b"#", rfind(b"\n", 0, pos) + 1, pos) >= 0]


@functools.cache
def encoded_markers(markers: tuple[str, ...]) -> tuple[bytes, ...]:
    """``markers`` as UTF-8 bytes (cached: asked for once per file)."""
    return tuple(marker.encode("utf-8") for marker in markers)


def _in_characters(data: bytes, lexed: LexResult, want: re.Pattern[str]) -> LexResult:
    """``lexed`` (found in UTF-8 ``data``) in character offsets, keeping the comments ``want``
    matches in their text (a bytes pattern's ``\\b`` would not see letters beyond ASCII)."""
    comment_starts = (comment.offset for comment in lexed.comments)
    offsets = sorted({0, *comment_starts, *lexed.string_starts, *lexed.string_ends})
    chars: dict[int, int] = {}
    done = counted = 0
    for offset in offsets:  # offsets of ASCII characters: never inside a multi-byte one
        counted += _characters(data, done, offset)
        done = offset
        chars[offset] = counted
    comments = []
    for comment in lexed.comments:
        start = comment.offset
        text = data[start : _line_end(data, start)].decode("utf-8", "surrogatepass")
        if want.search(text) is not None:
            col = _characters(data, data.rfind(b"\n", 0, start) + 1, start)
            comments.append(Comment(comment.line, col, text, chars[start]))
    starts = [chars[offset] for offset in lexed.string_starts]
    return LexResult(tuple(comments), starts, [chars[offset] for offset in lexed.string_ends])


def _characters(data: bytes, start: int, end: int) -> int:
    """How many characters the UTF-8 bytes ``data[start:end]`` hold."""
    piece = data[start:end]
    return len(piece) if piece.isascii() else len(piece.decode("utf-8", "surrogatepass"))


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


def declared_encoding(data: bytes) -> str | None:
    """The PEP 263 coding declaration (or UTF-8 BOM) of a Python file's bytes, normalised as
    ``tokenize.detect_encoding`` does ("utf-8-sig" for a BOM), or None when there is neither.

    Raises SyntaxError for an unknown or contradictory declaration, as the tokenizer does.
    """
    if not may_declare_encoding(data):
        return None
    encoding = tokenize.detect_encoding(io.BytesIO(data).readline)[0]
    return None if encoding == "utf-8" else encoding


def may_declare_encoding(data: bytes) -> bool:
    """Might ``data`` start with a UTF-8 BOM or a coding declaration? (False: it is UTF-8,
    as far as ``declared_encoding`` is concerned.) Only the first two lines can declare one,
    so a head without "coding" costs two ``find`` calls."""
    if data.startswith(codecs.BOM_UTF8):
        return True
    first = data.find(b"\n")
    second = data.find(b"\n", first + 1) if first >= 0 else -1
    return data.find(b"coding", 0, len(data) if second < 0 else second) >= 0


def line_starts(text: str) -> list[int]:
    """Offset of the start of each line (index 0 is line 1)."""
    lengths = (len(line) + 1 for line in text.split("\n"))
    return [0, *itertools.accumulate(lengths)]
