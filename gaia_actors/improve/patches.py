"""A verified patch: a unified diff with per-file hashes, made, parsed and applied all or nothing.

``apply_patch`` is the only function that writes to the target, and it writes exactly that
patch:

1. every file's current content must hash to the patch's pre-image (absent files: absent),
   else ``PatchConflict`` and nothing is written;
2. the hunks are applied strictly (context must match at the stated lines, no fuzz), and the
   result must hash to the verified post-image, else ``PatchError`` and nothing is written;
3. each file is written to a temporary file in its directory and ``os.replace``d over the old
   one (mode kept); if any step fails, every file already replaced is restored (same way) and
   every file created is removed, so the tree is byte-identical to before: ``PatchApplyError``.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from gaia_actors.improve.errors import PatchApplyError, PatchConflict, PatchError
from gaia_actors.improve.files import WalkOptions, walk
from supervisors.records import record


@record
class FileChange:
    """One file of a patch: its path and the sha256 before and after (None: absent)."""

    path: str
    before_sha256: str | None
    after_sha256: str | None


@record
class Patch:
    """A verified change set: per-file hashes and the unified diff that produces it."""

    changes: tuple[FileChange, ...]
    diff: str

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(change.path for change in self.changes)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- making a patch ------------------------------------------------------------------


def make_patch(before: Mapping[str, bytes], after_root: Path, options: WalkOptions) -> Patch:
    """The patch from the contents ``before`` to the files now under ``after_root``."""
    now = walk(after_root, options).files
    changes: list[FileChange] = []
    sections: list[str] = []
    for path in sorted(set(before) | set(now)):
        old = before.get(path)
        new = (after_root / path).read_bytes() if path in now else None
        if old == new:
            continue
        sections.append(file_diff(path, _text(path, old), _text(path, new)))
        changes.append(FileChange(path, _hash(old), _hash(new)))
    return Patch(tuple(changes), "".join(sections))


def _text(path: str, data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PatchError(path, f"changed file is not UTF-8 text (byte {exc.start})") from exc


def _hash(data: bytes | None) -> str | None:
    return None if data is None else sha256(data)


def split_lines(text: str) -> list[str]:
    """Lines with their ``\\n`` (only ``\\n`` splits, as patch(1) does); the last may lack it."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def file_diff(path: str, old: str | None, new: str | None) -> str:
    """A unified diff of one file (``/dev/null`` for an absent side), git-style names."""
    fromfile = f"a/{path}" if old is not None else "/dev/null"
    tofile = f"b/{path}" if new is not None else "/dev/null"
    out: list[str] = []
    for line in difflib.unified_diff(
        split_lines(old or ""), split_lines(new or ""), fromfile, tofile
    ):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


# --- parsing a patch -----------------------------------------------------------------


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@record
class _Hunk:
    old_start: int
    old_count: int
    lines: tuple[tuple[str, str], ...]  # (" " | "-" | "+", line with its ending)


def parse_diff(diff: str) -> dict[str, list[_Hunk]]:
    """File path -> hunks. Hunk bodies are read by their counts, so content that looks like a
    header ("--- x" removed from a file) cannot confuse the parser."""
    rows = diff.split("\n")
    files: dict[str, list[_Hunk]] = {}
    i = 0
    while i < len(rows):
        if not rows[i].startswith("--- "):
            i += 1
            continue
        if i + 1 >= len(rows) or not rows[i + 1].startswith("+++ "):
            raise PatchError(rows[i][4:], "malformed diff: '---' without '+++'")
        path = _diff_path(rows[i][4:], rows[i + 1][4:])
        hunks: list[_Hunk] = []
        i += 2
        while i < len(rows) and rows[i].startswith("@@"):
            hunk, i = _read_hunk(rows, i, path)
            hunks.append(hunk)
        files[path] = hunks
    return files


def _diff_path(old: str, new: str) -> str:
    name = new if new != "/dev/null" else old
    name = name.split("\t", 1)[0]
    return name[2:] if name.startswith(("a/", "b/")) else name


def _read_hunk(rows: list[str], i: int, path: str) -> tuple[_Hunk, int]:
    match = _HUNK.match(rows[i])
    if match is None:
        raise PatchError(path, f"malformed hunk header {rows[i]!r}")
    old_start = int(match.group(1))
    old_left = int(match.group(2)) if match.group(2) is not None else 1
    new_left = int(match.group(4)) if match.group(4) is not None else 1
    old_count = old_left
    lines: list[tuple[str, str]] = []
    i += 1
    while old_left > 0 or new_left > 0:
        if i >= len(rows) or not rows[i] or rows[i][0] not in " -+":
            raise PatchError(path, f"hunk at old line {old_start} is truncated")
        tag, body = rows[i][0], rows[i][1:] + "\n"
        i += 1
        if i < len(rows) and rows[i].startswith("\\"):
            body = body[:-1]  # "\ No newline at end of file"
            i += 1
        lines.append((tag, body))
        old_left -= tag in " -"
        new_left -= tag in " +"
    return _Hunk(old_start, old_count, tuple(lines)), i


def apply_hunks(path: str, old: str, hunks: Sequence[_Hunk]) -> str:
    """Apply ``hunks`` to ``old`` exactly (no fuzz, no offset)."""
    source = split_lines(old)
    out: list[str] = []
    pos = 0
    for hunk in hunks:
        start = hunk.old_start - 1 if hunk.old_count else hunk.old_start
        if start < pos:
            raise PatchError(path, f"hunks overlap at line {hunk.old_start}")
        out.extend(source[pos:start])
        pos = start
        for tag, line in hunk.lines:
            if tag == "+":
                out.append(line)
                continue
            if pos >= len(source) or source[pos] != line:
                raise PatchError(path, f"context does not match at line {pos + 1}")
            if tag == " ":
                out.append(line)
            pos += 1
    out.extend(source[pos:])
    return "".join(out)


# --- applying a patch ----------------------------------------------------------------


@record
class _Planned:
    path: Path
    relpath: str
    original: bytes | None
    mode: int | None
    result: bytes | None


def apply_patch(target: str | Path, patch: Patch) -> tuple[str, ...]:
    """Apply exactly ``patch`` to ``target``, all or nothing; return the paths changed."""
    top = Path(target).resolve()
    hunks = parse_diff(patch.diff)
    if set(hunks) != set(patch.files):
        raise PatchError(str(top), "the diff and the per-file hashes name different files")
    plan = [_plan(top, change, hunks[change.path]) for change in patch.changes]
    _write_all(plan)
    return patch.files


def _plan(top: Path, change: FileChange, hunks: Sequence[_Hunk]) -> _Planned:
    path = _safe_path(top, change.path)
    original = path.read_bytes() if path.exists() else None
    result = post_image(change, hunks, original)
    mode = path.stat().st_mode if original is not None else None
    return _Planned(path, change.path, original, mode, result)


def post_image(change: FileChange, hunks: Sequence[_Hunk], original: bytes | None) -> bytes | None:
    """The verified content of ``change.path`` made from ``original`` (None: absent), which
    must be the patch's pre-image (``PatchConflict``) and give its post-image (``PatchError``)."""
    actual = _hash(original)
    if actual != change.before_sha256:
        raise PatchConflict(change.path, change.before_sha256, actual)
    old_text = _text(change.path, original) or ""
    new_text = apply_hunks(change.path, old_text, hunks)
    if change.after_sha256 is None and new_text:
        raise PatchError(change.path, "the diff deletes the file but leaves content")
    result = None if change.after_sha256 is None else new_text.encode("utf-8")
    if _hash(result) != change.after_sha256:
        raise PatchError(change.path, "the diff does not reproduce the verified result")
    return result


def _safe_path(top: Path, relpath: str) -> Path:
    candidate = Path(relpath)
    if candidate.is_absolute() or ".." in candidate.parts or not relpath:
        raise PatchError(relpath, "path must be relative and stay inside the target")
    path = top / candidate
    if path.is_symlink():
        raise PatchError(relpath, "refusing to write through a symlink")
    if top not in path.parent.resolve().parents and path.parent.resolve() != top:
        raise PatchError(relpath, "path leaves the target through a symlinked directory")
    return path


def _write_all(plan: Sequence[_Planned]) -> None:
    done: list[_Planned] = []
    created_dirs: list[Path] = []
    try:
        for item in plan:
            done.append(item)
            if item.result is None:
                item.path.unlink()
            else:
                created_dirs.extend(_make_parents(item.path))
                write_replace(item.path, item.result, item.mode)
    except BaseException as exc:  # an interrupt must not leave a half-applied patch either
        problems = _restore(done, created_dirs)
        if not isinstance(exc, OSError):
            raise
        detail = f"{type(exc).__name__}: {exc}; restored {len(done)} file(s)"
        if problems:
            detail += "; RESTORE FAILED for " + ", ".join(problems)
        raise PatchApplyError(done[-1].relpath if done else "", detail) from exc


def _make_parents(path: Path) -> list[Path]:
    missing = [p for p in reversed(path.parents) if not p.exists()]
    for directory in missing:
        directory.mkdir()
    return missing


def write_replace(path: Path, data: bytes, mode: int | None) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, and rename it over."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".gaia-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _restore(done: Sequence[_Planned], created_dirs: Sequence[Path]) -> list[str]:
    """Put every touched file back as it was; return the paths that could not be restored."""
    problems: list[str] = []
    for item in reversed(done):
        try:
            if item.original is None:
                item.path.unlink(missing_ok=True)
            elif not item.path.exists() or item.path.read_bytes() != item.original:
                write_replace(item.path, item.original, item.mode)
        except OSError as exc:
            problems.append(f"{item.relpath} ({exc})")
    for directory in reversed(created_dirs):
        try:
            directory.rmdir()
        except OSError as exc:
            problems.append(f"{directory} ({exc})")
    return problems
