"""Messages every actor answers (fault injection and introspection), and the progress of a
long job told to whoever follows it."""

from __future__ import annotations

from gaia_actors.messages.base import Fields, message


@message
class Crash:
    """Command: raise inside the actor so its supervisor sees a crash (fault injection)."""

    reason: str = "injected crash"


MAX_HANG_SECONDS = 300.0  # the longest a Hang blocks a mailbox


@message
class Hang:
    """Command: block the actor's mailbox for ``seconds`` (fault injection, bounded)."""

    seconds: float = 10.0


@message
class GetState:
    """Query: the actor's own view of its state, as a JSON-friendly mapping."""


@message
class Progress:
    """Event: one update of a long job (a promotion, an improvement cycle), told to the actor
    its requester named (``Promote.watcher``, ``RunCycle.watcher``); ``update`` keeps the
    order its sender gave."""

    update: Fields

    @classmethod
    def of(cls, **update: object) -> Progress:
        return cls(tuple(update.items()))
