"""SelfImproveEngine (``improve``): runs improvement cycles and hands files to the workers.

A cycle is seven phases (cycle.py). The engine runs the first itself, as a state machine
driven by messages (dispatch.py); the running cycle's record and its threads are cyclerun.py's.

Phases 2-7 run in a cycle thread (tests, fixers and benchmarks take minutes) that reports each
phase's start and end by message, so ``GetCycleStatus`` answers at any time. Every phase is an
``improve.phase.started``/``improve.phase.finished`` event with its duration; a cycle is
``improve.cycle.started`` and ``improve.cycle.finished`` (or ``.failed``/``.interrupted``).
One cycle runs at a time: ``RunCycle`` during one is refused with ``Busy``.

Cycles also start on their own (schedule.py): a timer tells the engine ``ScheduleTick``, due
targets queue, and the next starts when the engine is free. A cycle that falls behind the one
before it publishes ``alert.improve_regressed``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import peewee

from gaia_actors.control.protocol import to_json
from gaia_actors.errors import Busy, GaiaError, InvalidMessage
from gaia_actors.events import AlertEvent, CycleProgress, ImproveEvent
from gaia_actors.improve import history
from gaia_actors.improve.cyclerun import STORE_TIMEOUT, CycleRun, Slot, run_walk
from gaia_actors.improve.dispatch import AnalysisDispatch
from gaia_actors.improve.schedule import Scheduled, due, scheduled_targets, tick
from gaia_actors.improve.status import NAME, LastCycle
from gaia_actors.improve.worker import worker_name
from gaia_actors.messages import (
    BatchResult,
    CycleEnded,
    Fields,
    FilesFound,
    GetCycleStatus,
    InsertNow,
    PhaseFinished,
    PhaseStarted,
    RunCycle,
    ScheduleTick,
    Update,
    WorkerReady,
    fields_of,
)
from gaia_actors.settings import Settings
from gaia_actors.store.models import closing_connections
from supervisors import Link

FIRST_TICK = 1.0  # seconds from the engine's start to its first look at the schedule
_RESERVED = frozenset({"cycle_id", "phase", "seconds", "level", "env", "event"})  # event fields


class SelfImproveEngine(AnalysisDispatch):
    """The ``improve`` actor."""

    def __init__(self, link: Link, settings: Settings) -> None:
        super().__init__(link)
        self.settings = settings
        self.improve = settings.improve
        self.configured_target = settings.resolve(settings.improve.target)
        count = max(1, self.improve.workers)
        self.slots = {worker_name(i): Slot(worker_name(i)) for i in range(count)}
        self.run: CycleRun | None = None
        self.last: LastCycle | None = None
        self.scheduled = scheduled_targets(settings)
        self.pending: deque[tuple[Scheduled, str]] = deque()  # due, waiting for the engine
        self.seen: dict[str, str] = {}  # on-commit targets: the last commit a cycle was for

    # Life cycle

    def on_start(self) -> None:
        try:
            running = history.running()
        except peewee.PeeweeException as exc:  # a store that cannot be read is no reason to fail
            self.log.warning("improve.running_cycles_unread", error=str(exc))
            running = []
        for cycle_id in running:
            # A cycle a previous engine left running (daemon killed, engine crashed).
            self.tell("store", Update("improve_cycles", cycle_id, _interrupted("engine restart")))
        if self.scheduled:
            period = tick(self.scheduled, self.improve.commit_poll)
            self.every(period, ScheduleTick(), first=min(period, FIRST_TICK))

    def on_stop(self) -> None:
        super().on_stop()
        self._interrupt("the engine stopped")

    def on_failure(self, *exc_info: Any) -> None:
        self._interrupt(f"the engine crashed: {exc_info[1]!r}")
        super().on_failure(*exc_info)

    def state(self) -> dict[str, Any]:
        return {**super().state(), **to_json(self._status())}

    # Messages

    def receive(self, message: Any) -> Any:
        match message:
            case RunCycle(target=target, apply=apply, watcher=watcher):
                return self._start(target, apply, watcher)
            case ScheduleTick():
                self._on_tick()
            case GetCycleStatus():
                return self._status()
            case FilesFound():
                self._on_files(message)
            case BatchResult():
                self._on_batch(message)
            case WorkerReady():
                self._on_worker_ready(message)
            case PhaseStarted(cycle_id=cycle_id, phase=phase):
                self._on_phase_started(cycle_id, phase)
            case PhaseFinished():
                self._on_phase_finished(message)
            case CycleEnded():
                self._on_cycle_ended(message)
            case _:
                return self.unhandled(message)
        return None

    # Starting a cycle

    def _start(
        self,
        target: str,
        apply: bool,
        watcher: str,
        trigger: str = "manual",
        commit: str = "",
    ) -> dict[str, Any]:
        if self.run is not None:
            raise Busy(
                "the improvement engine",
                f"cycle #{self.run.cycle_id} is in phase {self.run.phase}; wait for it",
            )
        path = Path(target).expanduser().resolve() if target else self.configured_target
        if not path.is_dir():
            raise InvalidMessage("RunCycle", f"target {path} is not a directory", "target")
        row = fields_of(
            started=time.time(),
            target=str(path),
            status="running",
            apply=apply,
            trigger=trigger,
            commit=commit or None,
        )
        # The plan reads the target's tree and its tools: imported with the first cycle, not
        # with the engine.
        from gaia_actors.improve.plan import CyclePlan, settings_for

        cycle_id = int(self.ask("store", InsertNow("improve_cycles", row), timeout=STORE_TIMEOUT))
        settings, configured, _table = settings_for(self.improve, path, self.settings.resolve)
        patches = self.settings.state_dir / "improve" / "patches"
        plan = CyclePlan(
            cycle_id, path, configured, apply, settings, trigger=trigger, patch_dir=patches
        )
        run = self.run = CycleRun(plan, watcher)
        self.publish(
            ImproveEvent.CYCLE_STARTED,
            cycle_id=cycle_id,
            target=str(path),
            apply=apply,
            trigger=trigger,
        )
        self._notify(run, CycleProgress.CYCLE_STARTED, target=str(path), apply=apply)
        self._on_phase_started(cycle_id, "analyse")
        threading.Thread(
            target=closing_connections(run_walk),
            args=(self.actor_ref, run, self.improve.batch_size),
            name=f"{NAME}-walk-{cycle_id}",
            daemon=True,
        ).start()
        return {"cycle_id": cycle_id, "target": str(path)}

    # Cycles on a schedule

    def _on_tick(self) -> None:
        for entry in self.scheduled:
            if any(waiting is entry for waiting, _ in self.pending):
                continue
            if entry.name not in self.seen:
                self.seen[entry.name] = history.last_commit(str(entry.target))
            is_due, commit = due(entry, self.seen[entry.name])
            if is_due:
                self.pending.append((entry, commit))
        self._start_pending()

    def _start_pending(self) -> None:
        """Start the next due cycle, if the engine is free (one cycle at a time)."""
        while self.run is None and self.pending:
            entry, commit = self.pending.popleft()
            if commit:
                self.seen[entry.name] = commit  # started or not, this commit has had its turn
            try:
                apply = self.improve.schedule_apply
                self._start(str(entry.target), apply, "", trigger=entry.trigger, commit=commit)
            except GaiaError as exc:
                self.publish(
                    ImproveEvent.SCHEDULE_FAILED,
                    level="error",
                    target=str(entry.target),
                    trigger=entry.trigger,
                    error=str(exc),
                )

    # Phases 2-7: reports from the cycle thread

    def _on_phase_started(self, cycle_id: int, phase: str) -> None:
        run = self._current(cycle_id)
        if run is None:
            return
        run.phase, run.phase_clock = phase, time.monotonic()
        self.publish(ImproveEvent.PHASE_STARTED, cycle_id=cycle_id, phase=phase)
        self._notify(run, CycleProgress.PHASE_STARTED, phase=phase)

    def _on_phase_finished(self, done: PhaseFinished) -> None:
        run = self._current(done.cycle_id)
        if run is None:
            return
        run.phases[done.phase] = round(done.seconds, 3)
        summary = dict(done.summary)
        extra = {k: v for k, v in summary.items() if k not in _RESERVED}
        self.publish(
            ImproveEvent.PHASE_FINISHED,
            cycle_id=done.cycle_id,
            phase=done.phase,
            seconds=round(done.seconds, 3),
            **extra,
        )
        self._notify(
            run,
            CycleProgress.PHASE_FINISHED,
            phase=done.phase,
            seconds=done.seconds,
            summary=summary,
        )
        self._phase_alerts(run, done.phase, summary)

    def _phase_alerts(self, run: CycleRun, phase: str, summary: dict[str, Any]) -> None:
        if phase == "persist" and summary.get("regressed"):
            self.publish(
                AlertEvent.IMPROVE_REGRESSED,
                level="warning",
                cycle_id=run.cycle_id,
                target=str(run.plan.target),
                trigger=run.plan.trigger,
                against=summary.get("against"),
                reasons=summary["regressed"],
            )
        if phase == "verify" and summary.get("regression"):
            self.publish(
                ImproveEvent.BENCHMARK_REGRESSION,
                level="warning",
                cycle_id=run.cycle_id,
                ops_per_sec=summary.get("ops_per_sec"),
            )
        if phase == "execute_improvements":
            if summary.get("applied"):
                self.publish(
                    ImproveEvent.PATCH_APPLIED,
                    cycle_id=run.cycle_id,
                    files=summary["files"],
                    branch=summary.get("branch", ""),
                )
            elif summary.get("status") == "tests_failed":
                self.publish(
                    ImproveEvent.FIX_ROLLED_BACK,
                    level="warning",
                    cycle_id=run.cycle_id,
                    reason=summary.get("reason", ""),
                )

    def _on_cycle_ended(self, ended: CycleEnded) -> None:
        run = self._current(ended.cycle_id)
        if run is None:
            return
        self._finish(run, ended.status, ended.error)

    def _fail(self, run: CycleRun, error: str) -> None:
        run.cancel.set()
        self._finish(run, "failed", error)

    def _finish(self, run: CycleRun, status: str, error: str) -> None:
        seconds = round(time.monotonic() - run.clock, 3)
        values: dict[str, Any] = {"phases": run.phases, "ended": time.time()}
        if status != "succeeded":
            values |= {"status": status, "error": error}
        try:
            self.ask(
                "store",
                Update("improve_cycles", run.cycle_id, fields_of(**values)),
                timeout=STORE_TIMEOUT,
            )
        except Exception as exc:  # noqa: BLE001 - the cycle is over either way; say what was lost
            self.log.error("improve.cycle.not_stored", cycle_id=run.cycle_id, error=repr(exc))
        level = "info" if status == "succeeded" else "error"
        event = ImproveEvent.CYCLE_FINISHED if status == "succeeded" else ImproveEvent.CYCLE_FAILED
        self.publish(
            event, level=level, cycle_id=run.cycle_id, status=status, seconds=seconds, error=error
        )
        self._notify(run, CycleProgress.CYCLE_ENDED, status=status, error=error, seconds=seconds)
        self.last = LastCycle(run.cycle_id, status, seconds, error)
        self.run = None
        for slot in self.slots.values():
            if slot.batch is not None and slot.batch.batch_id in run.batches:
                slot.batch = None  # an answer still on its way is for a finished cycle
        self._start_pending()

    def _interrupt(self, reason: str) -> None:
        run, self.run = self.run, None
        if run is None:
            return
        run.cancel.set()
        self.tell("store", Update("improve_cycles", run.cycle_id, _interrupted(reason)))
        self.publish(
            ImproveEvent.CYCLE_INTERRUPTED, level="warning", cycle_id=run.cycle_id, reason=reason
        )
        self._notify(
            run, CycleProgress.CYCLE_ENDED, status="interrupted", error=reason, seconds=0.0
        )


def _interrupted(reason: str) -> Fields:
    return fields_of(status="interrupted", error=reason, ended=time.time())
