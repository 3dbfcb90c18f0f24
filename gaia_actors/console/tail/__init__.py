"""Structured log tailing: ``python run.py tail``.

Reads the daemon's JSON-lines log (``<state_dir>/logs/gaia.jsonl``, rotated by a stdlib
``RotatingFileHandler`` into ``gaia.jsonl.1``, ``gaia.jsonl.2`` ...), keeps the records that pass
a `Filter`, and prints them readably (`render`) or as written (``--json``, for ``jq``).

``-n N`` reads back from the end in chunks, through the rotated files when the current one holds
fewer than N matching records: its cost grows with how far back the N matches lie, not with the
size of the log. Lines are ruled out from their text before any JSON is parsed.

``-f`` follows like ``tail -F``, but loses and repeats nothing (the `Follower`):

- it holds the file open, so after a rename it finishes the old file through its own handle, then
  moves to the next newer file. It finds that file by locating the old file's inode among
  ``gaia.jsonl.N``, so a burst of several rotations between two looks is walked file by file;
- a file that shrinks, or whose bytes before the read position change, was truncated in place
  (copy-truncate): the lines written between the last read and the copy come from the copy
  (``gaia.jsonl.1``) before reading the truncated file from its start;
- a partial last line is held back until its newline arrives.

Only the stdlib is imported: the command must start fast and keep working when the daemon (or
the rest of the package) is broken.

The modules: ``records`` (a line parsed, ``--since``), ``filtering``, ``rendering``, ``files``
(the log and its rotations), ``reading`` (back from the end), ``following`` (``-f``) and
``command`` (the arguments and the run).
"""

from gaia_actors.console.tail.command import (
    ALL_LINES,
    DEFAULT_LINES,
    EXIT_NO_LOG,
    EXIT_OK,
    EXIT_USAGE,
    Options,
    add_arguments,
    run,
)
from gaia_actors.console.tail.filtering import Filter
from gaia_actors.console.tail.following import Follower
from gaia_actors.console.tail.records import LEVELS, Entry, level_rank, parse_line, parse_since
from gaia_actors.console.tail.rendering import format_entry, render, render_malformed
from gaia_actors.errors import UsageError

__all__ = [
    "ALL_LINES",
    "DEFAULT_LINES",
    "EXIT_NO_LOG",
    "EXIT_OK",
    "EXIT_USAGE",
    "LEVELS",
    "Entry",
    "Filter",
    "Follower",
    "Options",
    "UsageError",
    "add_arguments",
    "format_entry",
    "level_rank",
    "parse_line",
    "parse_since",
    "render",
    "render_malformed",
    "run",
]
