"""Rounds: periodic blocking work in a worker thread, one round at a time, for one actor.

The health monitor and the metrics collector both check every environment on a schedule, and
a round can block for seconds (a hung endpoint waits out its timeout). A round therefore
runs in a worker thread that reports back with a message, so the owner's mailbox stays free
for queries and liveness pings. The rules, shared by both owners:

- one round at a time; the next is due ``interval`` seconds after the previous one *started*,
  and a round that overruns the interval delays the next instead of piling rounds up;
- ``request()`` (an operator's ``CheckNow``/``ScrapeNow``) starts a round now, or exactly
  one more right after the running one, however often it is called meanwhile;
- a round that has not reported back within ``overdue_after`` seconds is abandoned (its
  thread cannot be killed; its late report is ignored) and the schedule carries on.

Everything here runs in the owner's actor thread except the job itself.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar, cast

import pykka

from gaia_actors.actor import GaiaActor
from supervisors.records import record

T = TypeVar("T")

__all__ = ["Finished", "Overdue", "Rounds", "Tick", "close_in_background"]


# Messages a Rounds sends its owner (private to the owner: handled through Rounds.handle).


@record
class Tick:
    """The schedule: time for the round armed at ``epoch``."""

    epoch: int


@record
class Finished(Generic[T]):
    """A worker finished round ``round_id``; ``error`` is set when its job raised."""

    round_id: int
    started: float  # time.time() when the job started
    elapsed: float  # seconds the job took
    value: T | None
    error: str = ""


@record
class Overdue:
    """Round ``round_id`` has not reported back within its bound."""

    round_id: int


class Rounds(Generic[T]):
    """The schedule of one actor's rounds (see the module docstring).

    ``prepare()`` runs in the actor thread and returns the job for the next round (so it can
    capture the actor's current state); the job runs in a worker thread. ``on_result`` gets
    each round's value and elapsed time, ``on_failure`` a description of a round that raised
    or went overdue; both run in the actor thread.
    """

    def __init__(
        self,
        actor: GaiaActor,
        *,
        interval: float,
        overdue_after: float,
        prepare: Callable[[], Callable[[], T]],
        on_result: Callable[[T, Finished[T]], None],
        on_failure: Callable[[str], None],
    ) -> None:
        self.actor = actor
        self.interval = interval
        self.overdue_after = overdue_after
        self.prepare = prepare
        self.on_result = on_result
        self.on_failure = on_failure
        self.round_id = 0
        self.running: int | None = None
        self.again = False
        self.epoch = 0
        self.timer: threading.Event | None = None
        self.watchdog: threading.Event | None = None
        self.completed = 0
        self.failed = 0
        self.overdue = 0
        self.last_elapsed: float | None = None

    def request(self) -> None:
        """Start a round now, or one more right after the running one."""
        if self.running is not None:
            self.again = True
            return
        self.start()

    def start(self) -> None:
        _cancel(self.timer)
        self.epoch += 1  # a tick already queued is now stale
        self.round_id += 1
        self.running = round_id = self.round_id
        job = self.prepare()
        ref = self.actor.actor_ref

        def work() -> None:
            started, clock = time.time(), time.perf_counter()
            value: T | None = None
            error = ""
            try:
                value = job()
            except Exception as exc:  # noqa: BLE001 - reported to the owner, who carries on
                error = f"{type(exc).__name__}: {exc}"
            finished = Finished(round_id, started, time.perf_counter() - clock, value, error)
            with contextlib.suppress(pykka.ActorDeadError):  # the owner stopped meanwhile
                ref.tell(finished)

        name = f"{self.actor.name}-round-{round_id}"
        threading.Thread(target=work, name=name, daemon=True).start()
        self.watchdog = self.actor.after(self.overdue_after, Overdue(round_id))

    def handle(self, message: Any) -> bool:
        """Handle a Tick, Finished or Overdue; False for any other message."""
        match message:
            case Tick(epoch=epoch):
                if epoch == self.epoch:
                    self.request()
            case Finished():
                self._finished(message)
            case Overdue(round_id=round_id):
                self._overdue(round_id)
            case _:
                return False
        return True

    def state(self) -> dict[str, Any]:
        last = self.last_elapsed
        return {
            "interval": self.interval,
            "rounds": self.completed,
            "failed_rounds": self.failed,
            "overdue_rounds": self.overdue,
            "running": self.running is not None,
            "last_round_ms": None if last is None else round(last * 1000, 3),
        }

    def _finished(self, finished: Finished[T]) -> None:
        if finished.round_id != self.running:
            return  # abandoned as overdue; a newer round owns the schedule
        self.running = None
        _cancel(self.watchdog)
        self.last_elapsed = finished.elapsed
        if finished.error:
            self.failed += 1
            self.on_failure(finished.error)
        else:
            self.completed += 1
            self.on_result(cast(T, finished.value), finished)  # set whenever error is not
        self._schedule(finished.started)

    def _overdue(self, round_id: int) -> None:
        if round_id != self.running:
            return
        self.running = None
        self.overdue += 1
        self.on_failure(f"round {round_id} did not finish within {self.overdue_after:g}s")
        self._schedule(time.time() - self.interval)  # it is late already: go again now

    def _schedule(self, started: float) -> None:
        if self.again:
            self.again = False
            self.start()
            return
        self.epoch += 1
        delay = max(0.0, self.interval - (time.time() - started))
        self.timer = self.actor.after(delay, Tick(self.epoch))


def _cancel(timer: threading.Event | None) -> None:
    if timer is not None:
        timer.set()


class _Closeable(Protocol):
    def close(self) -> None: ...


def close_in_background(resource: _Closeable | None, name: str) -> None:
    """Close ``resource`` in a thread of its own: closing may wait (a prober joins its loop,
    which a hung round may hold), and an actor's mailbox must not."""
    if resource is not None:
        threading.Thread(target=resource.close, name=name, daemon=True).start()
