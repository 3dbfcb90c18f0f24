"""Event streams: a ``subscribe`` request's events, from the bus (and first from the store
for a watcher that asks for those ``since`` a time), bounded so a slow client loses events
instead of holding the bus up."""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import Any

from gaia_actors.control.connection import Connection, Request
from gaia_actors.control.protocol import to_json
from gaia_actors.errors import GaiaError
from gaia_actors.messages import Event, Flush, SubscribeSink, Unsubscribe
from supervisors import AskTimeout, NotRunning

STREAM_QUEUE = 1000  # events buffered per stream before they are dropped
REPLAY_LIMIT = 1000  # stored events sent to a stream that asks for `since`


_WAKE = object()


class Stream:
    """One subscription: the bus calls ``offer`` (never blocks); a worker writes frames."""

    def __init__(
        self,
        conn: Connection,
        request_id: Any,
        patterns: tuple[str, ...],
        env: str | None,
        since: float | None,
    ) -> None:
        self.conn = conn
        self.request_id = request_id
        self.patterns = patterns
        self.env = env
        self.since = since
        self.key = f"control.stream.{id(self):x}"
        self.queue: queue.Queue[Any] = queue.Queue(STREAM_QUEUE)
        self.lock = threading.Lock()
        self.dropped = 0
        self.sent = 0

    def offer(self, event: Event) -> None:
        """Called in the bus's thread: queue or count as dropped, never wait."""
        if self.env and event.env != self.env:
            return
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            with self.lock:
                self.dropped += 1

    def run(self, request: Request) -> dict[str, Any]:
        registry = self.conn.registry
        registry.ask("bus", SubscribeSink(self.key, self.offer, self.patterns), timeout=5.0)
        request.on_cancel = self._wake
        try:
            self.conn.send(
                {
                    "id": self.request_id,
                    "subscribed": {"patterns": list(self.patterns), "env": self.env},
                }
            )
            seen = self._replay() if self.since is not None else set()
            self._pump(request, seen)
        finally:
            with contextlib.suppress(NotRunning):
                registry.tell("bus", Unsubscribe(self.key))
            if self.dropped:
                self.conn.clients.count("dropped_events", self.dropped)
        return {"events": self.sent, "dropped": self.dropped}

    def _wake(self) -> None:
        with contextlib.suppress(queue.Full):  # a full queue wakes the pump by itself
            self.queue.put_nowait(_WAKE)

    def _pump(self, request: Request, seen: set[tuple[float, str, str]]) -> None:
        reported = 0
        while not request.cancel.is_set():
            item = self.queue.get()
            if item is _WAKE:
                continue
            with self.lock:
                dropped = self.dropped
            if dropped != reported:
                reported = dropped
                if not self.conn.send({"id": self.request_id, "dropped": dropped}):
                    return
            if (item.ts, item.name, item.actor) in seen:
                continue  # already sent from the store
            if not self._send(item.as_dict()):
                return

    def _send(self, record: dict[str, Any]) -> bool:
        self.sent += 1
        return self.conn.send({"id": self.request_id, "event": to_json(record)})

    def _replay(self) -> set[tuple[float, str, str]]:
        """Stored events newer than ``since`` (a watcher reconnecting after a restart)."""
        import fnmatch

        from gaia_actors.store.models import EventRow

        with contextlib.suppress(NotRunning, AskTimeout, GaiaError):
            self.conn.registry.ask("store", Flush(), timeout=2.0)
        rows = (
            EventRow.select()
            .where(EventRow.ts > self.since)
            .order_by(EventRow.ts)
            .limit(REPLAY_LIMIT)
        )
        seen: set[tuple[float, str, str]] = set()
        for row in rows:
            if self.env and row.env != self.env:
                continue
            if not any(fnmatch.fnmatchcase(row.name, p) for p in self.patterns):
                continue
            seen.add((row.ts, row.name, row.actor))
            if not self._send(dict(row.data or {"event": row.name, "ts": row.ts})):
                break
        return seen
