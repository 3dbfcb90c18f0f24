"""The supervisor actor: starts children in order, restarts them by strategy, escalates.

Everything slow happens outside this actor's mailbox: backoff delays are timers that send
it a message, ladder steps run in their own thread and report back, and liveness pings are
tells answered by tells. The only blocking calls are a child's start (bounded by its start
timeout, as OTP's synchronous start) and a child's stop (bounded by its shutdown timeout).
Time is read, and delays armed, only through the supervisor's clock (``supervisors.clock``),
so a test can drive it.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import random
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pykka
import structlog

from supervisors.backoff import Backoff
from supervisors.clock import Cancellable, Clock, RealClock
from supervisors.errors import Escalation, SupervisionError
from supervisors.registry import NodeInfo, Registry
from supervisors.spec import (
    ChildSpec,
    Exhausted,
    Intensity,
    ParkNow,
    Restart,
    StepSkipped,
    Strategy,
)
from supervisors.supervised import ChildDown, Link, Ping, Pong, Proven, Supervised

Listener = Callable[[str, Mapping[str, Any]], None]
log = structlog.get_logger("supervisors")


# Messages a supervisor understands (besides ChildDown and Pong from supervised.py).


@dataclass(frozen=True, slots=True)
class Tick:
    """Time to check liveness: sent by the supervisor's ticker at ``sent_at`` (clock time)."""

    sent_at: float


@dataclass(frozen=True, slots=True)
class RestartDue:
    """A backoff timer fired for this child, armed at ``epoch``."""

    name: str
    epoch: int


@dataclass(frozen=True, slots=True)
class LadderDone:
    """A ladder step's thread finished (``error`` empty on success).

    ``outcome`` is "done", "failed", "skipped" (StepSkipped) or "park" (ParkNow); ``error``
    holds the reason for any but "done"."""

    name: str
    epoch: int
    step: str
    error: str = ""
    outcome: str = "done"


@dataclass(frozen=True, slots=True)
class Unblocked:
    """A blocked child's cause is gone (from its poll thread, armed at ``epoch``)."""

    name: str
    epoch: int


@dataclass(frozen=True, slots=True)
class ResetChild:
    """Operator reset: clear a parked (FAILED) child's history and start it again."""

    name: str


@dataclass(frozen=True, slots=True)
class RestartChild:
    """Operator request: stop and start one child now, as if it had failed."""

    name: str
    reason: str = "requested"


@dataclass(frozen=True, slots=True)
class _GiveUp:
    """Sent to itself so that an escalation always fails the actor as a tell would."""

    error: Escalation


@dataclass(frozen=True, slots=True)
class WhichChildren:
    """Query: the state of every child, in start order."""


# A child in one of these states has a live actor whose reports count; in any other state
# its reports come from an actor the supervisor has already stopped or abandoned.
_LIVE = ("starting", "running")


@dataclass
class _Child:
    """A supervisor's private record of one child (never leaves the supervisor thread)."""

    spec: ChildSpec
    ref: pykka.ActorRef[Any] | None = None
    generation: int = 0  # starts so far; the running actor's Link carries it
    epoch: int = 0  # bumped by every start and stop: older timers and ladder results are stale
    state: str = "stopped"
    started_at: float | None = None  # clock time the current generation reached running
    failures: int = 0  # consecutive failures without a stable run, for backoff
    restarts: int = 0  # total, for the tree view
    ladder_step: int = 0  # steps taken since the last stable run
    ping: tuple[int, float] | None = None  # (seq, sent_at) of the unanswered ping
    last_error: str = ""
    timer: Cancellable | None = field(default=None, repr=False)  # a pending restart
    poll: Cancellable | None = field(default=None, repr=False)  # a blocked child's poll


@dataclass(frozen=True, slots=True)
class SupervisorConfig:
    """How a supervisor treats its children (defaults follow OTP and Akka).

    ``ping_timeout`` must exceed the longest a child's handler may legitimately run: a ping
    waits behind the message being handled.
    """

    strategy: Strategy = Strategy.ONE_FOR_ONE
    intensity: Intensity = field(default_factory=Intensity)
    backoff: Backoff = field(default_factory=Backoff)
    ping_interval: float = 1.0
    ping_timeout: float = 3.0


class Supervisor(Supervised):
    """An OTP-style supervisor for Pykka actors.

    A child's ``generation`` counts its starts (1 for the first). Events go to ``listener``
    (default: the structlog logger ``supervisors``); it runs in this actor's thread, so it
    must be quick and must not ask this supervisor anything.
    """

    def __init__(
        self,
        link: Link,
        children: Sequence[ChildSpec],
        *,
        config: SupervisorConfig | None = None,
        listener: Listener | None = None,
        on_escalate: Callable[[Escalation], None] | None = None,
        rng: random.Random | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(link)
        names = [spec.name for spec in children]
        if len(set(names)) != len(names):
            raise ValueError(f"supervisor {link.name!r}: duplicate child names in {names}")
        self.config = config or SupervisorConfig()
        self.children = [_Child(spec) for spec in children]
        self.listener = listener or _log_listener
        self.on_escalate = on_escalate
        self.rng = rng or random.Random()
        self.clock: Clock = clock or RealClock()
        self.restart_times: deque[float] = deque()
        self.ping_seq = itertools.count(1)
        self.ticker: Cancellable | None = None
        self.escalated = False

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

    # Life cycle

    def on_start(self) -> None:
        for child in self.children:
            self._start_child(child)
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

    # Messages

    def handle(self, message: Any) -> Any:
        match message:
            case WhichChildren():
                return [self._info(c) for c in self.children]
            case _GiveUp(error=error):
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

    # Starting and stopping

    def _start_child(self, child: _Child) -> None:
        self._cancel_timer(child)
        child.generation += 1
        child.epoch += 1
        child.ping = None
        child.started_at = None
        child.state = "starting"
        registered = threading.Event()
        link = Link(
            self.actor_ref, self.registry, child.spec.name, child.generation, registered=registered
        )
        try:
            child.ref = child.spec.factory(link)
        except Exception as exc:  # noqa: BLE001 - a factory error is a failed start, not ours
            registered.set()  # whatever it may have started must not wait for nothing
            self._tell_quietly(ChildDown(child.spec.name, child.generation, repr(exc), "start"))
            return
        self.registry.register(child.spec.name, child.ref, child.generation)
        registered.set()
        if not link.started.wait(child.spec.start_timeout):
            error = f"on_start did not finish within {child.spec.start_timeout:g}s"
            self._tell_quietly(ChildDown(child.spec.name, child.generation, error, "start"))
            return
        if child.ref.is_alive():  # else its on_start failed and its ChildDown is queued
            child.state = "running"
            child.started_at = self.clock.now()
            self._emit("supervisor.child_started", child)

    def _stop_children(self, children: Sequence[_Child]) -> None:
        for child in reversed(children):
            self._stop_child(child)

    def _stop_child(self, child: _Child, state: str = "stopped") -> None:
        self._cancel_timer(child)
        hung = child.state == "hung"
        ref, child.ref = child.ref, None
        child.state = state
        child.epoch += 1
        child.ping = None
        self.registry.unregister(child.spec.name)
        self._report(child)
        if ref is None or not ref.is_alive():
            return
        if hung:
            ref.stop(block=False)  # queued behind the stuck message; the thread is abandoned
            return
        try:
            ref.stop(block=True, timeout=child.spec.shutdown_timeout)
        except pykka.Timeout:
            # A thread cannot be killed, only abandoned (it is daemonic).
            self._emit("supervisor.shutdown_timeout", child, level="warning")

    def _unregister_root(self) -> None:
        if self.link.supervisor is None:  # a nested supervisor is unregistered by its parent
            self.registry.unregister(self.name)

    # Failures

    def _on_child_down(self, down: ChildDown) -> None:
        child = self._find(down.name)
        if child is None or down.generation != child.generation or child.state not in _LIVE:
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
            self._emit("supervisor.child_exited", child)
            return
        child.last_error = down.error or "exited normally"
        self._emit("supervisor.child_failed", child, level="warning", phase=down.phase)
        self._after_failure(child)

    def _after_failure(self, child: _Child) -> None:
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
        if child is None or child.generation != generation or child.state not in _LIVE:
            return
        if child.failures or child.ladder_step:
            self._emit("supervisor.child_proven", child, ladder_step=child.ladder_step)
        child.failures = child.ladder_step = 0

    def _intensity_exceeded(self, now: float) -> bool:
        window = self.config.intensity.max_seconds
        while self.restart_times and now - self.restart_times[0] > window:
            self.restart_times.popleft()
        self.restart_times.append(now)
        return len(self.restart_times) > self.config.intensity.max_restarts

    def _on_budget_spent(self, child: _Child) -> None:
        if child.ladder_step < len(child.spec.ladder):
            self._run_ladder_step(child)
        elif child.spec.exhausted is Exhausted.PARK:
            self._park(child)
        else:
            self._escalate(child)

    def _park(self, child: _Child, reason: str = "") -> None:
        self._stop_child(child, state="failed")
        self.restart_times.clear()
        self._emit("supervisor.child_parked", child, level="error", reason=reason)
        if reason:  # the tree view says why it is parked, not only what failed last
            child.last_error = f"{reason} (last failure: {child.last_error})"
            self._report(child)

    # Blocked: a cause the child cannot fix by restarting

    def _block_if_stuck(self, child: _Child) -> bool:
        """Ask the spec's ``blocked`` check; on a reason, park the child as ``blocked`` and
        poll the check until the cause is gone. True when the child is now blocked."""
        reason = _blocked_reason(child.spec, child.last_error)
        if reason is None:
            return False
        check = functools.partial(_blocked_reason, child.spec, child.last_error)
        group = self._stop_group(child)
        child.state = "blocked"
        self._emit("supervisor.child_blocked", child, level="error", reason=reason)
        child.last_error = f"blocked: {reason}"
        self._report(child)
        for sibling in group:  # the strategy's group starts again without the blocked child
            if sibling is not child:
                sibling.restarts += 1
                self._start_child(sibling)
        self._poll_until_clear(child, check)
        return True

    def _poll_until_clear(self, child: _Child, check: Callable[[], str | None]) -> None:
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
        self._emit("supervisor.child_unblocked", child, previous_error=child.last_error)
        self._restart_group(child)

    def _schedule_restart(self, child: _Child) -> None:
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
            "supervisor.restart",
            child,
            delay=round(delay, 3),
            group=[c.spec.name for c in group],
        )
        if delay <= 0:
            self._restart_group(child)

    def _stop_group(self, failed: _Child) -> list[_Child]:
        """Stop the children the strategy restarts with ``failed``, in reverse start order.

        Returns those that will start again: temporary siblings stop for good (OTP: never
        restarted, not even in a group restart) and parked or blocked siblings stay so.
        """
        group = self._affected(failed)
        for child in reversed(group):
            if child is failed:
                self._stop_child(child, state="restarting")
            elif child.spec.restart is Restart.TEMPORARY:
                self._stop_child(child)
            elif child.state not in ("failed", "blocked"):
                self._stop_child(child, state="restarting")
        return [c for c in group if c.state == "restarting"]

    def _on_restart_due(self, name: str, epoch: int) -> None:
        child = self._find(name)
        if child is None or child.epoch != epoch or child.state != "restarting":
            return
        child.timer = None
        self._restart_group(child)

    def _restart_group(self, failed: _Child) -> None:
        if failed.state == "blocked":
            failed.state = "restarting"
        for child in self._affected(failed):
            if child.state == "restarting":
                child.restarts += 1
                self._start_child(child)

    def _affected(self, child: _Child) -> list[_Child]:
        strategy = self.config.strategy
        if strategy is Strategy.ONE_FOR_ALL:
            return list(self.children)
        if strategy is Strategy.REST_FOR_ONE:
            index = self.children.index(child)
            return self.children[index:]
        return [child]

    # The escalation ladder

    def _run_ladder_step(self, child: _Child) -> None:
        label, action = child.spec.ladder[child.ladder_step]
        child.ladder_step += 1
        self._stop_group(child)
        self.restart_times.clear()
        self._emit("supervisor.ladder_step", child, level="warning", step=label)
        message = functools.partial(LadderDone, child.spec.name, child.epoch, label)

        def run() -> None:
            try:
                action()
            except StepSkipped as skipped:
                self._tell_quietly(message(str(skipped), "skipped"))
            except ParkNow as park:
                self._tell_quietly(message(str(park), "park"))
            except Exception as exc:  # noqa: BLE001 - reported back and shown as an event
                self._tell_quietly(message(repr(exc), "failed"))
            else:
                self._tell_quietly(message())

        threading.Thread(target=run, name=f"{self.name}-ladder-{label}", daemon=True).start()

    def _on_ladder_done(self, done: LadderDone) -> None:
        child = self._find(done.name)
        if child is None or child.epoch != done.epoch or child.state != "restarting":
            return
        if done.outcome == "skipped":
            self._emit("supervisor.ladder_step_skipped", child, step=done.step, reason=done.error)
            self._on_budget_spent(child)
            return
        if done.outcome == "park":
            self._park(child, reason=f"{done.step}: {done.error}")
            return
        if done.error:
            self._emit(
                "supervisor.ladder_step_failed",
                child,
                level="error",
                step=done.step,
                error=done.error,
            )
            self._on_budget_spent(child)
            return
        self._emit("supervisor.ladder_step_done", child, step=done.step)
        child.failures = 0
        self._restart_group(child)

    def _escalate(self, child: _Child) -> None:
        escalation = Escalation(self.name, child.spec.name, child.last_error)
        self._emit("supervisor.escalate", child, level="error", reason=child.last_error)
        self.escalated = True
        self._stop_ticker()
        self._stop_children(self.children)
        if self.link.supervisor is None:
            self._call_on_escalate(escalation)
            return
        self.actor_ref.tell(_GiveUp(escalation))

    def _call_on_escalate(self, escalation: Escalation) -> None:
        callback = self.on_escalate
        if callback is None:
            log.critical("supervisor.root_escalated", supervisor=self.name, error=str(escalation))
            return

        def run() -> None:
            try:
                callback(escalation)
            except Exception:  # a broken callback is logged; nothing else can be done
                log.exception("supervisor.on_escalate_failed", supervisor=self.name)

        # Its own thread: the callback may stop this very supervisor, which would deadlock
        # in this actor's thread.
        threading.Thread(target=run, name=f"{self.name}-escalate", daemon=True).start()

    # Operator requests

    def _reset(self, name: str) -> Any:
        child = self._find(name)
        if child is None:
            return KeyError(f"supervisor {self.name!r} has no child {name!r}")
        self._stop_child(child)
        child.failures = child.ladder_step = 0
        child.last_error = ""
        self.restart_times.clear()
        self._emit("supervisor.child_reset", child)
        self._start_child(child)
        return self._info(child)

    def _restart_on_request(self, name: str, reason: str) -> Any:
        child = self._find(name)
        if child is None:
            return KeyError(f"supervisor {self.name!r} has no child {name!r}")
        child.last_error = reason
        self._emit("supervisor.child_failed", child, level="warning", phase="request")
        self._after_failure(child)
        return None

    # Liveness

    def _tick(self) -> bool:
        """Send a Tick; False (no more ticks) once this actor is gone."""
        return self._tell_quietly(Tick(self.clock.now()))

    def _stop_ticker(self) -> None:
        if self.ticker is not None:
            self.ticker.cancel()

    def _check_liveness(self, sent_at: float) -> None:
        # Overdue is judged at the tick's send time: a Pong that reached this mailbox before
        # the tick is handled before it, so a supervisor that was itself busy for a while does
        # not mistake its own backlog for a hung child.
        for child in self.children:
            if child.state != "running" or not child.spec.ping or child.ref is None:
                continue
            if child.ping is None:
                seq = next(self.ping_seq)
                child.ping = (seq, self.clock.now())
                with contextlib.suppress(pykka.ActorDeadError):  # its ChildDown is on the way
                    child.ref.tell(Ping(seq))
            elif sent_at - child.ping[1] > self.config.ping_timeout:
                timeout = self.config.ping_timeout
                child.last_error = f"no answer to a liveness ping within {timeout:g}s"
                child.state = "hung"
                self._emit("supervisor.child_hung", child, level="warning")
                self._after_failure(child)

    def _on_pong(self, name: str, generation: int, seq: int) -> None:
        child = self._find(name)
        if (
            child is not None
            and child.state == "running"
            and child.generation == generation
            and child.ping
            and child.ping[0] == seq
        ):
            child.ping = None

    # Helpers

    def _find(self, name: str) -> _Child | None:
        return next((c for c in self.children if c.spec.name == name), None)

    def _cancel_timer(self, child: _Child) -> None:
        if child.timer is not None:
            child.timer.cancel()
            child.timer = None
        if child.poll is not None:
            child.poll.cancel()
            child.poll = None

    def _tell_quietly(self, message: object) -> bool:
        try:
            self.actor_ref.tell(message)
        except pykka.ActorDeadError:
            return False
        return True

    def _info(self, child: _Child) -> NodeInfo:
        return NodeInfo(
            name=child.spec.name,
            parent=self.name,
            state=child.state,
            restarts=child.restarts,
            generation=child.generation,
            supervisor=child.spec.supervisor,
            last_error=child.last_error,
        )

    def _report(self, child: _Child) -> None:
        self.registry.report(self._info(child))

    def _emit(self, event: str, child: _Child, level: str = "info", **fields: Any) -> None:
        self._report(child)
        data = {
            "supervisor": self.name,
            "child": child.spec.name,
            "generation": child.generation,
            "restarts": child.restarts,
            "state": child.state,
            "level": level,
            **fields,
        }
        if child.last_error and level != "info":
            data.setdefault("error", child.last_error)
        try:
            self.listener(event, data)
        except Exception:  # a broken listener must not break supervision
            log.exception("supervisor.listener_failed", supervisor=self.name, event_name=event)


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


def _log_listener(event: str, data: Mapping[str, Any]) -> None:
    fields = dict(data)
    level = fields.pop("level", "info")
    getattr(log, level)(event, **fields)
