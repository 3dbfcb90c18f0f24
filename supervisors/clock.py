"""Time as a supervisor sees it: a monotonic reading and delayed or repeated calls.

A supervisor never reads ``time`` or starts a timer itself; it asks its clock. The default,
``RealClock``, runs each delayed or repeated call in a daemon thread of its own. Tests pass a
``ManualClock`` instead (in the manner of Twisted's ``task.Clock`` or Trio's ``MockClock``):
its time stands still until the test calls ``advance``, which runs every call that falls due
on the way, in the test's thread and in time order, so backoff delays, intensity windows,
stable periods and ping rounds take no wall-clock time and happen exactly when the test says.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

# A repeated call's callback answers whether it wants to be called again.
Repeated = Callable[[], bool]


class Cancellable(Protocol):
    """A pending call: ``cancel`` makes sure it does not run (again)."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """What a supervisor needs of time. Callbacks must be quick: they only send messages."""

    def now(self) -> float:
        """Monotonic seconds (only differences mean anything)."""
        ...

    def call_later(self, delay: float, callback: Callable[[], object], name: str) -> Cancellable:
        """Call ``callback`` once, ``delay`` seconds from now, unless cancelled first."""
        ...

    def call_every(self, interval: float, callback: Repeated, name: str) -> Cancellable:
        """Call ``callback`` every ``interval`` seconds until it answers False or is
        cancelled (the first call is one interval from now)."""
        ...


class RealClock:
    """Wall-clock time: ``time.monotonic`` and one daemon thread per pending call, named
    ``name`` so that a thread dump says which supervisor and child it serves."""

    def now(self) -> float:
        return time.monotonic()

    def call_later(
        self, delay: float, callback: Callable[[], object], name: str
    ) -> threading.Timer:
        timer = threading.Timer(delay, callback)
        timer.name = name
        timer.daemon = True
        timer.start()
        return timer

    def call_every(self, interval: float, callback: Repeated, name: str) -> _Repeater:
        repeater = _Repeater(interval, callback, name)
        repeater.start()
        return repeater


class _Repeater(threading.Thread):
    """A thread calling back every ``interval`` seconds until told to stop."""

    def __init__(self, interval: float, callback: Repeated, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self.callback = callback
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            if not self.callback():
                return

    def cancel(self) -> None:
        self.stopped.set()


@dataclass(order=True)
class _Call:
    """One pending call of a ManualClock, ordered by when it falls due (then by creation)."""

    due: float
    seq: int
    callback: Callable[[], object] = field(compare=False)
    interval: float | None = field(default=None, compare=False)  # None: call once
    name: str = field(default="", compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock whose time moves only when ``advance`` is called (for tests).

    Thread-safe: the supervisor reads and schedules from its own thread while a test
    advances from another. Pending calls are registered before ``call_later`` returns, so
    a test that has seen the supervisor schedule something may advance past it at once.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._calls: list[_Call] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._advancing = threading.Lock()  # one advance at a time keeps calls in order

    def now(self) -> float:
        with self._lock:
            return self._now

    def call_later(self, delay: float, callback: Callable[[], object], name: str) -> _Call:
        return self._add(delay, callback, None, name)

    def call_every(self, interval: float, callback: Repeated, name: str) -> _Call:
        return self._add(interval, callback, interval, name)

    def pending(self) -> list[tuple[float, str]]:
        """(due time, name) of each call not yet run nor cancelled, soonest first."""
        with self._lock:
            return [(call.due, call.name) for call in sorted(self._calls) if not call.cancelled]

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, running each call that falls due on the way at
        its own due time (a repeated call as many times as its interval fits)."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: advance({seconds})")
        with self._advancing:
            self._run_until(self.now() + seconds)

    def advance_to(self, when: float) -> None:
        """Move time forward to ``when`` exactly (say, a pending call's due time), as
        ``advance`` does."""
        with self._advancing:
            if when < self.now():
                raise ValueError(f"a clock cannot go back: advance_to({when}) at {self.now()}")
            self._run_until(when)

    def _run_until(self, target: float) -> None:
        while (call := self._next_due(target)) is not None:
            again = call.callback()
            if call.interval is not None and again and not call.cancelled:
                with self._lock:
                    call.due += call.interval
                    heapq.heappush(self._calls, call)
        with self._lock:
            self._now = target

    def _add(
        self, delay: float, callback: Callable[[], object], interval: float | None, name: str
    ) -> _Call:
        with self._lock:
            call = _Call(self._now + delay, next(self._seq), callback, interval, name)
            heapq.heappush(self._calls, call)
        return call

    def _next_due(self, target: float) -> _Call | None:
        """Pop the earliest live call due by ``target`` and set the time to its due time."""
        with self._lock:
            while self._calls and self._calls[0].cancelled:
                heapq.heappop(self._calls)
            if not self._calls or self._calls[0].due > target:
                return None
            call = heapq.heappop(self._calls)
            self._now = call.due
            return call
