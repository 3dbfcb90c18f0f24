"""Errors raised by the supervision layer.

SupervisionError
├── NotRunning      the name is not registered, or its actor is dead
├── AskTimeout      an ask got no reply within its timeout
├── AskExpired      an ask reached its actor after its asker stopped waiting: not handled
├── ChildAborted    a child raised SystemExit/KeyboardInterrupt (converted, see Supervised)
├── Escalation      a supervisor gave up: a child's restart intensity was exceeded
│                   (or, with child == supervisor, the root supervisor itself crashed)
├── StepSkipped     spec: a ladder step that does not apply; the next one runs at once
└── ParkNow         spec: a ladder step found nothing safe to try; the child parks now
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


class AskExpired(SupervisionError):
    """An ask with a ``reply_by`` deadline reached its actor after that deadline: the asker
    had already given up (``AskTimeout``), so the message was dropped, not handled."""

    def __init__(self, name: str, message: object, late: float) -> None:
        self.name = name
        self.late = late
        kind = type(message).__name__
        super().__init__(
            f"{kind} reached {name!r} {late:.2f}s after its asker stopped waiting; not handled"
        )


class ChildAborted(SupervisionError):
    """A handler raised a BaseException (SystemExit, KeyboardInterrupt...).

    The actor fails alone, as with a crash, instead of Pykka stopping every actor; an asker
    receives this error.
    """


class Escalation(SupervisionError):
    """Restart intensity exceeded: the supervisor gives up and hands the failure upward."""

    def __init__(self, supervisor: str, child: str, reason: str) -> None:
        self.supervisor = supervisor
        self.child = child
        self.reason = reason
        if child == supervisor:  # the supervisor failed by itself, not through a child
            super().__init__(f"supervisor {supervisor!r} gave up: {reason}")
            return
        super().__init__(
            f"supervisor {supervisor!r} gave up: child {child!r} exceeded its restart "
            f"intensity (last failure: {reason})"
        )
