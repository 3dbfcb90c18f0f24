"""The event bus: fan-out of events to subscribers; every event is also logged and stored.

Events reach the store through the registry's outbox: while the store is being restarted
they are held and written, in order, once it is back (``gaia_actors/outbox.py``).
"""

from __future__ import annotations

from typing import Any

from gaia_actors.actor import GaiaActor
from gaia_actors.events import matches
from gaia_actors.messages import Event, Insert, Subscribe, Unsubscribe, fields_of
from gaia_actors.outbox import outbox_for
from supervisors import Link

_LEVELS = {"debug", "info", "warning", "error", "critical"}


class EventBus(GaiaActor):
    """Publish/subscribe by glob over event names (``health.*``, ``stage.finished``)."""

    def __init__(self, link: Link) -> None:
        super().__init__(link)
        self.actors: dict[str, tuple[str, ...]] = {}
        self.published = 0
        self.outbox = outbox_for(link.registry)

    def salvage(self, message: Any) -> None:
        if isinstance(message, Event):  # published, not yet handled: for the next generation
            self.outbox.tell(self.name, message)

    def on_terminate(self) -> None:
        self.outbox.flush("store")  # at shutdown the store stops after the bus

    def receive(self, message: Any) -> Any:
        match message:
            case Event():
                self._publish(message)
            case Subscribe(subscriber=name, patterns=patterns):
                self.actors[name] = patterns
            case Unsubscribe(subscriber=name):
                self.actors.pop(name, None)
            case _:
                return self.unhandled(message)
        return None

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "published": self.published,
            "subscribers": sorted(self.actors),
            "held_for_store": self.outbox.held("store"),
        }

    def _publish(self, event: Event) -> None:
        self.published += 1
        if not event.logged:
            self._log(event)
        self.outbox.tell(
            "store",
            Insert(
                "events",
                fields_of(
                    ts=event.ts,
                    name=event.name,
                    level=event.level,
                    actor=event.actor,
                    env=event.env,
                    data=dict(event.as_dict()),
                ),
            ),
        )
        for name, patterns in list(self.actors.items()):
            if matches(event.name, *patterns) and not self.tell(name, event):
                self.actors.pop(
                    name, None
                )  # a subscriber that is gone for good re-subscribes on start

    def _log(self, event: Event) -> None:
        level = event.level if event.level in _LEVELS else "info"
        fields = {k: v for k, v in event.data if k not in ("event", "level", "actor", "env")}
        if event.env:
            fields["env"] = event.env
        getattr(self.log.bind(actor=event.actor or self.name), level)(event.name, **fields)
