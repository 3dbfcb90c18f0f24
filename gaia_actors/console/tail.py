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
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import functools
import io
import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any, TextIO

from gaia_actors.errors import UsageError

EXIT_OK = 0
EXIT_NO_LOG = 1
EXIT_USAGE = 2

DEFAULT_LINES = 20
ALL_LINES = -1  # `-n all`
POLL_INTERVAL = 0.1  # seconds between looks at an idle file: ~50 ms mean latency, no busy loop

LEVELS = ("debug", "info", "warning", "error", "critical")
_LEVEL_RANK = {name: rank for rank, name in enumerate(LEVELS)}
# Spellings other emitters use for the same levels (structlog logs `exception` as `error` today,
# older versions wrote `exception`).
_LEVEL_ALIASES = {"warn": "warning", "exception": "error", "err": "error", "fatal": "critical"}

_CHUNK = 64 * 1024  # read size when scanning a file backwards or forwards
_POLL_BUDGET = 4 * 1024 * 1024  # bytes one poll reads before handing lines out
_WRITE_BATCH = 1000  # output lines joined into one write while printing the backlog
_MAX_HOPS = 64  # files (rotations, truncations) one poll walks before handing lines out
_TAIL_PROBE = 64  # bytes before the read position compared to spot an in-place rewrite
_SUCCESSOR_TRIES = 5  # a rotation racing the look for the newer file makes us look again
# Threads stamp a record before they take the handler's lock, so the file is only nearly in time
# order; reading back for --since stops this far before the cut-off, not at the first older line.
_CLOCK_SKEW = timedelta(seconds=2)


# --------------------------------------------------------------------------- records


def level_rank(level: object) -> int | None:
    """The rank of a level name (debug 0 .. critical 4), or None for an unknown level."""
    if not isinstance(level, str):
        return None
    name = level.lower()
    return _LEVEL_RANK.get(_LEVEL_ALIASES.get(name, name))


def record_time(record: Mapping[str, Any]) -> datetime | None:
    """The record's ``timestamp``, aware (a naive one is UTC, which is what the daemon writes)."""
    value = record.get("timestamp")
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    else:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the log: the text as written, and the record when it is a JSON object."""

    raw: str
    record: dict[str, Any] | None

    @property
    def malformed(self) -> bool:
        return self.record is None


def parse_line(raw: str) -> Entry:
    """Parse one log line; anything but a JSON object is kept as a malformed entry, never fatal."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: a line of ten thousand `[`
        return Entry(raw, None)
    return Entry(raw, value if isinstance(value, dict) else None)


# --------------------------------------------------------------------------- --since


_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: datetime) -> datetime:
    """The moment ``--since`` names, in UTC.

    A duration back from ``now`` (``90s``, ``5m``, ``1h30m``, ``2d``) or an ISO 8601 time
    (``2026-11-28T07:55:00Z``, ``2026-11-28 07:55``, ``2026-11-28``, ``07:55`` for today).
    A time without an offset is local time, as with ``journalctl --since`` and ``docker logs``.
    """
    spec = text.strip()
    duration = _parse_duration(spec)
    if duration is not None:
        return now - duration
    moment = _parse_moment(spec, now)
    if moment is None:
        raise ValueError(
            f"cannot read {text!r} as a duration (like 90s, 5m, 1h30m, 2d) "
            "or an ISO time (like 2026-11-28T07:55:00Z, 2026-11-28 07:55, 07:55)"
        )
    return moment


def _parse_duration(spec: str) -> timedelta | None:
    compact = spec.replace(" ", "").lower()
    if not _DURATION.fullmatch(compact):
        return None
    seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(compact))
    return timedelta(seconds=seconds)


def _parse_moment(spec: str, now: datetime) -> datetime | None:
    moment: datetime | None
    try:
        moment = datetime.fromisoformat(spec)
    except ValueError:
        moment = _today_at(spec, now)
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # naive: the local wall clock
    return moment.astimezone(UTC)


def _today_at(spec: str, now: datetime) -> datetime | None:
    if ":" not in spec:  # a bare "10" is a forgotten unit, not ten o'clock
        return None
    try:
        clock = time.fromisoformat(spec)
    except ValueError:
        return None
    local_now = now.astimezone()
    if clock.tzinfo is not None:
        return datetime.combine(now.astimezone(clock.tzinfo).date(), clock)
    return datetime.combine(local_now.date(), clock, tzinfo=local_now.tzinfo)


# --------------------------------------------------------------------------- filter


@dataclass(frozen=True, slots=True)
class Filter:
    """Which records to show: every condition given must hold; the empty filter shows all.

    A malformed line carries no fields, so it passes only a filter without field conditions
    (``--grep`` alone is then matched against its text).
    """

    envs: frozenset[str] = frozenset()
    actors: tuple[str, ...] = ()  # globs
    level: str | None = None  # minimum, one of LEVELS
    events: tuple[str, ...] = ()  # globs
    since: datetime | None = None
    grep: re.Pattern[str] | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, now: datetime) -> Filter:
        """Build from parsed `add_arguments` options; raises UsageError naming the argument."""
        return cls(
            envs=frozenset(args.env or ()),
            actors=tuple(args.actor or ()),
            level=_level_arg(args.level),
            events=tuple(args.event or ()),
            since=_since_arg(args.since, now),
            grep=_grep_arg(args.grep),
        )

    # Derived once in __post_init__: a filter runs on every line of a possibly huge log.
    _checks: tuple[Callable[[Mapping[str, Any]], bool], ...] = field(
        init=False, repr=False, compare=False
    )
    _needles: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)
    _level_words: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        conditions = (
            (self.envs, self._env_ok),
            (self.actors, self._actor_ok),
            (self.level, self._level_ok),
            (self.events, self._event_ok),
            (self.since, self._since_ok),
        )
        checks = tuple(check for given, check in conditions if given)
        groups = (self.envs, map(_literal_part, self.events), map(_literal_part, self.actors))
        needles = tuple(group for group in map(tuple, groups) if group)
        object.__setattr__(self, "_checks", checks)
        object.__setattr__(self, "_needles", needles)
        object.__setattr__(self, "_level_words", _level_words(self.level))

    def rules_out(self, raw: str) -> bool:
        """True when the line cannot match, judged from its text alone (no JSON parse).

        A JSON line without escapes holds every string value verbatim, so a named environment,
        the literal part of an event or actor glob, an accepted level name and a ``--grep``
        match must all appear in it.
        """
        if "\\" in raw:
            return False
        if self.grep is not None and not self.grep.search(raw):
            return True
        if self._level_words is not None and not self._level_words.search(raw):
            return True
        return not all(any(needle in raw for needle in group) for group in self._needles)

    def matches(self, entry: Entry) -> bool:
        if entry.record is None:
            return not self._checks and self._grep_ok(entry.raw, None)
        record = entry.record
        return all(check(record) for check in self._checks) and self._grep_ok(entry.raw, record)

    def _env_ok(self, record: Mapping[str, Any]) -> bool:
        env = record.get("env")
        return isinstance(env, str) and env in self.envs

    def _actor_ok(self, record: Mapping[str, Any]) -> bool:
        return _glob_any(record.get("actor"), self.actors)

    def _event_ok(self, record: Mapping[str, Any]) -> bool:
        return _glob_any(record.get("event"), self.events)

    def _level_ok(self, record: Mapping[str, Any]) -> bool:
        rank = level_rank(record.get("level"))
        return rank is not None and self.level is not None and rank >= _LEVEL_RANK[self.level]

    def _since_ok(self, record: Mapping[str, Any]) -> bool:
        moment = record_time(record)
        return moment is not None and self.since is not None and moment >= self.since

    def _grep_ok(self, raw: str, record: Mapping[str, Any] | None) -> bool:
        if self.grep is None or self.grep.search(raw):
            return True
        # A JSON line spells quotes, newlines and non-ASCII as escapes: look at the decoded text.
        if record is None or "\\" not in raw:
            return False
        return self.grep.search(_decoded_text(record)) is not None


def _decoded_text(record: Mapping[str, Any]) -> str:
    """The record as ``key=value`` text with JSON escapes undone (strings verbatim)."""
    return " ".join(
        f"{key}={value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
        for key, value in record.items()
    )


def _level_words(level: str | None) -> re.Pattern[str] | None:
    """A pattern for the quoted level names (any case, aliases too) at or above ``level``."""
    if level is None:
        return None
    names = [n for n in (*LEVELS, *_LEVEL_ALIASES) if (level_rank(n) or 0) >= _LEVEL_RANK[level]]
    return re.compile("|".join(f'"{name}"' for name in names), re.IGNORECASE)


@functools.lru_cache(maxsize=64)
def _literal_part(pattern: str) -> str:
    """The longest run of a glob without wildcards: every match contains it."""
    # A set may start with `]` (`[]ab]`, `[!]ab]`); an unclosed `[` swallows the rest: both
    # only shorten the literal, which keeps the rule-out safe.
    return max(re.split(r"[*?]|\[!?\]?[^\]]*\]?", pattern), key=len)


def _glob_any(value: object, patterns: Sequence[str]) -> bool:
    return isinstance(value, str) and any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _level_arg(text: str | None) -> str | None:
    if text is None:
        return None
    rank = level_rank(text)
    if rank is None:
        raise UsageError(
            "tail", f"unknown level {text!r} (expected one of {', '.join(LEVELS)})", "--level"
        )
    return LEVELS[rank]


def _since_arg(text: str | None, now: datetime) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_since(text, now)
    except ValueError as error:
        raise UsageError("tail", str(error), "--since") from error


def _grep_arg(text: str | None) -> re.Pattern[str] | None:
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error as error:
        raise UsageError("tail", f"bad regular expression {text!r}: {error}", "--grep") from error


# --------------------------------------------------------------------------- rendering

_RESET = "\x1b[0m"
_DIM = "\x1b[2m"
_BOLD = "\x1b[1m"
_KEY = "\x1b[36m"  # cyan
_SCOPE = "\x1b[35m"  # magenta: actor, env, pipeline
_MARK = "\x1b[1;31m"
_LEVEL_STYLE = {
    "debug": "\x1b[34m",
    "info": "\x1b[32m",
    "warning": "\x1b[33m",
    "error": "\x1b[31m",
    "critical": "\x1b[1;37;41m",
}
_LAYOUT = ("timestamp", "level", "event")
_SCOPE_KEYS = ("actor", "env", "pipeline_id")
_TRAILING_KEYS = ("exception", "stack", "traceback")  # multi-line text, printed under the line
_EVENT_WIDTH = 24
_BARE = re.compile(r'[^\s"=\\]+')
# Log text must not drive the terminal: C0/C1 controls are shown escaped.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROL_CHAR = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROLS_BUT_LAYOUT = {c: v for c, v in _CONTROLS.items() if chr(c) not in "\n\t"}
MALFORMED_MARK = "[malformed]"


def render(record: Mapping[str, Any], color: bool, tz: tzinfo | None = None) -> str:
    """A readable line: ``HH:MM:SS.mmm level event actor=.. env=.. key=value ...``.

    The time is shown in ``tz`` (default: local time). Multi-line ``exception``/``stack``
    values follow on indented lines.
    """
    level = _printable(str(record.get("level", "-")))
    head = [
        _paint(_clock(record, tz), _DIM, color),
        _paint(f"{level:<8}", _LEVEL_STYLE.get(_canonical_level(level), ""), color),
    ]
    pairs = _pairs(record, color)
    event = _headline(record.get("event", "-"))
    head.append(_paint(event.ljust(_EVENT_WIDTH) if pairs else event, _BOLD, color))
    return " ".join(head + pairs) + _trailing(record)


def render_malformed(raw: str, color: bool) -> str:
    """A line that is not a JSON object: shown as written, marked."""
    return f"{_paint(MALFORMED_MARK, _MARK, color)} {_printable(raw)}"


def _canonical_level(level: str) -> str:
    rank = level_rank(level)
    return LEVELS[rank] if rank is not None else ""


def _clock(record: Mapping[str, Any], tz: tzinfo | None) -> str:
    moment = record_time(record)
    if moment is None:
        return _printable(str(record.get("timestamp", "-"))).ljust(12)
    local = moment.astimezone(tz)
    return f"{local:%H:%M:%S}.{local.microsecond // 1000:03d}"


def _pairs(record: Mapping[str, Any], color: bool) -> list[str]:
    scope = [k for k in _SCOPE_KEYS if k in record]
    rest = [k for k in record if k not in _LAYOUT and k not in _SCOPE_KEYS]
    rest = [k for k in rest if not (k in _TRAILING_KEYS and isinstance(record[k], str))]
    if "actor" in record:  # the logger name only repeats the actor; keep it for foreign records
        rest = [k for k in rest if k != "logger"]
    pairs = [_pair(k, record[k], _SCOPE, color) for k in scope]
    return pairs + [_pair(k, record[k], "", color) for k in rest]


def _pair(key: str, value: object, style: str, color: bool) -> str:
    return f"{_paint(_printable(key), _KEY, color)}={_paint(_value(value), style, color)}"


def _headline(event: object) -> str:
    # Bare even with spaces: stdlib records (pykka's) carry a sentence as their event.
    return _printable(event) if isinstance(event, str) else _value(event)


def _value(value: object) -> str:
    if isinstance(value, str) and _BARE.fullmatch(value):
        return _printable(value)
    return _printable(json.dumps(value, ensure_ascii=False, default=str))


def _trailing(record: Mapping[str, Any]) -> str:
    blocks = [record[k] for k in _TRAILING_KEYS if isinstance(record.get(k), str)]
    lines = [line for block in blocks for line in block.rstrip("\n").splitlines()]
    return "".join("\n    " + line.translate(_CONTROLS_BUT_LAYOUT) for line in lines)


def _printable(text: str) -> str:
    # The search is in C; translate() with a dict is per character in Python, ~10x slower.
    return text.translate(_CONTROLS) if _CONTROL_CHAR.search(text) else text


def _paint(text: str, style: str, color: bool) -> str:
    return f"{style}{text}{_RESET}" if color and style else text


def format_entry(entry: Entry, *, as_json: bool, color: bool) -> str:
    """The output line for an entry: readable, or (``--json``) the record exactly as written.

    In JSON mode a malformed line becomes ``{"event": "tail.malformed", "raw": ...}`` so that a
    ``jq`` reading the stream sees it, marked, instead of choking on it.
    """
    if as_json:
        if entry.record is not None:
            return entry.raw
        return json.dumps({"event": "tail.malformed", "level": "warning", "raw": entry.raw})
    if entry.record is None:
        return render_malformed(entry.raw, color)
    return render(entry.record, color)


# --------------------------------------------------------------------------- log files


def _rotation_numbers(path: Path) -> list[int]:
    pattern = re.compile(re.escape(path.name) + r"\.([1-9][0-9]*)")
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for name in names if (m := pattern.fullmatch(name)))


def _numbered(path: Path, number: int) -> Path:
    return path if number == 0 else path.with_name(f"{path.name}.{number}")


def _open(path: Path) -> io.FileIO | None:
    try:
        return io.FileIO(path, "r")
    except FileNotFoundError:
        return None


def _identity(stat: os.stat_result) -> tuple[int, int]:
    return (stat.st_dev, stat.st_ino)


def _file_identity(handle: io.FileIO) -> tuple[int, int]:
    return _identity(os.fstat(handle.fileno()))


def _identity_at(path: Path) -> tuple[int, int] | None:
    try:
        return _identity(os.stat(path))
    except FileNotFoundError:
        return None


def _decode(line: bytes) -> str:
    return line.decode("utf-8", "replace").removesuffix("\r")


# --------------------------------------------------------------------------- reading back


@dataclass(frozen=True, slots=True)
class _Segment:
    """One log file opened for reading back, and the part of it that belongs to the backlog."""

    file: io.FileIO
    end: int  # the backlog reads bytes [0, end)
    follow_from: int  # where a follower continues: after the last complete line


def _open_segments(path: Path, following: bool) -> list[_Segment]:
    """The live log and its rotated files, newest first, each opened once."""
    segments: list[_Segment] = []
    live = _open(path)
    if live is not None:
        segments.append(_current_segment(live, following))
    live_identity = _file_identity(live) if live is not None else None
    seen = {live_identity}
    for handle in _open_rotated(path):
        identity = _file_identity(handle)
        if identity == live_identity:
            # The live file was rotated while we looked: the files met so far are newer than it.
            _close(segments[1:])
            del segments[1:]
        if identity in seen:
            handle.close()
            continue
        seen.add(identity)
        size = os.fstat(handle.fileno()).st_size
        segments.append(_Segment(handle, size, size))
    return segments


def _open_rotated(path: Path) -> Iterator[io.FileIO]:
    """The rotated files, opened by ascending number.

    A rotation only moves files to higher numbers, so one running meanwhile can make us meet a
    file twice (the caller skips it by inode) but never miss one; the probe runs two numbers past
    the highest seen for the files it pushes up.
    """
    limit = max(_rotation_numbers(path), default=0) + 2
    for number in range(1, limit + 1):
        handle = _open(_numbered(path, number))
        if handle is not None:
            yield handle


def _current_segment(handle: io.FileIO, following: bool) -> _Segment:
    size = os.fstat(handle.fileno()).st_size
    complete = _complete_end(handle, size)
    if following or complete == size:
        return _Segment(handle, complete, complete)
    # Not following, the last line has no newline: it is being written now (skip it) or the
    # writer died mid-line; show it only if it is already a whole record.
    partial = _decode(os.pread(handle.fileno(), size - complete, complete))
    end = size if not parse_line(partial).malformed else complete
    return _Segment(handle, end, complete)


def _complete_end(handle: io.FileIO, size: int) -> int:
    """The offset just after the last newline before ``size`` (0 when there is none)."""
    position = size
    while position > 0:
        start = max(0, position - _CHUNK)
        newline = os.pread(handle.fileno(), position - start, start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        position = start
    return 0


def _close(segments: Sequence[_Segment]) -> None:
    for segment in segments:
        segment.file.close()


def _lines_backward(handle: io.FileIO, end: int) -> Iterator[tuple[int, bytes]]:
    """``(offset just past the line, line)`` from the last line of [0, end) to the first."""
    if end == 0:
        return
    fd = handle.fileno()
    line_end = end - 1 if os.pread(fd, 1, end - 1) == b"\n" else end
    position, carry = line_end, b""
    while position > 0:
        size = min(_CHUNK, position)
        position -= size
        parts = (os.pread(fd, size, position) + carry).split(b"\n")
        carry = parts[0]  # its start may lie in the previous chunk
        for part in reversed(parts[1:]):
            yield line_end + 1, part
            line_end -= len(part) + 1
    yield line_end + 1, carry


def _lines_forward(handle: io.FileIO, start: int, end: int) -> Iterator[bytes]:
    position, carry = start, b""
    while position < end:
        block = os.pread(handle.fileno(), min(_CHUNK, end - position), position)
        if not block:
            break
        position += len(block)
        *complete, carry = (carry + block).split(b"\n")
        yield from complete
    if carry:
        yield carry


def _raw_backward(segments: Sequence[_Segment]) -> Iterator[tuple[int, int, str]]:
    """``(segment index, offset past the line, line)``, newest first, blank lines skipped."""
    for index, segment in enumerate(segments):
        for after, line in _lines_backward(segment.file, segment.end):
            raw = _decode(line)
            if raw.strip():
                yield index, after, raw


def _candidate(raw: str, flt: Filter) -> Entry | None:
    """The entry for ``raw`` when it passes ``flt``; most lines are ruled out unparsed."""
    if flt.rules_out(raw):
        return None
    entry = parse_line(raw)
    return entry if flt.matches(entry) else None


_STAMP = re.compile(r'"timestamp":\s*"([^"\\]*)"')


def _stamped_before(raw: str, moment: datetime) -> bool:
    """True when the line's timestamp is before ``moment``, read without parsing the JSON.

    Only a line with a single ``"timestamp"`` counts: a second one may be a nested record's.
    """
    stamps = _STAMP.findall(raw)
    if len(stamps) != 1:
        return False
    stamp = record_time({"timestamp": stamps[0]})
    return stamp is not None and stamp < moment


def _last_matching(segments: Sequence[_Segment], flt: Filter, limit: int) -> list[Entry]:
    """The last ``limit`` entries that pass ``flt``, oldest first."""
    found: list[Entry] = []
    cut = flt.since - _CLOCK_SKEW if flt.since is not None else None
    for _, _, raw in _raw_backward(segments) if limit > 0 else ():
        if cut is not None and _stamped_before(raw, cut):
            break
        entry = _candidate(raw, flt)
        if entry is not None:
            found.append(entry)
            if len(found) >= limit:
                break
    found.reverse()
    return found


def _all_matching(segments: Sequence[_Segment], flt: Filter) -> Iterator[Entry]:
    """Every entry that passes ``flt``, oldest first, streamed (memory stays flat)."""
    first, offset = _range_start(segments, flt.since)
    for index in range(first, -1, -1):
        segment = segments[index]
        start = offset if index == first else 0
        for line in _lines_forward(segment.file, start, segment.end):
            raw = _decode(line)
            entry = _candidate(raw, flt) if raw.strip() else None
            if entry is not None:
                yield entry


def _range_start(segments: Sequence[_Segment], since: datetime | None) -> tuple[int, int]:
    """Where reading forward must start to meet every record from ``since`` on."""
    oldest = (len(segments) - 1, 0)
    if since is None:
        return oldest
    for index, after, raw in _raw_backward(segments):
        if _stamped_before(raw, since - _CLOCK_SKEW):
            return index, after
    return oldest


# --------------------------------------------------------------------------- following


class Follower:
    """The complete lines appended to a log file, across rotation and truncation (``tail -F``).

    Started with an open ``file`` and an ``offset``, it continues from there; started with no
    file, it reads everything that appears, beginning with the oldest rotated file. Call `poll`
    from one thread; `lines` wraps it in a loop that ends when ``stop`` is set.
    """

    def __init__(self, path: Path, file: io.FileIO | None = None, offset: int = 0) -> None:
        self.path = path
        self._file = file
        self._identity = _file_identity(file) if file is not None else None
        self._position = offset
        self._partial = b""  # the start of a line whose newline has not been written yet
        self._tail = self._bytes_before(offset) if file is not None else b""

    @property
    def waiting(self) -> bool:
        """True while no log file exists to read."""
        return self._file is None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Follower:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def lines(self, stop: threading.Event, interval: float = POLL_INTERVAL) -> Iterator[str]:
        """New complete lines as they arrive, until ``stop`` is set."""
        while not stop.is_set():
            batch = self.poll()
            yield from batch
            if not batch:
                stop.wait(interval)

    def poll(self) -> list[str]:
        """Every complete line written since the last poll, oldest first (bounded per call)."""
        lines: list[str] = []
        if self._file is None and not self._open_first():
            return lines
        for _ in range(_MAX_HOPS):
            if self._rewritten():
                # Checked before reading: past our position now lies the new content.
                self._restart_after_truncation(lines)
            if not self._read_available(lines):
                return lines  # budget spent: the caller hands these out and polls again
            if _identity_at(self.path) == self._identity:
                return lines
            if not self._drain(lines) or not self._move_to_newer(lines):
                return lines
        return lines

    # ---- reading

    def _read_available(self, lines: list[str]) -> bool:
        """Read up to the budget; True when the end of the file was reached."""
        assert self._file is not None
        budget = _POLL_BUDGET
        while budget > 0:
            chunk = os.pread(self._file.fileno(), min(_CHUNK * 4, budget), self._position)
            if not chunk:
                return True
            budget -= len(chunk)
            self._position += len(chunk)
            self._tail = (self._tail + chunk)[-_TAIL_PROBE:]
            self._split(chunk, lines)
        return False

    def _split(self, chunk: bytes, lines: list[str]) -> None:
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        lines.extend(_decode(line) for line in complete)

    def _flush_partial(self, lines: list[str]) -> None:
        # The file it came from is finished: its last line will never get a newline.
        if self._partial:
            lines.append(_decode(self._partial))
            self._partial = b""

    def _bytes_before(self, offset: int) -> bytes:
        assert self._file is not None
        size = min(_TAIL_PROBE, offset)
        return os.pread(self._file.fileno(), size, offset - size)

    # ---- what happened to the file

    def _rewritten(self) -> bool:
        """True when the bytes we read are gone: truncated in place, perhaps already refilled."""
        assert self._file is not None
        size = os.fstat(self._file.fileno()).st_size
        return size < self._position or self._bytes_before(self._position) != self._tail

    def _restart_after_truncation(self, lines: list[str]) -> None:
        copy = self._copy_of_old_content()
        if copy is not None:
            with copy:
                for block in _blocks(copy, self._position):
                    self._split(block, lines)
        self._flush_partial(lines)
        self._position, self._tail = 0, b""

    def _copy_of_old_content(self) -> io.FileIO | None:
        """``gaia.jsonl.1`` when it is a copy of what we read (copy-truncate), else None."""
        copy = _open(_numbered(self.path, 1))
        if copy is None:
            return None
        size = min(_TAIL_PROBE, self._position)
        before = os.pread(copy.fileno(), size, self._position - size)
        if self._tail and before == self._tail:
            return copy
        copy.close()
        return None

    # ---- rotation

    def _drain(self, lines: list[str]) -> bool:
        # Lines written between our last read and the rename are still in the old file.
        return self._read_available(lines)

    def _move_to_newer(self, lines: list[str]) -> bool:
        newer = self._open_newer()
        if newer is None:
            return False  # the new file is not there yet: look again next poll
        self._flush_partial(lines)
        self.close()
        self._adopt(newer, 0)
        return True

    def _adopt(self, handle: io.FileIO, offset: int) -> None:
        self._file = handle
        self._identity = _file_identity(handle)
        self._position = offset
        self._tail = self._bytes_before(offset)

    def _open_newer(self) -> io.FileIO | None:
        """The file written after ours: the next lower number, or the live file."""
        for _ in range(_SUCCESSOR_TRIES):
            number = self._current_number()
            if number is None:
                # Our file left the rotation (deleted, or renamed by a scheme we do not know):
                # continue with the live file, as tail -F does.
                return self._open_live_if_new()
            newer = self._open_below(number)
            if newer is None:
                return None
            if _identity_at(_numbered(self.path, number)) == self._identity:
                return newer  # nothing rotated while we opened it
            newer.close()
        return None

    def _current_number(self) -> int | None:
        """Where our file now sits among ``gaia.jsonl.N``.

        Probed by ascending number: files only move up, so a rotation running meanwhile cannot
        carry ours past the probe.
        """
        limit = max(_rotation_numbers(self.path), default=0) + 2
        for number in range(1, limit + 1):
            if _identity_at(_numbered(self.path, number)) == self._identity:
                return number
        return None

    def _open_below(self, number: int) -> io.FileIO | None:
        for lower in range(number - 1, -1, -1):
            handle = _open(_numbered(self.path, lower))
            if handle is not None:
                return handle
        return None

    def _open_live_if_new(self) -> io.FileIO | None:
        handle = _open(self.path)
        if handle is not None and _file_identity(handle) == self._identity:
            handle.close()
            return None
        return handle

    def _open_first(self) -> bool:
        """Start on the oldest file there is: everything in it is new to us."""
        for number in [*reversed(_rotation_numbers(self.path)), 0]:
            handle = _open(_numbered(self.path, number))
            if handle is not None:
                self._adopt(handle, 0)
                return True
        return False


def _blocks(handle: io.FileIO, start: int) -> Iterator[bytes]:
    position = start
    while block := os.pread(handle.fileno(), _CHUNK, position):
        position += len(block)
        yield block


# --------------------------------------------------------------------------- command


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


@dataclass(frozen=True, slots=True)
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
    segments = _open_segments(options.path, options.follow)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(_close, segments)
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


def _print_backlog(segments: Sequence[_Segment], options: Options, out: TextIO) -> None:
    if not segments:
        return
    if options.limit is None:
        entries: Iterator[Entry] | list[Entry] = _all_matching(segments, options.filter)
    else:
        entries = _last_matching(segments, options.filter, options.limit)
    batch: list[str] = []
    for entry in entries:
        batch.append(options.format(entry) + "\n")
        if len(batch) >= _WRITE_BATCH:
            out.write("".join(batch))
            batch.clear()
    out.write("".join(batch))
    out.flush()


def _follower_after(segments: Sequence[_Segment], path: Path) -> Follower:
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
        entry = _candidate(line, flt) if line.strip() else None
        if entry is not None:
            yield entry


def _complain(message: str) -> None:
    print(f"gaia tail: {message}", file=sys.stderr)


def _silence(out: TextIO) -> None:
    # Python would report the broken pipe again when it flushes stdout at exit.
    if out is sys.stdout:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
