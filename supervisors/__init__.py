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

from typing import TYPE_CHECKING

from supervisors.lazy import lazy_names

if TYPE_CHECKING:
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

# Each public name and the module that defines it. A name is imported from its module on first
# use (PEP 562), so a process that needs only the registry or the errors (a command line) does
# not import the supervisor machinery and its logging.
_HOMES: dict[str, str] = {
    "AskExpired": "supervisors.errors",
    "AskTimeout": "supervisors.errors",
    "Backoff": "supervisors.backoff",
    "ChildAborted": "supervisors.errors",
    "ChildSpec": "supervisors.spec",
    "Clock": "supervisors.clock",
    "Escalation": "supervisors.errors",
    "Exhausted": "supervisors.spec",
    "Intensity": "supervisors.spec",
    "Link": "supervisors.supervised",
    "Listener": "supervisors.children",
    "ManualClock": "supervisors.clock",
    "NodeInfo": "supervisors.registry",
    "NotRunning": "supervisors.errors",
    "ParkNow": "supervisors.spec",
    "RealClock": "supervisors.clock",
    "Registry": "supervisors.registry",
    "ResetChild": "supervisors.messages",
    "Restart": "supervisors.spec",
    "RestartChild": "supervisors.messages",
    "StepSkipped": "supervisors.spec",
    "Strategy": "supervisors.spec",
    "Supervised": "supervisors.supervised",
    "SupervisionError": "supervisors.errors",
    "Supervisor": "supervisors.supervisor",
    "SupervisorConfig": "supervisors.spec",
    "WhichChildren": "supervisors.messages",
}


__getattr__, __dir__ = lazy_names(__name__, globals(), _HOMES)


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
