"""The child side of supervision: a Pykka actor that reports its own failures.

Pykka has no links or monitors (REFERENCE.md): a child must tell its supervisor when it
crashes (``on_failure``), when its ``on_start`` fails (Pykka reports that through neither
hook), and when it stops. It answers liveness pings, and turns a ``SystemExit`` or
``KeyboardInterrupt`` raised by a handler into an ordinary failure, because Pykka's default
for those is to stop every actor in the process.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pykka

from supervisors.errors import ChildAborted

if TYPE_CHECKING:
    from supervisors.registry import Registry


@dataclass(frozen=True, slots=True)
class Ping:
    """Liveness probe from a supervisor; answered with a Pong."""

    seq: int


@dataclass(frozen=True, slots=True)
class Pong:
    name: str
    generation: int
    seq: int


@dataclass(frozen=True, slots=True)
class ChildDown:
    """A child stopped: ``error`` is empty for a normal stop."""

    name: str
    generation: int
    error: str = ""
    phase: str = "run"  # start | run | stop

    @property
    def normal(self) -> bool:
        return not self.error


@dataclass(frozen=True, slots=True)
class Link:
    """What a child knows of its place in the tree, handed to it by its supervisor."""

    supervisor: pykka.ActorRef[Any] | None
    registry: Registry
    name: str
    generation: int = 0
    started: threading.Event = field(default_factory=threading.Event)


class Supervised(pykka.ThreadingActor):
    """Base class for every supervised actor.

    Subclasses implement ``handle(message)`` instead of ``on_receive``; ``on_start`` and
    ``on_stop`` stay theirs. Threads are daemonic: a hung actor can only be abandoned, and
    it must not keep the process alive after a clean shutdown.
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
        if type(message) is Ping:
            self._notify_supervisor(Pong(self.name, self.link.generation, message.seq))
            return None
        try:
            return self.handle(message)
        except (SystemExit, KeyboardInterrupt) as exc:
            raise ChildAborted(f"{self.name}: handler raised {exc!r}") from exc

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        error = repr(exception_value) if exception_value else "unknown failure"
        self._notify_supervisor(ChildDown(self.name, self.link.generation, error, "run"))

    def _actor_loop_setup(self) -> None:
        # Pykka stops an actor whose on_start raises without calling on_failure; this is the
        # one place the failure can be seen, so it is reported here (pinned to pykka 4.x).
        try:
            self.on_start()
        except Exception as exc:  # noqa: BLE001 - reported to the supervisor, then stop
            self._notify_supervisor(ChildDown(self.name, self.link.generation, repr(exc), "start"))
            self._handle_failure(*sys.exc_info())
        finally:
            self.link.started.set()

    def _stop(self) -> None:
        super()._stop()
        self._notify_supervisor(ChildDown(self.name, self.link.generation))

    def _notify_supervisor(self, message: object) -> None:
        if self.link.supervisor is None:
            return
        with contextlib.suppress(pykka.ActorDeadError):  # the supervisor is gone
            self.link.supervisor.tell(message)
