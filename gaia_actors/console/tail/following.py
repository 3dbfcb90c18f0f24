"""Following (``-f``): the `Follower` reads what is appended to the log across rotations and
in-place truncations, losing and repeating nothing."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from gaia_actors.console.tail.files import (
    CHUNK,
    decode,
    file_identity,
    identity_at,
    numbered,
    open_log,
    rotation_numbers,
)

POLL_INTERVAL = 0.1  # seconds between looks at an idle file: ~50 ms mean latency, no busy loop


_POLL_BUDGET = 4 * 1024 * 1024  # bytes one poll reads before handing lines out


_MAX_HOPS = 64  # files (rotations, truncations) one poll walks before handing lines out


_TAIL_PROBE = 64  # bytes before the read position compared to spot an in-place rewrite


_SUCCESSOR_TRIES = 5  # a rotation racing the look for the newer file makes us look again


class Follower:
    """The complete lines appended to a log file, across rotation and truncation (``tail -F``).

    Started with an open ``file`` and an ``offset``, it continues from there; started with no
    file, it reads everything that appears, beginning with the oldest rotated file. Call `poll`
    from one thread; `lines` wraps it in a loop that ends when ``stop`` is set.
    """

    def __init__(self, path: Path, file: io.FileIO | None = None, offset: int = 0) -> None:
        self.path = path
        self._file = file
        self._identity = file_identity(file) if file is not None else None
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
            if identity_at(self.path) == self._identity:
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
            chunk = os.pread(self._file.fileno(), min(CHUNK * 4, budget), self._position)
            if not chunk:
                return True
            budget -= len(chunk)
            self._position += len(chunk)
            self._tail = (self._tail + chunk)[-_TAIL_PROBE:]
            self._split(chunk, lines)
        return False

    def _split(self, chunk: bytes, lines: list[str]) -> None:
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        lines.extend(decode(line) for line in complete)

    def _flush_partial(self, lines: list[str]) -> None:
        # The file it came from is finished: its last line will never get a newline.
        if self._partial:
            lines.append(decode(self._partial))
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
        copy = open_log(numbered(self.path, 1))
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
        self._identity = file_identity(handle)
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
            if identity_at(numbered(self.path, number)) == self._identity:
                return newer  # nothing rotated while we opened it
            newer.close()
        return None

    def _current_number(self) -> int | None:
        """Where our file now sits among ``gaia.jsonl.N``.

        Probed by ascending number: files only move up, so a rotation running meanwhile cannot
        carry ours past the probe.
        """
        limit = max(rotation_numbers(self.path), default=0) + 2
        for number in range(1, limit + 1):
            if identity_at(numbered(self.path, number)) == self._identity:
                return number
        return None

    def _open_below(self, number: int) -> io.FileIO | None:
        for lower in range(number - 1, -1, -1):
            handle = open_log(numbered(self.path, lower))
            if handle is not None:
                return handle
        return None

    def _open_live_if_new(self) -> io.FileIO | None:
        handle = open_log(self.path)
        if handle is not None and file_identity(handle) == self._identity:
            handle.close()
            return None
        return handle

    def _open_first(self) -> bool:
        """Start on the oldest file there is: everything in it is new to us. A rotation
        between listing the files and opening one moves the oldest up a number, so the one
        opened would be the next: then list and open again."""
        for _ in range(_SUCCESSOR_TRIES):
            numbers = rotation_numbers(self.path)
            handle = self._open_oldest(numbers)
            if handle is None:
                return False
            if rotation_numbers(self.path) == numbers:
                self._adopt(handle, 0)
                return True
            handle.close()
        return False

    def _open_oldest(self, numbers: list[int]) -> io.FileIO | None:
        for number in [*reversed(numbers), 0]:
            handle = open_log(numbered(self.path, number))
            if handle is not None:
                return handle
        return None


def _blocks(handle: io.FileIO, start: int) -> Iterator[bytes]:
    position = start
    while block := os.pread(handle.fileno(), CHUNK, position):
        position += len(block)
        yield block
