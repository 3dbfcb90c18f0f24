"""PipelineCoordinator (``pipeline``): promotions DEV -> STAGING -> PROD through gated stages.

The coordinator owns the promotion locks and the status; the stages run in a runner thread
per promotion (``runner.py``) that reports back by messages, so ``GetPipelineStatus``,
``GetPipelineHistory`` and ``CancelPipeline`` answer while a stage runs.

A promotion holds every environment it touches (its source, its target, any other a stage acts
promote-all): another promotion to any of them gets ``Busy`` naming the holder. Testing a
staging that is being redeployed under the tests would prove nothing.

At start, promotions a previous daemon left ``running`` are marked ``interrupted``, the
processes of their running stage are killed, and a target left on the unconfirmed release is
rolled back to the one it had before (part 4). At stop, running promotions are interrupted
the same way and recovered at the next start: a rollback is not started while the daemon
shuts down.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import peewee
import pykka

from gaia_actors.actor import GaiaActor
from gaia_actors.errors import Busy, GaiaError
from gaia_actors.messages import (
    CancelPipeline,
    GetPipelineHistory,
    GetPipelineStatus,
    InsertNow,
    Promote,
    Update,
    fields_of,
    message,
    to_dict,
)
from gaia_actors.models import closing_connections
from gaia_actors.pipeline import history, stages
from gaia_actors.pipeline.errors import PromotionRefused
from gaia_actors.pipeline.leftovers import kill_leftover_stages, stage_token
from gaia_actors.pipeline.reporting import Watcher
from gaia_actors.pipeline.reports import (
    PipelineReport,
    RunEnded,
    RunHandle,
    StageReport,
    event_name,
)
from gaia_actors.pipeline.runner import Leg, Runner
from gaia_actors.settings import PROMOTIONS, Settings
from supervisors import Link, SupervisionError

NAME = "pipeline"
LEGS: dict[str, tuple[str, ...]] = {
    "dev": ("dev_to_staging",),
    "staging": ("staging_to_prod",),
    "all": ("dev_to_staging", "staging_to_prod"),
}
JOIN_TIMEOUT = 10.0  # seconds a stopping coordinator waits for its runners to wind down
RECOVERY_RETRY = 5.0  # seconds before looking again for unfinished promotions
RECOVERY = "recovery"
# Event levels by status; anything else (failed, timed_out) is an error.
_LEVELS = {
    "running": "info",
    "succeeded": "info",
    "passed": "info",
    "skipped": "info",
    "warned": "warning",
    "cancelled": "warning",
    "interrupted": "warning",
}


@message
class RecoverUnfinished:
    """Timer: look again for promotions a previous daemon left unfinished."""


@dataclass
class RunState:
    """The coordinator's view of one run, kept current by the runner's reports."""

    handle: RunHandle
    what: str  # dev | staging | all | recovery
    envs: tuple[str, ...]
    trigger: str
    pipeline_id: int
    kind: str
    started: float = field(default_factory=time.time)
    pipeline_ids: list[int] = field(default_factory=list)
    release: str = ""
    stage: str = ""
    stage_kind: str = ""
    stage_started: float | None = None
    stages: dict[str, str] = field(default_factory=dict)  # "<id>:<name>" -> status

    def holder(self) -> str:
        if self.what == RECOVERY:
            return (
                f"the rollback of interrupted promotion #{self.pipeline_id} holds it; "
                "wait for it to finish"
            )
        doing = f"stage {self.stage}" if self.stage else "starting"
        return (
            f"promotion #{self.pipeline_id} ({self.kind}, {doing}) holds it; wait for it, "
            f"or run: cancel {self.pipeline_id}"
        )

    def view(self, lines: int) -> dict[str, Any]:
        now = time.time()
        view: dict[str, Any] = {
            "pipeline_id": self.pipeline_id,
            "run": self.handle.run_id,
            "pipeline_ids": list(self.pipeline_ids),
            "what": self.what,
            "kind": self.kind,
            "release": self.release,
            "environments": list(self.envs),
            "stage": self.stage or None,
            "stage_kind": self.stage_kind or None,
            "stage_elapsed": round(now - self.stage_started, 3) if self.stage_started else None,
            "elapsed": round(now - self.started, 3),
            "trigger": self.trigger,
            "stages": dict(self.stages),
            "cancelling": self.handle.stop.is_set(),
        }
        if lines > 0:
            view["output"] = self.handle.output.last(lines)
        return view


class PipelineCoordinator(GaiaActor):
    """Runs promotions as stages with timeouts, rolls back on failure, keeps the history."""

    def __init__(self, link: Link, settings: Settings) -> None:
        super().__init__(link)
        self.settings = settings
        self.runs: dict[int, RunState] = {}
        self.locks: dict[str, int] = {}  # environment -> run id

    # Life cycle

    def on_start(self) -> None:
        self._recover_or_retry()
        self._prune_artifacts()

    def on_terminate(self) -> None:
        self._interrupt_all()

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "running": [run.view(0) for run in self.runs.values()],
            "locks": dict(self.locks),
        }

    # Messages

    def receive(self, message: Any) -> Any:
        match message:
            case Promote(what=what, trigger=trigger, watcher=watcher, output=output):
                return self._promote(what, trigger, watcher, output)
            case CancelPipeline(pipeline_id=pipeline_id):
                return self._cancel(pipeline_id)
            case GetPipelineStatus(lines=lines):
                return self._status(lines)
            case GetPipelineHistory(pipeline_id=pipeline_id, limit=limit):
                return history.recent(limit) if pipeline_id is None else history.show(pipeline_id)
            case PipelineReport():
                return self._on_pipeline(message)
            case StageReport():
                return self._on_stage(message)
            case RunEnded():
                return self._on_run_ended(message)
            case RecoverUnfinished():
                return self._recover_or_retry()
            case _:
                return self.unhandled(message)

    # Promote, cancel, status

    def _promote(
        self, what: str, trigger: str, watcher: Watcher | None, output: bool
    ) -> dict[str, Any]:
        kinds = self._configured(what)
        legs = [Leg(kind, tuple(stages.plan(self.settings, kind))) for kind in kinds]
        # Every environment it touches: source, target, and any other a stage acts on.
        touched = [env for leg in legs for env in (leg.source, leg.target)]
        touched += [stage.env for leg in legs for stage in leg.stages]
        envs = tuple(dict.fromkeys(touched))
        self._refuse_if_busy(envs)
        source, target = PROMOTIONS[kinds[0]]
        row = fields_of(
            kind=kinds[0],
            status="running",
            started=time.time(),
            source=source,
            target=target,
            trigger=trigger,
        )
        pipeline_id: int = self.ask("store", InsertNow("pipelines", row))
        run = RunState(RunHandle(pipeline_id), what, envs, trigger, pipeline_id, kinds[0])
        chained = len(legs) > 1
        self._start(run, lambda runner: runner.run(legs, chained), watcher, output)
        return {
            "pipeline_id": pipeline_id,
            "what": what,
            "promotions": list(kinds),
            "environments": list(envs),
            "stages": {leg.kind: [stage.describe() for stage in leg.stages] for leg in legs},
        }

    def _configured(self, what: str) -> tuple[str, ...]:
        kinds = LEGS.get(what)
        if kinds is None:
            raise PromotionRefused(f"no promotion {what!r}; promotions: {', '.join(LEGS)}")
        for kind in kinds:
            if not getattr(self.settings.pipeline, kind):
                raise PromotionRefused(
                    f"no stages configured for {kind}: add [[pipeline.{kind}]] tables to "
                    f"{self.settings.config_path}"
                )
        return kinds

    def _refuse_if_busy(self, envs: tuple[str, ...]) -> None:
        for env in envs:
            holder = self.locks.get(env)
            if holder is not None:
                raise Busy(f"environment {env!r}", self.runs[holder].holder())

    def _start(
        self,
        run: RunState,
        body: Callable[[Runner], None],
        watcher: Watcher | None = None,
        output: bool = False,
    ) -> None:
        runner = Runner(
            self.settings,
            self.registry,
            run.handle,
            self._reporter(),
            watcher=watcher,
            output=output,
        )
        thread = threading.Thread(
            target=closing_connections(body),
            args=(runner,),
            name=f"pipeline-run-{run.handle.run_id}",
            daemon=True,
        )
        run.handle.thread = thread
        run.pipeline_ids.append(run.pipeline_id)
        self.runs[run.handle.run_id] = run
        for env in run.envs:
            self.locks[env] = run.handle.run_id
        thread.start()

    def _reporter(self) -> Callable[[Any], None]:
        ref = self.actor_ref

        def report(message: Any) -> None:
            with contextlib.suppress(pykka.ActorDeadError):  # a stopped generation: nobody
                ref.tell(message)

        return report

    def _cancel(self, pipeline_id: int) -> dict[str, Any]:
        run = next((r for r in self.runs.values() if pipeline_id in r.pipeline_ids), None)
        if run is None:
            row = history.get(pipeline_id)
            raise PromotionRefused(f"promotion #{pipeline_id} is not running (it {row.status})")
        if run.what == RECOVERY:
            raise PromotionRefused(f"promotion #{pipeline_id} is being rolled back after an "
                                   "interruption; that cannot be cancelled")  # fmt: skip
        run.handle.cancel("cancelled")
        self.publish(
            "pipeline.cancelling",
            level="warning",
            env=PROMOTIONS[run.kind][1],
            pipeline_id=run.pipeline_id,
            stage=run.stage,
        )
        return {"pipeline_id": run.pipeline_id, "cancelling": True, "stage": run.stage or None}

    def _status(self, lines: int) -> dict[str, Any]:
        return {
            "running": [run.view(lines) for run in self.runs.values()],
            "locks": dict(self.locks),
        }

    # Reports from the runners

    def _on_pipeline(self, report: PipelineReport) -> None:
        run = self.runs.get(report.run_id)
        if run is not None and report.status == "running":
            run.pipeline_id, run.kind, run.release = report.pipeline_id, report.kind, report.release
            run.stage, run.stage_kind, run.stage_started = "", "", None
            if report.pipeline_id not in run.pipeline_ids:
                run.pipeline_ids.append(report.pipeline_id)
        self._publish(report, report.target)

    def _on_stage(self, report: StageReport) -> None:
        run = self.runs.get(report.run_id)
        if run is not None:
            run.stages[f"{report.pipeline_id}:{report.name}"] = report.status
            if report.status == "running":
                run.stage, run.stage_kind = report.name, report.kind
                run.stage_started = time.time()
        self._publish(report, report.env)

    def _publish(self, report: PipelineReport | StageReport, env: str) -> None:
        """The report as its ``pipeline.*``/``stage.*`` event (a stage's name as ``stage``)."""
        data = to_dict(report)
        for internal in ("run_id", "env"):
            data.pop(internal, None)
        if "name" in data:
            data["stage"] = data.pop("name")
        level = _LEVELS.get(report.status, "error")
        self.publish(event_name(report), level=level, env=env, **data)

    def _on_run_ended(self, ended: RunEnded) -> None:
        run = self.runs.pop(ended.run_id, None)
        for env in [env for env, holder in self.locks.items() if holder == ended.run_id]:
            del self.locks[env]
        self.log.info(
            "pipeline.run_ended",
            run_id=ended.run_id,
            what=run.what if run else "",
            status=ended.status,
            pipelines=list(ended.pipeline_ids),
        )
        self._prune_artifacts()

    def _prune_artifacts(self) -> None:
        """The artifact folders (state/pipelines/ID: JUnit files) of all but the newest
        ``[pipeline] keep`` promotions; the store prunes their rows the same way."""
        removed = prune_artifacts(
            self.settings.state_dir / "pipelines",
            self.settings.pipeline.keep,
            {i for run in self.runs.values() for i in run.pipeline_ids},
        )
        if removed:
            self.log.info("pipeline.artifacts_pruned", folders=removed)

    # Interruptions: at stop, and what a previous daemon left behind

    def _interrupt_all(self) -> None:
        runs = list(self.runs.values())
        for run in runs:
            run.handle.cancel("interrupted")
        deadline = time.monotonic() + JOIN_TIMEOUT
        for run in runs:
            thread = run.handle.thread
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))

    def _recover_or_retry(self) -> None:
        """Recover what a previous daemon left; while the store cannot be read or written,
        try again later rather than fail (a coordinator that cannot start takes its
        supervisor's restart budget with it)."""
        try:
            self._recover_unfinished()
        except (peewee.PeeweeException, GaiaError, SupervisionError) as exc:
            self.log.warning("pipeline.recovery_deferred", error=str(exc), retry_in=RECOVERY_RETRY)
            self.after(RECOVERY_RETRY, RecoverUnfinished())

    def _recover_unfinished(self) -> None:
        rows = [row for row in history.unfinished() if row.target not in self.locks]
        if not rows:
            return
        self._kill_leftovers(rows)
        now = time.time()
        for row in rows:
            if row.status == "running":
                self._mark_interrupted(row, now)
        latest = {row.target: row for row in rows}  # ordered by id: the newest per target
        for row in rows:
            if latest[row.target] is not row:
                self._store(Update("pipelines", row.id, fields_of(recovery="not needed")))
        for row in latest.values():
            run = RunState(RunHandle(row.id), RECOVERY, (row.target,), "recovery", row.id, row.kind)
            self._start(run, functools.partial(Runner.recover, pipeline_id=row.id))

    def _kill_leftovers(self, rows: list[Any]) -> None:
        tokens = set()
        for row in rows:
            for stage in history.running_stages(row.id):
                tokens.add(stage_token(self.settings.state_dir, row.id, stage.position))
        killed = kill_leftover_stages(tokens)
        if killed:
            self.log.warning("pipeline.leftover_stage_killed", pids=killed)

    def _mark_interrupted(self, row: Any, now: float) -> None:
        error = "the daemon stopped during this promotion"
        for stage in history.running_stages(row.id):
            values = fields_of(
                status="interrupted",
                ended=now,
                duration=round(now - (stage.started or now), 3),
                error="the daemon stopped while this stage ran",
            )
            self._store(Update("stages", stage.id, values))
        values = fields_of(status="interrupted", ended=now, error=error, recovery="pending")
        self._store(Update("pipelines", row.id, values))
        self.publish(
            "pipeline.failed",
            level="error",
            env=row.target,
            pipeline_id=row.id,
            kind=row.kind,
            status="interrupted",
            error=error,
        )

    def _store(self, message: Update) -> None:
        self.ask("store", message, timeout=10.0)


def prune_artifacts(root: Path, keep: int, running: set[int]) -> int:
    """Delete the folders ``root/ID`` with ID at most the newest ID minus ``keep`` (never a
    running promotion's); answers how many went. Unreadable leftovers are skipped, not fatal."""
    try:
        ids = sorted(int(entry.name) for entry in root.iterdir() if entry.name.isdigit())
    except OSError:
        return 0
    if not ids:
        return 0
    removed = 0
    for pipeline_id in ids:
        if pipeline_id > ids[-1] - keep:
            break
        if pipeline_id not in running:
            shutil.rmtree(root / str(pipeline_id), ignore_errors=True)
            removed += 1
    return removed
