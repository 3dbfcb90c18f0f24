"""The ``markers`` command: ``markers [DIRECTORY] [--markers TODO,FIXME] [--workers N]``.

Every comment marker under DIRECTORY (default: the configured ``[improve]`` target; its
``exclude`` patterns, ``.gitignore`` files and size limit apply as in a cycle), found as
``tokenize`` finds comments (a marker in a string, a docstring or a name is none), printed like
grep's ``path:line:`` lines, then a summary: the files and bytes read, the findings, and the
files skipped and why. It reads the caller's files and nothing else, so it runs in the
caller's process (``local``), daemon or not; sent to the daemon anyway (a client of its own),
it runs there in one process (a multithreaded process does not fork).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gaia_actors.control.commands import Arg, CommandContext, Option, command
from gaia_actors.errors import UsageError
from gaia_actors.settings import Settings

if TYPE_CHECKING:
    from gaia_actors.improve.files import WalkOptions

# The scan (and the walk's ignore-file library) is imported when the command runs.

NAME = "markers"
DEFAULT_WORKERS = 4  # at most this many by default; never more than the CPU count


def render_markers(result: dict[str, Any]) -> str:
    """One ``path:line: MARKER: comment  (in scope)`` line per finding (a comment with two
    markers is two findings), then the summary."""
    lines = []
    for f in result["findings"]:
        scope = f"  (in {f['scope']})" if f["scope"] else ""
        lines.append(f"{f['path']}:{f['line']}: {f['marker']}: {f['text']}{scope}")
    lines.append(summary(result))
    return "\n".join(lines)


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def summary(result: dict[str, Any]) -> str:
    skipped = result["skipped"]
    why = ", ".join(f"{n} {reason}" for reason, n in skipped.items())
    return (
        f"{_counted(len(result['findings']), 'finding')} ({', '.join(result['markers'])}) in "
        f"{_counted(result['files'], 'file')} ({result['bytes'] / 1e6:.1f} MB) under "
        f"{result['root']}; skipped {_counted(sum(skipped.values()), 'file')}"
        + (f" ({why})" if why else "")
    )


@command(
    NAME,
    help="list the comment markers (TODO, FIXME, ...) under a directory, exactly where the "
    "Python tokenizer sees comments, one grep-like line each, then a summary",
    args=(
        Arg(
            "directory",
            str,
            help="the tree to scan (default: improve.target)",
            required=False,
        ),
    ),
    options=(
        Option("markers", str, None, help="comma-separated markers (default: improve.markers)"),
        Option(
            "workers",
            int,
            None,
            help="processes that analyse, at least 1; more than the CPU count is cut to it "
            f"(default: the CPU count, at most {DEFAULT_WORKERS})",
        ),
    ),
    render=render_markers,
    local=True,
)
def markers(
    ctx: CommandContext,
    directory: str | None = None,
    markers: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    root, shown = _root(ctx, directory)
    chosen = _markers(markers, ctx.settings.improve.markers)
    count = _workers(workers) if ctx.registry is None else 1
    from gaia_actors.improve.markerscan import scan

    result = scan(root, chosen, count, _walk_options(ctx.settings))
    return {
        "root": result.root,
        "markers": list(result.markers),
        "workers": count,
        "files": result.files,
        "bytes": result.bytes,
        "findings": [
            {**dataclasses.asdict(f), "path": _joined(shown, f.path)} for f in result.findings
        ],
        "skipped": result.skipped_by_reason(),
        "skipped_files": [
            {"path": s.path, "reason": str(s.reason), "detail": s.detail} for s in result.skipped
        ],
    }


def _walk_options(settings: Settings) -> WalkOptions:
    """An improve cycle's walk (the configured excludes and size limit), without a stat per
    file."""
    from gaia_actors.improve.files import WalkOptions

    improve = settings.improve
    return WalkOptions(
        extra_patterns=improve.exclude, max_bytes=improve.max_file_bytes, sizes=False
    )


def _root(ctx: CommandContext, directory: str | None) -> tuple[Path, str]:
    """The tree to scan and how its findings' paths begin (as given, like grep)."""
    if directory is None:
        root = ctx.settings.resolve(ctx.settings.improve.target)
        shown = os.path.relpath(root)
        shown = str(root) if shown.startswith("..") else shown
    else:
        root, shown = Path(directory).expanduser().resolve(), directory
    if not root.exists():
        raise UsageError(NAME, f"{shown!r} does not exist", "directory")
    if not root.is_dir():
        raise UsageError(NAME, f"{shown!r} is not a directory", "directory")
    return root, shown


def _markers(given: str | None, configured: tuple[str, ...]) -> tuple[str, ...]:
    if given is None:
        return configured
    chosen = tuple(dict.fromkeys(m.strip() for m in given.split(",") if m.strip()))
    if not chosen:
        raise UsageError(NAME, f"expected one marker or more, got {given!r}", "markers")
    bad = [m for m in chosen if not m.isidentifier()]
    if bad:
        problem = f"a marker is a word (letters, digits, _), not {bad[0]!r}"
        raise UsageError(NAME, problem, "markers")
    return chosen


def _workers(given: int | None) -> int:
    cpus = os.cpu_count() or 1
    if given is None:
        return min(DEFAULT_WORKERS, cpus)
    if given < 1:
        raise UsageError(NAME, f"expected at least 1 process, got {given}", "workers")
    return min(given, cpus)


def _joined(shown: str, path: str) -> str:
    return path if shown in (".", "") else f"{shown.rstrip('/')}/{path}"
