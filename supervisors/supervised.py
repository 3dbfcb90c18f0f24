"""The child side of supervision: a Pykka actor that reports its own failures.

Pykka has no links or monitors: a child must tell its supervisor when it
crashes (``on_failure``), when its ``on_start`` fails (Pykka reports that through neither
hook), and when it stops. It answers liveness pings and counts the messages it finishes
(``Progress``, read by the supervisor without a message, so a long mailbox is not taken for a
hang), and turns a ``SystemExit`` or ``KeyboardInterrupt`` raised by a handler into an
ordinary failure, because Pykka's default for those is to stop every actor in the process.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from dataclasses import field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pykka

from supervisors.errors import AskExpired, ChildAborted
from supervisors.records import record
from supervisors.registry import expired

if TYPE_CHECKING:
    from supervisors.registry import Registry

# Bound on the wait for registration: only a factory that blocks on its own new actor
# before returning comes near it.
REGISTER_WAIT = 5.0


@record
class Ping:
    """Liveness probe from a supervisor; answered with a Pong."""

    seq: int


@record
class Pong:
    """A child's answer to a Ping, naming the generation that answered."""

    name: str
    generation: int
    seq: int


@record
class Proven:
    """A child's word that its current generation has proved itself (what that means is the
    child's: a service that answers its health check, say), sooner than ``stable_after``."""

    name: str
    generation: int


@record
class ChildDown:
    """A child stopped: ``error`` is empty for a normal stop."""

    name: str
    generation: int
    error: str = ""
    phase: str = "run"  # start | run | stop (a normal exit is phase "stop" with no error)

    @property
    def normal(self) -> bool:
        return not self.error


class Progress:
    """How many messages an actor has finished: written by the actor's thread alone, read by
    its supervisor straight from memory (an int read is atomic), never through the mailbox.

    The supervisor's liveness check compares it over time: an actor working through a deep
    backlog moves it with every message even while a ping waits far behind in its mailbox;
    an actor stuck inside one message does not move it at all.
    """

    __slots__ = ("handled",)

    def __init__(self) -> None:
        self.handled = 0


@record
class Link:
    """What a child knows of its place in the tree, handed to it by its supervisor."""

    supervisor: pykka.ActorRef[Any] | None
    registry: Registry
    name: str
    generation: int = 0  # 1 for a child's first start, +1 for each start after it
    started: threading.Event = field(default_factory=threading.Event)
    # Set by the supervisor once ``name`` resolves to this actor; on_start waits for it.
    # None (a hand-made Link) means nobody registers the actor, so nothing waits.
    registered: threading.Event | None = None
    progress: Progress = field(default_factory=Progress)  # this generation's own count


class Supervised(pykka.ThreadingActor):
    """Base class for every supervised actor.

    Subclasses implement ``handle(message)`` instead of ``on_receive``; ``on_start`` and
    ``on_stop`` stay theirs. Threads are daemonic: a hung actor can only be abandoned, and
    it must not keep the process alive after a clean shutdown.

    Never block on your own supervisor (an ``ask`` to it from ``on_start``, ``on_stop`` or a
    handler): it may be waiting for you to start or stop, and both waits then run into their
    timeouts. Tell it instead.
    """

    use_daemon_thread = True

    def __init__(self, link: Link) -> None:
        super().__init__()
        self.link = link
        self.name = link.name
        self.registry = link.registry

    def handle(self, message: Any) -> Any:
        """Handle one message; override. Unknown messages are the subclass's business."""
        raise NotImplementedError(f"{type(self).__name__} must implement handle()")

    def on_receive(self, message: Any) -> Any:
        try:  # one frame, not a helper call: this runs for every message
            if type(message) is Ping:
                self._notify_supervisor(Pong(self.name, self.link.generation, message.seq))
                return None
            late = expired(message)
            if late:  # its asker gave up (AskTimeout): handling it now would surprise them
                return self.on_expired(AskExpired(self.name, message, late))
            try:
                return self.handle(message)
            except Exception:
                raise  # Pykka's own path: to the asker, or a crash reported by on_failure
            except BaseException as exc:  # noqa: BLE001 - SystemExit & co: fail this actor only
                return self._abort(exc)
        finally:
            # Counted when the message is done, however it ended: progress is a finished
            # message, so one handler that never returns shows none.
            self.link.progress.handled += 1

    def report_proven(self) -> None:
        """Tell the supervisor this generation works: its backoff and recovery ladder start
        afresh, as after running ``stable_after`` seconds. A failure after this is a new
        one, not the failure of the restart (or ladder step) that led here."""
        self._notify_supervisor(Proven(self.name, self.link.generation))

    def on_expired(self, error: AskExpired) -> AskExpired:
        """An asked message arrived after its ``reply_by``; it is not handled. Override to
        log it; answer the error (nobody waits for it)."""
        return error

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        error = repr(exception_value) if exception_value else "unknown failure"
        self._notify_supervisor(ChildDown(self.name, self.link.generation, error, "run"))

    def _abort(self, exc: BaseException) -> ChildAborted:
        """Fail this actor as a crash would, whether the message was told or asked.

        Pykka answers a BaseException from a handler with ``ActorRegistry.stop_all()``, taking
        down every actor in the process. Here the actor stops alone, its
        supervisor hears of it once, and an asker gets the ChildAborted as its reply (which
        ``Registry.ask`` raises).
        """
        error = ChildAborted(f"actor {self.name!r}: handler raised {exc!r}")
        error.__cause__ = exc
        exc_info = (ChildAborted, error, exc.__traceback__)
        self._handle_failure(*exc_info)  # logs, unregisters, ends the loop after this message
        try:
            self.on_failure(*exc_info)
        except Exception:  # noqa: BLE001 - as Pykka treats a failing on_failure
            self._handle_failure(*sys.exc_info())
        return error

    def _actor_loop_setup(self) -> None:
        # Pykka stops an actor whose on_start raises without calling on_failure, and lets a
        # BaseException end the thread with the actor still marked alive; this is the one
        # place either can be seen, so it is reported here (pinned to pykka 4.x).
        if self.link.registered is not None:
            # The factory has started this thread but the supervisor registers the name only
            # when the factory returns: wait, so on_start is reachable by name (as Erlang
            # registers a name before init runs).
            self.link.registered.wait(REGISTER_WAIT)
        try:
            self.on_start()
        except BaseException as exc:  # noqa: BLE001 - reported to the supervisor, then stop
            self._notify_supervisor(ChildDown(self.name, self.link.generation, repr(exc), "start"))
            self._handle_failure(*sys.exc_info())
        finally:
            self.link.started.set()

    def _stop(self) -> None:
        # Pykka's _stop (4.x) plus the report: an on_stop that raises makes the exit abnormal,
        # and a BaseException there must not reach Pykka's loop (which would stop_all).
        pykka.ActorRegistry.unregister(self.actor_ref)
        self.actor_stopped.set()
        error = ""
        try:
            self.on_stop()
        except BaseException as exc:  # noqa: BLE001 - reported to the supervisor
            error = repr(exc)
            self._handle_failure(*sys.exc_info())
        self._notify_supervisor(ChildDown(self.name, self.link.generation, error, "stop"))

    def _notify_supervisor(self, message: object) -> None:
        if self.link.supervisor is None:
            return
        with contextlib.suppress(pykka.ActorDeadError):  # the supervisor is gone
            self.link.supervisor.tell(message)
