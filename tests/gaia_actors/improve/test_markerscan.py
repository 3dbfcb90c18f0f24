"""The comment-marker scan and its ``markers`` command, on real trees: what it finds is what
``tokenize`` calls comments, whatever the number of processes, and bad arguments are refused."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from gaia_actors.console import cli
from gaia_actors.improve.analysis import analyse_batch
from gaia_actors.improve.files import SkipReason, WalkOptions
from gaia_actors.improve.marker_commands import summary
from gaia_actors.improve.markerscan import BATCH_FILES, MarkerFinding, scan
from gaia_actors.improve.sources import AnalysisSettings
from tests.gaia_actors.control.test_control import REPO, DaemonProcess
from tests.gaia_actors.improve.conftest import write

MARKERS = ("TODO", "FIXME")
MAIN = '''\
"""A docstring that says TODO: not a comment."""
# TODO: module level
x = "FIXME in a string"  # FIXME: after a string, TODO twice TODO
y = f"{x} TODO {x!r}"  # TODO: after an f-string
TODOS = 1  # TODOS is no marker, nor is XTODO
z = f"""
# FIXME inside a triple-quoted f-string
"""


class Shape:
    """FIXME in a class docstring."""

    def area(self) -> int:
        # FIXME: nested scope
        return 0  # a plain comment
'''
LATIN1 = "# -*- coding: latin-1 -*-\ns = 'café TODO'\n# TODO: café in a comment\n"
BINARY = b"\x00\x01# TODO: in a binary file\n"


def small_tree(root: Path) -> Path:
    write(root, "pkg/main.py", MAIN)
    (root / "pkg/legacy.py").write_bytes(LATIN1.encode("latin-1"))
    write(root, "pkg/blob.py", BINARY)
    write(root, "pkg/nothing.py", "x = 1\n")
    (root / "empty").mkdir()
    (root / "pkg/gone.py").symlink_to(root / "missing.py")  # a broken link
    return root


def tokenize_comments(root: Path) -> set[tuple[str, int, str, str]]:
    """The oracle: (path, line, marker, comment) for each whole-word marker in each comment
    ``tokenize`` yields, one per distinct marker per comment, over the text files."""
    pattern = re.compile(r"\b(TODO|FIXME)\b")
    found = set()
    for path in sorted(root.rglob("*.py")):
        if path.is_symlink() or b"\0" in path.read_bytes():
            continue
        with tokenize.open(path) as source:  # the PEP 263 declaration decides the encoding
            tokens = list(tokenize.generate_tokens(source.readline))
        for tok in tokens:
            if tok.type == tokenize.COMMENT:
                for marker in dict.fromkeys(pattern.findall(tok.string)):
                    rel = path.relative_to(root).as_posix()
                    found.add((rel, tok.start[0], marker, tok.string.strip()))
    return found


def test_the_findings_are_tokenizes_comments_and_the_skips_say_why(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "tree")
    result = scan(root, MARKERS, workers=1)

    assert {(f.path, f.line, f.marker, f.text) for f in result.findings} == tokenize_comments(root)
    assert [(f.path, f.line, f.marker, f.scope) for f in result.findings] == [
        ("pkg/legacy.py", 3, "TODO", ""),
        ("pkg/main.py", 2, "TODO", ""),
        ("pkg/main.py", 3, "FIXME", ""),
        ("pkg/main.py", 3, "TODO", ""),
        ("pkg/main.py", 4, "TODO", ""),
        ("pkg/main.py", 15, "FIXME", "Shape.area"),
    ]
    assert result.findings[0].text == "# TODO: café in a comment"
    # Scopes and texts as the full analysis reads them with tokenize.
    paths = ["pkg/main.py", "pkg/legacy.py"]
    reference = AnalysisSettings(
        markers=MARKERS, detectors=frozenset({"markers"}), tokenize_comments=True
    )
    full = analyse_batch(paths, root, reference)
    expected = {(f.file, f.line, f.type, f.scope, f.text) for r in full for f in r.findings}
    assert {(f.path, f.line, f.marker.lower(), f.scope, f.text) for f in result.findings} == (
        expected
    )
    assert (result.files, result.bytes) == (3, len(MAIN) + len(LATIN1) + len("x = 1\n"))
    assert [(s.path, s.reason) for s in result.skipped] == [
        ("pkg/blob.py", SkipReason.BINARY),
        ("pkg/gone.py", SkipReason.UNREADABLE),  # the walk: a link that leads nowhere
    ]
    assert result.skipped_by_reason() == {"binary": 1, "unreadable": 1}


def test_an_unreadable_file_is_skipped_and_the_rest_analysed(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "tree")
    locked = write(root, "pkg/locked.py", "# TODO: cannot be read\n")
    locked.chmod(0)
    try:
        if os.geteuid() == 0 and os.access(locked, os.R_OK):
            pytest.skip("running as root: a mode-000 file is readable anyway")
        result = scan(root, MARKERS, workers=2)
    finally:
        locked.chmod(0o644)
    assert [(s.path, s.reason) for s in result.skipped if s.path == "pkg/locked.py"] == [
        ("pkg/locked.py", SkipReason.UNREADABLE)
    ]
    assert len(result.findings) == 6


def test_one_process_and_two_give_the_same_result(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "tree")
    for i in range(BATCH_FILES * 2 + 50):  # batches for the helper and for this process
        write(root, f"many/m{i}.py", f"def f{i}():\n    pass  # TODO: {i}\n" if i % 3 else "")
    one = scan(root, MARKERS, workers=1)
    two = scan(root, MARKERS, workers=2)

    assert one == two
    assert len(one.findings) == 6 + sum(1 for i in range(BATCH_FILES * 2 + 50) if i % 3)
    assert MarkerFinding("many/m1.py", 2, "TODO", "f1", "# TODO: 1") in one.findings
    with pytest.raises(ValueError, match="at least 1"):
        scan(root, MARKERS, workers=0)


def test_a_walk_that_fails_leaves_no_helper_process(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "tree")
    bad = WalkOptions(extra_patterns=("\\",), sizes=False)  # the walk's first step refuses it
    with pytest.raises(ValueError, match="Invalid git pattern"):
        scan(root, MARKERS, workers=2, options=bad)
    assert multiprocessing.active_children() == []


# --- the command ------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration whose improve target is a small tree, its state in tmp_path."""
    small_tree(tmp_path / "src")
    path = tmp_path / "gaia.toml"
    path.write_text(
        '[logging]\nconsole = "off"\n[improve]\ntarget = "src"\nmarkers = ["FIXME"]\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("GAIA_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("GAIA_CONFIG", raising=False)
    return path


def run(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["--config", str(config), "markers", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_prints_grep_like_lines_and_a_summary(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = config.parent / "src"
    code, out, _ = run(config, capsys, str(tree), "--markers", "TODO,FIXME", "--workers", "2")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"{tree}/pkg/legacy.py:3: TODO: # TODO: café in a comment"
    assert lines[5] == f"{tree}/pkg/main.py:15: FIXME: # FIXME: nested scope  (in Shape.area)"
    assert lines[6].startswith("6 findings (TODO, FIXME) in 3 files")
    assert lines[6].endswith("skipped 2 files (1 binary, 1 unreadable)")
    assert len(lines) == 7


def test_the_default_tree_and_markers_are_the_configured_ones(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(config, capsys, "--json")
    assert code == 0
    result = json.loads(out)
    assert result["root"] == str(config.parent / "src")
    assert result["markers"] == ["FIXME"]
    assert [(f["line"], f["marker"], f["scope"]) for f in result["findings"]] == [
        (3, "FIXME", ""),
        (15, "FIXME", "Shape.area"),
    ]
    assert result["workers"] >= 1
    assert not (config.parent / "state/gaia.db").exists()  # files only: no store opened


def test_the_configured_excludes_and_size_limit_apply(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = config.read_text(encoding="utf-8") + 'exclude = ["legacy.py"]\nmax_file_bytes = 100\n'
    config.write_text(text, encoding="utf-8")
    code, out, _ = run(config, capsys, "--markers", "TODO", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["findings"] == []  # legacy.py excluded, main.py past 100 bytes
    assert result["files"] == 1  # nothing.py
    assert ("pkg/main.py", "huge") in [(s["path"], s["reason"]) for s in result["skipped_files"]]


def test_an_exclude_pattern_git_refuses_is_a_configuration_error(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text(config.read_text(encoding="utf-8") + 'exclude = ["\\\\"]\n', "utf-8")
    code, out, err = run(config, capsys)
    assert (code, out) == (2, "")
    assert f"{config}: improve.exclude: Invalid git pattern" in err
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("{tmp}/nope",), "markers directory: '{tmp}/nope' does not exist"),
        (("{tmp}/gaia.toml",), "markers directory: '{tmp}/gaia.toml' is not a directory"),
        (("--workers", "0"), "markers workers: expected at least 1 process, got 0"),
        (("--workers", "-2"), "markers workers: expected a number >= 0"),
        (("--markers", ",,"), "markers markers: expected one marker or more"),
        (("--markers", "TO DO"), "markers markers: a marker is a word"),
    ],
)
def test_bad_arguments_exit_2_naming_the_argument(
    config: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], named: str
) -> None:
    tmp = str(config.parent)
    code, out, err = run(config, capsys, *(a.format(tmp=tmp) for a in args))
    assert (code, out) == (2, "")
    assert named.format(tmp=tmp) in err


def test_more_workers_than_cpus_are_cut_to_the_cpu_count(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(config, capsys, "--workers", "100000", "--json")
    assert code == 0
    assert json.loads(out)["workers"] == os.cpu_count()


def test_the_command_line_in_a_process_of_its_own(config: Path) -> None:
    done = subprocess.run(
        [sys.executable, "run.py", "--config", str(config), "markers", "--markers", "TODO"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("4 findings (TODO) in 3 files")


ARGS = ("markers", "src", "--markers", "TODO", "--workers", "2", "--json")


def test_with_a_daemon_the_scan_still_runs_in_the_callers_process(tmp_path: Path) -> None:
    """A relative directory is the caller's, not the daemon's (which runs in another folder),
    and the scan forks its helpers here, not in the daemon."""
    small_tree(tmp_path / "src")
    daemon = DaemonProcess(tmp_path).start()
    try:
        done = subprocess.run(
            [sys.executable, str(REPO / "run.py"), "--config", str(daemon.config), *ARGS],
            cwd=tmp_path,
            env=daemon.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        assert daemon.stop() == 0, daemon.output()
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["root"], result["workers"]) == (
        str(tmp_path / "src"),
        min(2, os.cpu_count() or 1),
    )
    assert [f["path"] for f in result["findings"]][:2] == ["src/pkg/legacy.py", "src/pkg/main.py"]


def test_the_summary_counts_one_of_a_thing_in_the_singular() -> None:
    one = {"findings": [{}], "markers": ["TODO"], "files": 1, "bytes": 0, "root": "/src"}
    assert summary({**one, "skipped": {"binary": 1}}) == (
        "1 finding (TODO) in 1 file (0.0 MB) under /src; skipped 1 file (1 binary)"
    )
    assert summary({**one, "findings": [], "files": 2, "skipped": {}}) == (
        "0 findings (TODO) in 2 files (0.0 MB) under /src; skipped 0 files"
    )
