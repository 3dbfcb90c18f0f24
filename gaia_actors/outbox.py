"""Messages held for an actor that is being restarted, sent in order once it is back.

A tell to a registered name whose actor is down fails (``NotRunning``): Erlang drops such a
message too. For the two actors everything writes through, that loses records: the events
the bus hands to a store that its supervisor is restarting, and the supervision events about
a restarting bus. Both come back within milliseconds, so the senders hold what they could not
deliver (bounded, oldest dropped first and counted) and send it, in order, with their next
message or when told to ``flush``.

One outbox per registry (``outbox_for``): every supervisor's listener and every bus
generation share it, so what one generation held survives into the next.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog

from supervisors import NotRunning, Registry

log = structlog.get_logger("gaia.outbox")

LIMIT = 10_000  # messages held per name; beyond, the oldest are dropped (and counted)


class Outbox:
    """Tells by name that wait, in order, while their target restarts."""

    def __init__(self, registry: Registry, limit: int = LIMIT) -> None:
        self.registry = registry
        self.limit = limit
        self._lock = threading.Lock()
        self._held: dict[str, deque[Any]] = {}
        self.dropped: dict[str, int] = {}

    def tell(self, name: str, message: Any, held: Callable[[Any], Any] | None = None) -> bool:
        """Send ``message`` to ``name`` after anything held for it. When ``name`` is not
        running, keep it (or ``held(message)``, what to send later instead) and answer False."""
        with self._lock:
            queue = self._held.get(name)
            if queue:
                self._send_held(name, queue)
            if not queue:
                try:
                    self.registry.tell(name, message)
                    return True
                except NotRunning:
                    pass
            self._hold(name, message if held is None else held(message))
            return False

    def flush(self, name: str) -> int:
        """Send what is held for ``name`` while it runs; answers how many are still held."""
        with self._lock:
            queue = self._held.get(name)
            if queue:
                self._send_held(name, queue)
            return len(queue or ())

    def held(self, name: str) -> int:
        return len(self._held.get(name) or ())

    def _send_held(self, name: str, queue: deque[Any]) -> None:
        sent = 0
        while queue:
            try:
                self.registry.tell(name, queue[0])
            except NotRunning:
                break
            queue.popleft()
            sent += 1
        if sent and not queue:
            log.info("outbox.delivered", to=name, messages=sent)

    def _hold(self, name: str, message: Any) -> None:
        queue = self._held.setdefault(name, deque())
        if len(queue) >= self.limit:
            queue.popleft()
            self.dropped[name] = self.dropped.get(name, 0) + 1
            if self.dropped[name] == 1 or self.dropped[name] % 1000 == 0:
                log.error("outbox.dropped", to=name, dropped=self.dropped[name], limit=self.limit)
        queue.append(message)


_OUTBOXES: weakref.WeakKeyDictionary[Registry, Outbox] = weakref.WeakKeyDictionary()
_OUTBOXES_LOCK = threading.Lock()


def outbox_for(registry: Registry) -> Outbox:
    """The registry's outbox (made on first use)."""
    with _OUTBOXES_LOCK:
        box = _OUTBOXES.get(registry)
        if box is None:
            box = _OUTBOXES[registry] = Outbox(registry)
        return box
