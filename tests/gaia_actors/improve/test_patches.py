"""Verified patches: made from two trees, read back, and applied all or nothing."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from gaia_actors.improve import patches
from gaia_actors.improve.errors import PatchApplyError, PatchConflict, PatchError
from gaia_actors.improve.files import WalkOptions
from gaia_actors.improve.patches import (
    FileChange,
    Patch,
    apply_patch,
    file_diff,
    make_patch,
    parse_diff,
    sha256,
)
from tests.gaia_actors.improve.conftest import snapshot, write


def make(tmp_path: Path, before: dict[str, bytes], after: dict[str, bytes]) -> tuple[Path, Patch]:
    """A target holding ``before`` and the patch that turns it into ``after``."""
    target, edited = tmp_path / "target", tmp_path / "edited"
    for root, files in ((target, before), (edited, after)):
        root.mkdir()
        for name, data in files.items():
            write(root, name, data)
    patch = make_patch(before, edited, WalkOptions(suffixes=None))
    return target, patch


CASES = {
    "modified": ({"a.py": b"1\n2\n3\n"}, {"a.py": b"1\ntwo\n3\n"}),
    "no final newline": ({"a.py": b"1\n2"}, {"a.py": b"1\n2\n3"}),
    "newline added": ({"a.py": b"x"}, {"a.py": b"x\n"}),
    "created": ({}, {"new/dir/b.py": b"hello\n"}),
    "deleted": ({"gone.py": b"bye\n", "stay.py": b"s\n"}, {"stay.py": b"s\n"}),
    "crlf and form feed": ({"w.py": b"a\r\n\x0cb\r\n"}, {"w.py": b"a\r\n\x0cc\r\n"}),
    "header-like content": ({"h.py": b"-- x\n++ y\n@@ z\n"}, {"h.py": b"-- x\n++ y2\n@@ z\n"}),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_patch_round_trip_reproduces_the_edited_tree(tmp_path: Path, case: str) -> None:
    before, after = CASES[case]
    target, patch = make(tmp_path, before, after)
    apply_patch(target, patch)
    assert snapshot(target) == snapshot(tmp_path / "edited")


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_the_diff_is_standard_git_apply_reproduces_it(tmp_path: Path, case: str) -> None:
    before, after = CASES[case]
    target, patch = make(tmp_path, before, after)
    (tmp_path / "p.diff").write_text(patch.diff, encoding="utf-8")
    subprocess.run(
        ["git", "apply", "--whitespace=nowarn", str(tmp_path / "p.diff")],
        cwd=target,
        check=True,
        capture_output=True,
    )
    assert snapshot(target) == snapshot(tmp_path / "edited")


def test_mismatched_pre_image_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    target, patch = make(
        tmp_path,
        {"a.py": b"a\n", "b.py": b"b\n"},
        {"a.py": b"A\n", "b.py": b"B\n"},
    )
    write(target, "b.py", b"b changed by the user\n")
    before = snapshot(target)
    with pytest.raises(PatchConflict, match=r"b\.py: pre-image mismatch"):
        apply_patch(target, patch)
    assert snapshot(target) == before


def test_a_created_file_that_already_exists_is_a_conflict(tmp_path: Path) -> None:
    target, patch = make(tmp_path, {}, {"n.py": b"new\n"})
    write(target, "n.py", b"someone else's\n")
    with pytest.raises(PatchConflict):
        apply_patch(target, patch)


def test_a_write_failure_midway_restores_every_touched_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, patch = make(
        tmp_path,
        {"a.py": b"a\n", "b.py": b"b\n", "c.py": b"c\n"},
        {"a.py": b"A\n", "b.py": b"B\n", "c.py": b"C\n", "d/new.py": b"D\n"},
    )
    os.chmod(target / "a.py", 0o751)
    before = snapshot(target)
    real_replace = os.replace
    calls: list[str] = []

    def fail_third(src: str, dst: str | Path) -> None:
        calls.append(str(dst))
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(patches.os, "replace", fail_third)
    with pytest.raises(PatchApplyError, match="No space left on device"):
        apply_patch(target, patch)
    monkeypatch.undo()
    assert snapshot(target) == before
    assert stat.S_IMODE((target / "a.py").stat().st_mode) == 0o751
    assert not (target / "d").exists()
    assert not [p for p in target.iterdir() if p.name.endswith(".gaia-tmp")]


def test_hashes_and_diff_must_agree(tmp_path: Path) -> None:
    target, patch = make(tmp_path, {"a.py": b"1\n"}, {"a.py": b"2\n"})
    wrong_result = Patch((FileChange("a.py", sha256(b"1\n"), sha256(b"3\n")),), patch.diff)
    with pytest.raises(PatchError, match="does not reproduce"):
        apply_patch(target, wrong_result)
    other_file = Patch((FileChange("b.py", None, sha256(b"2\n")),), patch.diff)
    with pytest.raises(PatchError, match="different files"):
        apply_patch(target, other_file)
    assert (target / "a.py").read_bytes() == b"1\n"


def test_paths_leaving_the_target_are_refused(tmp_path: Path) -> None:
    diff = file_diff("../evil.py", None, "x\n")
    patch = Patch((FileChange("../evil.py", None, sha256(b"x\n")),), diff)
    (tmp_path / "t").mkdir()
    with pytest.raises(PatchError, match="relative and stay inside"):
        apply_patch(tmp_path / "t", patch)
    assert not (tmp_path / "evil.py").exists()


def test_diff_parser_reads_hunks_by_their_counts() -> None:
    diff = file_diff("x.py", "--- a\n+++ b\nkeep\n", "--- a\n+++ c\nkeep\n")
    [(path, hunks)] = parse_diff(diff).items()
    assert path == "x.py"
    assert [tag for tag, _ in hunks[0].lines] == [" ", "-", "+", " "]
