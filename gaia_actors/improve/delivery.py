"""What becomes of a verified fix: a commit on a new branch, or a patch file.

Every verified fix is written as a patch file (``<state_dir>/improve/patches/cycle-N.patch``).
With ``--apply``:

- on a git target (the target is, or is inside, a git work tree) the fix becomes one commit on
  a new branch ``gaia-improve/cycle-N`` whose parent is the commit the cycle read. It is built
  with git's plumbing in a temporary index (``read-tree``, ``hash-object``, ``update-index``,
  ``write-tree``, ``commit-tree``, then ``update-ref`` with an empty old value, which refuses a
  branch that exists), so the checked-out branch, its index and the working tree stay exactly
  as they were. The message lists every finding fixed and the test result;
- on any other target the patch is applied to the tree, all or nothing (``fixes.apply_patch``).

Nothing is applied when the tree changed since the cycle read it: the walk records every
file's size and modification time (the walk's exclusions apply) and, on git, HEAD and the
checked-out branch; all must be the same when the fix is applied. On git, each file the fix
changes must also be committed as the cycle read it (a fix made over uncommitted work would
carry that work into the commit).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gaia_actors.improve.commands import run_command, which
from gaia_actors.improve.errors import CommandError, PatchError
from gaia_actors.improve.files import WalkOptions, walk
from gaia_actors.improve.patches import Patch, apply_patch, parse_diff, post_image, sha256
from supervisors.records import record

GIT_TIMEOUT = 60.0
BRANCH_PREFIX = "gaia-improve/cycle-"
AUTHOR = {"GIT_AUTHOR_NAME": "gaia improve", "GIT_AUTHOR_EMAIL": "gaia-improve@localhost"}
COMMITTER = {"GIT_COMMITTER_NAME": "gaia improve", "GIT_COMMITTER_EMAIL": "gaia-improve@localhost"}


class DeliveryError(PatchError):
    """A verified fix could not be applied (the tree changed, git refused); nothing was."""


# --- what the cycle read --------------------------------------------------------------------


@record
class TreeState:
    """A target tree as the cycle read it: each file's (size, mtime_ns), and git's HEAD."""

    files: Mapping[str, tuple[int, int]]
    git_root: str = ""  # the work tree's top ("" when the target is not in one)
    head: str = ""
    branch: str = ""  # the checked-out branch ("" when detached)
    prefix: str = ""  # the target's path inside the work tree ("" at its top)

    def changes_since(self, now: TreeState) -> list[str]:
        """What differs in ``now``: file paths, then HEAD or the branch."""
        paths = set(self.files) | set(now.files)
        changed = sorted(p for p in paths if self.files.get(p) != now.files.get(p))
        if (self.head, self.branch) != (now.head, now.branch):
            changed.append(
                f"HEAD ({self.branch or self.head[:12]} -> {now.branch or now.head[:12]})"
            )
        return changed


def read_state(root: Path, options: WalkOptions) -> TreeState:
    """The state of ``root`` now (see TreeState)."""
    every_file = WalkOptions(
        suffixes=None,
        extra_patterns=options.extra_patterns,
        use_gitignore=options.use_gitignore,
        always_skip=options.always_skip,
        max_bytes=1 << 62,
    )
    files: dict[str, tuple[int, int]] = {}
    for path in walk(root, every_file).files:
        try:
            info = (root / path).stat()
        except OSError:
            continue  # gone since the walk listed it: absent from this state
        files[path] = (info.st_size, info.st_mtime_ns)
    return TreeState(MappingProxyType(files), **_git_state(root))  # read-only: it crosses actors


def _git_state(root: Path) -> dict[str, str]:
    if which("git") is None:
        return {}
    top = _git(root, "rev-parse", "--show-toplevel", check=False)
    head = _git(root, "rev-parse", "--verify", "-q", "HEAD", check=False)
    if not top or not head:
        return {}  # not a work tree, or one without a commit to branch from
    prefix = Path(root).resolve().relative_to(Path(top).resolve()).as_posix()
    branch = _git(root, "symbolic-ref", "-q", "--short", "HEAD", check=False)
    return {
        "git_root": top,
        "head": head,
        "branch": branch,
        "prefix": "" if prefix == "." else prefix,
    }


def _git(
    cwd: Path | str, *args: str, check: bool = True, env: Mapping[str, str] | None = None
) -> str:
    try:
        result = run_command(["git", *args], cwd, timeout=GIT_TIMEOUT, env=env)
    except CommandError as exc:
        raise DeliveryError(str(cwd), str(exc)) from exc
    if check and not result.ok:
        raise DeliveryError(str(cwd), f"git {' '.join(args[:2])} failed: {result.tail(400)}")
    return result.stdout.strip() if result.ok else ""


# --- delivering --------------------------------------------------------------------------


@record
class Delivery:
    """One verified fix to deliver, and what the commit message says about it."""

    cycle_id: int
    target: Path
    patch: Patch
    read: TreeState
    fixed: Sequence[Mapping[str, Any]] = ()  # {"type", "where", "text"}
    tools: Sequence[str] = ()
    test_result: str = ""
    options: WalkOptions = field(default_factory=WalkOptions)

    def write_patch(self, folder: Path) -> Path:
        """The patch as a file in ``folder`` (applied with ``git apply`` or ``patch -p1``)."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"cycle-{self.cycle_id}.patch"
        path.write_text(self.patch.diff, encoding="utf-8")
        return path

    def apply(self) -> dict[str, Any]:
        """Apply the fix (a branch commit on git, the tree otherwise); raises DeliveryError
        or PatchError with nothing applied."""
        changed = self.read.changes_since(read_state(self.target, self.options))
        if changed:
            shown = ", ".join(changed[:5]) + (
                f" and {len(changed) - 5} more" if len(changed) > 5 else ""
            )
            raise DeliveryError(
                str(self.target), f"the tree changed since the cycle read it ({shown})"
            )
        if self.read.git_root:
            return self._commit()
        return {"applied_files": list(apply_patch(self.target, self.patch))}

    def message(self) -> str:
        files = len(self.patch.files)
        lines = [
            f"gaia improve cycle #{self.cycle_id}: fix {len(self.fixed)} findings in {files} files",
            "",
            f"Fixed by {', '.join(self.tools) or 'its fixers'}, verified in a scratch copy:",
            *(f"- {f['type']} {f['where']}: {f['text']}" for f in self.fixed),
        ]
        if self.test_result:
            lines += ["", f"Tests: {self.test_result}"]
        return "\n".join(lines) + "\n"

    def _commit(self) -> dict[str, Any]:
        read = self.read
        top = Path(read.git_root)
        with tempfile.TemporaryDirectory(prefix="gaia-commit-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            _git(top, "read-tree", read.head, env=env)
            for path, content in self._post_images(top).items():
                self._stage(top, Path(tmp), path, content, env)
            tree = _git(top, "write-tree", env=env)
        commit = _git(
            top, "commit-tree", tree, "-p", read.head, "-m", self.message(), env=_identity(top)
        )
        branch = self._new_branch(top, commit)
        return {"branch": branch, "commit": commit, "applied_files": list(self.patch.files)}

    def _post_images(self, top: Path) -> dict[str, bytes | None]:
        """Each changed file's fixed content, made from its committed content, which must be
        what the cycle read (else the commit would carry uncommitted work)."""
        hunks = parse_diff(self.patch.diff)
        images: dict[str, bytes | None] = {}
        for change in self.patch.changes:
            path = self._in_repo(change.path)
            committed = _blob(top, self.read.head, path)
            if (None if committed is None else sha256(committed)) != change.before_sha256:
                raise DeliveryError(
                    change.path,
                    f"differs from its content in {self.read.head[:12]} (uncommitted changes): "
                    "commit or stash them, then run the cycle again",
                )
            images[path] = post_image(change, hunks[change.path], committed)
        return images

    def _in_repo(self, path: str) -> str:
        return f"{self.read.prefix}/{path}" if self.read.prefix else path

    def _stage(
        self, top: Path, tmp: Path, path: str, content: bytes | None, env: Mapping[str, str]
    ) -> None:
        if content is None:
            _git(top, "update-index", "--force-remove", "--", path, env=env)
            return
        blob_file = tmp / "blob"
        blob_file.write_bytes(content)
        sha = _git(top, "hash-object", "-w", "--no-filters", str(blob_file))
        mode = _mode(top, self.read.head, path) or "100644"
        _git(top, "update-index", "--add", "--cacheinfo", f"{mode},{sha},{path}", env=env)

    def _new_branch(self, top: Path, commit: str) -> str:
        """``gaia-improve/cycle-N`` (``-2``, ``-3``... if taken), created only if absent."""
        for attempt in range(1, 10):
            branch = f"{BRANCH_PREFIX}{self.cycle_id}" + (f"-{attempt}" if attempt > 1 else "")
            ref = f"refs/heads/{branch}"
            if _git(top, "rev-parse", "--verify", "-q", ref, check=False):
                continue
            _git(top, "update-ref", ref, commit, "")  # "": refused if the branch appeared
            return branch
        raise DeliveryError(str(top), f"branches {BRANCH_PREFIX}{self.cycle_id}[-N] all exist")


def _blob(top: Path, head: str, path: str) -> bytes | None:
    """``path``'s content in commit ``head`` (None when it has no such file), as bytes."""
    if not _git(top, "ls-tree", head, "--", path, check=False):
        return None
    try:
        return subprocess.run(
            ["git", "cat-file", "blob", f"{head}:{path}"],
            cwd=top,
            capture_output=True,
            check=True,
            timeout=GIT_TIMEOUT,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise DeliveryError(path, f"git cat-file failed: {exc}") from exc


def _mode(top: Path, head: str, path: str) -> str:
    entry = _git(top, "ls-tree", head, "--", path, check=False)
    return entry.split(" ", 1)[0] if entry else ""


def _identity(top: Path) -> dict[str, str]:
    """Git's configured identity for the commit, or gaia's when none is configured."""
    env: dict[str, str] = {}
    if not _git(top, "config", "user.name", check=False) and "GIT_AUTHOR_NAME" not in os.environ:
        env |= AUTHOR | COMMITTER
    elif (
        not _git(top, "config", "user.email", check=False) and "GIT_AUTHOR_EMAIL" not in os.environ
    ):
        env |= {
            "GIT_AUTHOR_EMAIL": AUTHOR["GIT_AUTHOR_EMAIL"],
            "GIT_COMMITTER_EMAIL": COMMITTER["GIT_COMMITTER_EMAIL"],
        }
    return env
