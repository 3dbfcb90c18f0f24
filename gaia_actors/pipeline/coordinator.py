"""PipelineCoordinator (``pipeline``): promotions DEV -> STAGING -> PROD through gated stages.

The coordinator owns the promotion locks and the status; the stages run in a runner thread
per promotion (``runner.py``) that reports back by messages, so ``GetPipelineStatus``,
``GetPipelineHistory`` and ``CancelPipeline`` answer while a stage runs.

A promotion holds every environment it touches (its source, its target, any other a stage acts
promote-all): another promotion to any of them gets ``Busy`` naming the holder. Testing a
staging that is being redeployed under the tests would prove nothing.

At start, promotions a previous daemon left ``running`` are marked ``interrupted``, the
processes of their running stage are killed, and a target left on the unconfirmed release is
rolled back to the one it had before (``recovery``). At stop, running promotions are interrupted
the same way and recovered at the next start: a rollback is not started while the daemon
shuts down.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gaia_actors.control.protocol import to_json
from gaia_actors.errors import Busy
from gaia_actors.events import PipelineEvent
from gaia_actors.messages import (
    CancelPipeline,
    GetPipelineHistory,
    GetPipelineStatus,
    InsertNow,
    Promote,
    fields_of,
    to_dict,
)
from gaia_actors.pipeline import history, stages
from gaia_actors.pipeline.errors import PromotionRefused
from gaia_actors.pipeline.recovery import Recovery
from gaia_actors.pipeline.reports import (
    PipelineReport,
    RecoverUnfinished,
    RunEnded,
    RunHandle,
    StageReport,
    event_name,
)
from gaia_actors.pipeline.runner import Leg
from gaia_actors.pipeline.runs import RECOVERY, RunState
from gaia_actors.pipeline.status import PipelineStatus
from gaia_actors.settings import PROMOTIONS

LEGS: dict[str, tuple[str, ...]] = {
    "dev": ("dev_to_staging",),
    "staging": ("staging_to_prod",),
    "all": ("dev_to_staging", "staging_to_prod"),
}
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


class PipelineCoordinator(Recovery):
    """Runs promotions as stages with timeouts, rolls back on failure, keeps the history."""

    # Life cycle

    def on_start(self) -> None:
        self._recover_or_retry()
        self._prune_artifacts()

    def on_terminate(self) -> None:
        self._interrupt_all()

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "running": to_json([run.view(0) for run in self.runs.values()]),
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

    def _promote(self, what: str, trigger: str, watcher: str, output: bool) -> dict[str, Any]:
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
            PipelineEvent.CANCELLING,
            level="warning",
            env=PROMOTIONS[run.kind][1],
            pipeline_id=run.pipeline_id,
            stage=run.stage,
        )
        return {"pipeline_id": run.pipeline_id, "cancelling": True, "stage": run.stage or None}

    def _status(self, lines: int) -> PipelineStatus:
        return PipelineStatus(
            running=tuple(run.view(lines) for run in self.runs.values()),
            locks=MappingProxyType(dict(self.locks)),
        )

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
