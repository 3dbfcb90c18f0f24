"""The tree walk: gitignore semantics, always-skipped names, symlinks, skipped-file reasons."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gaia_actors.improve.files import (
    DEFAULT_MAX_BYTES,
    FIRST_READ,
    IgnoreFile,
    SkippedFile,
    SkipReason,
    WalkOptions,
    batches,
    decode,
    read_bytes,
    walk,
)
from tests.gaia_actors.improve.conftest import write


def matches(pattern: str, path: str, is_dir: bool = False) -> bool:
    return IgnoreFile.from_lines("", [pattern]).decide(path, is_dir) is True


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("*.log", "a.log", True),
        ("*.log", "deep/dir/a.log", True),  # no slash: any depth
        ("*.log", "a.log.txt", False),
        ("/top.py", "top.py", True),
        ("/top.py", "sub/top.py", False),  # leading slash anchors
        ("doc/*.txt", "doc/a.txt", True),
        ("doc/*.txt", "doc/sub/a.txt", False),  # "*" stops at "/"
        ("doc/*.txt", "x/doc/a.txt", False),  # a middle slash anchors too
        ("**/gen.py", "gen.py", True),
        ("**/gen.py", "a/b/gen.py", True),
        ("a/**/b.py", "a/b.py", True),  # "**/" is zero or more directories
        ("a/**/b.py", "a/x/y/b.py", True),
        ("out/**", "out/x/y.py", True),
        ("out/**", "out", False),
        ("file?.py", "file1.py", True),
        ("file?.py", "file10.py", False),
        ("[ab].py", "a.py", True),
        ("[!ab].py", "a.py", False),
        ("[!ab].py", "c.py", True),
        ("\\#hash.py", "#hash.py", True),
        ("\\!bang.py", "!bang.py", True),
    ],
)
def test_gitignore_pattern_semantics(pattern: str, path: str, expected: bool) -> None:
    assert matches(pattern, path) is expected


def test_trailing_slash_matches_directories_only() -> None:
    assert matches("build/", "build", is_dir=True)
    assert not matches("build/", "build", is_dir=False)


def test_blank_lines_and_comments_are_not_patterns() -> None:
    rules = IgnoreFile.from_lines("", ["", "   ", "# comment"])
    assert rules.empty
    assert rules.decide("# comment", False) is None


def test_last_matching_pattern_wins_and_negation_reincludes() -> None:
    rules = IgnoreFile.from_lines("", ["*.py", "!keep.py"])
    assert rules.decide("drop.py", False) is True
    assert rules.decide("keep.py", False) is False
    assert rules.decide("notes.txt", False) is None


def test_walk_honours_gitignore_negation_and_nested_files(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "*.py\n!keep.py\nbuild/\n")
    write(tmp_path, "drop.py", "")
    write(tmp_path, "keep.py", "")
    write(tmp_path, "build/keep.py", "")  # inside an excluded directory: never re-included
    write(tmp_path, "sub/.gitignore", "!again.py\n/local.go\n")
    write(tmp_path, "sub/again.py", "")  # the deeper file re-includes it
    write(tmp_path, "sub/local.go", "")  # anchored to sub/
    write(tmp_path, "sub/deeper/local.go", "")
    result = walk(tmp_path)
    assert result.files == ("keep.py", "sub/again.py", "sub/deeper/local.go")


def test_extra_patterns_apply_under_the_targets_own_rules(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "!generated/important.py\n")
    write(tmp_path, "generated/a.py", "")
    write(tmp_path, "generated/important.py", "")
    write(tmp_path, "src/b.py", "")
    result = walk(tmp_path, WalkOptions(extra_patterns=("generated/*",)))
    assert result.files == ("generated/important.py", "src/b.py")


def test_gitignore_can_be_disabled(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "*.py\n")
    write(tmp_path, "a.py", "")
    assert walk(tmp_path, WalkOptions(use_gitignore=False)).files == ("a.py",)


def test_always_skipped_directories_are_never_entered(tmp_path: Path) -> None:
    for name in (".git", "__pycache__", ".venv", "venv", "node_modules", "var"):
        write(tmp_path, f"{name}/x.py", "")
    write(tmp_path, "pkg/__pycache__/y.py", "")
    write(tmp_path, ".gitignore", "!var/\n")  # a negation cannot bring them back
    write(tmp_path, "pkg/z.py", "")
    assert walk(tmp_path).files == ("pkg/z.py",)


def test_only_wanted_suffixes_are_candidates(tmp_path: Path) -> None:
    write(tmp_path, "a.py", "")
    write(tmp_path, "b.go", "")
    write(tmp_path, "c.txt", "")
    assert walk(tmp_path).files == ("a.py", "b.go")
    assert walk(tmp_path, WalkOptions(suffixes=None)).files == ("a.py", "b.go", "c.txt")


def test_symlink_out_of_the_tree_is_skipped_and_reported(tmp_path: Path) -> None:
    outside = write(tmp_path, "outside/secret.py", "# TODO outside\n")
    root = tmp_path / "root"
    write(root, "real.py", "")
    (root / "link.py").symlink_to(outside)
    (root / "linkdir").symlink_to(outside.parent, target_is_directory=True)
    result = walk(root)
    assert result.files == ("real.py",)
    reasons = {s.path: s.reason for s in result.skipped}
    assert reasons == {"link.py": SkipReason.OUTSIDE_TREE, "linkdir": SkipReason.OUTSIDE_TREE}


def test_symlink_inside_the_tree_is_not_followed_twice(tmp_path: Path) -> None:
    write(tmp_path, "pkg/a.py", "")
    (tmp_path / "alias").symlink_to(tmp_path / "pkg", target_is_directory=True)
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    result = walk(tmp_path)
    assert result.files == ("pkg/a.py",)
    assert {s.path: s.reason for s in result.skipped} == {
        "alias": SkipReason.SYMLINK,
        "loop": SkipReason.SYMLINK,
    }


def test_dangling_symlink_is_reported_unreadable(tmp_path: Path) -> None:
    (tmp_path / "gone.py").symlink_to(tmp_path / "missing.py")
    [skipped] = walk(tmp_path).skipped
    assert skipped.reason is SkipReason.UNREADABLE
    assert "dangling" in skipped.detail


def test_huge_file_is_skipped_at_walk_time(tmp_path: Path) -> None:
    write(tmp_path, "big.py", "x = 1\n" * 100)
    write(tmp_path, "small.py", "x = 1\n")
    result = walk(tmp_path, WalkOptions(max_bytes=100))
    assert result.files == ("small.py",)
    assert [(s.path, s.reason) for s in result.skipped] == [("big.py", SkipReason.HUGE)]


def test_special_files_are_not_candidates(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.py")
    [skipped] = walk(tmp_path).skipped
    assert (skipped.path, skipped.reason) == ("pipe.py", SkipReason.UNREADABLE)


def load_text(root: Path, relpath: str, max_bytes: int = DEFAULT_MAX_BYTES) -> str | SkippedFile:
    """A candidate read and decoded as the analysis does it, or why it was skipped."""
    data = read_bytes(root / relpath, max_bytes, relpath)
    return data if isinstance(data, SkippedFile) else decode(data, relpath)


def skip_reason(result: str | SkippedFile) -> SkipReason:
    assert isinstance(result, SkippedFile)
    return result.reason


def test_binary_file_is_skipped_when_read(tmp_path: Path) -> None:
    write(tmp_path, "bin.py", b"abc\x00def # TODO")
    assert skip_reason(load_text(tmp_path, "bin.py")) is SkipReason.BINARY


def test_nul_after_the_first_8_kib_is_not_binary_but_is_read(tmp_path: Path) -> None:
    write(tmp_path, "late.py", b"#" * 9000 + b"\x00")
    assert isinstance(load_text(tmp_path, "late.py"), str)


def test_non_utf8_file_is_skipped_with_the_offset(tmp_path: Path) -> None:
    write(tmp_path, "latin.py", "# caf\xe9 TODO\n".encode("latin-1"))
    result = load_text(tmp_path, "latin.py")
    assert skip_reason(result) is SkipReason.NON_UTF8
    assert isinstance(result, SkippedFile)
    assert "byte 5" in result.detail


def test_file_gone_between_walk_and_read_is_unreadable(tmp_path: Path) -> None:
    path = write(tmp_path, "a.py", "")
    assert walk(tmp_path).files == ("a.py",)
    path.unlink()
    assert skip_reason(load_text(tmp_path, "a.py")) is SkipReason.UNREADABLE


def test_file_grown_past_the_limit_after_the_walk_is_huge(tmp_path: Path) -> None:
    write(tmp_path, "a.py", "x" * 50)
    assert skip_reason(load_text(tmp_path, "a.py", max_bytes=10)) is SkipReason.HUGE


def test_utf8_bom_is_removed(tmp_path: Path) -> None:
    write(tmp_path, "bom.py", b"\xef\xbb\xbfx = 1\n")
    assert load_text(tmp_path, "bom.py") == "x = 1\n"


def test_batches_cover_every_item_once_in_order() -> None:
    items = list(range(10))
    assert batches(items, 4) == [(0, 1, 2, 3), (4, 5, 6, 7), (8, 9)]
    assert batches([], 3) == []
    with pytest.raises(ValueError, match="at least 1"):
        batches(items, 0)


def test_a_walk_without_sizes_stats_nothing_and_leaves_huge_files_to_the_read(
    tmp_path: Path,
) -> None:
    (tmp_path / "big.py").write_bytes(b"x" * 100)
    (tmp_path / "small.py").write_bytes(b"y = 1\n")
    os.mkfifo(tmp_path / "pipe.py")
    options = WalkOptions(max_bytes=50, sizes=False)
    result = walk(tmp_path, options)
    assert (result.files, result.sizes) == (("big.py", "small.py"), (-1, -1))
    assert [(s.path, s.reason) for s in result.skipped] == [("pipe.py", SkipReason.UNREADABLE)]
    assert skip_reason(load_text(tmp_path, "big.py", max_bytes=50)) is SkipReason.HUGE


@pytest.mark.parametrize("size", [FIRST_READ - 1, FIRST_READ, FIRST_READ + 1, 3 * FIRST_READ + 5])
def test_a_file_past_the_first_read_is_read_whole_or_found_huge(tmp_path: Path, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    (tmp_path / "a.py").write_bytes(data)
    assert read_bytes(tmp_path / "a.py", DEFAULT_MAX_BYTES, "a.py") == data
    assert read_bytes(tmp_path / "a.py", size, "a.py") == data
    assert skip_reason(read_bytes(tmp_path / "a.py", size - 1, "a.py")) is SkipReason.HUGE
