"""Listener: a test's ear in the actor system, a named actor that hands every message told to
it to a callback, in its own thread (so the publisher, the bus or a job's thread, never runs
test code). Subscribe it to the bus by name, or name it as a job's watcher."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from types import TracebackType
from typing import Any

import pykka

from supervisors import Registry

_SERIAL = itertools.count(1)


class Listener:
    def __init__(self, registry: Registry, callback: Callable[[Any], None], name: str = "") -> None:
        self.registry = registry
        self.name = name or f"test.listener.{next(_SERIAL)}"
        self.ref = _ListenerActor.start(callback)
        registry.register(self.name, self.ref)

    def close(self) -> None:
        self.registry.unregister(self.name)
        self.ref.stop(block=False)

    def __enter__(self) -> Listener:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


class _ListenerActor(pykka.ThreadingActor):
    use_daemon_thread = True

    def __init__(self, callback: Callable[[Any], None]) -> None:
        super().__init__()
        self.callback = callback

    def on_receive(self, message: Any) -> None:
        self.callback(message)
