"""Child specifications: what a supervisor starts and how it treats the child's exits."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any

from supervisors.backoff import Backoff
from supervisors.errors import SupervisionError
from supervisors.records import record

if TYPE_CHECKING:
    import pykka

    from supervisors.supervised import Link


class Restart(enum.StrEnum):
    """OTP restart types."""

    PERMANENT = "permanent"  # always restarted
    TRANSIENT = "transient"  # restarted only after an abnormal exit
    TEMPORARY = "temporary"  # never restarted, not even in a group restart


class Strategy(enum.StrEnum):
    """OTP restart strategies."""

    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


class Exhausted(enum.StrEnum):
    """What happens when a child's restart budget and its ladder are spent."""

    ESCALATE = "escalate"  # OTP: stop all children, fail upward
    PARK = "park"  # leave the child stopped as FAILED until it is reset


@record
class Intensity:
    """More than ``max_restarts`` restarts within ``max_seconds`` exceeds the budget."""

    max_restarts: int = 3
    max_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.max_restarts < 0 or self.max_seconds <= 0:
            raise ValueError(f"intensity needs max_restarts >= 0 and max_seconds > 0: {self}")


Factory = Callable[["Link"], "pykka.ActorRef[Any]"]
LadderStep = Callable[[], object]
# Given a child's last failure, the reason it cannot recover by restarting, or None.
BlockedCheck = Callable[[str], "str | None"]
# Given a child's last failure, whether only the ladder can help (restarts would not).
LadderCheck = Callable[[str], bool]


class StepSkipped(SupervisionError):
    """Raised by a ladder step that does not apply: the next step runs at once, with no
    restart in between, and the reason is reported (not as a failure)."""


class ParkNow(SupervisionError):
    """Raised by a ladder step that finds nothing safe left to try: the child parks as
    ``failed`` at once, whatever steps remain, with this reason."""


@record
class ChildSpec:
    """One child of a supervisor.

    ``factory`` starts the actor and returns its ref at once; it receives the ``Link`` the
    child passes to ``Supervised.__init__``. The actor's ``on_start`` runs once the supervisor
    has registered its name, so a factory must not wait on the actor it started.

    ``ladder`` holds recovery actions tried in order when the restart budget is spent, each
    followed by exactly one restart: if that restarted child fails before running
    ``Backoff.stable_after`` seconds (or saying it works: ``Supervised.report_proven``),
    the next step runs; a step that raises moves on to the
    next step at once. With the ladder spent, ``exhausted`` decides: escalate, or park the
    child as ``failed`` until ``ResetChild``. A ladder step runs in
    its own thread, never in the supervisor's mailbox. A step raising ``StepSkipped`` moves
    on at once without counting as a failure; one raising ``ParkNow`` parks the child now.

    ``blocked`` is asked after every failure, before any restart, with the failure's text:
    a reason means a cause the child cannot fix by restarting (a resource another program
    holds, a missing command). The child then waits as ``blocked``, its restart budget and
    ladder untouched, and ``blocked`` is asked again every ``blocked_poll`` seconds (by the
    supervisor's clock, off its mailbox) until it answers None, when the child starts again.
    It runs in the supervisor's mailbox after a failure, so it must answer within
    milliseconds.

    ``needs_ladder`` is asked after every failure too: True means the failure itself says a
    restart cannot help (the child's own evidence), so the next ladder step runs at once,
    without spending the restart budget first. It must be as quick as ``blocked``.
    """

    name: str
    factory: Factory
    restart: Restart = Restart.PERMANENT
    shutdown_timeout: float = 5.0
    start_timeout: float = 10.0
    ladder: Sequence[tuple[str, LadderStep]] = ()
    exhausted: Exhausted = Exhausted.ESCALATE
    blocked: BlockedCheck | None = None
    blocked_poll: float = 1.0
    needs_ladder: LadderCheck | None = None
    ping: bool = True
    supervisor: bool = False

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a child spec needs a name")
        if self.shutdown_timeout <= 0 or self.start_timeout <= 0 or self.blocked_poll <= 0:
            raise ValueError(f"child {self.name!r}: timeouts and blocked_poll must be positive")


@record
class SupervisorConfig:
    """How a supervisor treats its children (defaults follow OTP and Akka).

    Every ``ping_interval`` a running child with no ping outstanding is pinged. It is hung
    when a ping has waited ``ping_timeout`` and the child has finished no message in that
    time: a deep mailbox it works through is progress, however late its answer (see
    ``supervisors.liveness``). So ``ping_timeout`` must exceed the longest a single handler
    may legitimately run; a handler stuck past it is caught within ``ping_timeout`` plus at
    most two ping intervals.

    ``concurrent_start``: the children do not need each other started, so the supervisor
    starts them all at once and then waits for each (OTP starts one child after the other,
    each once the previous one's init returned). Slow starts (a child building or spawning
    something) then overlap instead of adding up. Restarts are one child at a time either way.
    """

    strategy: Strategy = Strategy.ONE_FOR_ONE
    intensity: Intensity = field(default_factory=Intensity)
    backoff: Backoff = field(default_factory=Backoff)
    ping_interval: float = 1.0
    ping_timeout: float = 3.0
    concurrent_start: bool = False
