"""What a previous daemon left behind: promotions marked interrupted, the processes of their
running stage killed, and a target left on an unconfirmed release rolled back (by a recovery
run) to the release it had before.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import peewee

from gaia_actors.errors import GaiaError
from gaia_actors.events import PipelineEvent
from gaia_actors.messages import Update, fields_of
from gaia_actors.pipeline import history
from gaia_actors.pipeline.leftovers import kill_leftover_stages, stage_token
from gaia_actors.pipeline.reports import RecoverUnfinished, RunHandle
from gaia_actors.pipeline.runner import Runner
from gaia_actors.pipeline.runs import RECOVERY, RunKeeper, RunState
from supervisors import SupervisionError

RECOVERY_RETRY = 5.0  # seconds before looking again for unfinished promotions


class Recovery(RunKeeper):
    """Recovers, at start, the promotions a previous daemon left unfinished."""

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
            PipelineEvent.FAILED,
            level="error",
            env=row.target,
            pipeline_id=row.id,
            kind=row.kind,
            status="interrupted",
            error=error,
        )

    def _store(self, message: Update) -> None:
        self.ask("store", message, timeout=10.0)
