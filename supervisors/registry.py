"""Names to actors, resolved at send time (Erlang's registered names).

Actors hold names, never refs, so a restarted actor is reached under the same name. The
registry is the one structure shared between threads outside an actor: lookups are plain
dict reads (atomic under the GIL, the hot path of every send); writes take a lock.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import replace
from typing import Any

import pykka

from supervisors.errors import AskTimeout, NotRunning
from supervisors.records import record

DEFAULT_ASK_TIMEOUT = 5.0
# While an ask waits, how often it checks that the actor is still alive: an ask that races
# with the actor's stop can be queued after Pykka drained the inbox and never be answered.
_ALIVE_CHECK = 0.05
# An asked message that declares a ``reply_by`` field (left None) gets the monotonic time
# after which its asker no longer waits, less this margin for the reply to travel back; the
# actor drops it unhandled after that (``Supervised``). The timeout is then unambiguous for
# writes: an ask that timed out was not applied later, so a retry cannot apply it twice.
REPLY_MARGIN = 0.5


@record
class NodeInfo:
    """One node of the supervision tree as last reported by its supervisor."""

    name: str
    parent: str | None
    state: str  # starting | running | restarting | stopped | failed | hung
    restarts: int = 0  # times started again after the first start (by any restart)
    generation: int = 0  # starts so far: 1 for the first, 2 after one restart, ...
    supervisor: bool = False
    since: float = 0.0  # wall-clock time this state (and generation) was entered
    last_error: str = ""


class Registry:
    """Thread-safe name registry and the tree view supervisors keep up to date."""

    def __init__(self) -> None:
        # Set when the root supervisor stops: children can tell a shutdown of the whole tree
        # from a restart (an environment leaves its process running across a restart).
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._refs: dict[str, pykka.ActorRef[Any]] = {}
        self._generations: dict[str, int] = {}
        self._nodes: dict[str, NodeInfo] = {}
        self._deliveries: dict[str, threading.Lock] = {}

    def register(self, name: str, ref: pykka.ActorRef[Any], generation: int = 0) -> None:
        with self._lock:
            self._deliveries.setdefault(name, threading.Lock())
            self._refs[name] = ref
            self._generations[name] = generation

    def unregister(self, name: str, generation: int | None = None) -> None:
        """Forget ``name``; with ``generation``, only if that generation is still current."""
        with self._lock:
            if generation is not None and self._generations.get(name) != generation:
                return
            self._refs.pop(name, None)
            self._generations.pop(name, None)

    def registered(self, name: str) -> pykka.ActorRef[Any] | None:
        """The ref registered under ``name`` now, or None (never raises)."""
        return self._refs.get(name)

    def lookup(self, name: str) -> pykka.ActorRef[Any]:
        ref = self._refs.get(name)
        if ref is None:
            raise NotRunning(name, self._why_down(name))
        return ref

    def tell(self, name: str, message: Any) -> None:
        """Send without waiting. Raises NotRunning when nothing answers to ``name``.

        Pykka checks that the actor lives, then queues: an actor that ends in between would
        never see the message, and Pykka drops what is queued behind its end. Under
        ``delivery(name)`` the message is either queued before the ending actor takes what is
        left in its inbox, or refused here (and an outbox holds it)."""
        ref = self._refs.get(name)
        delivery = self._deliveries.get(name)  # made with the first registration
        if ref is None or delivery is None:
            raise NotRunning(name, self._why_down(name))
        try:
            with delivery:
                ref.tell(message)
        except pykka.ActorDeadError:
            raise NotRunning(name, "it stopped while the message was sent") from None

    def delivery(self, name: str) -> threading.Lock:
        """Held while a tell to ``name`` checks and queues, and by its ending actor while it
        takes what is left in its inbox (once Pykka has marked it stopped)."""
        lock = self._deliveries.get(name)
        if lock is None:
            with self._lock:
                lock = self._deliveries.setdefault(name, threading.Lock())
        return lock

    def ask(self, name: str, message: Any, timeout: float = DEFAULT_ASK_TIMEOUT) -> Any:
        """Send and wait for the reply. A handler that returns an exception raises it here;
        one that returns a ``pykka.Future`` (a deferred reply) is waited on, within the same
        ``timeout``.

        Raises NotRunning when nothing answers to ``name`` or its actor stops before
        answering, AskTimeout when no reply comes within ``timeout`` (the message may still
        be handled later, unless it declares ``reply_by``: see ``with_reply_by``), and
        whatever the handler raised.
        """
        ref = self.lookup(name)
        message = with_reply_by(message, timeout)
        future = ref.ask(message, block=False)
        started = time.monotonic()
        try:
            reply = self._wait(ref, future, timeout)
            if isinstance(reply, pykka.Future):
                # A deferred reply: the handler answered with a future that a worker of the
                # actor completes later, so a long job never blocks the actor's mailbox.
                reply = reply.get(timeout=max(0.0, timeout - (time.monotonic() - started)))
        except pykka.Timeout:
            raise AskTimeout(name, message, timeout) from None
        except pykka.ActorDeadError:
            raise NotRunning(name, "it stopped before answering") from None
        if isinstance(reply, BaseException):
            raise reply
        return reply

    @staticmethod
    def _wait(ref: pykka.ActorRef[Any], future: pykka.Future[Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                return future.get(timeout=max(0.0, min(remaining, _ALIVE_CHECK)))
            except pykka.Timeout:
                if remaining <= _ALIVE_CHECK:
                    raise
                if not ref.is_alive():
                    return Registry._last_chance(future)

    @staticmethod
    def _last_chance(future: pykka.Future[Any]) -> Any:
        # Stopped: Pykka answers what it drains from the inbox, so give it a moment; after
        # that, the message was queued too late to be answered at all.
        try:
            return future.get(timeout=_ALIVE_CHECK)
        except pykka.Timeout:
            raise pykka.ActorDeadError("stopped without answering") from None

    def names(self) -> list[str]:
        return sorted(self._refs)

    def is_running(self, name: str) -> bool:
        ref = self._refs.get(name)
        return ref is not None and ref.is_alive()

    # The tree view: supervisors report their children's state here.

    def report(self, info: NodeInfo) -> None:
        """Record a node's state; ``since`` is kept while its state and generation hold."""
        with self._lock:
            old = self._nodes.get(info.name)
            same = old is not None and (old.state, old.generation) == (info.state, info.generation)
            since = info.since or (old.since if same and old else time.time())
            self._nodes[info.name] = replace(info, since=since)

    def snapshot(self) -> list[NodeInfo]:
        with self._lock:
            return list(self._nodes.values())

    def node(self, name: str) -> NodeInfo | None:
        return self._nodes.get(name)

    def _why_down(self, name: str) -> str:
        info = self._nodes.get(name)
        if info is None:
            return "no such actor"
        return f"state {info.state}" + (f": {info.last_error}" if info.last_error else "")


def with_reply_by(message: Any, timeout: float) -> Any:
    """``message`` with its ``reply_by`` field set, when it declares one left None: the
    monotonic time after which an asker waiting ``timeout`` seconds has given up."""
    if getattr(message, "reply_by", _ABSENT) is not None or not dataclasses.is_dataclass(message):
        return message
    margin = min(REPLY_MARGIN, timeout / 4)
    return replace(message, reply_by=time.monotonic() + timeout - margin)  # type: ignore[type-var]


def expired(message: Any) -> float:
    """How many seconds past its ``reply_by`` an asked message is (0.0: not expired, or no
    deadline)."""
    reply_by = getattr(message, "reply_by", None)
    if not isinstance(reply_by, float):
        return 0.0
    return max(0.0, time.monotonic() - reply_by)


_ABSENT = object()
