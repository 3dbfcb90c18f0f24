"""The per-promotion runner: a worker thread that runs the stages and reports back by messages.

The coordinator's mailbox never waits for a stage: it runs in a worker that reports back with a
message. A run is one promotion, or both legs of a promote-all, stopping at the first failure.
The runner owns its ``Promotion`` state; it writes the history through the Store (asks, so a
reported stage is already in the store), tells the coordinator a
``PipelineReport``/``StageReport`` at every transition (the coordinator keeps the status and
publishes the events) and ends with ``RunEnded``.

The reports and the ``RunHandle`` it shares with the coordinator are ``reports``'s; how it
reports and writes, ``reporting``'s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterable
from typing import Any

import structlog

from gaia_actors.errors import StoreError
from gaia_actors.layout import Layout, current_release
from gaia_actors.pipeline import history
from gaia_actors.pipeline.errors import StageCancelled, StageTimeout
from gaia_actors.pipeline.leftovers import stage_token
from gaia_actors.pipeline.reporting import Reporter
from gaia_actors.pipeline.reports import LIVE_LINES, RunEnded
from gaia_actors.pipeline.rollback import RollbackPlan, roll_back
from gaia_actors.pipeline.stage import Outcome, Promotion, Stage, StageContext, Step
from gaia_actors.settings import PROMOTIONS
from supervisors.records import record

log = structlog.get_logger("gaia.pipeline.runner")

FAILED = ("failed", "timed_out", "cancelled", "interrupted")  # statuses that stop a promotion


@record
class Leg:
    """One promotion of a run."""

    kind: str
    stages: tuple[Stage, ...]

    @property
    def source(self) -> str:
        return PROMOTIONS[self.kind][0]

    @property
    def target(self) -> str:
        return PROMOTIONS[self.kind][1]


@record
class _Running:
    """A step recorded as running: its row and when it started (monotonic)."""

    row: int
    step: Step
    started: float


class Runner(Reporter):
    """Runs one run's legs (``run``) or the recovery of an interrupted one (``recover``)."""

    # A run

    def run(self, legs: Iterable[Leg], chained: bool) -> None:
        ids: list[int] = []
        status, error, release = "failed", "", ""
        try:
            for i, leg in enumerate(legs):
                pipeline_id = self.handle.run_id if i == 0 else self._new_pipeline(leg)
                ids.append(pipeline_id)
                chain = self.handle.run_id if chained else None
                status, error, release = self._run_leg(leg, pipeline_id, chain, release)
                if status != "succeeded":
                    break
        except Exception as exc:  # the thread's boundary: recorded, never vanishes
            self.log.exception("pipeline.runner_failed")
            status, error = "failed", f"the pipeline runner failed: {exc!r}"
            if ids:
                with contextlib.suppress(StoreError):
                    self._update("pipelines", ids[-1], status="failed", error=error, ended=_now())
        finally:
            self._tell(RunEnded(self.handle.run_id, status, tuple(ids), error))

    def _new_pipeline(self, leg: Leg) -> int:
        return self._insert(
            "pipelines",
            kind=leg.kind,
            status="running",
            started=_now(),
            source=leg.source,
            target=leg.target,
            trigger="promote-all",
            chain_id=self.handle.run_id,
        )

    def _run_leg(
        self, leg: Leg, pipeline_id: int, chain: int | None, release: str
    ) -> tuple[str, str, str]:
        promotion = Promotion(pipeline_id, leg.kind, leg.source, leg.target)
        self._init_release(promotion, release, any(s.kind == "build" for s in leg.stages))
        before = current_release(self.settings.env_dir(leg.target)) or ""
        self._update(
            "pipelines",
            pipeline_id,
            release_id=promotion.release,
            previous_release=before,
            chain_id=chain,
        )
        started = time.monotonic()
        self._pipeline_report(promotion, "running")
        failure = self._run_stages(promotion, leg.stages)
        interrupted = self.handle.stop.is_set() and self.handle.reason == "interrupted"
        rollback = rollback_error = ""
        if failure is not None and promotion.deploy_started and not interrupted:
            rollback, rollback_error = self._rollback(promotion, len(leg.stages) + 1)
        status, error = self._verdict(failure, rollback, rollback_error)
        duration = round(time.monotonic() - started, 3)
        self._update(
            "pipelines",
            pipeline_id,
            status=status,
            ended=_now(),
            duration=duration,
            error=error,
            rollback=rollback,
            backup=promotion.backup,
            previous_release=promotion.previous or before,
            release_id=promotion.release,
            recovery="pending" if status == "interrupted" else "",
        )
        self._pipeline_report(promotion, status, error, rollback, duration)
        return status, error, promotion.release

    def _verdict(
        self, failure: tuple[str, str, str] | None, rollback: str, rollback_error: str
    ) -> tuple[str, str]:
        if failure is None:
            return "succeeded", ""
        stage, status, why = failure
        overall = status if status in ("cancelled", "interrupted") else "failed"
        error = f"stage {stage} {status.replace('_', ' ')}: {why}" if stage else why
        if rollback == "failed":
            error += f"; the rollback failed too: {rollback_error}"
        return overall, error

    def _init_release(self, promotion: Promotion, release: str, builds: bool) -> None:
        """The release a promotion starts from: the previous leg's, none when it builds one,
        or else the one the source runs."""
        env_dir = self.settings.env_dir(promotion.source)
        if not release and not builds:
            release = current_release(env_dir) or ""
        if release:
            promotion.release, promotion.release_dir = release, env_dir / "releases" / release

    def _run_stages(
        self, promotion: Promotion, stages: tuple[Stage, ...]
    ) -> tuple[str, str, str] | None:
        """Run the stages in order; the first blocking failure (stage, status, error) skips
        the rest. A cancel after the last stage still counts: the operator did not want it."""
        failure: tuple[str, str, str] | None = None
        for stage in stages:
            if failure is None and self.handle.stop.is_set():
                reason = self.handle.reason
                failure = ("", reason, f"{reason} before stage {stage.name}")
            if failure is not None:
                self._skip(promotion, stage)
                continue
            status, why = self._run_stage(promotion, stage)
            if status in FAILED:
                failure = (stage.name, status, why)
        if failure is None and self.handle.stop.is_set():
            reason = self.handle.reason
            failure = ("", reason, f"{reason} during the last stage")
        return failure

    # One stage

    def _run_stage(self, promotion: Promotion, stage: Stage) -> tuple[str, str]:
        running = self._begin(promotion, stage.step)
        outcome = self._attempt(stage, self._context(promotion, stage, running.started))
        status = self._status(stage, outcome)
        if status == "interrupted":
            error = f"the daemon stopped: {outcome.error}"
            outcome = dataclasses.replace(outcome, error=error, summary=error)
        self._end(running, promotion, outcome, status)
        return status, outcome.error or outcome.summary

    def _begin(self, promotion: Promotion, step: Step) -> _Running:
        """Record and report a step as running."""
        started = time.monotonic()
        self.handle.output.start(promotion.pipeline_id, step.name)
        row = self._insert_step(promotion, step, "running", started=_now())
        self._tell(self._stage_message(promotion, step, "running"))
        return _Running(row, step, started)

    def _end(self, running: _Running, promotion: Promotion, outcome: Outcome, status: str) -> None:
        duration = round(time.monotonic() - running.started, 3)
        self._finish_stage(running.row, promotion, outcome, status, duration)
        ended = self._stage_message(
            promotion,
            running.step,
            status,
            duration=duration,
            summary=outcome.summary,
            error=outcome.error,
        )
        self._tell(ended)

    def _insert_step(self, promotion: Promotion, step: Step, status: str, **values: Any) -> int:
        return self._insert(
            "stages",
            pipeline_id=promotion.pipeline_id,
            position=step.position,
            name=step.name,
            kind=step.kind,
            env=step.env,
            blocking=step.blocking,
            status=status,
            **values,
        )

    def _context(self, promotion: Promotion, stage: Stage, started: float) -> StageContext:
        return StageContext(
            settings=self.settings,
            registry=self.registry,
            promotion=promotion,
            env=stage.env,
            deadline=started + stage.timeout,
            cancel=self.handle.stop,
            on_line=self._on_line,
            artifacts=self.settings.state_dir / "pipelines" / str(promotion.pipeline_id),
            token=stage_token(self.settings.state_dir, promotion.pipeline_id, stage.position),
        )

    @staticmethod
    def _attempt(stage: Stage, ctx: StageContext) -> Outcome:
        try:
            return stage.run(ctx)
        except StageTimeout as exc:
            return Outcome(False, str(exc), str(exc), timed_out=True)
        except StageCancelled as exc:
            return Outcome(False, str(exc), str(exc), cancelled=True)
        except Exception as exc:  # noqa: BLE001 - whatever breaks a stage fails it, with its text
            error = str(exc) or repr(exc)
            return Outcome(False, error, error)

    def _status(self, stage: Stage, outcome: Outcome) -> str:
        if outcome.ok:
            return "passed"
        if outcome.cancelled:
            return self.handle.reason
        if not stage.blocking:
            return "warned"
        return "timed_out" if outcome.timed_out else "failed"

    def _finish_stage(
        self, row: int, promotion: Promotion, outcome: Outcome, status: str, duration: float
    ) -> None:
        limit = self.settings.pipeline.output_tail
        output = outcome.output or "\n".join(self.handle.output.last(LIVE_LINES))
        self._update(
            "stages",
            row,
            status=status,
            ended=_now(),
            duration=duration,
            exit_code=outcome.exit_code,
            output_tail=output[-limit:] if limit else "",
            tests=outcome.tests,
            error=outcome.error,
            summary=outcome.summary,
            detail=outcome.detail or None,
        )
        # A build changes the release; a backup gives the rollback its data.
        self._update(
            "pipelines",
            promotion.pipeline_id,
            release_id=promotion.release,
            backup=promotion.backup,
        )

    def _skip(self, promotion: Promotion, stage: Stage) -> None:
        self._insert_step(promotion, stage.step, "skipped")
        self._watch(self._stage_message(promotion, stage.step, "skipped"))

    # Rollback (also of an interrupted promotion, at the next start)

    def _rollback(self, promotion: Promotion, position: int) -> tuple[str, str]:
        """Run and record the rollback stage; answers (what was rolled back | failed, error)."""
        running = self._begin(promotion, Step(position, "rollback", "rollback", promotion.target))
        plan = RollbackPlan(
            self.settings,
            self.registry,
            promotion.target,
            promotion.previous,
            promotion.backup,
            promotion.pipeline_id,
            running.started + self.settings.pipeline.rollback_timeout,
        )
        try:
            outcome = roll_back(plan, self._on_line)
        except Exception as exc:  # noqa: BLE001 - a failed rollback is recorded, not raised
            error = f"{type(exc).__name__}: {exc}"
            outcome = Outcome(False, error, error, detail={"rollback": "failed"})
        self._end(running, promotion, outcome, "passed" if outcome.ok else "failed")
        return str(outcome.detail.get("rollback", "failed")), outcome.error

    def recover(self, pipeline_id: int) -> None:
        """After an interruption: if the target runs the promotion's release (never confirmed
        by a finished promotion), put it back on the release it had before."""
        status = "failed"
        try:
            row = history.get(pipeline_id)
            promotion = Promotion(
                row.id, row.kind, row.source, row.target,
                release=row.release_id, previous=row.previous_release, backup=row.backup or "",
                deploy_started=True,
            )  # fmt: skip
            current = Layout.of(self.settings, row.target).current_release()
            if (
                promotion.release
                and promotion.release not in (promotion.previous, "")
                and (current == promotion.release and promotion.previous)
            ):
                what, error = self._rollback(promotion, history.next_position(row.id))
                recovery = "rolled back" if what != "failed" else f"failed: {error}"
                self._update("pipelines", row.id, recovery=recovery, rollback=what)
                status = "succeeded" if what != "failed" else "failed"
            else:
                self._update("pipelines", row.id, recovery="not needed")
                status = "succeeded"
        except Exception:  # the thread's boundary: logged
            self.log.exception("pipeline.recovery_failed", pipeline_id=pipeline_id)
        finally:
            self._tell(RunEnded(self.handle.run_id, status, (pipeline_id,)))


def _now() -> float:
    return time.time()
