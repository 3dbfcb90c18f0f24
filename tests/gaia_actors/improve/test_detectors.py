"""Detector accuracy on crafted files, in both analysis modes, and the batch boundary."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from gaia_actors.improve import analysis
from gaia_actors.improve.analysis import analyse_batch, analyse_file, summarise, tally_batch
from gaia_actors.improve.files import SkipReason
from gaia_actors.improve.findings import Finding, Severity
from gaia_actors.improve.sources import AnalysisSettings
from tests.gaia_actors.improve.conftest import write

FULL = AnalysisSettings()
MARKERS_ONLY = AnalysisSettings(markers_only=True)
TOKENIZED = AnalysisSettings(tokenize_comments=True)  # the reference: comments from tokenize

MARKERS_PY = '''\
"""Module docstring: TODO in a docstring is not a finding, nor FIXME."""

TODO_LIST = []  # identifiers are not comments: TODO_LIST
FIXME = "FIXME in a string"  # TODO: the first real one
url = "http://example.com/#TODO"
path = f"{TODO_LIST} # XXX in an f-string"
raw = r"""
# HACK in a raw triple-quoted string
"""
TODOS = 1  # TODOs and todo and MYTODO are not markers


def work():
    """TODO in a function docstring."""
    value = 1  # FIXME: wrong value
    # XXX: whole-line comment
    # HACK HACK, then TODO on the same line
    return value
'''


def found(result_findings: tuple[Finding, ...]) -> list[tuple[int, str, str]]:
    return [(f.line, f.type, f.scope) for f in result_findings]


@pytest.mark.parametrize(
    "settings", [FULL, MARKERS_ONLY, TOKENIZED], ids=["full", "markers_only", "tokenized"]
)
def test_markers_only_in_comments_never_in_strings_or_identifiers(
    tmp_path: Path, settings: AnalysisSettings
) -> None:
    write(tmp_path, "m.py", MARKERS_PY)
    result = analyse_file("m.py", tmp_path, settings)
    markers = [f for f in result.findings if f.detector == "markers"]
    assert found(tuple(markers)) == [
        (4, "todo", ""),
        (15, "fixme", "work"),
        (16, "xxx", "work"),
        (17, "hack", "work"),
        (17, "todo", "work"),
    ]
    assert result.markers == 5


def test_both_modes_give_identical_marker_findings(tmp_path: Path) -> None:
    write(tmp_path, "m.py", MARKERS_PY)
    full = analyse_file("m.py", tmp_path, TOKENIZED)
    fast = analyse_file("m.py", tmp_path, MARKERS_ONLY)
    assert [f for f in full.findings if f.detector == "markers"] == list(fast.findings)
    assert [f.identity for f in full.findings if f.detector == "markers"] == [
        f.identity for f in fast.findings
    ]


def test_marker_severity_and_priority_follow_the_original() -> None:
    from gaia_actors.improve.detectors import RULES

    assert RULES["todo"] == (Severity.MEDIUM, 5)
    assert RULES["fixme"] == (Severity.HIGH, 7)
    assert RULES["xxx"] == (Severity.MEDIUM, 5)
    assert RULES["hack"] == (Severity.MEDIUM, 6)
    assert RULES["panic"] == (Severity.CRITICAL, 9)
    assert RULES["syntax_error"] == (Severity.CRITICAL, 10)


def test_file_without_markers_has_no_marker_findings_but_has_stats(tmp_path: Path) -> None:
    write(tmp_path, "clean.py", "x = 1\ny = 2")
    result = analyse_file("clean.py", tmp_path, FULL)
    assert (result.lines, result.bytes, result.markers, result.findings) == (2, 11, 0, ())
    fast = analyse_file("clean.py", tmp_path, MARKERS_ONLY)  # counts no lines
    assert (fast.lines, fast.bytes, fast.markers, fast.findings) == (0, 11, 0, ())


def test_identity_survives_a_line_shift_but_not_a_text_change(tmp_path: Path) -> None:
    write(tmp_path, "a.py", "def f():\n    # TODO: fix this\n    return 1\n")
    before = analyse_file("a.py", tmp_path, FULL).findings[0]
    write(tmp_path, "a.py", "import os\n\n\ndef f():\n    # TODO:   fix this\n    return 1\n")
    after = analyse_file("a.py", tmp_path, FULL).findings[0]
    assert (before.line, after.line) == (2, 5)
    assert before.identity == after.identity
    write(tmp_path, "a.py", "def f():\n    # TODO: fix that\n    return 1\n")
    assert analyse_file("a.py", tmp_path, FULL).findings[0].identity != before.identity


CODE_PY = """\
import abc
import pdb
from typing import Protocol


def debugging():
    breakpoint()
    pdb.set_trace()
    import pdb; pdb.set_trace()
    text = "breakpoint()"  # a string is not a call
    return text


def swallow():
    try:
        return 1
    except:
        return 2


def narrow():
    try:
        return 1
    except ValueError:
        return 2


class Plain:
    def hook(self):
        raise NotImplementedError("subclasses must")


class Abstract(abc.ABC):
    def template(self):
        raise NotImplementedError


class Decorated:
    @abc.abstractmethod
    def must(self):
        raise NotImplementedError()


class Proto(Protocol):
    def method(self) -> int:
        raise NotImplementedError


class Meta(metaclass=abc.ABCMeta):
    def method(self):
        raise NotImplementedError


def unfinished():
    raise NotImplementedError
"""


def test_python_ast_detectors(tmp_path: Path) -> None:
    write(tmp_path, "code.py", CODE_PY)
    result = analyse_file("code.py", tmp_path, FULL)
    assert found(result.findings) == [
        (7, "debugger", "debugging"),
        (8, "debugger", "debugging"),
        (9, "debugger", "debugging"),
        (17, "bare_except", "swallow"),
        (30, "not_implemented", "Plain.hook"),
        (55, "not_implemented", "unfinished"),
    ]
    debugger = result.findings[0]
    assert (debugger.severity, debugger.priority, debugger.text) == (
        Severity.HIGH,
        8,
        "breakpoint()",
    )


def test_set_trace_imported_from_pdb_is_a_debugger_call(tmp_path: Path) -> None:
    write(tmp_path, "a.py", "from pdb import set_trace\nset_trace()\n")
    write(tmp_path, "b.py", "def set_trace():\n    pass\nset_trace()\n")
    assert [f.type for f in analyse_file("a.py", tmp_path, FULL).findings] == ["debugger"]
    assert analyse_file("b.py", tmp_path, FULL).findings == ()


def test_long_function_threshold(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(8))
    write(
        tmp_path, "long.py", f"class K:\n    def short(self):\n        pass\n\ndef long():\n{body}"
    )
    settings = AnalysisSettings(max_function_lines=8)
    [finding] = analyse_file("long.py", tmp_path, settings).findings
    assert (finding.type, finding.line, finding.scope) == ("long_function", 5, "long")
    assert finding.text == "function long is 9 lines long (limit 8)"
    assert (finding.severity, finding.priority) == (Severity.LOW, 3)
    assert analyse_file("long.py", tmp_path, AnalysisSettings(max_function_lines=9)).findings == ()


def test_syntax_error_is_a_finding_with_its_line_not_a_crash(tmp_path: Path) -> None:
    write(tmp_path, "broken.py", "def ok():\n    return 1\n\ndef broken(:\n    pass  # TODO\n")
    result = analyse_file("broken.py", tmp_path, FULL)
    errors = [f for f in result.findings if f.type == "syntax_error"]
    assert [(f.line, f.severity, f.priority) for f in errors] == [(4, Severity.CRITICAL, 10)]
    assert result.skipped is None


def test_unterminated_string_is_a_syntax_error_and_markers_before_it_count(tmp_path: Path) -> None:
    write(tmp_path, "eof.py", '# TODO: first\nx = """never closed\n# FIXME inside\n')
    result = analyse_file("eof.py", tmp_path, FULL)
    assert [(f.line, f.type) for f in result.findings] == [(1, "todo"), (2, "syntax_error")]


def test_inconsistent_dedent_is_a_syntax_error(tmp_path: Path) -> None:
    write(tmp_path, "dedent.py", "if True:\n        x = 1\n    y = 2  # TODO\n")
    result = analyse_file("dedent.py", tmp_path, FULL)
    assert [f.type for f in result.findings if f.type == "syntax_error"] == ["syntax_error"]


def test_detectors_can_be_selected_by_name(tmp_path: Path) -> None:
    write(tmp_path, "code.py", CODE_PY)
    only = AnalysisSettings(detectors=frozenset({"bare_except"}))
    assert [f.type for f in analyse_file("code.py", tmp_path, only).findings] == ["bare_except"]


def test_binary_and_non_utf8_files_are_reported_and_skipped(tmp_path: Path) -> None:
    write(tmp_path, "bin.py", b"\x00\x01# TODO")
    write(tmp_path, "latin.py", "# TODO caf\xe9\n".encode("latin-1"))
    results = analyse_batch(["bin.py", "latin.py"], tmp_path, FULL)
    assert [(r.path, r.skipped and r.skipped.reason) for r in results] == [
        ("bin.py", SkipReason.BINARY),
        ("latin.py", SkipReason.NON_UTF8),
    ]
    assert all(r.findings == () for r in results)


QUIET_CASES = {
    "plain.py": b"x = 1\n",  # quiet: only counted
    "main.go": b"package main\n",  # quiet too
    "marked.py": b"x = 1  # TODO\n",
    "string.py": b"s = 'TODO'\n",  # a marker's bytes, in no comment
    "utf8.py": "s = 'caf\u00e9'\n".encode(),  # not ASCII: the general path
    "latin.py": "s = 'caf\xe9'\n".encode("latin-1"),  # not UTF-8: skipped
    "declared.py": b"# coding: latin-1\nx = 1\n",  # a declaration to heed
    "bin.py": b"x = 1\0\n",  # binary: skipped
}


def test_a_tally_counts_the_quiet_files_and_keeps_every_other_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, data in QUIET_CASES.items():
        write(tmp_path, name, data)
    paths = sorted(QUIET_CASES)
    tally = tally_batch(paths, tmp_path, MARKERS_ONLY)
    results = analyse_batch(paths, tmp_path, MARKERS_ONLY)
    assert tally.results == tuple(r for r in results if r.path not in ("plain.py", "main.go"))
    assert (tally.quiet_files, tally.quiet_bytes) == (2, 6 + 13)
    assert tally.files == sum(r.skipped is None for r in results) == 6
    assert tally.bytes == sum(r.bytes for r in results if r.skipped is None)
    # The shortcut changes no result: the general path gives the same for every file.
    monkeypatch.setattr(analysis, "_plain_text", lambda data: False)
    assert analyse_batch(paths, tmp_path, MARKERS_ONLY) == results


def test_absolute_paths_are_reported_relative_to_the_root(tmp_path: Path) -> None:
    path = write(tmp_path, "pkg/a.py", "# TODO\n")
    [finding] = analyse_file(path, tmp_path, FULL).findings
    assert finding.file == "pkg/a.py"


GO = """\
package main

import "fmt"

// TODO: real line comment
/* FIXME: block comment
   spanning lines, XXX on the second */
var s = "// TODO inside a string, and panic( too"
var r = `raw string // FIXME
panic("not a call")`
var c = '/'

type Server struct{ name string }

func (s *Server) Start() error {
	if s.name == "" {
		panic("no name") // HACK: should return an error
	}
	f := func() { panic(fmt.Sprintf("in a closure")) }
	f()
	return nil
}

func helper(x interface{}) {
	t.panic(1) // a method, not the builtin
	// TODOS is not a marker
}
"""


def test_go_markers_and_panics_with_strings_and_comments(tmp_path: Path) -> None:
    write(tmp_path, "main.go", GO)
    result = analyse_file("main.go", tmp_path, FULL)
    assert result.language == "go"
    assert found(result.findings) == [
        (5, "todo", ""),
        (6, "fixme", ""),
        (7, "xxx", ""),
        (17, "hack", "Server.Start"),
        (17, "panic", "Server.Start"),
        (19, "panic", "Server.Start"),
    ]
    panic = next(f for f in result.findings if f.type == "panic")
    assert (panic.severity, panic.priority) == (Severity.CRITICAL, 9)


def test_go_panics_in_test_files_are_not_findings(tmp_path: Path) -> None:
    write(tmp_path, "main_test.go", 'package main\n\nfunc TestX(t *T) {\n\tpanic("x") // TODO\n}\n')
    result = analyse_file("main_test.go", tmp_path, FULL)
    assert found(result.findings) == [(4, "todo", "TestX")]


def test_a_detector_failure_loses_one_file_not_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "a.py", "# TODO a\n")
    write(tmp_path, "b.py", "# TODO b\n")
    write(tmp_path, "c.py", "# TODO c\n")
    from gaia_actors.improve import sources

    original = sources.PythonSource.__init__

    def explode_on_b(self: sources.PythonSource, path: str, *args: object) -> None:
        if path == "b.py":
            raise RuntimeError("detector bug")
        original(self, path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(sources.PythonSource, "__init__", explode_on_b)
    results = analyse_batch(["a.py", "b.py", "c.py"], tmp_path, FULL)
    assert [r.markers for r in results] == [1, 0, 1]
    assert results[1].skipped is not None
    assert "RuntimeError: detector bug" in results[1].skipped.detail


def test_summary_counts_findings_and_skips(tmp_path: Path) -> None:
    write(tmp_path, "a.py", "# TODO\n# FIXME\n")
    write(tmp_path, "bin.py", b"\x00")
    summary = summarise(analyse_batch(["a.py", "bin.py"], tmp_path, FULL))
    assert (summary.files, summary.lines, summary.markers) == (1, 2, 2)
    assert summary.findings_by_type == {"todo": 1, "fixme": 1}
    assert summary.skipped_by_reason == {"binary": 1}


# encoding -> (text, the marker's line, its comment)
DECLARED = {
    "latin-1": (
        "# -*- coding: latin-1 -*-\ns = 'caf\xe9 # TODO in a string'\n# TODO caf\xe9\n",
        3,
        "# TODO caf\xe9",
    ),
    "koi8-r": (
        "#!/usr/bin/env python\n# coding: koi8-r\nx = 1  # FIXME \u043f\u0440\u0438\n",
        3,
        "# FIXME \u043f\u0440\u0438",
    ),
}


@pytest.mark.parametrize("settings", [FULL, MARKERS_ONLY], ids=["full", "markers_only"])
@pytest.mark.parametrize("encoding", sorted(DECLARED))
def test_a_declared_encoding_is_read_in_that_encoding(
    tmp_path: Path, settings: AnalysisSettings, encoding: str
) -> None:
    text, line, comment = DECLARED[encoding]
    write(tmp_path, "declared.py", text.encode(encoding))
    result = analyse_file("declared.py", tmp_path, settings)
    assert result.skipped is None
    markers = [(f.line, f.text) for f in result.findings if f.detector == "markers"]
    assert markers == [(line, comment)]


def test_a_marker_made_of_trail_bytes_is_not_a_marker(tmp_path: Path) -> None:
    # In Shift JIS, b"\x83T" is one character: the bytes hold "TODO", the text does not.
    data = b"# coding: shift_jis\n# \x83TODO not a marker\n# TODO a marker\n"
    assert "TODO not" not in data.decode("shift_jis")
    write(tmp_path, "sjis.py", data)
    for settings in (FULL, MARKERS_ONLY):
        result = analyse_file("sjis.py", tmp_path, settings)
        assert [(f.line, f.type) for f in result.findings] == [(3, "todo")]


def test_an_undecodable_or_unknown_declared_encoding_is_skipped_with_its_reason(
    tmp_path: Path,
) -> None:
    write(tmp_path, "bad.py", b"# coding: ascii\n# TODO caf\xc3\xa9\n")
    write(tmp_path, "unknown.py", b"# coding: no-such-codec\n# TODO\n")
    write(tmp_path, "quiet.py", b"# coding: ascii\nx = 'caf\xc3\xa9'\n")
    for settings in (FULL, MARKERS_ONLY):
        results = analyse_batch(["bad.py", "unknown.py", "quiet.py"], tmp_path, settings)
        details = [(r.path, r.skipped and r.skipped.reason) for r in results]
        assert details == [
            (p, SkipReason.UNDECODABLE) for p in ("bad.py", "unknown.py", "quiet.py")
        ]
        assert "ascii" in str(results[0].skipped and results[0].skipped.detail)


TRICKY_MARKERS = '''\
s = f"{x!r} # TODO in an f-string {'# FIXME'}"  # FIXME after an f-string
t = """
# TODO in a multi-line string
"""; u = 1  # TODO after code on the string's last line
v = 'it\\'s # TODO' + "# FIXME"  # XXX: after two strings
w = ("a"  # HACK between the parts of a concatenation
     "b # TODO")
'''


def test_fast_path_and_tokenizer_agree_on_tricky_markers(tmp_path: Path) -> None:
    write(tmp_path, "t.py", TRICKY_MARKERS)
    full = analyse_file("t.py", tmp_path, TOKENIZED)
    fast = analyse_file("t.py", tmp_path, MARKERS_ONLY)
    expected = [(1, "fixme", ""), (4, "todo", ""), (5, "xxx", ""), (6, "hack", "")]
    assert found(fast.findings) == expected
    assert [f for f in full.findings if f.detector == "markers"] == list(fast.findings)


CONTINUED = (
    "def f():\n"
    "    s = 'a string \\\n"
    "# TODO inside the string, continued by a backslash'  # FIXME after it\n"
    '    t = """\n'
    "    # TODO inside a triple-quoted string\n"
    '    """  # TODO after it\n'
)


def test_markers_in_strings_that_go_on_past_a_line_end_are_not_comments(tmp_path: Path) -> None:
    write(tmp_path, "c.py", CONTINUED)
    fast = analyse_file("c.py", tmp_path, MARKERS_ONLY)
    full = analyse_file("c.py", tmp_path, TOKENIZED)
    assert found(fast.findings) == [(3, "fixme", "f"), (6, "todo", "f")]
    assert [f for f in full.findings if f.detector == "markers"] == list(fast.findings)


@pytest.mark.parametrize("name", ["email/_header_value_parser.py", "pydoc.py", "http/client.py"])
def test_fast_path_and_tokenizer_agree_on_real_modules(name: str) -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    full = analyse_file(name, stdlib, TOKENIZED)
    fast = analyse_file(name, stdlib, MARKERS_ONLY)
    assert fast.findings
    assert [f for f in full.findings if f.detector == "markers"] == list(fast.findings)


def test_a_file_that_does_not_parse_takes_its_comments_from_tokenize(tmp_path: Path) -> None:
    # The lexer would carry on past the unterminated string; tokenize stops there.
    write(tmp_path, "broken.py", '# TODO before\nx = """never closed\n# FIXME inside\n')
    result = analyse_file("broken.py", tmp_path, FULL)
    assert [(f.line, f.type) for f in result.findings] == [(1, "todo"), (2, "syntax_error")]
