"""The recovery ladder: the steps a child's spec gives for when restarts are spent.

A step runs in a thread of its own and reports back with ``LadderDone``; after the last
step the child is parked or the failure escalates, as its spec's ``exhausted`` says.
"""

from __future__ import annotations

import functools
import threading

import structlog

from supervisors.children import Child, ChildBook
from supervisors.errors import Escalation
from supervisors.events import SupervisorEvent
from supervisors.messages import GiveUp, LadderDone
from supervisors.spec import Exhausted, ParkNow, StepSkipped

log = structlog.get_logger("supervisors")


class Ladder(ChildBook):
    """Takes a child's ladder steps, parks it, or escalates its failure."""

    def _on_budget_spent(self, child: Child) -> None:
        if child.ladder_step < len(child.spec.ladder):
            self._run_ladder_step(child)
        elif child.spec.exhausted is Exhausted.PARK:
            self._park(child)
        else:
            self._escalate(child)

    def _park(self, child: Child, reason: str = "") -> None:
        self._stop_child(child, state="failed")
        self.restart_times.clear()
        self._emit(SupervisorEvent.CHILD_PARKED, child, level="error", reason=reason)
        if reason:  # the tree view says why it is parked, not only what failed last
            child.last_error = f"{reason} (last failure: {child.last_error})"
            self._report(child)

    def _run_ladder_step(self, child: Child) -> None:
        label, action = child.spec.ladder[child.ladder_step]
        child.ladder_step += 1
        self._stop_group(child)
        self.restart_times.clear()
        self._emit(SupervisorEvent.LADDER_STEP, child, level="warning", step=label)
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
            self._emit(
                SupervisorEvent.LADDER_STEP_SKIPPED, child, step=done.step, reason=done.error
            )
            self._on_budget_spent(child)
            return
        if done.outcome == "park":
            self._park(child, reason=f"{done.step}: {done.error}")
            return
        if done.error:
            self._emit(
                SupervisorEvent.LADDER_STEP_FAILED,
                child,
                level="error",
                step=done.step,
                error=done.error,
            )
            self._on_budget_spent(child)
            return
        self._emit(SupervisorEvent.LADDER_STEP_DONE, child, step=done.step)
        child.failures = 0
        self._restart_group(child)

    def _escalate(self, child: Child) -> None:
        escalation = Escalation(self.name, child.spec.name, child.last_error)
        self._emit(SupervisorEvent.ESCALATE, child, level="error", reason=child.last_error)
        self.escalated = True
        self._stop_ticker()
        self._stop_children(self.children)
        if self.link.supervisor is None:
            self._call_on_escalate(escalation)
            return
        self.actor_ref.tell(GiveUp(escalation))

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
