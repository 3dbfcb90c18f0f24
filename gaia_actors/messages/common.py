"""Messages every actor answers: fault injection and introspection."""

from __future__ import annotations

from gaia_actors.messages.base import message


@message
class Crash:
    """Command: raise inside the actor so its supervisor sees a crash (fault injection)."""

    reason: str = "injected crash"


@message
class Hang:
    """Command: block the actor's mailbox for ``seconds`` (fault injection, bounded)."""

    seconds: float = 10.0


@message
class GetState:
    """Query: the actor's own view of its state, as a JSON-friendly mapping."""
