"""The bus's messages (``bus``): the `Event` every actor publishes, and subscriptions."""

from __future__ import annotations

import dataclasses
from typing import Any

from gaia_actors.messages.base import Fields, jsonable, message, now


@message
class Event:
    """Event: something happened. ``name`` is one of ``gaia_actors.events``' constants."""

    name: str
    level: str = "info"
    actor: str = ""
    env: str = ""
    data: Fields = ()
    ts: float = dataclasses.field(default_factory=now)
    logged: bool = False  # already in the log (sent late, after its sender logged it)

    def get(self, key: str, default: Any = None) -> Any:
        return next((v for k, v in self.data if k == key), default)

    def as_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"event": self.name, "level": self.level, "ts": self.ts}
        if self.actor:
            record["actor"] = self.actor
        if self.env:
            record["env"] = self.env
        record.update((k, jsonable(v)) for k, v in self.data)
        return record


@message
class Subscribe:
    """Command: deliver events whose name matches a glob in ``patterns`` to actor ``subscriber``."""

    subscriber: str
    patterns: tuple[str, ...] = ("*",)


@message
class Unsubscribe:
    """Command: stop delivering events to actor ``subscriber``."""

    subscriber: str
