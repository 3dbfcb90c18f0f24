"""Event streams: a ``subscribe`` request's events, from the bus (and first from the store
for a watcher that asks for those ``since`` a time), bounded so a slow client loses events
instead of holding the bus up."""

from __future__ import annotations

import contextlib
from typing import Any

from gaia_actors.control.connection import Connection, Request
from gaia_actors.control.protocol import to_json
from gaia_actors.errors import GaiaError
from gaia_actors.messages import Event, Flush, Subscribe, Unsubscribe
from gaia_actors.relay import Relay
from supervisors import AskTimeout, NotRunning

STREAM_QUEUE = 1000  # events buffered per stream before they are dropped
REPLAY_LIMIT = 1000  # stored events sent to a stream that asks for `since`


class Stream:
    """One subscription: the bus tells the events to the stream's relay (never blocking on
    the client); a worker takes them from the relay and writes them as frames."""

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
        self.sent = 0

    def _wanted(self, event: Any) -> bool:
        return isinstance(event, Event) and (not self.env or event.env == self.env)

    def run(self, request: Request) -> dict[str, Any]:
        registry = self.conn.registry
        with Relay(registry, "control.stream", STREAM_QUEUE, self._wanted) as relay:
            registry.ask("bus", Subscribe(relay.name, self.patterns), timeout=5.0)
            request.on_cancel = relay.wake
            try:
                self.conn.send(
                    {
                        "id": self.request_id,
                        "subscribed": {"patterns": list(self.patterns), "env": self.env},
                    }
                )
                seen = self._replay() if self.since is not None else set()
                self._pump(request, relay, seen)
            finally:
                with contextlib.suppress(NotRunning):
                    registry.tell("bus", Unsubscribe(relay.name))
                if relay.dropped:
                    self.conn.clients.count("dropped_events", relay.dropped)
        return {"events": self.sent, "dropped": relay.dropped}

    def _pump(self, request: Request, relay: Relay, seen: set[tuple[float, str, str]]) -> None:
        reported = 0
        while not request.cancel.is_set():
            item = relay.get()
            if item is None:
                continue  # woken: cancelled?
            dropped = relay.dropped
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
