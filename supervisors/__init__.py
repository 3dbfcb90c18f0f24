"""Generic OTP-style supervision for Pykka actors.

This package knows nothing of environments or of the application built on it: domain
recovery (restore from backup, roll back) reaches it as callables in a child spec's ladder.

    registry = Registry()
    root = Supervisor.start_root(
        name="root",
        children=[ChildSpec("worker", lambda link: Worker.start(link))],
        registry=registry,
        on_escalate=lambda reason: ...,
    )
    registry.tell("worker", SomeMessage())
"""

from __future__ import annotations

from supervisors.backoff import Backoff
from supervisors.children import Listener
from supervisors.clock import Clock, ManualClock, RealClock
from supervisors.errors import (
    AskExpired,
    AskTimeout,
    ChildAborted,
    Escalation,
    NotRunning,
    SupervisionError,
)
from supervisors.messages import ResetChild, RestartChild, WhichChildren
from supervisors.registry import NodeInfo, Registry
from supervisors.spec import (
    ChildSpec,
    Exhausted,
    Intensity,
    ParkNow,
    Restart,
    StepSkipped,
    Strategy,
    SupervisorConfig,
)
from supervisors.supervised import Link, Supervised
from supervisors.supervisor import Supervisor

__all__ = [
    "AskExpired",
    "AskTimeout",
    "Backoff",
    "ChildAborted",
    "ChildSpec",
    "Clock",
    "Escalation",
    "Exhausted",
    "Intensity",
    "Link",
    "Listener",
    "ManualClock",
    "NodeInfo",
    "NotRunning",
    "ParkNow",
    "RealClock",
    "Registry",
    "ResetChild",
    "Restart",
    "RestartChild",
    "StepSkipped",
    "Strategy",
    "Supervised",
    "SupervisionError",
    "Supervisor",
    "SupervisorConfig",
    "WhichChildren",
]
