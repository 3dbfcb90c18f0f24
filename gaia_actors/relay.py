"""Relay: a named actor that hands what it is told to one thread outside the actor system.

A control connection that streams (``watch``'s events, a promotion's or a cycle's progress)
opens a relay. The relay registers under a name of its own, and publishers send to it by that
name like to any actor: the bus tells it the events it subscribed to, the pipeline and the
improve engine tell it ``Progress``. The connection's thread takes the messages from a
bounded queue, in the order they were told. A publisher never waits on a slow client: a tell
only queues in the relay's mailbox, and past ``limit`` waiting messages the relay drops them
(and counts them). Closing the relay takes its name away, so a publisher's next tell fails
and it stops sending.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

import pykka

from supervisors import Registry

_SERIAL = itertools.count(1)


class Relay:
    """A registered name whose messages one reader takes with ``get``."""

    def __init__(
        self,
        registry: Registry,
        prefix: str,
        limit: int,
        accept: Callable[[Any], bool] | None = None,
    ) -> None:
        self.registry = registry
        self.name = f"{prefix}.{next(_SERIAL)}"
        self.items: queue.Queue[Any] = queue.Queue(limit)
        self.accept = accept
        self._lock = threading.Lock()
        self._dropped = 0
        self._ref = _RelayActor.start(self)
        registry.register(self.name, self._ref)

    @property
    def dropped(self) -> int:
        """Messages dropped so far because the reader fell ``limit`` behind."""
        with self._lock:
            return self._dropped

    def get(self, timeout: float | None = None) -> Any:
        """The next message (``queue.Empty`` after ``timeout``); None after ``wake``."""
        return self.items.get(timeout=timeout)

    def wake(self) -> None:
        """Make a waiting ``get`` return None (the reader then checks why it should stop)."""
        with contextlib.suppress(queue.Full):  # a full queue wakes the reader by itself
            self.items.put_nowait(None)

    def close(self) -> None:
        """Give the name up and stop the actor; what is still queued is dropped."""
        self.registry.unregister(self.name)
        self._ref.stop(block=False)

    def offer(self, message: Any) -> None:
        """In the relay's own thread: queue ``message``, or count it as dropped."""
        if self.accept is not None and not self.accept(message):
            return
        try:
            self.items.put_nowait(message)
        except queue.Full:
            with self._lock:
                self._dropped += 1

    def __enter__(self) -> Relay:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


class _RelayActor(pykka.ThreadingActor):
    # A relay left open by a crashed reader must not keep the process alive at exit.
    use_daemon_thread = True

    def __init__(self, relay: Relay) -> None:
        super().__init__()
        self.relay = relay

    def on_receive(self, message: Any) -> None:
        self.relay.offer(message)


__all__ = ["Relay"]
