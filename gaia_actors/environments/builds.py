"""Making a release: copy the source tree (hashed), run the build in the copy, publish it.

A release is built or imported in ``releases/<id>.<x>.tmp`` and appears with one
``os.replace`` once complete (see ``gaia_actors.environments.releases`` for the layout), so a
crash leaves a temporary directory that ``releases.repair`` removes, never half a release.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import hashlib
import json
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from gaia_actors import process
from gaia_actors.environments.releases import (
    MANIFEST,
    TMP,
    BuildResult,
    Release,
    ReleaseError,
    is_complete,
    load_release,
)

__all__ = ["BuildError", "build_release", "first_release", "import_release"]

_OUTPUT_KEPT = 8000  # characters of build output recorded in the manifest


class BuildError(ReleaseError):
    """The build command failed; the release was not created."""

    def __init__(self, release_id: str, source: Path, result: process.RunResult) -> None:
        self.release_id = release_id
        self.result = result
        how = (
            "timed out"
            if result.timed_out
            else "cancelled"
            if result.cancelled
            else f"exited {result.exit_code}"
        )
        tail = result.output_tail[-2000:]
        super().__init__(source, f"build of release {release_id} {how}; output:\n{tail}")


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
    source: Path, ignore: Sequence[str], exclude: Collection[PurePosixPath]
) -> Iterator[PurePosixPath]:
    """Relative paths to copy, parents before children, in a stable order."""
    for dirpath, dirnames, filenames in os.walk(source):
        base = PurePosixPath(Path(dirpath).relative_to(source).as_posix())
        kept = set()
        for name in sorted(dirnames + filenames):
            relative = base / name
            if relative in exclude or _ignored(relative, ignore):
                continue
            kept.add(name)
            yield relative
        # Descend only into kept real directories (symlinks to directories are copied as links).
        dirnames[:] = [d for d in sorted(dirnames) if d in kept]


def _copy_entry(source: Path, dest: Path | None, relative: PurePosixPath, totals: _Copy) -> None:
    """Hash one entry into ``totals``, copying it under ``dest`` first (None: only hash)."""
    src = source / relative
    info = src.lstat()
    name = relative.as_posix().encode()
    if stat.S_ISLNK(info.st_mode):
        target = os.readlink(src)
        if dest is not None:
            os.symlink(target, dest / relative)
        totals.digest.update(b"L\0" + name + b"\0" + target.encode() + b"\0")
    elif stat.S_ISDIR(info.st_mode):
        if dest is not None:
            (dest / relative).mkdir()
        totals.digest.update(b"D\0" + name + b"\0")
    elif stat.S_ISREG(info.st_mode):
        content = _copy_file(src, None if dest is None else dest / relative)
        executable = b"x" if info.st_mode & stat.S_IXUSR else b"-"
        totals.digest.update(b"F\0" + name + b"\0" + executable + b"\0")
        totals.digest.update(content)
        totals.files += 1
        totals.size += info.st_size
    else:  # sockets, fifos, devices: nothing a release can use
        totals.skipped.append(relative.as_posix())


def _copy_file(src: Path, target: Path | None) -> bytes:
    """The sha256 of ``src`` copied to ``target`` (of ``src`` itself when None); a file gone
    meanwhile raises FileNotFoundError and leaves no partial copy."""
    try:
        if target is not None:  # the copy is hashed: the release is what the hash says
            shutil.copy2(src, target, follow_symlinks=False)
        with open(src if target is None else target, "rb") as copied:
            return hashlib.file_digest(copied, "sha256").digest()
    except FileNotFoundError:
        if target is not None:
            target.unlink(missing_ok=True)
        raise


def _copy_source(
    source: Path, dest: Path | None, ignore: Sequence[str], keep_out: Iterable[Path]
) -> _Copy:
    """Copy and hash ``source`` (only hash it when ``dest`` is None) but the directories
    ``keep_out`` inside it: the releases it is copied into, the daemon's state (other
    environments' releases and data, written meanwhile), never part of a release."""
    exclude = set()
    for path in keep_out:
        resolved = path.resolve()
        if resolved != source and resolved.is_relative_to(source):
            exclude.add(PurePosixPath(resolved.relative_to(source).as_posix()))
    totals = _Copy()
    for relative in _entries(source, ignore, exclude):
        # Gone since it was listed (a source being edited): not in this copy, nor its hash.
        with contextlib.suppress(FileNotFoundError):
            _copy_entry(source, dest, relative, totals)
    return totals


def _temp_dir(releases_dir: Path, release_id: str) -> Path:
    releases_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{release_id}.", suffix=TMP, dir=releases_dir))


def _publish(tmp: Path, final: Path) -> Release:
    """Rename a finished temporary release into place; if the same id got there first, the
    existing one wins (ids are content-derived: it is the same release)."""
    try:
        os.replace(tmp, final)
    except OSError:
        if not is_complete(final):
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
    cancel: threading.Event | None,
) -> BuildResult:
    result = process.run(argv, tmp, env, timeout=timeout, cancel=cancel, output_limit=_OUTPUT_KEPT)
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
    keep_out: Sequence[Path] = (),
    cancel: threading.Event | None = None,
) -> Release:
    """Copy ``source`` minus ``ignore`` into a new release and run ``build_argv`` in it.

    The copy and the build happen in ``releases/<id>.<x>.tmp``, renamed to ``releases/<id>``
    only when the build succeeded; a failing build removes it and raises BuildError with the
    output tail. Building identical content twice within one second yields the existing
    release (same id). ``releases_dir`` and the directories ``keep_out`` (the daemon's
    state) are not copied when they lie inside ``source``. A set ``cancel`` kills the build's
    process group and fails it (BuildError) the same way.
    """
    created = (now or datetime.now(UTC)).astimezone(UTC)
    source = source.resolve()
    if not source.is_dir():
        raise ReleaseError(source, "the source tree is not a directory")
    tmp = _temp_dir(releases_dir, created.strftime("%Y%m%dT%H%M%SZ"))
    try:
        totals = _copy_source(source, tmp, ignore, (releases_dir, *keep_out))
        content_hash = totals.digest.hexdigest()
        release_id = _release_id(created, content_hash)
        final = releases_dir / release_id
        if is_complete(final):
            shutil.rmtree(tmp)
            return load_release(final)
        build = (
            _run_build(tmp, release_id, source, build_argv, timeout=timeout, env=env, cancel=cancel)
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
    if is_complete(final):
        return load_release(final)
    tmp = _temp_dir(releases_dir, incoming.id)
    try:
        shutil.copytree(release_dir, tmp, symlinks=True, dirs_exist_ok=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _publish(tmp, final)


def first_release(
    source: Path,
    releases_dir: Path,
    elsewhere: Iterable[Path],
    lock_dir: Path,
    *,
    ignore: Sequence[str] = (),
    build_argv: Sequence[str] | None = None,
    timeout: float = 600.0,
    meanwhile: Callable[[], None] = lambda: None,
    keep_out: Sequence[Path] = (),
    cancel: threading.Event | None = None,
) -> tuple[Release, bool]:
    """An environment's first release, and whether it was imported rather than built.

    What a build makes depends only on the copied content and the command run in it, so
    environments of one source share one build: a release of the same source content made
    by the same build command in one of the ``elsewhere`` releases directories (other
    environments') is imported (a copy), instead of running the build again (an interpreter
    start and more, per environment). Of callers starting at the same time with the same
    source and command, one builds while the others wait (a lock in ``lock_dir``), then
    import what it built; if its build failed, each builds on its own, so a wait is never
    longer than one build of that command (another command's build is not waited for). A caller that
    builds calls ``meanwhile`` first: work to overlap with the build. ``keep_out`` and
    ``cancel`` as for ``build_release``.
    """
    source = source.resolve()

    def build() -> Release:
        return build_release(
            source, releases_dir, ignore, build_argv, timeout, keep_out=keep_out, cancel=cancel
        )

    if not source.is_dir():
        return build(), False
    copied = _copy_source(source, None, ignore, (releases_dir, *keep_out))
    content_hash = copied.digest.hexdigest()
    argv = None if build_argv is None else tuple(build_argv)
    key = hashlib.sha256(repr((str(source), argv)).encode()).hexdigest()[:16]
    lock = lock_dir / f".build-{key}.lock"
    with _build_turn(lock) as building:
        found = _built_elsewhere(elsewhere, str(source), content_hash, argv)
        if found is None and building:
            meanwhile()
            return build(), False
    if found is not None:
        with contextlib.suppress(OSError, ReleaseError):  # pruned meanwhile: build it
            return import_release(found, releases_dir), True
    meanwhile()
    return build(), False


@contextlib.contextmanager
def _build_turn(lock: Path) -> Iterator[bool]:
    """True: this caller holds ``lock`` (exclusively, until the block ends) and builds for
    the others; False: another caller held it, and its build has ended."""
    with open(lock, "a") as handle:  # "a": created if missing, never truncated
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(handle, fcntl.LOCK_SH)  # returns once the builder lets go
            fcntl.flock(handle, fcntl.LOCK_UN)
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _built_elsewhere(
    elsewhere: Iterable[Path], source: str, content_hash: str, argv: tuple[str, ...] | None
) -> Path | None:
    """A complete release of ``source`` with ``content_hash`` built by ``argv``."""
    for directory in elsewhere:
        # Ids end in the hash's first 8 digits (``_release_id``); the manifest says the rest.
        for path in sorted(directory.glob(f"*-{content_hash[:8]}"), reverse=True):
            try:
                release = load_release(path)
            except ReleaseError:
                continue
            built_with = None if release.build is None else release.build.argv
            if (release.source, release.content_hash, built_with) == (source, content_hash, argv):
                return path
    return None
