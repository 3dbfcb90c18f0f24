"""What the environment actor tells itself: from the threads it starts (the process's
watcher, the wait for healthy, a data job) and from its timers; and how those threads tell it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from gaia_actors.messages import message

if TYPE_CHECKING:
    import pykka


@message
class ProcessExited:
    """The environment's process exited (from its watcher thread)."""

    pid: int
    code: int | None


@message
class HealthWaited:
    """A wait-for-healthy finished: for the start of a process, or for an operation."""

    token: int
    ok: bool
    why: str


@message
class JobDone:
    """A data job ended: ``outcome`` is what it returned, or the exception it raised."""

    token: int
    outcome: object


@message
class ScheduledBackup:
    """Timer: take a scheduled backup."""


@message
class CheckData:
    """Timer: look for databases lost while the process runs."""


@message
class Housekeeping:
    """Timer: prune old logs, backups and releases."""


def nothing_to_salvage(_outcome: object) -> None:
    """Choosing a backup changes nothing: nothing to salvage."""


def unexpected(outcome: object) -> BaseException:
    """A job's outcome that is none of the expected ones: the exception it raised."""
    if isinstance(outcome, BaseException):
        return outcome
    return TypeError(f"a data job answered {outcome!r}")


def tell(ref: pykka.ActorRef[Any], message: object) -> None:
    """Tell ``ref`` from a thread of the actor; an older generation's is dropped."""
    import pykka  # here, not at the top: help and the REPL import this module for its messages

    with contextlib.suppress(pykka.ActorDeadError):  # an older generation: nothing to do
        ref.tell(message)
