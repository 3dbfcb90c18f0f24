"""One thread for every actor's timers: a heap of due times, so that an actor's periodic and
delayed messages cost an entry, not a thread each (three per environment before).

A callback runs in that thread, so it must be quick: the actors' callbacks only put a
message in a mailbox.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

_log = structlog.get_logger("gaia.timers")

_PURGE_FLOOR = 64  # entries before cancelled ones are first looked for


@dataclass(order=True)
class _Entry:
    due: float  # time.monotonic()
    seq: int  # equal due times fire in the order they were added
    callback: Callable[[], bool] = field(compare=False)
    interval: float | None = field(compare=False)  # None: once
    stop: threading.Event = field(compare=False)


class Timers:
    """Calls back after a delay, once or every interval, until the returned event is set."""

    def __init__(self, name: str = "timers") -> None:
        self._name = name
        self._heap: list[_Entry] = []
        self._changed = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._purge_at = _PURGE_FLOOR

    def add(
        self, delay: float, callback: Callable[[], bool], interval: float | None = None
    ) -> threading.Event:
        """Call ``callback`` in ``delay`` seconds, then every ``interval`` seconds (if given)
        until it returns False or the returned event is set."""
        stop = threading.Event()
        self._push(_Entry(time.monotonic() + delay, next(self._seq), callback, interval, stop))
        return stop

    def _push(self, entry: _Entry) -> None:
        with self._changed:
            heapq.heappush(self._heap, entry)
            if len(self._heap) >= self._purge_at:
                self._purge()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._changed.notify()

    def _purge(self) -> None:
        # Cancelled entries wait for their due time (an hourly timer of a restarted actor for
        # up to an hour): drop them whenever the heap has doubled, amortised O(1) per add.
        self._heap = [e for e in self._heap if not e.stop.is_set()]
        heapq.heapify(self._heap)
        self._purge_at = max(_PURGE_FLOOR, 2 * len(self._heap))

    def _next_due(self) -> _Entry:
        with self._changed:
            while True:
                now = time.monotonic()
                if self._heap and self._heap[0].due <= now:
                    return heapq.heappop(self._heap)
                self._changed.wait(self._heap[0].due - now if self._heap else None)

    def _run(self) -> None:
        while True:
            entry = self._next_due()
            if entry.stop.is_set():
                continue  # cancelled: dropped when it falls due
            try:
                again = entry.callback()
            except Exception:  # noqa: BLE001 - one bad callback must not stop every timer
                _log.exception("timers.callback_failed")
                continue
            if again and entry.interval is not None and not entry.stop.is_set():
                entry.due = time.monotonic() + entry.interval
                entry.seq = next(self._seq)
                self._push(entry)


TIMERS = Timers()  # the daemon's one timer thread, shared by every actor
