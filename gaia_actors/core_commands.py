"""Commands about the daemon itself: the supervision tree and message types."""

from __future__ import annotations

import dataclasses
from typing import Any

from gaia_actors.commands import CommandContext, command
from gaia_actors.errors import ControlError
from gaia_actors.messages import describe, message_types


@command("actors", help="the supervision tree: every actor with its state, restarts and generation")
def actors(ctx: CommandContext) -> list[dict[str, Any]]:
    if ctx.registry is None:
        raise ControlError("actors needs a running daemon")
    nodes = sorted(ctx.registry.snapshot(), key=lambda n: (n.parent or "", n.name))
    return [dataclasses.asdict(node) for node in nodes]


@command("messages", help="every message type with its fields", offline=True)
def messages(ctx: CommandContext) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "doc": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
            "fields": [dataclasses.asdict(f) for f in describe(cls)],
        }
        for name, cls in sorted(message_types().items())
    ]
