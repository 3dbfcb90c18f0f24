"""Test actors and helpers for the supervision tests.

Every test actor is a real Pykka actor (``Probe``) that records its life in a shared,
thread-safe ``Journal``; tests wait on that journal, on listener events or on futures,
never on sleeps.
"""

from __future__ import annotations

import dataclasses
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pykka

from supervisors import (
    Backoff,
    ChildSpec,
    Clock,
    Escalation,
    Intensity,
    Link,
    ManualClock,
    NotRunning,
    Registry,
    Restart,
    Strategy,
    Supervised,
    Supervisor,
)
from supervisors.spec import BlockedCheck, Exhausted, LadderCheck, LadderStep, SupervisorConfig
from tests.conftest import wait_until

# Tiny timings keep the suite fast; liveness and backoff tests pick their own.
FAST = SupervisorConfig(
    intensity=Intensity(max_restarts=50, max_seconds=5.0),
    backoff=Backoff(initial=0.0, maximum=0.0, jitter=0.0, stable_after=60.0),
    ping_interval=0.02,
    ping_timeout=2.0,
)


# Messages understood by Probe


@dataclass(frozen=True)
class Who:
    """Answered with (name, generation)."""


@dataclass(frozen=True)
class Crash:
    reason: str = "boom"


@dataclass(frozen=True)
class Block:
    """Block the handler until ``gate`` is set (a hung actor); ``entered_at`` gets the
    monotonic time the handler began."""

    gate: threading.Event
    entered: threading.Event = field(default_factory=threading.Event)
    entered_at: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Work:
    """Take ``seconds`` (a handler doing its work), then journal ("work", name, key)."""

    key: int
    seconds: float


@dataclass(frozen=True)
class Proven:
    """Report this generation proven to the supervisor (``Supervised.report_proven``)."""


@dataclass(frozen=True)
class Exit:
    """Stop normally (the actor stops itself)."""


@dataclass(frozen=True)
class Abort:
    kind: type[BaseException]


@dataclass(frozen=True)
class GiveBack:
    """Return ``value`` as the reply (an exception instance included)."""

    value: object


@dataclass(frozen=True)
class RaiseIt:
    error: Exception


@dataclass(frozen=True)
class Write:
    """Journaled as ("write", name, key) and answered with ``key``; an ask fills
    ``reply_by`` (dropped when it arrives after its asker gave up)."""

    key: str
    reply_by: float | None = None


class Journal:
    """A thread-safe record of what the test actors did, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[Any, ...]] = []

    def add(self, *item: Any) -> None:
        with self._lock:
            self._items.append(item)

    def items(self) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._items)

    def mark(self) -> int:
        with self._lock:
            return len(self._items)

    def since(self, mark: int) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._items[mark:])

    def kinds(self, *kinds: str, since: int = 0) -> list[tuple[Any, ...]]:
        return [item for item in self.since(since) if item[0] in kinds]

    def wait_for(self, *item: Any, since: int = 0, timeout: float = 5.0) -> None:
        wait_until(lambda: item in self.since(since), timeout, what=f"{item} in journal")


class Script:
    """Per-name start behaviour, changed by tests while the tree runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.start_failures: dict[str, int] = {}
        self.start_aborts: dict[str, int] = {}
        self.start_gates: dict[str, threading.Event] = {}
        self.factory_failures: dict[str, int] = {}
        self.threads: dict[tuple[str, int], threading.Thread] = {}
        self.addressable: dict[tuple[str, int], bool] = {}
        self.on_stop: dict[str, Callable[[Probe], None]] = {}

    def take(self, table: dict[str, int], name: str) -> bool:
        with self._lock:
            left = table.get(name, 0)
            if left:
                table[name] = left - 1
            return left > 0


class Probe(Supervised):
    """A supervised test actor that records its life in the journal."""

    def __init__(self, link: Link, journal: Journal, script: Script) -> None:
        super().__init__(link)
        self.journal = journal
        self.script = script

    def on_start(self) -> None:
        key = (self.name, self.link.generation)
        self.script.threads[key] = threading.current_thread()
        try:
            self.script.addressable[key] = self.registry.lookup(self.name) == self.actor_ref
        except NotRunning:
            self.script.addressable[key] = False
        self.journal.add("start", self.name, self.link.generation)
        gate = self.script.start_gates.pop(self.name, None)
        if gate is not None:
            gate.wait(10)
        if self.script.take(self.script.start_failures, self.name):
            raise RuntimeError(f"{self.name} cannot start")
        if self.script.take(self.script.start_aborts, self.name):
            raise SystemExit(3)

    def on_stop(self) -> None:
        self.journal.add("stop", self.name, self.link.generation)
        hook = self.script.on_stop.get(self.name)
        if hook is not None:
            hook(self)

    def on_failure(self, *exc_info: Any) -> None:
        self.journal.add("crash", self.name, self.link.generation)
        super().on_failure(*exc_info)

    def handle(self, message: Any) -> Any:
        match message:
            case Who():
                return (self.name, self.link.generation)
            case Crash(reason=reason):
                raise RuntimeError(reason)
            case Block(gate=gate, entered=entered, entered_at=entered_at):
                entered_at.append(time.monotonic())
                entered.set()
                gate.wait(10)
                return "released"
            case Exit():
                self.stop()
                return None
            case Proven():
                self.report_proven()
                return None
            case Abort(kind=kind):
                raise kind()
            case GiveBack(value=value):
                return value
            case RaiseIt(error=error):
                raise error
            case Work(key=key, seconds=seconds):
                time.sleep(seconds)  # the work this message stands for
                self.journal.add("work", self.name, key)
                return None
            case Write(key=key):
                self.journal.add("write", self.name, key)
                return key
            case Defer():
                return deferred(message)
        return ValueError(f"unknown message {message!r}")


class Events:
    """A supervision listener that keeps every event (thread-safe), stamped ``at`` with the
    time of the supervisor's clock (``now``, set by ``Tree.start``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[str, dict[str, Any]]] = []
        self.now: Callable[[], float] = time.monotonic

    def __call__(self, event: str, data: Mapping[str, Any]) -> None:
        with self._lock:
            self._items.append((event, {**data, "at": self.now()}))

    def items(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return list(self._items)

    def all(self, name: str | None = None, **match: Any) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self._items)
        return [
            data
            for event, data in items
            if (name is None or event == name) and all(data.get(k) == v for k, v in match.items())
        ]

    def names(self, *, child: str | None = None) -> list[str]:
        with self._lock:
            items = list(self._items)
        return [e for e, d in items if child is None or d.get("child") == child]

    def wait_for(self, name: str, count: int = 1, timeout: float = 5.0, **match: Any) -> None:
        wait_until(
            lambda: len(self.all(name, **match)) >= count,
            timeout,
            what=f"{count}x {name} {match}",
        )


@dataclass
class Tree:
    """Builds supervision trees of probes for one test and tears them down after it.

    A tree runs on real time unless started with ``clock=tree.clock``: then its time moves
    only when the test advances that manual clock.
    """

    registry: Registry
    journal: Journal
    script: Script
    events: Events
    clock: ManualClock = field(default_factory=ManualClock)
    roots: list[pykka.ActorRef[Any]] = field(default_factory=list)
    gates: list[threading.Event] = field(default_factory=list)
    escalations: list[Escalation] = field(default_factory=list)
    escalated: threading.Event = field(default_factory=threading.Event)

    def spec(
        self,
        name: str,
        restart: Restart = Restart.PERMANENT,
        *,
        ladder: Sequence[tuple[str, LadderStep]] = (),
        exhausted: Exhausted = Exhausted.ESCALATE,
        shutdown_timeout: float = 2.0,
        start_timeout: float = 5.0,
        ping: bool = True,
        blocked: BlockedCheck | None = None,
        blocked_poll: float = 1.0,
        needs_ladder: LadderCheck | None = None,
    ) -> ChildSpec:
        journal, script = self.journal, self.script

        def factory(link: Link) -> pykka.ActorRef[Any]:
            if script.take(script.factory_failures, link.name):
                raise OSError(f"factory for {link.name} failed")
            return Probe.start(link, journal, script)

        return ChildSpec(
            name,
            factory,
            restart=restart,
            ladder=ladder,
            exhausted=exhausted,
            shutdown_timeout=shutdown_timeout,
            start_timeout=start_timeout,
            ping=ping,
            blocked=blocked,
            blocked_poll=blocked_poll,
            needs_ladder=needs_ladder,
        )

    def gate(self) -> threading.Event:
        """An event released at teardown at the latest, so no test thread stays blocked."""
        gate = threading.Event()
        self.gates.append(gate)
        return gate

    def start(
        self,
        children: Sequence[ChildSpec],
        config: SupervisorConfig = FAST,
        *,
        name: str = "root",
        strategy: Strategy | None = None,
        seed: int = 7,
        listener: Callable[[str, Mapping[str, Any]], None] | None = None,
        clock: Clock | None = None,
    ) -> pykka.ActorRef[Supervisor]:
        if strategy is not None:
            config = dataclasses.replace(config, strategy=strategy)
        if clock is not None:
            self.events.now = clock.now
        root = Supervisor.start_root(
            name,
            children,
            self.registry,
            config=config,
            listener=listener or self.events,
            on_escalate=self._on_escalate,
            rng=random.Random(seed),
            clock=clock,
        )
        self.roots.append(root)
        return root

    def fire_restart_timer(self, child: str, supervisor: str = "root") -> float:
        """Advance the manual clock to the moment ``child``'s pending restart is due (armed
        before its ``supervisor.restart`` event); returns that moment."""
        timer = f"{supervisor}-restart-{child}"
        [due] = [due for due, name in self.clock.pending() if name == timer]
        self.clock.advance_to(due)
        return due

    def _on_escalate(self, escalation: Escalation) -> None:
        self.escalations.append(escalation)
        self.escalated.set()

    def node(self, name: str) -> Any:
        info = self.registry.node(name)
        assert info is not None, f"no node {name!r} in {self.registry.snapshot()}"
        return info

    def close(self) -> None:
        for gate in self.gates:
            gate.set()
        for root in reversed(self.roots):
            if root.is_alive():
                root.stop(block=True, timeout=10)


def config(**changes: Any) -> SupervisorConfig:
    """FAST with some fields changed."""
    return dataclasses.replace(FAST, **changes)


def inbox_size(ref: pykka.ActorRef[Any]) -> int:
    """Messages waiting in an actor's inbox (a ThreadingActor's inbox is a queue.Queue)."""
    return cast("queue.Queue[Any]", ref.actor_inbox).qsize()


@dataclass(frozen=True)
class Defer:
    """Answer later: a worker thread completes the returned future once ``gate`` is set."""

    gate: threading.Event
    value: object = "done"
    error: Exception | None = None


def deferred(message: Defer) -> pykka.Future[Any]:
    future: pykka.Future[Any] = pykka.ThreadingFuture()

    def work() -> None:
        if not message.gate.wait(10):
            return
        if message.error is None:
            future.set(message.value)
        else:
            future.set_exception((type(message.error), message.error, None))

    threading.Thread(target=work, name="deferred-reply", daemon=True).start()
    return future
