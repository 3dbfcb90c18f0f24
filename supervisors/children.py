"""A supervisor's book of children: starting, stopping, finding and reporting them.

The restart policy (``supervisor``), the recovery ladder (``ladder``) and liveness pings
(``liveness``) are built on this record; none of it leaves the supervisor's thread.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pykka
import structlog

from supervisors.clock import Cancellable, Clock, RealClock
from supervisors.errors import Escalation
from supervisors.events import SupervisorEvent
from supervisors.registry import NodeInfo
from supervisors.spec import ChildSpec, Restart, Strategy, SupervisorConfig
from supervisors.supervised import ChildDown, Link, Progress, Supervised

Listener = Callable[[str, Mapping[str, Any]], None]
log = structlog.get_logger("supervisors")


# A child in one of these states has a live actor whose reports count; in any other state
# its reports come from an actor the supervisor has already stopped or abandoned.
LIVE = ("starting", "running")


@dataclass
class Waiting:
    """A liveness ping not yet answered, and how far the child has got since it went out."""

    seq: int
    handled: int  # the child's count of finished messages when last seen to move
    since: float  # clock time it was last seen to move (at first: when the ping went out)


@dataclass
class Child:
    """A supervisor's private record of one child (never leaves the supervisor thread)."""

    spec: ChildSpec
    ref: pykka.ActorRef[Any] | None = None
    generation: int = 0  # starts so far; the running actor's Link carries it
    epoch: int = 0  # bumped by every start and stop: older timers and ladder results are stale
    state: str = "stopped"
    started_at: float | None = None  # clock time the current generation reached running
    failures: int = 0  # consecutive failures without a stable run, for backoff
    restarts: int = 0  # total, for the tree view
    ladder_step: int = 0  # steps taken since the last stable run
    ping: Waiting | None = None  # the unanswered ping
    progress: Progress = field(default_factory=Progress)  # the running generation's count
    last_error: str = ""
    timer: Cancellable | None = field(default=None, repr=False)  # a pending restart
    poll: Cancellable | None = field(default=None, repr=False)  # a blocked child's poll


class ChildBook(Supervised):
    """The children of a supervisor and the mechanics of starting and stopping them."""

    def __init__(
        self,
        link: Link,
        children: Sequence[ChildSpec],
        *,
        config: SupervisorConfig | None = None,
        listener: Listener | None = None,
        on_escalate: Callable[[Escalation], None] | None = None,
        rng: random.Random | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(link)
        names = [spec.name for spec in children]
        if len(set(names)) != len(names):
            raise ValueError(f"supervisor {link.name!r}: duplicate child names in {names}")
        self.config = config or SupervisorConfig()
        self.children = [Child(spec) for spec in children]
        self.listener = listener or _log_listener
        self.on_escalate = on_escalate
        self.rng = rng or random.Random()
        self.clock: Clock = clock or RealClock()
        self.restart_times: deque[float] = deque()
        self.ping_seq = itertools.count(1)
        self.ticker: Cancellable | None = None
        self.escalated = False

    def _start_child(self, child: Child) -> None:
        link = self._launch(child)
        if link is not None:
            self._await_start(child, link, child.spec.start_timeout)

    def _start_children(self, children: Sequence[Child]) -> None:
        """Start ``children`` in order, each once the one before has started (OTP); with
        ``concurrent_start`` all at once, each then waited for within its start timeout.
        Once the tree is stopping, nothing more is started: the stop waits for no start."""
        if not self.config.concurrent_start:
            for child in children:
                if not self.registry.stopping.is_set():
                    self._start_child(child)
            return
        launched = [
            (child, self._launch(child), time.monotonic())
            for child in children
            if not self.registry.stopping.is_set()
        ]
        for child, link, at in launched:
            if link is not None:
                waited = time.monotonic() - at
                self._await_start(child, link, max(0.0, child.spec.start_timeout - waited))

    def _launch(self, child: Child) -> Link | None:
        """Start ``child``'s actor, registered; its on_start then runs in its own thread.
        None when the factory failed (its ChildDown is queued)."""
        self._cancel_timer(child)
        child.generation += 1
        child.epoch += 1
        child.ping = None
        child.started_at = None
        child.state = "starting"
        registered = threading.Event()
        link = Link(
            self.actor_ref, self.registry, child.spec.name, child.generation, registered=registered
        )
        child.progress = link.progress
        try:
            child.ref = child.spec.factory(link)
        except Exception as exc:  # noqa: BLE001 - a factory error is a failed start, not ours
            registered.set()  # whatever it may have started must not wait for nothing
            self._tell_quietly(ChildDown(child.spec.name, child.generation, repr(exc), "start"))
            return None
        self.registry.register(child.spec.name, child.ref, child.generation)
        registered.set()
        return link

    def _await_start(self, child: Child, link: Link, timeout: float) -> None:
        if not link.started.wait(timeout):
            error = f"on_start did not finish within {child.spec.start_timeout:g}s"
            self._tell_quietly(ChildDown(child.spec.name, child.generation, error, "start"))
            return
        assert child.ref is not None
        if child.ref.is_alive():  # else its on_start failed and its ChildDown is queued
            child.state = "running"
            child.started_at = self.clock.now()
            self._emit(SupervisorEvent.CHILD_STARTED, child)

    def _stop_children(self, children: Sequence[Child]) -> None:
        for child in reversed(children):
            self._stop_child(child)

    def _stop_child(self, child: Child, state: str = "stopped") -> None:
        self._cancel_timer(child)
        hung = child.state == "hung"
        ref, child.ref = child.ref, None
        child.state = state
        child.epoch += 1
        child.ping = None
        self.registry.unregister(child.spec.name)
        self._report(child)
        if ref is None or not ref.is_alive():
            return
        if hung:
            ref.stop(block=False)  # queued behind the stuck message; the thread is abandoned
            return
        try:
            ref.stop(block=True, timeout=child.spec.shutdown_timeout)
        except pykka.Timeout:
            # A thread cannot be killed, only abandoned (it is daemonic).
            self._emit(SupervisorEvent.SHUTDOWN_TIMEOUT, child, level="warning")

    def _unregister_root(self) -> None:
        if self.link.supervisor is None:  # a nested supervisor is unregistered by its parent
            self.registry.unregister(self.name)

    def _stop_group(self, failed: Child) -> list[Child]:
        """Stop the children the strategy restarts with ``failed``, in reverse start order.

        Returns those that will start again: temporary siblings stop for good (OTP: never
        restarted, not even in a group restart) and parked or blocked siblings stay so.
        """
        group = self._affected(failed)
        for child in reversed(group):
            if child is failed:
                self._stop_child(child, state="restarting")
            elif child.spec.restart is Restart.TEMPORARY:
                self._stop_child(child)
            elif child.state not in ("failed", "blocked"):
                self._stop_child(child, state="restarting")
        return [c for c in group if c.state == "restarting"]

    def _restart_group(self, failed: Child) -> None:
        if failed.state == "blocked":
            failed.state = "restarting"
        for child in self._affected(failed):
            if child.state == "restarting":
                child.restarts += 1
                self._start_child(child)

    def _affected(self, child: Child) -> list[Child]:
        strategy = self.config.strategy
        if strategy is Strategy.ONE_FOR_ALL:
            return list(self.children)
        if strategy is Strategy.REST_FOR_ONE:
            index = self.children.index(child)
            return self.children[index:]
        return [child]

    def _after_failure(self, child: Child) -> None:
        """Apply the restart policy to a child that failed (defined by ``Supervisor``)."""
        raise NotImplementedError

    def _stop_ticker(self) -> None:
        if self.ticker is not None:
            self.ticker.cancel()

    def _find(self, name: str) -> Child | None:
        return next((c for c in self.children if c.spec.name == name), None)

    def _cancel_timer(self, child: Child) -> None:
        if child.timer is not None:
            child.timer.cancel()
            child.timer = None
        if child.poll is not None:
            child.poll.cancel()
            child.poll = None

    def _tell_quietly(self, message: object) -> bool:
        try:
            self.actor_ref.tell(message)
        except pykka.ActorDeadError:
            return False
        return True

    def _info(self, child: Child) -> NodeInfo:
        return NodeInfo(
            name=child.spec.name,
            parent=self.name,
            state=child.state,
            restarts=child.restarts,
            generation=child.generation,
            supervisor=child.spec.supervisor,
            last_error=child.last_error,
        )

    def _report(self, child: Child) -> None:
        self.registry.report(self._info(child))

    def _emit(self, event: str, child: Child, level: str = "info", **fields: Any) -> None:
        self._report(child)
        data = {
            "supervisor": self.name,
            "child": child.spec.name,
            "generation": child.generation,
            "restarts": child.restarts,
            "state": child.state,
            "level": level,
            **fields,
        }
        if child.last_error and level != "info":
            data.setdefault("error", child.last_error)
        try:
            self.listener(event, data)
        except Exception:  # a broken listener must not break supervision
            log.exception("supervisor.listener_failed", supervisor=self.name, event_name=event)


def _log_listener(event: str, data: Mapping[str, Any]) -> None:
    fields = dict(data)
    level = fields.pop("level", "info")
    getattr(log, level)(event, **fields)
