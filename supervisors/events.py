"""The names of the events a supervisor hands its listener.

Every event carries ``supervisor``, ``child``, ``generation``, ``restarts``, ``state`` and
``level`` (and ``error``, the child's last error, when the level is above info); the fields
named below come on top.
"""

from __future__ import annotations

from typing import Final


class SupervisorEvent:
    """One supervisor's view of one child's life."""

    ALL: Final = "supervisor.*"  # the glob matching every name below

    CHILD_STARTED: Final = "supervisor.child_started"  # a child (re)started
    CHILD_EXITED: Final = "supervisor.child_exited"  # a child ended normally and is not restarted
    CHILD_FAILED: Final = "supervisor.child_failed"  # a child crashed or was asked to; ``phase``
    CHILD_HUNG: Final = "supervisor.child_hung"  # a ping waited and no message was finished
    CHILD_PROVEN: Final = "supervisor.child_proven"  # stable long enough; ``ladder_step``
    CHILD_PARKED: Final = "supervisor.child_parked"  # given up on, left stopped; ``reason``
    CHILD_BLOCKED: Final = "supervisor.child_blocked"  # waits for a cause to clear; ``reason``
    CHILD_UNBLOCKED: Final = "supervisor.child_unblocked"  # the cause cleared; ``previous_error``
    CHILD_RESET: Final = "supervisor.child_reset"  # a child reset by request: restarted afresh
    RESTART: Final = "supervisor.restart"  # a restart is scheduled; ``delay``, ``group``
    LADDER_STEP: Final = "supervisor.ladder_step"  # a recovery step begins; ``step``
    LADDER_STEP_DONE: Final = "supervisor.ladder_step_done"  # ``step`` succeeded
    LADDER_STEP_SKIPPED: Final = "supervisor.ladder_step_skipped"  # ``step`` did not apply
    LADDER_STEP_FAILED: Final = "supervisor.ladder_step_failed"  # ``step`` raised; ``error``
    ESCALATE: Final = "supervisor.escalate"  # the budget is spent: up to the parent; ``reason``
    SHUTDOWN_TIMEOUT: Final = "supervisor.shutdown_timeout"  # a child did not stop in time
