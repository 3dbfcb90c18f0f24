"""SelfImproveEngine (``improve``): runs improvement cycles and hands files to the workers.

A cycle is seven phases (cycle.py). The engine runs the first itself, as a state machine
driven by messages:

- a walk thread streams the target's candidate files back (``FilesFound``) in batches of
  ``batch_size``; they join a queue;
- a worker is given the next batch when it reports the previous one (``BatchResult``), so
  the work balances itself: a worker with big files simply asks less often;
- each batch given out is remembered with the worker and its generation. A worker that dies
  is restarted by its supervisor, and its new generation's ``WorkerReady`` makes the engine
  put the batch it held back at the head of the queue. A batch that takes its worker down
  twice is split into single files, and a file that does so once more is reported as skipped
  with the reason, so one poisonous file cannot stop a cycle. Results are kept per batch id:
  a batch analysed twice (a late answer after a re-queue) counts once, so every file is in
  the result exactly once.

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

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import peewee
import pykka

from gaia_actors.actor import GaiaActor
from gaia_actors.errors import Busy, GaiaError, InvalidMessage
from gaia_actors.improve import history
from gaia_actors.improve.analysis import FileResult, language_of
from gaia_actors.improve.commands import cancelled_by
from gaia_actors.improve.cycle import Cycle
from gaia_actors.improve.cycle_state import AnalysisOutcome
from gaia_actors.improve.delivery import TreeState, read_state
from gaia_actors.improve.files import SkippedFile, SkipReason, iter_walk
from gaia_actors.improve.plan import CyclePlan, settings_for
from gaia_actors.improve.schedule import Scheduled, due, scheduled_targets, tick
from gaia_actors.improve.worker import worker_name
from gaia_actors.messages import (
    AnalyseBatch,
    BatchResult,
    CycleEnded,
    Fields,
    FilesFound,
    Flush,
    GetCycleStatus,
    Insert,
    InsertNow,
    PhaseFinished,
    PhaseStarted,
    ReleaseProcess,
    RunCycle,
    ScheduleTick,
    Update,
    WorkerReady,
    fields_of,
)
from gaia_actors.models import closing_connections
from gaia_actors.outbox import outbox_for
from gaia_actors.settings import Settings
from supervisors import Link, Registry

NAME = "improve"
REGRESSED = "alert.improve_regressed"  # a cycle fell behind the one before it
FIRST_TICK = 1.0  # seconds from the engine's start to its first look at the schedule
MAX_ATTEMPTS = 2  # failures before a batch is split, and then before a lone file is given up
STORE_TIMEOUT = 30.0
_RESERVED = frozenset({"cycle_id", "phase", "seconds", "level", "env", "event"})  # event fields
Watcher = Callable[[dict[str, Any]], None]


@dataclass
class Batch:
    batch_id: int
    paths: tuple[str, ...]
    attempts: int = 0
    split: bool = False  # re-queued as single files: its own answer no longer counts


@dataclass
class Slot:
    """The engine's view of one worker."""

    name: str
    generation: int = 0
    incarnation: str = ""
    ready: bool = False
    batch: Batch | None = None
    sent_at: float = 0.0


@dataclass
class CycleRun:
    """The running cycle (owned by the engine's thread)."""

    plan: CyclePlan
    watcher: Watcher | None
    started: float = field(default_factory=time.time)
    clock: float = field(default_factory=time.monotonic)
    phase: str = "analyse"
    phase_clock: float = field(default_factory=time.monotonic)
    phases: dict[str, float] = field(default_factory=dict)
    queue: deque[Batch] = field(default_factory=deque)
    batches: dict[int, Batch] = field(default_factory=dict)
    results: dict[int, tuple[FileResult, ...]] = field(default_factory=dict)
    walk_done: bool = False
    walk_skipped: tuple[SkippedFile, ...] = ()
    files_found: int = 0
    bytes_found: int = 0
    files_done: int = 0
    requeued: int = 0
    analysing: bool = True
    cancel: threading.Event = field(default_factory=threading.Event)
    tree: TreeState | None = None  # the tree as the walk found it, for applying a fix

    @property
    def cycle_id(self) -> int:
        return self.plan.cycle_id

    def pending(self) -> list[int]:
        return [i for i, b in self.batches.items() if i not in self.results and not b.split]


class SelfImproveEngine(GaiaActor):
    """The ``improve`` actor."""

    def __init__(self, link: Link, settings: Settings) -> None:
        super().__init__(link)
        self.settings = settings
        self.improve = settings.improve
        self.configured_target = settings.resolve(settings.improve.target)
        count = max(1, self.improve.workers)
        self.slots = {worker_name(i): Slot(worker_name(i)) for i in range(count)}
        self.run: CycleRun | None = None
        self.last: dict[str, Any] | None = None
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
        return {**super().state(), **self._status()}

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
        watcher: Watcher | None,
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
        cycle_id = int(self.ask("store", InsertNow("improve_cycles", row), timeout=STORE_TIMEOUT))
        settings, configured, _table = settings_for(self.improve, path, self.settings.resolve)
        patches = self.settings.state_dir / "improve" / "patches"
        plan = CyclePlan(
            cycle_id, path, configured, apply, settings, trigger=trigger, patch_dir=patches
        )
        run = self.run = CycleRun(plan, watcher)
        self.publish(
            "improve.cycle.started",
            cycle_id=cycle_id,
            target=str(path),
            apply=apply,
            trigger=trigger,
        )
        self._notify(run, "cycle.started", target=str(path), apply=apply)
        self._on_phase_started(cycle_id, "analyse")
        threading.Thread(
            target=closing_connections(_walk),
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
                self._start(str(entry.target), apply, None, trigger=entry.trigger, commit=commit)
            except GaiaError as exc:
                self.publish(
                    "improve.schedule.failed",
                    level="error",
                    target=str(entry.target),
                    trigger=entry.trigger,
                    error=str(exc),
                )

    # Phase 1: the walk's files, to the workers in batches

    def _on_files(self, found: FilesFound) -> None:
        run = self._current(found.cycle_id)
        if run is None:
            return
        if found.paths:
            batch_id = len(run.batches) + 1
            batch = run.batches[batch_id] = Batch(batch_id, found.paths)
            run.queue.append(batch)
            run.files_found += len(found.paths)
            run.bytes_found += sum(found.sizes)
        if found.done:
            run.walk_done = True
            run.walk_skipped = tuple(found.skipped)
            run.tree = found.tree
        if found.error:
            self._fail(run, f"walking {run.plan.target} failed: {found.error}")
            return
        self._dispatch()
        self._check_analysis_done(run)

    def _dispatch(self) -> None:
        run = self.run
        if run is None or not run.analysing:
            return
        for slot in self.slots.values():
            if not run.queue:
                return
            if not slot.ready or slot.batch is not None:
                continue
            batch = run.queue.popleft()
            if self.tell(slot.name, self._order(run, batch)):
                slot.batch, slot.sent_at = batch, time.time()
            else:  # restarting: its WorkerReady will bring it back
                run.queue.appendleft(batch)
                slot.ready = False

    def _order(self, run: CycleRun, batch: Batch) -> AnalyseBatch:
        analysis = run.plan.analysis_settings
        return AnalyseBatch(
            run.cycle_id,
            batch.batch_id,
            str(run.plan.target),
            batch.paths,
            analysis.markers,
            analysis.max_function_lines,
            analysis.max_bytes,
        )

    def _on_batch(self, answer: BatchResult) -> None:
        slot = self.slots.get(answer.worker)
        if slot is not None and slot.batch is not None and slot.batch.batch_id == answer.batch_id:
            slot.batch = None
        run = self._current(answer.cycle_id)
        if run is not None:
            batch = run.batches.get(answer.batch_id)
            if batch is not None and not batch.split and answer.batch_id not in run.results:
                run.results[answer.batch_id] = _complete(batch, answer)
                run.files_done += len(batch.paths)
                self._notify(run, "analysis.progress", **self._progress(run))
        self._dispatch()
        if run is not None:
            self._check_analysis_done(run)

    def _on_worker_ready(self, ready: WorkerReady) -> None:
        """A worker (re)started. Whatever its slot held went down with the incarnation before
        (a name is only registered again once its actor has stopped), so it is re-queued."""
        slot = self.slots.get(ready.worker)
        if slot is None:
            return
        held = slot.batch
        if held is not None and slot.incarnation != ready.incarnation:
            reason = f"{ready.worker} restarted (generation {ready.generation})"
            self._requeue(held, ready.worker, reason)
        slot.batch = None
        slot.generation, slot.incarnation, slot.ready = ready.generation, ready.incarnation, True
        self._dispatch()

    def _requeue(self, batch: Batch, worker: str, reason: str) -> None:
        run = self.run
        if run is None or batch.batch_id in run.results or batch.split:
            return
        if run.batches.get(batch.batch_id) is not batch:
            return  # a batch of an earlier cycle
        batch.attempts += 1
        run.requeued += 1
        self.publish(
            "improve.batch.requeued",
            level="warning",
            cycle_id=run.cycle_id,
            batch_id=batch.batch_id,
            worker=worker,
            files=len(batch.paths),
            attempts=batch.attempts,
            reason=reason,
        )
        self._notify(run, "batch.requeued", batch_id=batch.batch_id, worker=worker, reason=reason)
        if batch.attempts < MAX_ATTEMPTS:
            run.queue.appendleft(batch)
        elif len(batch.paths) > 1:
            self._split(run, batch)
        else:
            run.results[batch.batch_id] = (_given_up(batch.paths[0], batch.attempts, reason),)
            run.files_done += 1
        self._check_analysis_done(run)

    def _split(self, run: CycleRun, batch: Batch) -> None:
        """Re-queue a batch that keeps failing as single files, to find the one to blame."""
        batch.split = True
        singles = []
        for path in batch.paths:
            batch_id = len(run.batches) + 1
            single = run.batches[batch_id] = Batch(batch_id, (path,), attempts=batch.attempts - 1)
            singles.append(single)
        run.queue.extendleft(reversed(singles))

    def _check_analysis_done(self, run: CycleRun) -> None:
        if not run.analysing or not run.walk_done or run.queue or run.pending():
            return
        run.analysing = False
        results = sorted((r for batch in run.results.values() for r in batch), key=lambda r: r.path)
        seconds = time.monotonic() - run.phase_clock
        analysis = AnalysisOutcome(
            results=tuple(results),
            walk_skipped=run.walk_skipped,
            seconds=seconds,
            batches=len([b for b in run.batches.values() if not b.split]),
            requeued=run.requeued,
            workers=len(self.slots),
        )
        for name in self.slots:
            self.tell(name, ReleaseProcess())
        summary = analysis.summary()
        brief = {k: summary[k] for k in ("files", "lines", "bytes", "batches", "requeued")}
        self._on_phase_finished(
            PhaseFinished(
                run.cycle_id,
                "analyse",
                seconds,
                fields_of(**brief, skipped=sum(summary["skipped"].values())),
            )
        )
        recorder = StoreRecorder(self.registry)
        cycle = Cycle(run.plan, analysis, recorder, started=run.started, tree=run.tree)
        threading.Thread(
            target=closing_connections(run_phases),
            args=(self.actor_ref, cycle, run.cancel),
            name=f"{NAME}-cycle-{run.cycle_id}",
            daemon=True,
        ).start()

    # Phases 2-7: reports from the cycle thread

    def _on_phase_started(self, cycle_id: int, phase: str) -> None:
        run = self._current(cycle_id)
        if run is None:
            return
        run.phase, run.phase_clock = phase, time.monotonic()
        self.publish("improve.phase.started", cycle_id=cycle_id, phase=phase)
        self._notify(run, "phase.started", phase=phase)

    def _on_phase_finished(self, done: PhaseFinished) -> None:
        run = self._current(done.cycle_id)
        if run is None:
            return
        run.phases[done.phase] = round(done.seconds, 3)
        summary = dict(done.summary)
        extra = {k: v for k, v in summary.items() if k not in _RESERVED}
        self.publish(
            "improve.phase.finished",
            cycle_id=done.cycle_id,
            phase=done.phase,
            seconds=round(done.seconds, 3),
            **extra,
        )
        self._notify(run, "phase.finished", phase=done.phase, seconds=done.seconds, summary=summary)
        self._phase_alerts(run, done.phase, summary)

    def _phase_alerts(self, run: CycleRun, phase: str, summary: dict[str, Any]) -> None:
        if phase == "persist" and summary.get("regressed"):
            self.publish(
                REGRESSED,
                level="warning",
                cycle_id=run.cycle_id,
                target=str(run.plan.target),
                trigger=run.plan.trigger,
                against=summary.get("against"),
                reasons=summary["regressed"],
            )
        if phase == "verify" and summary.get("regression"):
            self.publish(
                "improve.benchmark.regression",
                level="warning",
                cycle_id=run.cycle_id,
                ops_per_sec=summary.get("ops_per_sec"),
            )
        if phase == "execute_improvements":
            if summary.get("applied"):
                self.publish(
                    "improve.patch.applied",
                    cycle_id=run.cycle_id,
                    files=summary["files"],
                    branch=summary.get("branch", ""),
                )
            elif summary.get("status") == "tests_failed":
                self.publish(
                    "improve.fix.rolled_back",
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
        event = "improve.cycle.finished" if status == "succeeded" else "improve.cycle.failed"
        self.publish(
            event, level=level, cycle_id=run.cycle_id, status=status, seconds=seconds, error=error
        )
        self._notify(run, "cycle.ended", status=status, error=error, seconds=seconds)
        self.last = {"cycle_id": run.cycle_id, "status": status, "seconds": seconds, "error": error}
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
            "improve.cycle.interrupted", level="warning", cycle_id=run.cycle_id, reason=reason
        )
        self._notify(run, "cycle.ended", status="interrupted", error=reason, seconds=0.0)

    # Status and progress

    def _current(self, cycle_id: int) -> CycleRun | None:
        run = self.run
        return run if run is not None and run.cycle_id == cycle_id else None

    def _status(self) -> dict[str, Any]:
        workers = {
            name: {
                "ready": slot.ready,
                "generation": slot.generation,
                "batch": slot.batch.batch_id if slot.batch else None,
            }
            for name, slot in self.slots.items()
        }
        run = self.run
        if run is None:
            return {"running": False, "last": self.last, "workers": workers}
        now = time.monotonic()
        return {
            "running": True,
            "cycle_id": run.cycle_id,
            "target": str(run.plan.target),
            "apply": run.plan.apply,
            "phase": run.phase,
            "phase_elapsed": round(now - run.phase_clock, 3),
            "elapsed": round(now - run.clock, 3),
            "phases": dict(run.phases),
            "analysis": {
                **self._progress(run),
                "queued": len(run.queue),
                "in_flight": {
                    name: slot.batch.batch_id
                    for name, slot in self.slots.items()
                    if slot.batch is not None
                },
            },
            "workers": workers,
        }

    def _progress(self, run: CycleRun) -> dict[str, Any]:
        return {
            "files_done": run.files_done,
            "files_found": run.files_found,
            "files_total": run.files_found if run.walk_done else None,
            "requeued": run.requeued,
        }

    def _notify(self, run: CycleRun, event: str, **data: Any) -> None:
        watcher = run.watcher
        if watcher is None:
            return
        try:
            watcher({"event": event, "cycle_id": run.cycle_id, **data})
        except Exception as exc:  # noqa: BLE001 - a broken watcher must not break the cycle
            self.log.warning("improve.watcher_failed", error=repr(exc))
            run.watcher = None


# --- helpers run outside the engine's thread ------------------------------------------------


def _walk(ref: pykka.ActorRef[Any], run: CycleRun, size: int) -> None:
    """The walk thread: candidate files to the engine in batches, as they are found."""
    cycle_id, skipped = run.cycle_id, []
    paths: list[str] = []
    sizes: list[int] = []

    def tell(message: FilesFound) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            ref.tell(message)

    try:
        tree = read_state(run.plan.target, run.plan.walk_options)
        for item in iter_walk(run.plan.target, run.plan.walk_options):
            if run.cancel.is_set():
                return
            if isinstance(item, SkippedFile):
                skipped.append(item)
                continue
            paths.append(item[0])
            sizes.append(item[1])
            if len(paths) >= size:
                tell(FilesFound(cycle_id, tuple(paths), tuple(sizes)))
                paths, sizes = [], []
    except Exception as exc:  # noqa: BLE001 - reported to the engine, which fails the cycle
        tell(FilesFound(cycle_id, done=True, error=repr(exc)))
        return
    tell(FilesFound(cycle_id, tuple(paths), tuple(sizes), tuple(skipped), done=True, tree=tree))


def run_phases(ref: pykka.ActorRef[Any], cycle: Cycle, cancel: threading.Event) -> None:
    """The cycle thread: phases 2-7 in order, each reported to the engine by message."""
    cycle_id = cycle.plan.cycle_id
    clock = time.monotonic()

    def tell(message: Any) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            ref.tell(message)

    try:
        target = str(cycle.plan.target)
        cycle.previous = history.previous_cycle(target, cycle_id)
        cycle.previous_ops = history.previous_ops(target, cycle_id)
        with cancelled_by(cancel):  # a cancelled cycle kills the command it is running
            for phase, step in cycle.steps():
                if cancel.is_set():
                    return
                tell(PhaseStarted(cycle_id, phase))
                started = time.monotonic()
                summary = step()
                tell(PhaseFinished(cycle_id, phase, time.monotonic() - started, _fields(summary)))
    except Exception as exc:  # noqa: BLE001 - the cycle's boundary: a failed cycle, not a lost thread
        tell(
            CycleEnded(cycle_id, "failed", time.monotonic() - clock, f"{type(exc).__name__}: {exc}")
        )
        return
    tell(CycleEnded(cycle_id, "succeeded", time.monotonic() - clock))


def _fields(summary: dict[str, Any]) -> Fields:
    return fields_of(**{k: v for k, v in summary.items() if v is not None})


def _complete(batch: Batch, answer: BatchResult) -> tuple[FileResult, ...]:
    """One result per path of ``batch``: a worker's error (or a missing result) becomes a
    skipped file with the reason, never a silently missing one."""
    by_path = {r.path: r for r in answer.results if isinstance(r, FileResult)}
    problem = answer.error or "no result from the worker"
    return tuple(
        by_path.get(path) or _skipped(path, f"analysis failed: {problem}") for path in batch.paths
    )


def _given_up(path: str, attempts: int, reason: str) -> FileResult:
    return _skipped(path, f"analysis took its worker down {attempts} times (last: {reason})")


def _skipped(path: str, detail: str) -> FileResult:
    skipped = SkippedFile(path, SkipReason.UNREADABLE, detail)
    return FileResult(path, language_of(path), skipped=skipped)


def _interrupted(reason: str) -> Fields:
    return fields_of(status="interrupted", error=reason, ended=time.time())


class StoreRecorder:
    """The cycle thread's writes: rows told to the Store (batched there), updates asked."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def insert(self, table: str, **values: Any) -> None:
        outbox_for(self.registry).tell("store", Insert(table, fields_of(**values)))

    def update(self, table: str, row_id: int, **values: Any) -> None:
        self.registry.ask(
            "store", Update(table, row_id, fields_of(**values)), timeout=STORE_TIMEOUT
        )

    def flush(self) -> None:
        self.registry.ask("store", Flush(), timeout=STORE_TIMEOUT * 4)
