"""Mechanical fixes, made in a scratch copy, kept only if the tests pass.

``run_fixers`` never writes to the target tree. It copies the target (minus exclusions) into a
scratch directory, runs the configured fixers that are installed there (``ruff format``,
``ruff check --fix``, ``gofmt -w``), diffs the result against the copy, and runs the target's
test command in the scratch copy. Only if the tests pass does it return a ``Patch``: the unified
diff plus, per file, the sha256 of the pre-image and of the verified post-image.

The patch itself, and applying it to the target, are ``patches``'s.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field, replace
from enum import StrEnum
from pathlib import Path

from gaia_actors.improve.commands import CommandResult, run_command, which
from gaia_actors.improve.errors import CommandError, PatchError
from gaia_actors.improve.files import SkipReason, WalkOptions, walk
from gaia_actors.improve.findings import Finding
from gaia_actors.improve.patches import Patch, make_patch
from gaia_actors.process.running import no_bytecode_in_tree
from supervisors.records import record


@record
class FixerSpec:
    """A mechanical fixer: a command run in the (scratch) target directory."""

    name: str
    argv: tuple[str, ...]
    ok_returncodes: tuple[int, ...] = (0,)


class FixStatus(StrEnum):
    NO_FIXERS = "no_fixers"  # none configured, or none installed
    NO_CHANGES = "no_changes"  # the fixers changed nothing
    VERIFIED = "verified"  # changes made and the tests pass: ``patch`` is set
    TESTS_FAILED = "tests_failed"  # changes made but the tests fail (or time out) with them
    FIXER_FAILED = "fixer_failed"  # a fixer crashed, timed out, or changed a non-text file


@record
class FixerRun:
    name: str
    status: str  # "ran", "skipped" (not installed) or "failed"
    seconds: float = 0.0
    reason: str = ""


@record
class FixOutcome:
    """What ``run_fixers`` did. ``patch`` is set only when ``status`` is VERIFIED."""

    status: FixStatus
    patch: Patch | None = None
    fixers: tuple[FixerRun, ...] = ()
    tests: CommandResult | None = None
    seconds: float = 0.0
    reason: str = ""
    changed_files: tuple[str, ...] = field(default=())
    fixed: tuple[Finding, ...] = ()  # the findings the kept changes remove
    left_out: tuple[tuple[str, str], ...] = ()  # (path, why) of changes not kept


@record
class Selection:
    """Which of the fixers' changed files a fix keeps, the findings their changes remove, and
    why the others are left out."""

    keep: frozenset[str]
    fixed: tuple[Finding, ...] = ()
    left_out: tuple[tuple[str, str], ...] = ()


# Given the scratch copy and the paths the fixers changed there, decides what the fix keeps.
Selector = Callable[[Path, tuple[str, ...]], Selection]


# --- the scratch copy and the fixers --------------------------------------------------


def run_fixers(
    target: str | Path,
    fixers: Sequence[FixerSpec],
    test_argv: Sequence[str],
    *,
    timeout: float,
    walk_options: WalkOptions | None = None,
    test_env: Mapping[str, str] | None = None,
    select: Selector | None = None,
) -> FixOutcome:
    """Run ``fixers`` on a scratch copy of ``target``, then ``test_argv`` there (see above).

    ``timeout`` applies to each fixer and to the test run separately; ``test_env`` is added to
    the tests' environment. ``select`` decides which changed files the fix keeps; the others
    are put back as they were before the tests run.
    """
    started = time.monotonic()
    top = Path(target).resolve()
    with tempfile.TemporaryDirectory(prefix="gaia-fix-") as tmp:
        scratch = Path(tmp) / top.name
        outcome = _fix_in_scratch(
            top,
            scratch,
            fixers,
            test_argv,
            timeout=timeout,
            walk_options=walk_options,
            test_env=test_env or {},
            select=select,
        )
    return replace(outcome, seconds=time.monotonic() - started)


def _fix_in_scratch(
    top: Path,
    scratch: Path,
    fixers: Sequence[FixerSpec],
    test_argv: Sequence[str],
    *,
    timeout: float,
    walk_options: WalkOptions | None,
    test_env: Mapping[str, str],
    select: Selector | None,
) -> FixOutcome:
    options = _copy_options(walk_options)
    before = copy_tree(top, scratch, options)
    runs, failure = _run_all(fixers, scratch, timeout)
    if failure is not None:
        return FixOutcome(FixStatus.FIXER_FAILED, fixers=runs, reason=failure)
    if not any(run.status == "ran" for run in runs):
        return FixOutcome(FixStatus.NO_FIXERS, fixers=runs, reason="no configured fixer installed")
    selection = _select(before, scratch, options, select)
    try:
        patch = make_patch(before, scratch, options)
    except PatchError as exc:
        return FixOutcome(FixStatus.FIXER_FAILED, fixers=runs, reason=str(exc))
    found = FixOutcome(
        FixStatus.NO_CHANGES, fixers=runs, fixed=selection.fixed, left_out=selection.left_out
    )
    if not patch.changes:
        return found
    tests = _run_tests(test_argv, scratch, timeout, test_env)
    if not tests.ok:
        reason = "tests timed out" if tests.timed_out else f"tests exit code {tests.returncode}"
        return replace(
            found,
            status=FixStatus.TESTS_FAILED,
            tests=tests,
            reason=reason,
            changed_files=patch.files,
        )
    return replace(
        found, status=FixStatus.VERIFIED, patch=patch, tests=tests, changed_files=patch.files
    )


def _select(
    before: Mapping[str, bytes], scratch: Path, options: WalkOptions, select: Selector | None
) -> Selection:
    """Ask ``select`` which changes to keep and put every other changed file back."""
    changed = changed_paths(before, scratch, options)
    if select is None:
        return Selection(frozenset(changed))
    selection = select(scratch, changed)
    for path in changed:
        if path in selection.keep:
            continue
        if path in before:
            (scratch / path).write_bytes(before[path])
        else:
            (scratch / path).unlink()
    return selection


def changed_paths(before: Mapping[str, bytes], root: Path, options: WalkOptions) -> tuple[str, ...]:
    """The files under ``root`` that differ from ``before`` (changed, added or removed)."""
    now = set(walk(root, options).files)
    return tuple(
        path
        for path in sorted(now | set(before))
        if path not in now or path not in before or (root / path).read_bytes() != before[path]
    )


def _copy_options(options: WalkOptions | None) -> WalkOptions:
    """The walk options for copying: every file (any suffix, any size), same exclusions."""
    base = options or WalkOptions()
    return WalkOptions(
        suffixes=None,
        extra_patterns=base.extra_patterns,
        use_gitignore=base.use_gitignore,
        always_skip=base.always_skip,
        max_bytes=1 << 62,
    )


def copy_tree(source: Path, dest: Path, options: WalkOptions) -> dict[str, bytes]:
    """Copy the non-excluded files of ``source`` to ``dest``; return path -> content.

    Symlinks that stay inside the tree are recreated as symlinks; others are left out.
    """
    result = walk(source, options)
    contents: dict[str, bytes] = {}
    dest.mkdir(parents=True)
    for relpath in result.files:
        data = (source / relpath).read_bytes()
        target = dest / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        shutil.copymode(source / relpath, target)
        contents[relpath] = data
    for skipped in result.skipped:
        if skipped.reason is SkipReason.SYMLINK:
            link = dest / skipped.path
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(source / skipped.path), link)
    return contents


def _run_all(
    fixers: Sequence[FixerSpec], cwd: Path, timeout: float
) -> tuple[tuple[FixerRun, ...], str | None]:
    runs: list[FixerRun] = []
    for spec in fixers:
        if not spec.argv or which(spec.argv[0]) is None:
            runs.append(FixerRun(spec.name, "skipped", reason=f"{spec.argv[:1]} not found"))
            continue
        try:
            result = run_command(spec.argv, cwd, timeout=timeout)
        except CommandError as exc:
            runs.append(FixerRun(spec.name, "failed", reason=str(exc)))
            return tuple(runs), f"fixer {spec.name}: {exc}"
        if result.timed_out or result.returncode not in spec.ok_returncodes:
            why = "timed out" if result.timed_out else f"exit code {result.returncode}"
            runs.append(FixerRun(spec.name, "failed", result.seconds, f"{why}: {result.tail(500)}"))
            return tuple(runs), f"fixer {spec.name} {why}"
        runs.append(FixerRun(spec.name, "ran", result.seconds))
    return tuple(runs), None


def _run_tests(
    argv: Sequence[str], cwd: Path, timeout: float, env: Mapping[str, str]
) -> CommandResult:
    try:
        return run_command(argv, cwd, timeout=timeout, env={**no_bytecode_in_tree(env), **env})
    except CommandError as exc:
        return CommandResult(tuple(argv), 127, "", str(exc), 0.0, False)
