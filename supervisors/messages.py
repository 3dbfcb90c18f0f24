"""The messages a supervisor understands, besides ChildDown and Pong from ``supervised``."""

from __future__ import annotations

from supervisors.errors import Escalation
from supervisors.records import record


@record
class Tick:
    """Time to check liveness: sent by the supervisor's ticker at ``sent_at`` (clock time)."""

    sent_at: float


@record
class RestartDue:
    """A backoff timer fired for this child, armed at ``epoch``."""

    name: str
    epoch: int


@record
class LadderDone:
    """A ladder step's thread finished (``error`` empty on success).

    ``outcome`` is "done", "failed", "skipped" (StepSkipped) or "park" (ParkNow); ``error``
    holds the reason for any but "done"."""

    name: str
    epoch: int
    step: str
    error: str = ""
    outcome: str = "done"


@record
class Unblocked:
    """A blocked child's cause is gone (from its poll thread, armed at ``epoch``)."""

    name: str
    epoch: int


@record
class ResetChild:
    """Operator reset: clear a parked (FAILED) child's history and start it again."""

    name: str


@record
class RestartChild:
    """Operator request: stop and start one child now, as if it had failed."""

    name: str
    reason: str = "requested"


@record
class GiveUp:
    """Sent to itself so that an escalation always fails the actor as a tell would."""

    error: Escalation


@record
class WhichChildren:
    """Query: the state of every child, in start order."""
