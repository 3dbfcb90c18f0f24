"""The fast Python lexer agrees with tokenize; scopes are found the same way for both."""

from __future__ import annotations

import re
import sysconfig
import textwrap
from pathlib import Path

import pytest

from gaia_actors.improve import pysource, scopes

TRICKY = textwrap.dedent(
    '''\
    """Module docstring # not a comment
    still the docstring '''
    + "'''"
    + ''' # nor this
    """
    x = 'single # no'  # one
    y = "double \\" # still string"  # two
    z = r'raw \\' # raw string continues' # three
    w = rb"""triple
    # inside triple
    """  # four
    v = f"{x} # f-string {'#'}"  # five
    u = 'line \\
    continued # in string'  # six
    t = ("a" "b"  # seven
         '#c')
    # eight: a whole-line comment
    def f():
        s = \'\'\'it's "quoted" # no\'\'\'  # nine
        return s  # ten
    q = '' # eleven
    p = "" ; o = \'\'\'\'\'\' # twelve
    '''
)


def reference(text: str) -> list[pysource.Comment]:
    comments, problem = pysource.comments_via_tokenize(text)
    assert problem is None
    return comments


def fast(text: str) -> list[pysource.Comment]:
    return list(pysource.lex(text).comments)


def test_lexer_finds_exactly_the_comments_tokenize_finds_on_tricky_code() -> None:
    expected = reference(TRICKY)
    assert [c.text.split()[1].rstrip(":") for c in expected] == [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve",
    ]  # fmt: skip
    assert fast(TRICKY) == expected


def stdlib_sample() -> list[Path]:
    """A fixed sample of real, comment-heavy standard-library modules."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    names = ["tokenize.py", "inspect.py", "difflib.py", "argparse.py", "typing.py", "pdb.py"]
    names += ["email/_header_value_parser.py", "json/decoder.py", "ast.py", "ftplib.py"]
    return [stdlib / name for name in names if (stdlib / name).exists()]


@pytest.mark.parametrize("path", stdlib_sample(), ids=lambda p: p.name)
def test_lexer_agrees_with_tokenize_on_real_modules(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert fast(text) == reference(text)


def test_stop_offset_never_cuts_a_string_in_two() -> None:
    text = 'x = """\n# TODO inside\n"""\n# TODO outside\n'
    stop = text.rfind("TODO")
    found = pysource.lex(text, stop=stop).comments
    assert [c.text for c in found] == ["# TODO outside"]
    stop_in_string = text.find("TODO")
    assert pysource.lex(text, stop=stop_in_string).comments == ()


def test_tokenize_problem_is_reported_with_its_line() -> None:
    comments, problem = pysource.comments_via_tokenize("# first\nx = (\n")
    assert [c.text for c in comments] == ["# first"]
    assert problem is not None
    assert problem.line >= 2


SCOPED = textwrap.dedent(
    '''\
    # module
    class Outer:
        # in class
        def method(self):
            """Docstring
    def fake():
        # still in method (inside a string)
    """
            # in method
            def inner():
                pass  # in inner
            # back in method
        # class again
    def top():
        x = 1
    # after top
    if True:
        # module-level block
        pass
    async def coro():  # header comment
        pass
    '''
)


def scopes_of(text: str) -> dict[str, str]:
    lexed = pysource.lex(text)
    finder = scopes.scope_finder(text, lexed)
    return {c.text: finder.scope(c.offset, c.col) for c in lexed.comments}


def test_a_header_on_the_first_line_and_a_header_inside_a_string() -> None:
    text = 'def first():\n    # in first\n    s = """\ndef fake():\n    # still first\n"""\n'
    assert scopes_of(text) == {"# in first": "first"}
    assert pysource.lex(text).comments[0].offset == text.index("# in first")


def test_scope_finder_names_the_enclosing_def_or_class() -> None:
    assert scopes_of(SCOPED) == {
        "# module": "",
        "# in class": "Outer",
        "# in method": "Outer.method",
        "# in inner": "Outer.method.inner",
        "# back in method": "Outer.method",
        "# class again": "Outer",
        "# after top": "",
        "# module-level block": "",
        "# header comment": "coro",
    }


SIBLINGS = textwrap.dedent(
    """\
    class Many:
        def a(self):
            # in a
            def nested():
                pass  # in nested
        def b(self):
            pass
        if True:
            def c(self):
                # in c
                pass
        def d(self):
            # in d
            pass
    class K:
        def h(self):
            def s():
                # in s
                pass
        if True:
            def t():
                # in t
                pass
    x = call(
    )
    def e():
        # in e
        pass
    def f(
        x,
    ):
        # in f: its signature's last line, in column 0, is taken as a code line
        pass
    """
)


def test_scopes_do_not_depend_on_what_was_asked_before() -> None:
    lexed = pysource.lex(SIBLINGS)
    alone = [scopes.scope_finder(SIBLINGS, lexed).scope(c.offset, c.col) for c in lexed.comments]
    assert alone == ["Many.a", "Many.a.nested", "Many.c", "Many.d", "K.h.s", "K.t", "e", ""]
    for order in (lexed.comments, lexed.comments[::-1]):
        finder = scopes.scope_finder(SIBLINGS, lexed)
        asked = {c.offset: finder.scope(c.offset, c.col) for c in order}
        assert [asked[c.offset] for c in lexed.comments] == alone


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"# coding: latin-1\n", "iso-8859-1"),
        (b"#!/usr/bin/env python\n# -*- coding: koi8-r -*-\nx = 1\n", "koi8-r"),
        (b"x = 1\ny = 2\n# coding: latin-1\n", None),  # only the first two lines declare
        (b"# coding: utf-8\n", None),
        (b"\xef\xbb\xbfx = 1\n", "utf-8-sig"),
        (b"x = 'no declaration'", None),
    ],
)
def test_declared_encoding_reads_only_the_first_two_lines(
    data: bytes, expected: str | None
) -> None:
    assert pysource.declared_encoding(data) == expected


def test_an_unknown_declared_encoding_is_a_syntax_error() -> None:
    with pytest.raises(SyntaxError, match="unknown encoding"):
        pysource.declared_encoding(b"# coding: no-such-codec\n")


def by_regex(text: str) -> pysource.LexResult:
    """The lexer that runs one regular expression over the text (any text)."""
    return pysource._lex_text(text, len(text), None)


ESCAPES = (
    's = """a\\""""  # one\n'
    "t = '''x\\\\\\\\'''  # two\n"
    'u = """\\\\\\""" still inside """  # three\n'
    "v = '''''' ; w = ''  # four\r\n"
    "# five\r\n"
    "x = 1\n"
)


def test_byte_lexer_and_text_lexer_agree_with_tokenize_on_escapes_and_line_ends() -> None:
    assert [c.text for c in reference(ESCAPES)] == [
        "# one", "# two", "# three", "# four", "# five",
    ]  # fmt: skip
    assert pysource.lex(ESCAPES) == by_regex(ESCAPES)
    assert fast(ESCAPES) == reference(ESCAPES)


@pytest.mark.parametrize(
    "text",
    ['x = """never closed\n# a\n', "y = 'open # b\nz = 1 # c\n", "'''\\\\'''' # d\n"],
)
def test_byte_lexer_and_text_lexer_agree_on_unterminated_strings(text: str) -> None:
    assert pysource.lex(text) == by_regex(text)
    assert pysource.lex(text + "\N{PILCROW SIGN}") == by_regex(text + "\N{PILCROW SIGN}")


NON_ASCII = (
    "caf\u00e9 = '\u00e9\u00e9 # not'  # \u00e9t\u00e9 TODO\n"
    "def f\u00fcr():\n"
    '    """\u043f\u0440\u0438 # no"""\n'
    "    x = 1  # \u00e9TODO is no marker, \u2014TODO is one\n"
    "# \U0001f600 FIXME\n"
)


def test_non_ascii_text_is_lexed_in_character_offsets() -> None:
    want = re.compile(r"\b(TODO|FIXME)\b")
    lexed = pysource.lex(NON_ASCII, want=want)
    expected = [c for c in reference(NON_ASCII) if want.search(c.text)]
    assert [c.text for c in expected] == [
        "# \u00e9t\u00e9 TODO",
        "# \u00e9TODO is no marker, \u2014TODO is one",
        "# \U0001f600 FIXME",
    ]
    assert list(lexed.comments) == expected
    whole = pysource.lex(NON_ASCII)
    assert whole == by_regex(NON_ASCII)
    finder = scopes.scope_finder(NON_ASCII, whole)
    assert [finder.scope(c.offset, c.col) for c in lexed.comments] == ["", "f\u00fcr", ""]


MARKERS = ("TODO", "FIXME")
WANT = re.compile(r"\b(TODO|FIXME)\b")
# Lines the marker lexer passes over, between lines it must lex: a string continued by a
# backslash (with a header-like line inside it), docstrings with markers inside and after them,
# a triple quote inside a one-line string, markers in strings on a commented line.
SKIPPED_LINES = "\n".join(
    [
        "import os  # TODO first",
        "def f():",
        "    x = 1",
        "    s = 'a \\",
        "def fake():  # TODO in the string \\",
        "    pass'  # TODO after the continued string",
        '    t = """',
        "# FIXME inside",
        '"""; u = 1  # FIXME after the docstring ends',
        "    y = 2",
        "    v = \"# TODO in a string\" + 'x'  # TODO: one finding",
        '    w = \'"""\'  # TODO: a triple quote in a string',
        "    z = 3",
        "# TODO at module level, FIXME too",
        "q = '''",
        "TODO: no hash before it on its line, so past the last candidate",
        "'''",
        "",
    ]
)


@pytest.mark.parametrize("text", [SKIPPED_LINES, TRICKY, NON_ASCII, ESCAPES])
def test_marker_lexer_finds_tokenizes_marker_comments_and_their_scopes(text: str) -> None:
    lexed = pysource.marker_comments(text, MARKERS, WANT)
    assert list(lexed.comments) == [c for c in reference(text) if WANT.search(c.text)]
    skipping, whole = scopes.scope_finder(text, lexed), scopes.scope_finder(text)
    for comment in lexed.comments:
        assert skipping.scope(comment.offset, comment.col) == whole.scope(
            comment.offset, comment.col
        )


def test_marker_lexer_lexes_only_the_lines_that_need_it() -> None:
    lexed = pysource.marker_comments(SKIPPED_LINES, MARKERS, WANT)
    assert [c.line for c in lexed.comments] == [1, 6, 9, 11, 12, 14]
    finder = scopes.scope_finder(SKIPPED_LINES, lexed)
    assert [finder.scope(c.offset, c.col) for c in lexed.comments] == ["", "f", "f", "f", "f", ""]
    # Strings on lines with no candidate and no crossing are never looked at; the strings
    # that cross a line end before the last candidate are all there.
    spans = [
        SKIPPED_LINES[s:e] for s, e in zip(lexed.string_starts, lexed.string_ends, strict=True)
    ]
    assert "'a \\\ndef fake():  # TODO in the string \\\n    pass'" in spans
    assert '"""\n# FIXME inside\n"""' in spans
    assert "'''" not in "".join(spans)  # past the last candidate


@pytest.mark.parametrize("path", stdlib_sample(), ids=lambda p: p.name)
def test_marker_lexer_agrees_with_tokenize_on_real_modules(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lexed = pysource.marker_comments(text, MARKERS, WANT)
    assert list(lexed.comments) == [c for c in reference(text) if WANT.search(c.text)]
