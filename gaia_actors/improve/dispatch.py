"""Phase 1 of a cycle, in the engine's thread: the walk's files to the workers in batches.

The state machine is driven by messages:

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
"""

from __future__ import annotations

import threading
import time
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from gaia_actors.actor import GaiaActor
from gaia_actors.events import CycleProgress, ImproveEvent
from gaia_actors.improve.cycle_state import AnalysisOutcome
from gaia_actors.improve.cyclerun import Batch, CycleRun, Slot, StoreRecorder, run_phases
from gaia_actors.improve.status import (
    Analysis,
    CycleRunning,
    CycleStatus,
    EngineIdle,
    LastCycle,
    WorkerView,
)
from gaia_actors.messages import (
    AnalyseBatch,
    BatchResult,
    FilesFound,
    PhaseFinished,
    Progress,
    ReleaseProcess,
    WorkerReady,
    fields_of,
)
from gaia_actors.store.models import closing_connections

if TYPE_CHECKING:
    from gaia_actors.improve.analysis import FileResult

# The cycle's machinery (the analysis' records, the phases) is imported when a cycle runs: the
# daemon starts the engine without it.

MAX_ATTEMPTS = 2  # failures before a batch is split, and then before a lone file is given up


def _complete(batch: Batch, answer: BatchResult) -> tuple[FileResult, ...]:
    """One result per path of ``batch``: a worker's error (or a missing result) becomes a
    skipped file with the reason, never a silently missing one."""
    from gaia_actors.improve.analysis import FileResult

    by_path = {r.path: r for r in answer.results if isinstance(r, FileResult)}
    problem = answer.error or "no result from the worker"
    return tuple(
        by_path.get(path) or _skipped(path, f"analysis failed: {problem}") for path in batch.paths
    )


def _given_up(path: str, attempts: int, reason: str) -> FileResult:
    return _skipped(path, f"analysis took its worker down {attempts} times (last: {reason})")


def _skipped(path: str, detail: str) -> FileResult:
    from gaia_actors.improve.analysis import FileResult, language_of
    from gaia_actors.improve.files import SkippedFile, SkipReason

    skipped = SkippedFile(path, SkipReason.UNREADABLE, detail)
    return FileResult(path, language_of(path), skipped=skipped)


class AnalysisDispatch(GaiaActor):
    """The engine's phase 1, and the running cycle's progress and status."""

    run: CycleRun | None
    slots: dict[str, Slot]
    last: LastCycle | None

    def _fail(self, run: CycleRun, error: str) -> None:
        """End the cycle as failed (the engine defines it)."""
        raise NotImplementedError

    def _on_phase_finished(self, done: PhaseFinished) -> None:
        """Report a finished phase (the engine defines it)."""
        raise NotImplementedError

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
                slot.batch = batch
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
                self._notify(run, CycleProgress.ANALYSIS_PROGRESS, **self._progress(run))
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
            ImproveEvent.BATCH_REQUEUED,
            level="warning",
            cycle_id=run.cycle_id,
            batch_id=batch.batch_id,
            worker=worker,
            files=len(batch.paths),
            attempts=batch.attempts,
            reason=reason,
        )
        self._notify(
            run, CycleProgress.BATCH_REQUEUED, batch_id=batch.batch_id, worker=worker, reason=reason
        )
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
        from gaia_actors.improve.cycle import Cycle

        recorder = StoreRecorder(self.registry)
        cycle = Cycle(run.plan, analysis, recorder, started=run.started, tree=run.tree)
        threading.Thread(
            target=closing_connections(run_phases),
            args=(self.actor_ref, cycle, run.cancel),
            name=f"{self.name}-cycle-{run.cycle_id}",
            daemon=True,
        ).start()

    # Status and progress

    def _current(self, cycle_id: int) -> CycleRun | None:
        run = self.run
        return run if run is not None and run.cycle_id == cycle_id else None

    def _status(self) -> CycleStatus:
        workers = MappingProxyType(
            {
                name: WorkerView(
                    slot.ready, slot.generation, slot.batch.batch_id if slot.batch else None
                )
                for name, slot in self.slots.items()
            }
        )
        run = self.run
        if run is None:
            return EngineIdle(running=False, last=self.last, workers=workers)
        now = time.monotonic()
        in_flight = {n: s.batch.batch_id for n, s in self.slots.items() if s.batch is not None}
        return CycleRunning(
            running=True,
            cycle_id=run.cycle_id,
            target=str(run.plan.target),
            apply=run.plan.apply,
            phase=run.phase,
            phase_elapsed=round(now - run.phase_clock, 3),
            elapsed=round(now - run.clock, 3),
            phases=MappingProxyType(dict(run.phases)),
            analysis=Analysis(
                **self._progress(run),
                queued=len(run.queue),
                in_flight=MappingProxyType(in_flight),
            ),
            workers=workers,
        )

    def _progress(self, run: CycleRun) -> dict[str, Any]:
        return {
            "files_done": run.files_done,
            "files_found": run.files_found,
            "files_total": run.files_found if run.walk_done else None,
            "requeued": run.requeued,
        }

    def _notify(self, run: CycleRun, event: str, **data: Any) -> None:
        if not run.watcher:
            return
        progress = Progress.of(event=event, cycle_id=run.cycle_id, **data)
        if not self.tell(run.watcher, progress):
            run.watcher = ""  # whoever followed the cycle left: nobody to tell any more
