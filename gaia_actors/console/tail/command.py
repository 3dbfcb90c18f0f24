"""The ``tail`` command: its arguments, reading back then following, and printing."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from gaia_actors.console.tail.filtering import Filter
from gaia_actors.console.tail.following import POLL_INTERVAL, Follower
from gaia_actors.console.tail.reading import (
    Segment,
    all_matching,
    candidate,
    close_segments,
    last_matching,
    open_segments,
)
from gaia_actors.console.tail.records import LEVELS, Entry
from gaia_actors.console.tail.rendering import format_entry
from gaia_actors.errors import UsageError
from supervisors.records import record

EXIT_OK = 0


EXIT_NO_LOG = 1


EXIT_USAGE = 2


DEFAULT_LINES = 20


ALL_LINES = -1  # `-n all`


_WRITE_BATCH = 1000  # output lines joined into one write while printing the backlog


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``tail`` options to ``parser`` (the CLI's ``tail`` subcommand)."""
    parser.add_argument(
        "-n",
        "--lines",
        type=_line_count,
        default=None,
        metavar="N",
        help=f"show the last N matching records ('all' for every one; default {DEFAULT_LINES}, "
        "or all with --since)",
    )
    parser.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing new records, across rotation and truncation (Ctrl-C ends)",
    )
    parser.add_argument(
        "--env", action="append", metavar="ENV", help="only this environment (repeatable)"
    )
    parser.add_argument(
        "--actor",
        action="append",
        metavar="GLOB",
        help="only these actors, e.g. 'environment.*' (repeatable)",
    )
    parser.add_argument("--level", metavar="LEVEL", help=f"minimum level: {', '.join(LEVELS)}")
    parser.add_argument(
        "--event",
        action="append",
        metavar="GLOB",
        help="only these events, e.g. 'health.*' (repeatable)",
    )
    parser.add_argument(
        "--since",
        metavar="WHEN",
        help="only records from WHEN on: a duration (90s, 5m, 1h30m, 2d) or an ISO time "
        "(2026-11-28T07:55Z; without an offset, local time)",
    )
    parser.add_argument(
        "--grep",
        metavar="REGEX",
        help="only records whose JSON line matches REGEX (escapes such as \\u00e9 decoded)",
    )
    parser.add_argument("--json", action="store_true", help="print records as written (for jq)")
    parser.add_argument(
        "--color",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="colour the output (default: when writing to a terminal and NO_COLOR is unset)",
    )
    parser.add_argument(
        "--file", type=Path, metavar="PATH", help="read this log instead of the state directory's"
    )


def _line_count(text: str) -> int:
    if text.lower() == "all":
        return ALL_LINES
    try:
        count = int(text)
    except ValueError:
        count = -2
    if count < 0:
        raise argparse.ArgumentTypeError(f"expected a count >= 0 or 'all', got {text!r}")
    return count


@record
class Options:
    """What one ``tail`` run does, resolved from the command line."""

    path: Path
    filter: Filter
    limit: int | None  # None: every matching record
    follow: bool
    as_json: bool
    color: bool

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, log_path: Path, out: TextIO, now: datetime | None = None
    ) -> Options:
        flt = Filter.from_args(args, now or datetime.now(UTC))
        return cls(
            path=args.file if args.file is not None else log_path,
            filter=flt,
            limit=_resolve_limit(args.lines, flt),
            follow=args.follow,
            as_json=args.json,
            color=_resolve_color(args.color, out),
        )

    def format(self, entry: Entry) -> str:
        return format_entry(entry, as_json=self.as_json, color=self.color)


def _resolve_limit(lines: int | None, flt: Filter) -> int | None:
    if lines is None:
        # kubectl logs and journalctl show the whole window when given --since.
        return None if flt.since is not None else DEFAULT_LINES
    return None if lines == ALL_LINES else lines


def _resolve_color(choice: bool | None, out: TextIO) -> bool:
    if choice is not None:
        return choice
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":  # no-color.org
        return False
    return out.isatty()


def run(
    args: argparse.Namespace,
    log_path: Path,
    out: TextIO | None = None,
    stop: threading.Event | None = None,
) -> int:
    """``tail``: print the matching backlog, then (``-f``) new records until ``stop`` or Ctrl-C.

    Returns EXIT_OK, EXIT_NO_LOG (no log and not following) or EXIT_USAGE (a bad argument).
    """
    out = sys.stdout if out is None else out
    try:
        options = Options.from_args(args, log_path, out)
    except UsageError as error:
        _complain(f"{error.param}: {error.problem}")
        return EXIT_USAGE
    try:
        return _tail(options, out, stop if stop is not None else threading.Event())
    except KeyboardInterrupt:
        return EXIT_OK  # Ctrl-C is how one leaves -f
    except BrokenPipeError:
        _silence(out)  # `tail | head` closed the pipe: done, like coreutils tail
        return EXIT_OK
    except OSError as error:  # unreadable log (permissions, a directory in its place)
        _complain(f"cannot read {error.filename or options.path}: {error.strerror or error}")
        return EXIT_NO_LOG


def _tail(options: Options, out: TextIO, stop: threading.Event) -> int:
    segments = open_segments(options.path, options.follow)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(close_segments, segments)
        if not segments and not options.follow:
            _complain(
                f"no log at {options.path}: the daemon writes its JSON-lines log there "
                "(is it running with this state directory? use -f to wait, --file to choose)"
            )
            return EXIT_NO_LOG
        _print_backlog(segments, options, out)
        if options.follow:
            follower = _follower_after(segments, options.path)
            del segments[:1]  # the follower owns the live file's handle now
            with follower:
                _follow(follower, options, out, stop)
    return EXIT_OK


def _print_backlog(segments: Sequence[Segment], options: Options, out: TextIO) -> None:
    if not segments:
        return
    if options.limit is None:
        entries: Iterator[Entry] | list[Entry] = all_matching(segments, options.filter)
    else:
        entries = last_matching(segments, options.filter, options.limit)
    batch: list[str] = []
    for entry in entries:
        batch.append(options.format(entry) + "\n")
        if len(batch) >= _WRITE_BATCH:
            out.write("".join(batch))
            batch.clear()
    out.write("".join(batch))
    out.flush()


def _follower_after(segments: Sequence[Segment], path: Path) -> Follower:
    if not segments:
        return Follower(path)
    return Follower(path, segments[0].file, segments[0].follow_from)


def _follow(follower: Follower, options: Options, out: TextIO, stop: threading.Event) -> None:
    announced = False
    while not stop.is_set():
        lines = follower.poll()
        if follower.waiting and not announced:
            _complain(f"waiting for {options.path} to appear (the daemon writes its log there)")
            announced = True
        shown = [options.format(e) for e in _candidates(lines, options.filter)]
        if shown:
            out.write("".join(line + "\n" for line in shown))
            out.flush()
        if not lines:
            stop.wait(POLL_INTERVAL)


def _candidates(lines: Sequence[str], flt: Filter) -> Iterator[Entry]:
    for line in lines:
        entry = candidate(line, flt) if line.strip() else None
        if entry is not None:
            yield entry


def _complain(message: str) -> None:
    print(f"gaia tail: {message}", file=sys.stderr)


def _silence(out: TextIO) -> None:
    # Python would report the broken pipe again when it flushes stdout at exit.
    if out is sys.stdout:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
