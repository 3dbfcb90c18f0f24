"""Releases of an environment: build, import, switch ``current`` atomically, repair, prune.

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

Its errors, ``ReleaseError`` and its subclasses, are drawn in the tree of ``gaia_actors.errors``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from gaia_actors import process
from gaia_actors.layout import CURRENT, ReleaseError, current_release

__all__ = [
    "MANIFEST",
    "BuildError",
    "BuildResult",
    "Release",
    "ReleaseError",
    "ReleaseNotFound",
    "RepairReport",
    "build_release",
    "current_release",
    "import_release",
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
_TMP = ".tmp"
_OUTPUT_KEPT = 8000  # characters of build output recorded in the manifest
MAX_ID_LENGTH = 128
# A release id is a file name: letters, digits, ".", "_" and "-", starting with a letter or
# digit (so never "..", a hidden name or a path), whatever a RELEASE.json claims.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


# --------------------------------------------------------------------------- errors


class BuildError(ReleaseError):
    """The build command failed; the release was not created."""

    def __init__(self, release_id: str, source: Path, result: process.RunResult) -> None:
        self.release_id = release_id
        self.result = result
        how = "timed out" if result.timed_out else f"exited {result.exit_code}"
        tail = result.output_tail[-2000:]
        super().__init__(source, f"build of release {release_id} {how}; output:\n{tail}")


class ReleaseNotFound(ReleaseError):
    """No complete release with that id."""

    def __init__(self, env_dir: Path, release_id: str) -> None:
        self.release_id = release_id
        super().__init__(env_dir, f"no complete release {release_id!r}")


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class BuildResult:
    """How the build command of a release went."""

    argv: tuple[str, ...]
    exit_code: int
    duration: float
    output_tail: str


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class RepairReport:
    """What :func:`repair` found and did."""

    removed: tuple[str, ...]  # leftover temporary entries, relative to env_dir
    dangling: str | None  # what ``current`` pointed at when it was dangling
    current: str | None  # the release ``current`` names afterwards

    @property
    def changed(self) -> bool:
        return bool(self.removed) or self.dangling is not None


# --------------------------------------------------------------------------- manifest


def _manifest_dict(release: Release, skipped: Sequence[str]) -> dict[str, Any]:
    build = release.build
    return {
        "id": release.id,
        "created": release.created.isoformat(),
        "source": release.source,
        "content_hash": release.content_hash,
        "files": release.files,
        "bytes": release.size,
        "skipped": list(skipped),
        "build": None
        if build is None
        else {
            "argv": list(build.argv),
            "exit_code": build.exit_code,
            "duration": build.duration,
            "output_tail": build.output_tail,
        },
    }


def id_problem(release_id: object) -> str | None:
    """Why ``release_id`` cannot name a release directory, or None when it can."""
    if not isinstance(release_id, str) or not _ID.fullmatch(release_id):
        return (
            f"release id {release_id!r} is not a name (letters, digits, '.', '_', '-', "
            "starting with a letter or digit)"
        )
    if ".." in release_id or release_id.endswith(_TMP):
        return f"release id {release_id!r} may not contain '..' or end with {_TMP!r}"
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


def _is_complete(path: Path) -> bool:
    return path.is_dir() and not path.name.endswith(_TMP) and (path / MANIFEST).is_file()


# --------------------------------------------------------------------------- copying


@dataclass
class _Copy:
    """Running totals of a tree copy."""

    digest: Any = field(default_factory=hashlib.sha256)  # hashlib's type is private
    files: int = 0
    size: int = 0
    skipped: list[str] = field(default_factory=list)


def _ignored(relative: PurePosixPath, patterns: Sequence[str]) -> bool:
    """fnmatch-style globs, tried on the relative path and on the name."""
    text = relative.as_posix()
    return any(
        fnmatch.fnmatchcase(text, p) or fnmatch.fnmatchcase(relative.name, p) for p in patterns
    )


def _entries(
    source: Path, ignore: Sequence[str], exclude: PurePosixPath | None
) -> Iterator[PurePosixPath]:
    """Relative paths to copy, parents before children, in a stable order."""
    for dirpath, dirnames, filenames in os.walk(source):
        base = PurePosixPath(Path(dirpath).relative_to(source).as_posix())
        kept = set()
        for name in sorted(dirnames + filenames):
            relative = base / name
            if relative == exclude or _ignored(relative, ignore):
                continue
            kept.add(name)
            yield relative
        # Descend only into kept real directories (symlinks to directories are copied as links).
        dirnames[:] = [d for d in sorted(dirnames) if d in kept]


def _copy_entry(source: Path, dest: Path, relative: PurePosixPath, totals: _Copy) -> None:
    src, dst = source / relative, dest / relative
    info = src.lstat()
    name = relative.as_posix().encode()
    if stat.S_ISLNK(info.st_mode):
        target = os.readlink(src)
        os.symlink(target, dst)
        totals.digest.update(b"L\0" + name + b"\0" + target.encode() + b"\0")
    elif stat.S_ISDIR(info.st_mode):
        dst.mkdir()
        totals.digest.update(b"D\0" + name + b"\0")
    elif stat.S_ISREG(info.st_mode):
        shutil.copy2(src, dst, follow_symlinks=False)
        executable = b"x" if info.st_mode & stat.S_IXUSR else b"-"
        totals.digest.update(b"F\0" + name + b"\0" + executable + b"\0")
        with open(dst, "rb") as copied:
            totals.digest.update(hashlib.file_digest(copied, "sha256").digest())
        totals.files += 1
        totals.size += info.st_size
    else:  # sockets, fifos, devices: nothing a release can use
        totals.skipped.append(relative.as_posix())


def _copy_source(source: Path, dest: Path, ignore: Sequence[str], releases_dir: Path) -> _Copy:
    """Copy and hash ``source``; a ``releases_dir`` inside it is never copied into itself."""
    inside = releases_dir.resolve().is_relative_to(source)
    exclude = PurePosixPath(releases_dir.resolve().relative_to(source)) if inside else None
    totals = _Copy()
    for relative in _entries(source, ignore, exclude):
        _copy_entry(source, dest, relative, totals)
    return totals


def _temp_dir(releases_dir: Path, release_id: str) -> Path:
    releases_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{release_id}.", suffix=_TMP, dir=releases_dir))


def _publish(tmp: Path, final: Path) -> Release:
    """Rename a finished temporary release into place; if the same id got there first, the
    existing one wins (ids are content-derived: it is the same release)."""
    try:
        os.replace(tmp, final)
    except OSError:
        if not _is_complete(final):
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(tmp)
    process.fsync_dir(final.parent)
    return load_release(final)


# --------------------------------------------------------------------------- build / import


def _release_id(created: datetime, content_hash: str) -> str:
    return f"{created.strftime('%Y%m%dT%H%M%SZ')}-{content_hash[:8]}"


def _run_build(
    tmp: Path,
    release_id: str,
    source: Path,
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None,
) -> BuildResult:
    result = process.run(argv, tmp, env, timeout=timeout, output_limit=_OUTPUT_KEPT)
    if not result.ok:
        raise BuildError(release_id, source, result)
    return BuildResult(tuple(argv), result.exit_code, result.duration, result.output_tail)


def build_release(
    source: Path,
    releases_dir: Path,
    ignore: Sequence[str] = (),
    build_argv: Sequence[str] | None = None,
    timeout: float = 600.0,
    *,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> Release:
    """Copy ``source`` minus ``ignore`` into a new release and run ``build_argv`` in it.

    The copy and the build happen in ``releases/<id>.<x>.tmp``, renamed to ``releases/<id>``
    only when the build succeeded; a failing build removes it and raises BuildError with the
    output tail. Building identical content twice within one second yields the existing
    release (same id). ``releases_dir`` inside ``source`` is never copied into itself.
    """
    created = (now or datetime.now(UTC)).astimezone(UTC)
    source = source.resolve()
    if not source.is_dir():
        raise ReleaseError(source, "the source tree is not a directory")
    tmp = _temp_dir(releases_dir, created.strftime("%Y%m%dT%H%M%SZ"))
    try:
        totals = _copy_source(source, tmp, ignore, releases_dir)
        content_hash = totals.digest.hexdigest()
        release_id = _release_id(created, content_hash)
        final = releases_dir / release_id
        if _is_complete(final):
            shutil.rmtree(tmp)
            return load_release(final)
        build = (
            _run_build(tmp, release_id, source, build_argv, timeout=timeout, env=env)
            if build_argv
            else None
        )
        release = Release(
            release_id, final, created, str(source), content_hash, totals.files, totals.size, build
        )
        manifest = _manifest_dict(release, totals.skipped)
        process.write_atomic(tmp / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _publish(tmp, final)


def import_release(release_dir: Path, releases_dir: Path) -> Release:
    """Copy a complete release (built for another environment) into ``releases_dir`` under
    the same id, the same all-or-nothing way. Importing one that is already here is a no-op."""
    incoming = load_release(release_dir)
    final = releases_dir / incoming.id
    if _is_complete(final):
        return load_release(final)
    tmp = _temp_dir(releases_dir, incoming.id)
    try:
        shutil.copytree(release_dir, tmp, symlinks=True, dirs_exist_ok=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _publish(tmp, final)


# --------------------------------------------------------------------------- current


def _release_dir(env_dir: Path, release_id: str) -> Path:
    if not valid_id(release_id):
        raise ReleaseNotFound(env_dir, release_id)
    return env_dir / "releases" / release_id


def switch_current(env_dir: Path, release_id: str) -> None:
    """Point ``current`` at ``releases/<release_id>`` atomically (new relative symlink
    ``current.tmp``, then ``os.replace``). Refuses a release that is missing or incomplete."""
    if not _is_complete(_release_dir(env_dir, release_id)):
        raise ReleaseNotFound(env_dir, release_id)
    link = env_dir / f"{CURRENT}{_TMP}"
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
        if _is_complete(entry):
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
    leftovers = sorted((env_dir / "releases").glob(f"*{_TMP}"))
    leftovers += [p for p in [env_dir / f"{CURRENT}{_TMP}"] if p.is_symlink() or p.exists()]
    for path in leftovers:
        _remove_entry(path)
    named = current_release(env_dir)
    dangling = None
    if named is not None and not _is_complete(env_dir / "releases" / named):
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
        doomed = release.path.with_name(f"{release.id}.deleting{_TMP}")
        os.replace(release.path, doomed)
        shutil.rmtree(doomed)
        removed.append(release.id)
    return removed


# --------------------------------------------------------------------------- last healthy


def mark_healthy(env_dir: Path, release_id: str) -> None:
    """Record ``release_id`` as the last release that passed its health check."""
    if not _is_complete(_release_dir(env_dir, release_id)):
        raise ReleaseNotFound(env_dir, release_id)
    process.write_atomic(env_dir / LAST_HEALTHY, release_id + "\n")


def last_healthy(env_dir: Path) -> str | None:
    """The id recorded by :func:`mark_healthy`, or None."""
    try:
        return (env_dir / LAST_HEALTHY).read_text().strip() or None
    except FileNotFoundError:
        return None
