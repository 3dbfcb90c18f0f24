"""Walk a target tree into candidate files, and read a candidate's text or say why not.

Exclusions follow ``gitignore(5)``; pathspec's ``GitIgnoreSpec`` matches the patterns (syntax,
anchoring, ``**``, ``!`` with the last matching pattern winning). The walk adds what a single
spec cannot know: deeper ``.gitignore`` files win over shallower ones, and (as in git) nothing
inside an excluded directory can be re-included, because the walk never enters it. A directory
is asked about as ``dir/``, so ``dir/**`` excludes the directory itself as well.

The configured extra patterns sit under every ``.gitignore`` (like ``.git/info/exclude``), so a
target's own ``!`` rules can re-include what they exclude. ``ALWAYS_SKIP`` names are never
entered, whatever the patterns say.

Symlinks are never followed: a link that resolves outside the tree is skipped with reason
``outside_tree``; one that resolves inside is skipped with reason ``symlink`` (its target is
walked where it really lives), so no file is analysed twice and no loop is possible.

Content checks (binary, non-UTF-8, unreadable) happen in ``read_bytes`` and ``decode`` when a
file is read for analysis, so the walk stats each file once and the analysis reads it once. Size
is checked in both places (the file may grow in between), or only in the read with
``WalkOptions(sizes=False)``, whose walk makes no system call per file (the directory entries'
types tell files from directories, links and others).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

import pathspec

from supervisors.records import record

ALWAYS_SKIP = frozenset({".git", "__pycache__", ".venv", "venv", "node_modules", "var"})
DEFAULT_MAX_BYTES = 2 * 1024 * 1024
DEFAULT_SUFFIXES = (".py", ".go")
BINARY_PROBE = 8192  # bytes searched for a NUL, like git and grep
FIRST_READ = 1 << 16  # bytes of a file asked for by its first read
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)  # a link is never read through

T = TypeVar("T")


class SkipReason(StrEnum):
    """Why a file was not analysed."""

    BINARY = "binary"
    HUGE = "huge"
    UNREADABLE = "unreadable"
    NON_UTF8 = "non_utf8"
    OUTSIDE_TREE = "outside_tree"
    SYMLINK = "symlink"
    UNDECODABLE = "undecodable"  # a Python file not valid in its declared (PEP 263) encoding


@record
class SkippedFile:
    """A file the analysis left out, and why (``path`` relative to the root, posix)."""

    path: str
    reason: SkipReason
    detail: str = ""


@record
class WalkResult:
    """The candidate files (relative posix paths, sorted) and the skipped ones."""

    root: str
    files: tuple[str, ...]
    sizes: tuple[int, ...]
    skipped: tuple[SkippedFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes)


# --- gitignore patterns ---------------------------------------------------------------


@record
class IgnoreFile:
    """The patterns of one ``.gitignore`` (or the configured extras), and where they apply."""

    base: str  # directory relative to the root, "" for the root itself
    spec: pathspec.GitIgnoreSpec

    @classmethod
    def from_lines(cls, base: str, lines: Iterable[str]) -> IgnoreFile:
        return cls(base, pathspec.GitIgnoreSpec.from_lines(lines))

    @property
    def empty(self) -> bool:
        return not any(pattern.include is not None for pattern in self.spec.patterns)

    def decide(self, relpath: str, is_dir: bool) -> bool | None:
        """True (ignored), False (re-included) or None (no pattern here matches)."""
        if self.base:
            if not relpath.startswith(self.base + "/"):
                return None
            relpath = relpath[len(self.base) + 1 :]
        # pathspec tells a directory from a file by a trailing "/".
        return self.spec.check_file(relpath + "/" if is_dir else relpath).include

    def covers(self, relpath: str) -> bool:
        """Is the file ``relpath``, or a directory above it, ignored?"""
        parts = relpath.split("/")
        dirs = ("/".join(parts[:depth]) for depth in range(1, len(parts)))
        return any(self.decide(d, is_dir=True) for d in dirs) or bool(
            self.decide(relpath, is_dir=False)
        )


def is_ignored(relpath: str, is_dir: bool, stack: Sequence[IgnoreFile]) -> bool:
    """Apply the ignore files in ``stack`` (outermost first): the last decision wins."""
    for ignore in reversed(stack):
        verdict = ignore.decide(relpath, is_dir)
        if verdict is not None:
            return verdict
    return False


# --- the walk -------------------------------------------------------------------------


@record
class WalkOptions:
    """What the walk keeps (``suffixes`` None keeps every file, as the scratch copy needs)."""

    suffixes: tuple[str, ...] | None = DEFAULT_SUFFIXES
    extra_patterns: tuple[str, ...] = ()
    use_gitignore: bool = True
    always_skip: frozenset[str] = ALWAYS_SKIP
    max_bytes: int = DEFAULT_MAX_BYTES
    # False: no stat per candidate (its size is -1, and ``read_bytes`` alone skips huge files)
    sizes: bool = True


def walk(root: str | Path, options: WalkOptions | None = None) -> WalkResult:
    """The candidate files under ``root`` and the files skipped on the way, with reasons."""
    top = _top(root)
    files: list[tuple[str, int]] = []
    skipped: list[SkippedFile] = []
    for item in iter_walk(top, options):
        if isinstance(item, SkippedFile):
            skipped.append(item)
        else:
            files.append(item)
    files.sort()
    return WalkResult(
        root=str(top),
        files=tuple(path for path, _ in files),
        sizes=tuple(size for _, size in files),
        skipped=tuple(sorted(skipped, key=lambda s: s.path)),
    )


def iter_walk(
    root: str | Path, options: WalkOptions | None = None
) -> Iterator[tuple[str, int] | SkippedFile]:
    """``walk`` as a stream, in directory order: (relative path, size) for each candidate and
    ``SkippedFile`` for each file left out. Lets a caller hand out work (and show progress)
    before the walk of a large tree is over. Iterative: no recursion limit, no generator chain."""
    top = _top(root)
    opts = options or WalkOptions()
    extras = IgnoreFile.from_lines("", opts.extra_patterns)
    pending: list[tuple[str, str, list[IgnoreFile]]] = [
        (str(top), "", [] if extras.empty else [extras])
    ]
    while pending:
        directory, rel, stack = pending.pop()
        try:
            with os.scandir(directory) as scan:
                entries = list(scan)
        except OSError as exc:
            yield SkippedFile(rel or ".", SkipReason.UNREADABLE, _os_detail(exc))
            continue
        if opts.use_gitignore and any(e.name == ".gitignore" for e in entries):
            stack = _with_gitignore(os.path.join(directory, ".gitignore"), rel, stack)
        prefix = f"{rel}/" if rel else ""
        skip, suffixes = opts.always_skip, opts.suffixes  # locals: this loop runs per entry
        for entry in entries:
            name = entry.name
            if skip and name in skip:
                continue
            # A link first: is_dir() (no keyword to parse) then needs no system call either.
            if entry.is_symlink():  # reported whatever its name (it may lead to a candidate)
                if not (stack and is_ignored(prefix + name, False, stack)):
                    yield _symlink_skip(top, entry, prefix + name)
            elif entry.is_dir():
                if not (stack and is_ignored(prefix + name, True, stack)):
                    pending.append((entry.path, prefix + name, stack))
            # Most entries end here, before any path is built (*.pyc beside *.py, say).
            elif (suffixes is None or name.endswith(suffixes)) and not (
                stack and is_ignored(prefix + name, False, stack)
            ):
                yield _candidate(entry, prefix + name, opts)


def _top(root: str | Path) -> Path:
    top = Path(root).resolve()
    if not top.is_dir():
        raise NotADirectoryError(f"analysis target {top} is not a directory")
    return top


def _candidate(
    entry: os.DirEntry[str], relpath: str, opts: WalkOptions
) -> tuple[str, int] | SkippedFile:
    if not opts.sizes:  # the directory entry's type, as read with its name: no system call
        if entry.is_file(follow_symlinks=False):
            return relpath, -1
        return SkippedFile(relpath, SkipReason.UNREADABLE, "not a regular file")
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError as exc:
        return SkippedFile(relpath, SkipReason.UNREADABLE, _os_detail(exc))
    if not stat.S_ISREG(info.st_mode):
        return SkippedFile(relpath, SkipReason.UNREADABLE, "not a regular file")
    if info.st_size > opts.max_bytes:
        detail = f"{info.st_size} bytes > {opts.max_bytes}"
        return SkippedFile(relpath, SkipReason.HUGE, detail)
    return relpath, info.st_size


def _with_gitignore(path: str, rel: str, stack: list[IgnoreFile]) -> list[IgnoreFile]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return stack  # unreadable: then it excludes nothing
    return [*stack, IgnoreFile.from_lines(rel, text.splitlines())]


def _symlink_skip(top: Path, entry: os.DirEntry[str], relpath: str) -> SkippedFile:
    try:
        target = Path(entry.path).resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop on older Pythons
        return SkippedFile(relpath, SkipReason.UNREADABLE, f"dangling symlink: {exc}")
    if target != top and top not in target.parents:
        return SkippedFile(relpath, SkipReason.OUTSIDE_TREE, f"-> {target}")
    return SkippedFile(relpath, SkipReason.SYMLINK, f"-> {target.relative_to(top).as_posix()}")


def _os_detail(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


# --- reading a candidate --------------------------------------------------------------


def read_bytes(path: str | Path, max_bytes: int, relpath: str) -> bytes | SkippedFile:
    """The file's bytes, or why they could not be read (at most ``max_bytes`` + 1 are read).

    The first read asks for ``FIRST_READ`` bytes, which holds most source files whole: one
    ``open``, ``read`` and ``close`` each, no ``fstat``. A bigger request would cost more than
    it saves: the allocator maps a buffer past 128 KiB afresh (mmap/munmap) for every file.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        return SkippedFile(relpath, SkipReason.UNREADABLE, _os_detail(exc))
    limit = max_bytes + 1  # one byte more than allowed tells "too big"
    try:
        data = os.read(fd, min(FIRST_READ, limit))
        if len(data) == FIRST_READ < limit:  # a regular file reads short only at its end
            data = _read_rest(fd, data, limit)
    except OSError as exc:
        return SkippedFile(relpath, SkipReason.UNREADABLE, _os_detail(exc))
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        return SkippedFile(relpath, SkipReason.HUGE, f"more than {max_bytes} bytes")
    return data


def _read_rest(fd: int, head: bytes, limit: int) -> bytes:
    """``head`` and what follows it, up to ``limit`` bytes in all (one ``fstat`` sizes it)."""
    chunks = [head]
    total = len(head)
    request = max(1, min(os.fstat(fd).st_size + 1 - total, limit - total))
    while total < limit and request > 0:
        chunk = os.read(fd, request)
        chunks.append(chunk)
        total += len(chunk)
        if len(chunk) < request:
            break
        request = min(FIRST_READ, limit - total)
    return b"".join(chunks)


def decode(data: bytes, relpath: str) -> str | SkippedFile:
    """UTF-8 text of ``data``, or why it is not text (NUL in the first 8 KiB = binary)."""
    if data.find(b"\0", 0, BINARY_PROBE) >= 0:
        return SkippedFile(relpath, SkipReason.BINARY, "NUL byte in the first 8 KiB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        detail = f"invalid UTF-8 at byte {exc.start}"
        return SkippedFile(relpath, SkipReason.NON_UTF8, detail)


def check_text(data: bytes, relpath: str) -> SkippedFile | None:
    """Why ``data`` is not UTF-8 text, or None; like ``decode`` but builds no string when the
    bytes are plain ASCII (most source files)."""
    if data.isascii() and data.find(b"\0", 0, BINARY_PROBE) < 0:
        return None
    text = decode(data, relpath)
    return text if isinstance(text, SkippedFile) else None


def batches(items: Sequence[T], size: int) -> list[tuple[T, ...]]:
    """``items`` cut into consecutive batches of ``size`` (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    return [tuple(items[i : i + size]) for i in range(0, len(items), size)]
