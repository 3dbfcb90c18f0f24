"""The clocks: a manual one runs due calls in time order as a test advances it; the real one
runs them in named daemon threads after real delays."""

from __future__ import annotations

import threading

import pytest

from supervisors import ManualClock, RealClock


def test_a_manual_clock_stands_still_until_advanced() -> None:
    clock = ManualClock(start=100.0)
    assert clock.now() == 100.0
    clock.advance(2.5)
    assert clock.now() == 102.5


def test_advance_runs_due_calls_in_time_order_each_at_its_own_time() -> None:
    clock = ManualClock()
    seen: list[tuple[str, float]] = []
    clock.call_later(0.3, lambda: seen.append(("late", clock.now())), "late")
    clock.call_later(0.1, lambda: seen.append(("early", clock.now())), "early")
    clock.call_later(0.5, lambda: seen.append(("beyond", clock.now())), "beyond")
    clock.advance(0.3)
    assert seen == [("early", 0.1), ("late", 0.3)]
    assert clock.pending() == [(0.5, "beyond")]
    clock.advance(0.2)
    assert seen[-1] == ("beyond", 0.5)
    assert clock.pending() == []


def test_a_cancelled_call_never_runs() -> None:
    clock = ManualClock()
    seen: list[str] = []
    call = clock.call_later(0.1, lambda: seen.append("ran"), "restart")
    call.cancel()
    clock.advance(1.0)
    assert seen == []
    assert clock.pending() == []


def test_a_repeated_call_runs_once_per_interval_until_it_answers_false() -> None:
    clock = ManualClock()
    times: list[float] = []

    def tick() -> bool:
        times.append(clock.now())
        return len(times) < 3

    clock.call_every(0.25, tick, "ticker")
    clock.advance(0.6)
    assert times == [0.25, 0.5]
    clock.advance(10.0)
    assert times == [0.25, 0.5, 0.75]
    assert clock.pending() == []


def test_a_repeated_call_cancelled_from_its_own_callback_stops() -> None:
    clock = ManualClock()
    times: list[float] = []

    def tick() -> bool:
        times.append(clock.now())
        handle.cancel()
        return True

    handle = clock.call_every(0.1, tick, "ticker")
    clock.advance(1.0)
    assert times == [0.1]


def test_a_call_scheduled_by_a_call_runs_within_the_same_advance() -> None:
    clock = ManualClock()
    seen: list[float] = []
    clock.call_later(0.1, lambda: clock.call_later(0.1, lambda: seen.append(clock.now()), "b"), "a")
    clock.advance(0.25)
    assert seen == [pytest.approx(0.2)]
    assert clock.now() == 0.25


def test_advance_to_stops_exactly_at_a_pending_call() -> None:
    clock = ManualClock(start=0.1)
    seen: list[float] = []
    clock.call_later(0.7, lambda: seen.append(clock.now()), "restart")
    [(due, name)] = clock.pending()
    clock.advance_to(due)
    assert (seen, name, clock.now()) == ([due], "restart", due)


def test_a_manual_clock_cannot_go_back() -> None:
    clock = ManualClock(start=5.0)
    with pytest.raises(ValueError, match="advance"):
        clock.advance(-1.0)
    with pytest.raises(ValueError, match="advance_to"):
        clock.advance_to(4.0)
    assert clock.now() == 5.0


def test_the_real_clock_calls_later_in_a_named_daemon_thread() -> None:
    clock = RealClock()
    fired = threading.Event()
    where: list[threading.Thread] = []

    def callback() -> None:
        where.append(threading.current_thread())
        fired.set()

    began = clock.now()
    clock.call_later(0.05, callback, "restart-a")
    assert fired.wait(5)
    assert clock.now() - began >= 0.05
    assert (where[0].name, where[0].daemon) == ("restart-a", True)


def test_the_real_clock_repeats_until_false_and_stops_when_cancelled() -> None:
    clock = RealClock()
    calls: list[float] = []
    done = threading.Event()

    def three_times() -> bool:
        calls.append(clock.now())
        if len(calls) == 3:
            done.set()
        return len(calls) < 3

    clock.call_every(0.01, three_times, "ticker")
    assert done.wait(5)
    cancelled = clock.call_every(60.0, lambda: True, "idle")
    cancelled.cancel()
    assert isinstance(cancelled, threading.Thread)
    cancelled.join(5)
    assert not cancelled.is_alive()
    assert len(calls) == 3
