"""Releases of an environment: load, list, switch ``current`` atomically, repair, prune.

On disk::

    <env_dir>/releases/<id>/           complete and immutable; its RELEASE.json marks it complete
    <env_dir>/releases/<id>.<x>.tmp/   being built, imported or deleted (repair() removes it)
    <env_dir>/current -> releases/<id> relative symlink, switched with a rename
    <env_dir>/last_healthy             id of the last release that passed its health check

A release directory appears with one ``os.replace`` of a finished temporary directory, so it
exists complete or not at all; ``current`` is replaced by renaming a new symlink over it
(Capistrano PR 1097), so a reader never finds it missing. Release ids sort by creation time:
``20261128T075501Z-1a2b3c4d`` (UTC timestamp, then the first 8 hex digits of the source hash).

Nothing here locks: one caller per environment directory at a time (the environment actor).
Making a release (copying the source tree, running the build, importing one built elsewhere)
is ``gaia_actors.environments.builds``.

Its errors, ``ReleaseError`` and its subclasses, are drawn in the tree of ``gaia_actors.errors``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from datetime import datetime
from pathlib import Path

from gaia_actors import process
from gaia_actors.layout import CURRENT, ReleaseError, current_release
from supervisors.records import record

__all__ = [
    "MANIFEST",
    "BuildResult",
    "Release",
    "ReleaseError",
    "ReleaseNotFound",
    "RepairReport",
    "current_release",
    "is_complete",
    "last_healthy",
    "list_releases",
    "load_release",
    "mark_healthy",
    "prune_releases",
    "repair",
    "switch_current",
    "valid_id",
]

MANIFEST = "RELEASE.json"
LAST_HEALTHY = "last_healthy"
TMP = ".tmp"
MAX_ID_LENGTH = 128
# A release id is a file name: letters, digits, ".", "_" and "-", starting with a letter or
# digit (so never "..", a hidden name or a path), whatever a RELEASE.json claims.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


# --------------------------------------------------------------------------- errors


class ReleaseNotFound(ReleaseError):
    """No complete release with that id."""

    def __init__(self, env_dir: Path, release_id: str) -> None:
        self.release_id = release_id
        super().__init__(env_dir, f"no complete release {release_id!r}")


# --------------------------------------------------------------------------- values


@record
class BuildResult:
    """How the build command of a release went."""

    argv: tuple[str, ...]
    exit_code: int
    duration: float
    output_tail: str


@record
class Release:
    """A complete release, as its RELEASE.json describes it."""

    id: str
    path: Path
    created: datetime
    source: str
    content_hash: str  # sha256 of the copied source tree (paths, modes, contents, links)
    files: int
    size: int
    build: BuildResult | None


@record
class RepairReport:
    """What :func:`repair` found and did."""

    removed: tuple[str, ...]  # leftover temporary entries, relative to env_dir
    dangling: str | None  # what ``current`` pointed at when it was dangling
    current: str | None  # the release ``current`` names afterwards

    @property
    def changed(self) -> bool:
        return bool(self.removed) or self.dangling is not None


# --------------------------------------------------------------------------- manifest


def id_problem(release_id: object) -> str | None:
    """Why ``release_id`` cannot name a release directory, or None when it can."""
    if not isinstance(release_id, str) or not _ID.fullmatch(release_id):
        return (
            f"release id {release_id!r} is not a name (letters, digits, '.', '_', '-', "
            "starting with a letter or digit)"
        )
    if ".." in release_id or release_id.endswith(TMP):
        return f"release id {release_id!r} may not contain '..' or end with {TMP!r}"
    if len(release_id) > MAX_ID_LENGTH:
        return f"release id is {len(release_id)} characters long (at most {MAX_ID_LENGTH})"
    return None


def valid_id(release_id: object) -> bool:
    return id_problem(release_id) is None


def load_release(path: Path) -> Release:
    """The release in directory ``path``; ReleaseError when it has no readable manifest or
    its id is not a valid name."""
    try:
        raw = json.loads((path / MANIFEST).read_text())
        build = raw["build"]
        release = Release(
            id=raw["id"],
            path=path,
            created=datetime.fromisoformat(raw["created"]),
            source=raw["source"],
            content_hash=raw["content_hash"],
            files=raw["files"],
            size=raw["bytes"],
            build=None
            if build is None
            else BuildResult(
                tuple(build["argv"]), build["exit_code"], build["duration"], build["output_tail"]
            ),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReleaseError(path, f"not a complete release ({type(exc).__name__}: {exc})") from exc
    problem = id_problem(release.id)
    if problem is not None:
        raise ReleaseError(path, problem)
    return release


def is_complete(path: Path) -> bool:
    return path.is_dir() and not path.name.endswith(TMP) and (path / MANIFEST).is_file()


# --------------------------------------------------------------------------- current


def _release_dir(env_dir: Path, release_id: str) -> Path:
    if not valid_id(release_id):
        raise ReleaseNotFound(env_dir, release_id)
    return env_dir / "releases" / release_id


def switch_current(env_dir: Path, release_id: str) -> None:
    """Point ``current`` at ``releases/<release_id>`` atomically (new relative symlink
    ``current.tmp``, then ``os.replace``). Refuses a release that is missing or incomplete."""
    if not is_complete(_release_dir(env_dir, release_id)):
        raise ReleaseNotFound(env_dir, release_id)
    link = env_dir / f"{CURRENT}{TMP}"
    link.unlink(missing_ok=True)  # a leftover from a crash between the two steps
    os.symlink(f"releases/{release_id}", link)
    os.replace(link, env_dir / CURRENT)
    process.fsync_dir(env_dir)


def list_releases(env_dir: Path) -> list[Release]:
    """The complete releases, newest first (temporary and unreadable ones are left out)."""
    releases_dir = env_dir / "releases"
    if not releases_dir.is_dir():
        return []
    found = []
    for entry in releases_dir.iterdir():
        if is_complete(entry):
            with contextlib.suppress(ReleaseError):  # a foreign directory is not a release
                found.append(load_release(entry))
    return sorted(found, key=lambda r: (r.created, r.id), reverse=True)


def _remove_entry(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def repair(env_dir: Path) -> RepairReport:
    """Clean up after a crash; run before anything else touches the environment.

    Removes ``releases/*.tmp`` and ``current.tmp``; if ``current`` points at nothing
    complete, points it at the newest complete release (or removes it when there is none).
    """
    leftovers = sorted((env_dir / "releases").glob(f"*{TMP}"))
    leftovers += [p for p in [env_dir / f"{CURRENT}{TMP}"] if p.is_symlink() or p.exists()]
    for path in leftovers:
        _remove_entry(path)
    named = current_release(env_dir)
    dangling = None
    if named is not None and not is_complete(env_dir / "releases" / named):
        dangling = named
        releases = list_releases(env_dir)
        if releases:
            switch_current(env_dir, releases[0].id)
        else:
            (env_dir / CURRENT).unlink()
    removed = tuple(str(p.relative_to(env_dir)) for p in leftovers)
    return RepairReport(removed, dangling, current_release(env_dir))


def prune_releases(
    env_dir: Path, keep: int = 5, protect: frozenset[str] | set[str] = frozenset()
) -> list[str]:
    """Delete all but the newest ``keep`` releases, never the current one, the last healthy
    one or any id in ``protect``. Each is first renamed to ``*.tmp`` so a crash mid-delete
    leaves nothing that looks complete. Returns the deleted ids."""
    if keep < 0:
        raise ValueError(f"{env_dir}: keep must be >= 0, got {keep}")
    spared = set(protect) | {current_release(env_dir), last_healthy(env_dir)}
    removed = []
    for release in list_releases(env_dir)[keep:]:
        if release.id in spared:
            continue
        doomed = release.path.with_name(f"{release.id}.deleting{TMP}")
        os.replace(release.path, doomed)
        shutil.rmtree(doomed)
        removed.append(release.id)
    return removed


# --------------------------------------------------------------------------- last healthy


def mark_healthy(env_dir: Path, release_id: str) -> None:
    """Record ``release_id`` as the last release that passed its health check."""
    if not is_complete(_release_dir(env_dir, release_id)):
        raise ReleaseNotFound(env_dir, release_id)
    process.write_atomic(env_dir / LAST_HEALTHY, release_id + "\n")


def last_healthy(env_dir: Path) -> str | None:
    """The id recorded by :func:`mark_healthy`, or None."""
    try:
        return (env_dir / LAST_HEALTHY).read_text().strip() or None
    except FileNotFoundError:
        return None
