"""gaia_actors.environments.releases: real trees, real build commands, real symlinks."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gaia_actors.environments.builds import BuildError, build_release, import_release
from gaia_actors.environments.releases import (
    MANIFEST,
    ReleaseError,
    ReleaseNotFound,
    current_release,
    last_healthy,
    list_releases,
    load_release,
    mark_healthy,
    prune_releases,
    repair,
    switch_current,
)

PY = sys.executable
IGNORE = ("__pycache__", "*.pyc", ".git", "var", "docs/*.md")
T0 = datetime(2026, 11, 28, 7, 55, 1, tzinfo=UTC)


def make_source(root: Path) -> Path:
    """A small service tree with things a release must not contain."""
    files = {
        "app.py": "print('hello')\n",
        "pkg/__init__.py": "",
        "pkg/core.py": "VALUE = 1\n",
        "pkg/__pycache__/core.cpython-311.pyc": "bytecode",
        "pkg/stale.pyc": "bytecode",
        ".git/HEAD": "ref: refs/heads/main\n",
        "var/state.db": "runtime state",
        "docs/notes.md": "not shipped",
        "docs/api.txt": "shipped",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    os.symlink("app.py", root / "main.py")
    return root


def shipped(release_path: Path) -> set[str]:
    return {
        p.relative_to(release_path).as_posix()
        for p in release_path.rglob("*")
        if not p.is_dir() or p.is_symlink()
    }


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return make_source(tmp_path / "src")


@pytest.fixture
def env_dir(tmp_path: Path) -> Path:
    path = tmp_path / "environments" / "dev"
    (path / "releases").mkdir(parents=True)
    return path


def new_release(env_dir: Path, source: Path, at: datetime, marker: str) -> str:
    """A release with distinct content, created at ``at``."""
    (source / "marker.txt").write_text(marker)
    return build_release(source, env_dir / "releases", IGNORE, now=at).id


# --------------------------------------------------------------------------- build


def test_build_copies_the_tree_minus_ignore_patterns(source: Path, env_dir: Path) -> None:
    release = build_release(source, env_dir / "releases", IGNORE, now=T0)
    assert re.fullmatch(r"20261128T075501Z-[0-9a-f]{8}", release.id)
    assert release.path == env_dir / "releases" / release.id
    assert shipped(release.path) == {
        "app.py",
        "pkg/__init__.py",
        "pkg/core.py",
        "docs/api.txt",
        "run.sh",
        "main.py",
        MANIFEST,
    }
    assert os.readlink(release.path / "main.py") == "app.py"
    assert os.access(release.path / "run.sh", os.X_OK)
    assert release.files == 5
    assert release.content_hash.startswith(release.id.split("-")[1])


def test_build_writes_a_manifest_with_the_build_result(source: Path, env_dir: Path) -> None:
    build = [PY, "-c", "open('BUILT', 'w').write('yes'); print('compiled 3 files')"]
    release = build_release(source, env_dir / "releases", IGNORE, build, timeout=60, now=T0)
    assert (release.path / "BUILT").read_text() == "yes"  # ran inside the release
    manifest = json.loads((release.path / MANIFEST).read_text())
    assert manifest["id"] == release.id
    assert manifest["source"] == str(source.resolve())
    assert manifest["content_hash"] == release.content_hash
    assert manifest["build"]["exit_code"] == 0
    assert manifest["build"]["output_tail"] == "compiled 3 files"
    assert load_release(release.path) == release


def test_content_hash_depends_on_content_only(source: Path, tmp_path: Path) -> None:
    first = build_release(source, tmp_path / "a", IGNORE, now=T0)
    (source / "pkg" / "__pycache__" / "other.pyc").write_text("ignored anyway")
    second = build_release(source, tmp_path / "b", IGNORE, now=T0 + timedelta(hours=1))
    (source / "pkg" / "core.py").write_text("VALUE = 2\n")
    third = build_release(source, tmp_path / "c", IGNORE, now=T0)
    assert first.content_hash == second.content_hash != third.content_hash


def test_building_identical_content_in_the_same_second_yields_the_same_release(
    source: Path, env_dir: Path
) -> None:
    first = build_release(source, env_dir / "releases", IGNORE, now=T0)
    again = build_release(source, env_dir / "releases", IGNORE, now=T0)
    assert again == first
    assert [r.id for r in list_releases(env_dir)] == [first.id]


def test_build_skips_a_releases_dir_inside_the_source(source: Path) -> None:
    releases = source / "state" / "releases"
    first = build_release(source, releases, IGNORE, now=T0)
    second = build_release(source, releases, IGNORE, now=T0 + timedelta(seconds=1))
    assert (second.path / "state").is_dir()
    assert not (second.path / "state" / "releases").exists()
    assert first.content_hash == second.content_hash  # the first release was not copied


def test_a_file_removed_while_the_source_is_copied_is_left_out(
    source: Path, tmp_path: Path
) -> None:
    """A source being edited (an editor's swap files come and go) is copied as it is: a
    file gone between the listing and its copy is not in the release, not a failed build."""
    stop = threading.Event()

    def edit() -> None:
        for turn in range(10**9):
            if stop.is_set():
                return
            swap = source / "pkg" / f".core.py.{turn % 50}.swp"
            swap.write_text("editing")
            swap.unlink()

    editor = threading.Thread(target=edit)
    editor.start()
    try:
        for turn in range(30):
            release = build_release(source, tmp_path / f"r{turn}", IGNORE, now=T0)
            copied = {p.name for p in (release.path / "pkg").iterdir()}
            assert {"__init__.py", "core.py"} <= copied
    finally:
        stop.set()
        editor.join(10)


def test_failing_build_leaves_no_release_dir(source: Path, env_dir: Path) -> None:
    build = [PY, "-c", "import sys; print('syntax error in app.py'); sys.exit(3)"]
    with pytest.raises(BuildError, match=r"syntax error in app\.py") as caught:
        build_release(source, env_dir / "releases", IGNORE, build, timeout=60, now=T0)
    assert caught.value.result.exit_code == 3
    assert list((env_dir / "releases").iterdir()) == []


def test_build_timeout_leaves_no_release_dir(source: Path, env_dir: Path) -> None:
    build = [PY, "-c", "import time; print('linking'); time.sleep(60)"]
    with pytest.raises(BuildError, match="timed out") as caught:
        build_release(source, env_dir / "releases", IGNORE, build, timeout=0.5, now=T0)
    assert caught.value.result.timed_out
    assert list((env_dir / "releases").iterdir()) == []


def test_build_of_a_missing_source_raises(tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match="not a directory"):
        build_release(tmp_path / "absent", tmp_path / "releases", IGNORE, now=T0)


# --------------------------------------------------------------------------- import


def test_import_copies_a_release_under_the_same_id(source: Path, tmp_path: Path) -> None:
    dev = build_release(source, tmp_path / "dev" / "releases", IGNORE, now=T0)
    staging_releases = tmp_path / "staging" / "releases"
    imported = import_release(dev.path, staging_releases)
    assert imported.id == dev.id
    assert imported.path == staging_releases / dev.id
    assert imported.content_hash == dev.content_hash
    assert shipped(imported.path) == shipped(dev.path)
    assert [p.name for p in staging_releases.iterdir()] == [dev.id]
    assert import_release(dev.path, staging_releases) == imported  # again: a no-op


def test_import_refuses_a_directory_that_is_not_a_release(tmp_path: Path) -> None:
    (tmp_path / "half").mkdir()
    with pytest.raises(ReleaseError, match="not a complete release"):
        import_release(tmp_path / "half", tmp_path / "releases")
    assert not (tmp_path / "releases").exists()


# --------------------------------------------------------------------------- current


def test_switch_current_points_a_relative_symlink_at_the_release(
    source: Path, env_dir: Path
) -> None:
    release_id = new_release(env_dir, source, T0, "one")
    assert current_release(env_dir) is None
    switch_current(env_dir, release_id)
    assert os.readlink(env_dir / "current") == f"releases/{release_id}"
    assert current_release(env_dir) == release_id
    assert (env_dir / "current" / "app.py").read_text() == "print('hello')\n"
    assert not (env_dir / "current.tmp").exists()


def test_switch_current_refuses_a_missing_or_incomplete_release(
    source: Path, env_dir: Path
) -> None:
    good = new_release(env_dir, source, T0, "one")
    switch_current(env_dir, good)
    (env_dir / "releases" / "20261201T000000Z-deadbeef").mkdir()  # no manifest
    for bad in ("20261201T000000Z-deadbeef", "nope", "../dev", ""):
        with pytest.raises(ReleaseNotFound):
            switch_current(env_dir, bad)
    assert current_release(env_dir) == good


def test_switch_is_atomic_for_a_concurrent_reader(source: Path, env_dir: Path) -> None:
    ids = [new_release(env_dir, source, T0 + timedelta(seconds=i), str(i)) for i in range(3)]
    switch_current(env_dir, ids[0])
    stop = threading.Event()
    misses: list[str] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            try:
                (env_dir / "current" / MANIFEST).stat()
            except FileNotFoundError as exc:
                misses.append(str(exc))
            reads[0] += 1

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(200):
            switch_current(env_dir, ids[i % 3])
    finally:
        stop.set()
        thread.join()
    assert misses == []
    assert reads[0] > 200


# --------------------------------------------------------------------------- repair


def test_repair_removes_crash_leftovers(source: Path, env_dir: Path) -> None:
    release_id = new_release(env_dir, source, T0, "one")
    switch_current(env_dir, release_id)
    (env_dir / "releases" / "20261128T080000Z.abc123.tmp" / "pkg").mkdir(parents=True)
    os.symlink("releases/half-built", env_dir / "current.tmp")
    report = repair(env_dir)
    assert sorted(report.removed) == ["current.tmp", "releases/20261128T080000Z.abc123.tmp"]
    assert report.dangling is None
    assert report.current == release_id
    assert sorted(p.name for p in env_dir.iterdir()) == ["current", "releases"]
    assert [p.name for p in (env_dir / "releases").iterdir()] == [release_id]
    assert not repair(env_dir).changed


def test_repair_points_a_dangling_current_at_the_newest_complete_release(
    source: Path, env_dir: Path
) -> None:
    older = new_release(env_dir, source, T0, "one")
    newer = new_release(env_dir, source, T0 + timedelta(minutes=1), "two")
    os.symlink("releases/20261128T090000Z-00000000", env_dir / "current")
    report = repair(env_dir)
    assert report.dangling == "20261128T090000Z-00000000"
    assert report.current == newer != older
    assert current_release(env_dir) == newer


def test_repair_removes_current_when_no_release_is_left(env_dir: Path) -> None:
    os.symlink("releases/gone", env_dir / "current")
    report = repair(env_dir)
    assert (report.dangling, report.current) == ("gone", None)
    assert not (env_dir / "current").is_symlink()


# --------------------------------------------------------------------------- prune, healthy


def test_list_releases_is_newest_first_and_skips_incomplete(source: Path, env_dir: Path) -> None:
    ids = [new_release(env_dir, source, T0 + timedelta(minutes=i), str(i)) for i in range(3)]
    (env_dir / "releases" / "20261130T000000Z-ffffffff").mkdir()  # no manifest
    assert [r.id for r in list_releases(env_dir)] == ids[::-1]


def test_prune_keeps_newest_current_last_healthy_and_protected(source: Path, env_dir: Path) -> None:
    ids = [new_release(env_dir, source, T0 + timedelta(minutes=i), str(i)) for i in range(9)]
    switch_current(env_dir, ids[1])
    mark_healthy(env_dir, ids[0])
    removed = prune_releases(env_dir, keep=3, protect={ids[4]})
    assert sorted(removed) == sorted([ids[2], ids[3], ids[5]])
    left = [r.id for r in list_releases(env_dir)]
    assert left == [ids[8], ids[7], ids[6], ids[4], ids[1], ids[0]]
    assert sorted(p.name for p in (env_dir / "releases").iterdir()) == sorted(left)


def test_prune_default_keeps_five(source: Path, env_dir: Path) -> None:
    ids = [new_release(env_dir, source, T0 + timedelta(minutes=i), str(i)) for i in range(7)]
    switch_current(env_dir, ids[6])
    assert sorted(prune_releases(env_dir)) == [ids[0], ids[1]]


def test_mark_healthy_records_a_complete_release(source: Path, env_dir: Path) -> None:
    assert last_healthy(env_dir) is None
    release_id = new_release(env_dir, source, T0, "one")
    mark_healthy(env_dir, release_id)
    assert last_healthy(env_dir) == release_id
    with pytest.raises(ReleaseNotFound):
        mark_healthy(env_dir, "20261128T000000Z-00000000")
    assert last_healthy(env_dir) == release_id
