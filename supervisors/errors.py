"""Errors raised by the supervision layer.

SupervisionError
├── NotRunning      the name is not registered, or its actor is dead
├── AskTimeout      an ask got no reply within its timeout
├── ChildAborted    a child raised SystemExit/KeyboardInterrupt (converted, see Supervised)
└── Escalation      a supervisor's restart intensity was exceeded
"""

from __future__ import annotations


class SupervisionError(Exception):
    """Root of every error this package raises."""


class NotRunning(SupervisionError):
    """A message was addressed to a name with no live actor behind it."""

    def __init__(self, name: str, detail: str = "") -> None:
        self.name = name
        suffix = f" ({detail})" if detail else ""
        super().__init__(f"actor {name!r} is not running{suffix}")


class AskTimeout(SupervisionError):
    """An ask got no reply in time. The message may still be handled later."""

    def __init__(self, name: str, message: object, timeout: float) -> None:
        self.name = name
        self.timeout = timeout
        kind = type(message).__name__
        super().__init__(f"no reply from {name!r} to {kind} within {timeout:g}s")


class ChildAborted(SupervisionError):
    """A handler raised a BaseException; converted so Pykka does not stop every actor."""


class Escalation(SupervisionError):
    """Restart intensity exceeded: the supervisor gives up and hands the failure upward."""

    def __init__(self, supervisor: str, child: str, reason: str) -> None:
        self.supervisor = supervisor
        self.child = child
        self.reason = reason
        super().__init__(
            f"supervisor {supervisor!r} gave up: child {child!r} exceeded its restart "
            f"intensity (last failure: {reason})"
        )
