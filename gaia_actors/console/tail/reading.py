"""Reading back: the last N matching records (``-n``) from the end of the log, in chunks,
through the rotated files when the current one holds fewer, and the records from ``--since``
on."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from gaia_actors.console.tail.files import (
    CHUNK,
    decode,
    file_identity,
    numbered,
    open_log,
    rotation_numbers,
)
from gaia_actors.console.tail.filtering import Filter
from gaia_actors.console.tail.records import Entry, parse_line, record_time
from supervisors.records import record

# Threads stamp a record before they take the handler's lock, so the file is only nearly in time
# order; reading back for --since stops this far before the cut-off, not at the first older line.
_CLOCK_SKEW = timedelta(seconds=2)


@record
class Segment:
    """One log file opened for reading back, and the part of it that belongs to the backlog."""

    file: io.FileIO
    end: int  # the backlog reads bytes [0, end)
    follow_from: int  # where a follower continues: after the last complete line


def open_segments(path: Path, following: bool) -> list[Segment]:
    """The live log and its rotated files, newest first, each opened once."""
    segments: list[Segment] = []
    live = open_log(path)
    if live is not None:
        segments.append(_current_segment(live, following))
    live_identity = file_identity(live) if live is not None else None
    seen = {live_identity}
    for handle in _open_rotated(path):
        identity = file_identity(handle)
        if identity == live_identity:
            # The live file was rotated while we looked: the files met so far are newer than it.
            close_segments(segments[1:])
            del segments[1:]
        if identity in seen:
            handle.close()
            continue
        seen.add(identity)
        size = os.fstat(handle.fileno()).st_size
        segments.append(Segment(handle, size, size))
    return segments


def _open_rotated(path: Path) -> Iterator[io.FileIO]:
    """The rotated files, opened by ascending number.

    A rotation only moves files to higher numbers, so one running meanwhile can make us meet a
    file twice (the caller skips it by inode) but never miss one; the probe runs two numbers past
    the highest seen for the files it pushes up.
    """
    limit = max(rotation_numbers(path), default=0) + 2
    for number in range(1, limit + 1):
        handle = open_log(numbered(path, number))
        if handle is not None:
            yield handle


def _current_segment(handle: io.FileIO, following: bool) -> Segment:
    size = os.fstat(handle.fileno()).st_size
    complete = _complete_end(handle, size)
    if following or complete == size:
        return Segment(handle, complete, complete)
    # Not following, the last line has no newline: it is being written now (skip it) or the
    # writer died mid-line; show it only if it is already a whole record.
    partial = decode(os.pread(handle.fileno(), size - complete, complete))
    end = size if not parse_line(partial).malformed else complete
    return Segment(handle, end, complete)


def _complete_end(handle: io.FileIO, size: int) -> int:
    """The offset just after the last newline before ``size`` (0 when there is none)."""
    position = size
    while position > 0:
        start = max(0, position - CHUNK)
        newline = os.pread(handle.fileno(), position - start, start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        position = start
    return 0


def close_segments(segments: Sequence[Segment]) -> None:
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
        size = min(CHUNK, position)
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
        block = os.pread(handle.fileno(), min(CHUNK, end - position), position)
        if not block:
            break
        position += len(block)
        *complete, carry = (carry + block).split(b"\n")
        yield from complete
    if carry:
        yield carry


def _raw_backward(segments: Sequence[Segment]) -> Iterator[tuple[int, int, str]]:
    """``(segment index, offset past the line, line)``, newest first, blank lines skipped."""
    for index, segment in enumerate(segments):
        for after, line in _lines_backward(segment.file, segment.end):
            raw = decode(line)
            if raw.strip():
                yield index, after, raw


def candidate(raw: str, flt: Filter) -> Entry | None:
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


def last_matching(segments: Sequence[Segment], flt: Filter, limit: int) -> list[Entry]:
    """The last ``limit`` entries that pass ``flt``, oldest first."""
    found: list[Entry] = []
    cut = flt.since - _CLOCK_SKEW if flt.since is not None else None
    for _, _, raw in _raw_backward(segments) if limit > 0 else ():
        if cut is not None and _stamped_before(raw, cut):
            break
        entry = candidate(raw, flt)
        if entry is not None:
            found.append(entry)
            if len(found) >= limit:
                break
    found.reverse()
    return found


def all_matching(segments: Sequence[Segment], flt: Filter) -> Iterator[Entry]:
    """Every entry that passes ``flt``, oldest first, streamed (memory stays flat)."""
    first, offset = _range_start(segments, flt.since)
    for index in range(first, -1, -1):
        segment = segments[index]
        start = offset if index == first else 0
        for line in _lines_forward(segment.file, start, segment.end):
            raw = decode(line)
            entry = candidate(raw, flt) if raw.strip() else None
            if entry is not None:
                yield entry


def _range_start(segments: Sequence[Segment], since: datetime | None) -> tuple[int, int]:
    """Where reading forward must start to meet every record from ``since`` on."""
    oldest = (len(segments) - 1, 0)
    if since is None:
        return oldest
    for index, after, raw in _raw_backward(segments):
        if _stamped_before(raw, since - _CLOCK_SKEW):
            return index, after
    return oldest
