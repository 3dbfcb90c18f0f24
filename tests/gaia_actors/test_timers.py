"""The shared timer thread: delays, repeats, cancels, and one thread for them all."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from gaia_actors.timers import Timers
from tests.conftest import wait_until


def _recorder(log: list[str], name: str, again: bool = False) -> Callable[[], bool]:
    def call() -> bool:
        log.append(name)
        return again

    return call


def test_calls_fire_in_due_order_after_their_delay() -> None:
    timers = Timers("test-timers")
    fired: list[str] = []
    # Both due from the same instant, however long the first add takes (it starts the timers'
    # thread; a loaded machine spent 40 ms on it), and both in the heap before the thread may
    # take one out: the order under test is the dues', not the adds'.
    with timers._changed:
        started = time.monotonic()
        timers.add(started + 0.06 - time.monotonic(), _recorder(fired, "late"))
        timers.add(started + 0.02 - time.monotonic(), _recorder(fired, "early"))
    wait_until(lambda: len(fired) == 2, timeout=2)
    assert fired == ["early", "late"]
    assert time.monotonic() - started >= 0.06


def test_repeats_until_cancelled_or_false() -> None:
    timers = Timers("test-timers")
    ticks: list[str] = []
    stop = timers.add(0.0, _recorder(ticks, "tick", again=True), interval=0.005)
    wait_until(lambda: len(ticks) >= 3, timeout=2)
    stop.set()
    counted = len(ticks)
    done = threading.Event()
    timers.add(0.05, lambda: done.set() or False)  # a later call: the cancelled one is past
    assert done.wait(2)
    assert len(ticks) <= counted + 1  # at most one already under way when cancelled
    once: list[str] = []
    timers.add(0.0, _recorder(once, "once"), interval=0.001)  # returns False: no repeat
    done.clear()
    timers.add(0.05, lambda: done.set() or False)
    assert done.wait(2)
    assert once == ["once"]


def test_a_failing_callback_does_not_stop_the_others() -> None:
    timers = Timers("test-timers")
    fired = threading.Event()

    def boom() -> bool:
        raise RuntimeError("boom")

    timers.add(0.0, boom, interval=0.001)
    timers.add(0.01, lambda: fired.set() or False)
    assert fired.wait(2)


def test_many_timers_share_one_thread_and_cancelled_ones_are_dropped() -> None:
    timers = Timers("test-timers-one")
    stops = [timers.add(3600.0, lambda: False) for _ in range(500)]
    assert [t.name for t in threading.enumerate()].count("test-timers-one") == 1
    for stop in stops:
        stop.set()
    for _ in range(200):
        timers.add(3600.0, lambda: False)
    assert len(timers._heap) < 400  # the 500 cancelled hourly entries did not pile up
