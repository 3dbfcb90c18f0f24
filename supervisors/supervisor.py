"""The supervisor actor: starts children in order, restarts them by strategy, escalates.

Everything slow happens outside this actor's mailbox: backoff delays are timers that send
it a message, ladder steps run in their own thread and report back, and liveness pings are
tells answered by tells, with each child's count of finished messages read from memory (a
busy child is not hung: ``supervisors.liveness``). The only blocking calls are a child's
start (bounded by its start timeout, as OTP's synchronous start) and a child's stop (bounded
by its shutdown timeout).
Time is read, and delays armed, only through the supervisor's clock (``supervisors.clock``),
so a test can drive it.
"""

from __future__ import annotations

import functools
import random
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pykka
import structlog

from supervisors.children import LIVE, Child, Listener
from supervisors.clock import Clock
from supervisors.errors import Escalation, SupervisionError
from supervisors.events import SupervisorEvent
from supervisors.ladder import Ladder
from supervisors.liveness import Liveness
from supervisors.messages import (
    GiveUp,
    LadderDone,
    ResetChild,
    RestartChild,
    RestartDue,
    Tick,
    Unblocked,
    WhichChildren,
)
from supervisors.registry import Registry
from supervisors.spec import ChildSpec, Restart, SupervisorConfig
from supervisors.supervised import ChildDown, Link, Pong, Proven

log = structlog.get_logger("supervisors")


class Supervisor(Ladder, Liveness):
    """An OTP-style supervisor for Pykka actors.

    A child's ``generation`` counts its starts (1 for the first). Events go to ``listener``
    (default: the structlog logger ``supervisors``); it runs in this actor's thread, so it
    must be quick and must not ask this supervisor anything.
    """

    @classmethod
    def start_root(
        cls,
        name: str,
        children: Sequence[ChildSpec],
        registry: Registry,
        *,
        config: SupervisorConfig | None = None,
        listener: Listener | None = None,
        on_escalate: Callable[[Escalation], None] | None = None,
        rng: random.Random | None = None,
        clock: Clock | None = None,
    ) -> pykka.ActorRef[Supervisor]:
        """Start a supervisor with no parent, registered as ``name``; returns once its
        children have started.

        ``on_escalate`` receives the root's final failure (its restart intensity exceeded, or
        the root itself crashing) once every child has stopped. It runs in a thread of its own,
        so it may stop the root; the root stays alive, with no children, until it is stopped.
        """
        registered = threading.Event()
        link = Link(supervisor=None, registry=registry, name=name, registered=registered)
        ref = cls.start(
            link,
            children,
            config=config,
            listener=listener,
            on_escalate=on_escalate,
            rng=rng,
            clock=clock,
        )
        registry.register(name, ref)
        registered.set()
        link.started.wait(timeout=sum(c.start_timeout for c in children) + 5)
        return ref

    @classmethod
    def child_spec(
        cls,
        name: str,
        children: Sequence[ChildSpec],
        *,
        config: SupervisorConfig | None = None,
        listener: Listener | None = None,
        shutdown_timeout: float = 30.0,
        restart: Restart = Restart.PERMANENT,
        rng: random.Random | None = None,
        clock: Clock | None = None,
    ) -> ChildSpec:
        """A spec that runs a nested supervisor as a child of another."""

        def factory(link: Link) -> pykka.ActorRef[Any]:
            return cls.start(link, children, config=config, listener=listener, rng=rng, clock=clock)

        start_timeout = sum(c.start_timeout for c in children) + 5
        return ChildSpec(
            name=name,
            factory=factory,
            restart=restart,
            shutdown_timeout=shutdown_timeout,
            start_timeout=start_timeout,
            supervisor=True,
            ping=False,  # a supervisor may be busy starting children longer than a ping timeout
        )

    def on_start(self) -> None:
        self._start_children(self.children)
        if any(c.spec.ping for c in self.children):
            self.ticker = self.clock.call_every(
                self.config.ping_interval, self._tick, f"{self.name}-ticker"
            )

    def on_stop(self) -> None:
        self._stop_ticker()
        if self.link.supervisor is None:
            self.registry.stopping.set()
        self._stop_children(self.children)
        self._unregister_root()

    def on_failure(self, *exc_info: Any) -> None:
        # OTP: a supervisor's children never outlive it. Pykka skips on_stop after a crash,
        # so without this a restarted supervisor would start a second copy of every child.
        self._stop_ticker()
        self._stop_children(self.children)
        self._unregister_root()
        if self.link.supervisor is None and not self.escalated:
            self.escalated = True
            reason = f"the supervisor itself crashed: {exc_info[1]!r}"
            self._call_on_escalate(Escalation(self.name, self.name, reason))
        super().on_failure(*exc_info)

    def handle(self, message: Any) -> Any:
        match message:
            case WhichChildren():
                return [self._info(c) for c in self.children]
            case GiveUp(error=error):
                raise error
            case _ if self.escalated:
                # Everything is stopped and the failure handed upward: start nothing again.
                return SupervisionError(f"supervisor {self.name!r} has escalated; ignored")
            case ChildDown():
                self._on_child_down(message)
            case Pong(name=name, generation=generation, seq=seq):
                self._on_pong(name, generation, seq)
            case Proven(name=name, generation=generation):
                self._on_proven(name, generation)
            case Tick(sent_at=sent_at):
                self._check_liveness(sent_at)
            case RestartDue(name=name, epoch=epoch):
                self._on_restart_due(name, epoch)
            case LadderDone():
                self._on_ladder_done(message)
            case Unblocked(name=name, epoch=epoch):
                self._on_unblocked(name, epoch)
            case ResetChild(name=name):
                return self._reset(name)
            case RestartChild(name=name, reason=reason):
                return self._restart_on_request(name, reason)
            case _:
                return ValueError(f"supervisor {self.name!r} got unknown message {message!r}")
        return None

    def _on_child_down(self, down: ChildDown) -> None:
        child = self._find(down.name)
        if child is None or down.generation != child.generation or child.state not in LIVE:
            log.debug(
                "supervisor.stale_notification",
                supervisor=self.name,
                child=down.name,
                generation=down.generation,
                error=down.error,
            )
            return
        if down.normal and child.spec.restart is not Restart.PERMANENT:
            self._stop_child(child)
            self._emit(SupervisorEvent.CHILD_EXITED, child)
            return
        if self.registry.stopping.is_set():
            # The tree is stopping (a child's start cancelled by it, as a first build is):
            # nothing is restarted, parked or escalated; the failure is told, not alerted on.
            self._stop_child(child)
            self._emit(SupervisorEvent.CHILD_EXITED, child, error=down.error, stopping=True)
            return
        child.last_error = down.error or "exited normally"
        self._emit(SupervisorEvent.CHILD_FAILED, child, level="warning", phase=down.phase)
        self._after_failure(child)

    def _after_failure(self, child: Child) -> None:
        if child.spec.restart is Restart.TEMPORARY:
            self._stop_child(child)
            return
        if self._block_if_stuck(child):
            return
        now = self.clock.now()
        stable_after = self.config.backoff.stable_after
        if child.started_at is not None and now - child.started_at >= stable_after:
            child.failures = 0
            child.ladder_step = 0
        if child.ladder_step or _needs_ladder(child.spec, child.last_error):
            # The one restart that followed a ladder step failed too, or the failure says a
            # restart cannot help: take the next step.
            self._on_budget_spent(child)
            return
        if self._intensity_exceeded(now):
            self._on_budget_spent(child)
            return
        self._schedule_restart(child)

    def _on_proven(self, name: str, generation: int) -> None:
        """The running generation proved itself: what failed before is behind it (see
        ``Supervised.report_proven``). The restart intensity keeps counting: a child that
        proves itself and fails at once, again and again, still spends its budget."""
        child = self._find(name)
        if child is None or child.generation != generation or child.state not in LIVE:
            return
        if child.failures or child.ladder_step:
            self._emit(SupervisorEvent.CHILD_PROVEN, child, ladder_step=child.ladder_step)
        child.failures = child.ladder_step = 0

    def _intensity_exceeded(self, now: float) -> bool:
        window = self.config.intensity.max_seconds
        while self.restart_times and now - self.restart_times[0] > window:
            self.restart_times.popleft()
        self.restart_times.append(now)
        return len(self.restart_times) > self.config.intensity.max_restarts

    def _block_if_stuck(self, child: Child) -> bool:
        """Ask the spec's ``blocked`` check; on a reason, park the child as ``blocked`` and
        poll the check until the cause is gone. True when the child is now blocked."""
        reason = _blocked_reason(child.spec, child.last_error)
        if reason is None:
            return False
        check = functools.partial(_blocked_reason, child.spec, child.last_error)
        group = self._stop_group(child)
        child.state = "blocked"
        self._emit(SupervisorEvent.CHILD_BLOCKED, child, level="error", reason=reason)
        child.last_error = f"blocked: {reason}"
        self._report(child)
        for sibling in group:  # the strategy's group starts again without the blocked child
            if sibling is not child:
                sibling.restarts += 1
                self._start_child(sibling)
        self._poll_until_clear(child, check)
        return True

    def _poll_until_clear(self, child: Child, check: Callable[[], str | None]) -> None:
        """Ask ``check`` every ``blocked_poll`` seconds, in a thread, until it finds the cause
        gone; then tell this supervisor (stopped early when the child is reset or stopped)."""
        cleared = Unblocked(child.spec.name, child.epoch)

        def poll() -> bool:
            if check() is None:
                self._tell_quietly(cleared)
                return False
            return True

        child.poll = self.clock.call_every(
            child.spec.blocked_poll, poll, f"{self.name}-blocked-{child.spec.name}"
        )

    def _on_unblocked(self, name: str, epoch: int) -> None:
        child = self._find(name)
        if child is None or child.epoch != epoch or child.state != "blocked":
            return
        self._cancel_timer(child)
        child.failures = child.ladder_step = 0
        self._emit(SupervisorEvent.CHILD_UNBLOCKED, child, previous_error=child.last_error)
        self._restart_group(child)

    def _schedule_restart(self, child: Child) -> None:
        group = self._stop_group(child)
        delay = self.config.backoff.delay(child.failures, self.rng)
        child.failures += 1
        if delay > 0:
            # Armed before the event is emitted: whoever sees the event sees the timer pending.
            child.timer = self.clock.call_later(
                delay,
                functools.partial(self._tell_quietly, RestartDue(child.spec.name, child.epoch)),
                f"{self.name}-restart-{child.spec.name}",
            )
        self._emit(
            SupervisorEvent.RESTART,
            child,
            delay=round(delay, 3),
            group=[c.spec.name for c in group],
        )
        if delay <= 0:
            self._restart_group(child)

    def _on_restart_due(self, name: str, epoch: int) -> None:
        child = self._find(name)
        if child is None or child.epoch != epoch or child.state != "restarting":
            return
        child.timer = None
        self._restart_group(child)

    def _reset(self, name: str) -> Any:
        child = self._find(name)
        if child is None:
            return KeyError(f"supervisor {self.name!r} has no child {name!r}")
        self._stop_child(child)
        child.failures = child.ladder_step = 0
        child.last_error = ""
        self.restart_times.clear()
        self._emit(SupervisorEvent.CHILD_RESET, child)
        self._start_child(child)
        return self._info(child)

    def _restart_on_request(self, name: str, reason: str) -> Any:
        child = self._find(name)
        if child is None:
            return KeyError(f"supervisor {self.name!r} has no child {name!r}")
        child.last_error = reason
        self._emit(SupervisorEvent.CHILD_FAILED, child, level="warning", phase="request")
        self._after_failure(child)
        return None


def _blocked_reason(spec: ChildSpec, error: str) -> str | None:
    if spec.blocked is None:
        return None
    try:
        return spec.blocked(error)
    except Exception:  # a broken check must not break supervision: treat as not blocked
        log.exception("supervisor.blocked_check_failed", child=spec.name)
        return None


def _needs_ladder(spec: ChildSpec, error: str) -> bool:
    if spec.needs_ladder is None:
        return False
    try:
        return spec.needs_ladder(error)
    except Exception:  # a broken check must not break supervision: restart as usual
        log.exception("supervisor.ladder_check_failed", child=spec.name)
        return False
