"""The environment actor's data operations: backups, restore, reset, undo.

Everything that takes time in proportion to the data (a backup, choosing and verifying the
backup to restore, stopping the process and replacing the data, rescuing deleted databases,
the check of the live data on a failure) runs as a *data job* in a worker thread that reports
back with ``JobDone``; the actor keeps answering liveness pings and ``status`` meanwhile, so a
large database never gets a healthy actor replaced as hung. The rules that keep the data safe
while a job runs:

- one job at a time: a backup asked meanwhile waits its turn (as it would behind a busy
  mailbox; a scheduled one already waiting serves the next tick too);
- a restore, reset or undo asked meanwhile is refused with ``Busy`` naming the job, at once,
  rather than queued behind an unknown amount of work: the asker retries or gives up (the
  pipeline's rollback retries on Busy), and nothing is done behind an operator's back;
- what could replace the data by itself (``Fail``, which looks for lost data first, and the
  data-loss watch) and the process's news (a verdict about it, its exit, which a restore
  makes stale) wait until the job ends (gen_statem's postpone); housekeeping leaves the
  backups alone until the next tick;
- an actor that stops or fails waits for its job to end first, so the recovery ladder's
  restore (which runs once the actor is down) never meets a backup of the same data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pykka

from gaia_actors import process
from gaia_actors.environments import alerts, backups, data, recovery, restores, service
from gaia_actors.environments.core import EnvironmentCore
from gaia_actors.environments.notices import nothing_to_salvage, unexpected
from gaia_actors.environments.state import BACKUP, BackupRequest, Operation, OpKind, Reply
from gaia_actors.errors import EnvironmentFailure, Rejected
from gaia_actors.events import EnvironmentEvent
from supervisors.records import record

Detail = dict[str, Any]


@record
class _BackedUp:
    """What a backup job made, and why pruning the old backups failed (None if it did not)."""

    record: backups.BackupRecord
    prune_error: OSError | None


@record
class _Replaced:
    """What a data-replacing job did (the operation's detail), and why rescuing the rows of
    deleted databases failed ("" if it did not)."""

    detail: Detail
    rescue_error: str


class DataOperations(EnvironmentCore):
    """Backups and the operations that replace one environment's data."""

    # Backups

    def _after_job(self) -> None:
        request, self.now = self.now.next_backup()
        if request is not None:
            self._start_backup(request)

    def _backup(self, reason: str, pipeline_id: int | None) -> Reply:
        reply: Reply = pykka.ThreadingFuture()
        self._ask_backup(BackupRequest(reason, pipeline_id, reply))
        return reply

    def _scheduled_backup(self) -> None:
        if any(r.reply is None for r in self.now.backups):
            return  # the scheduled one already waiting serves this tick too
        self._ask_backup(BackupRequest("scheduled", None, None))

    def _ask_backup(self, request: BackupRequest) -> None:
        if self.now.job is None:
            self._start_backup(request)
        else:
            self.now = self.now.backup_asked(request)

    def _start_backup(self, request: BackupRequest) -> None:
        layout, config = self.layout, self.config

        def work() -> _BackedUp:
            record = data.back_up(layout.data, layout.backups, config.databases)
            try:
                backups.prune_backups(
                    layout.backups, config.backup_keep, config.backup_max_age_days
                )
            except OSError as exc:
                return _BackedUp(record, exc)
            return _BackedUp(record, None)

        self._run_job(
            BACKUP,
            work,
            lambda outcome: self._backup_done(request, outcome),
            lambda outcome: self._salvage_backup(request, outcome),
            request.reply,
        )

    def _salvage_backup(self, request: BackupRequest, outcome: object) -> None:
        if isinstance(outcome, _BackedUp):
            self._record_backup(outcome.record, request)

    def _backup_done(self, request: BackupRequest, outcome: object) -> None:
        try:
            result: object = self._backed_up(request, outcome)
        except (Rejected, backups.BackupError, OSError) as exc:
            if request.reply is None:
                self.publish_env(EnvironmentEvent.BACKUP_FAILED, level="error", error=str(exc))
                return
            self.log.warning("actor.rejected", message="TakeBackup", error=str(exc))
            result = exc
        if request.reply is not None:
            request.reply.set(result)

    def _backed_up(self, request: BackupRequest, outcome: object) -> Detail:
        if isinstance(outcome, backups.NothingToBackUp):
            raise Rejected(f"environment {self.env!r}: nothing to back up ({outcome})")
        if isinstance(outcome, data.NotADatabase):
            raise Rejected(f"environment {self.env!r}: {outcome}")
        if not isinstance(outcome, _BackedUp):
            raise unexpected(outcome)
        record = outcome.record
        self._record_backup(record, request)
        if outcome.prune_error is not None:
            raise outcome.prune_error
        return {
            "env": self.env,
            "backup": record.id,
            "path": str(record.path),
            "size": record.size,
            "sha256": record.sha256,
            "verified": record.verified,
            "integrity": record.integrity,
        }

    def _record_backup(self, record: backups.BackupRecord, request: BackupRequest) -> None:
        self.record(
            "backups",
            ts=time.time(),
            env=self.env,
            path=str(record.path),
            size=record.size,
            sha256=record.sha256,
            integrity=record.integrity,
            verified=record.verified,
            reason=request.reason,
            pipeline_id=request.pipeline_id,
        )
        self.publish_env(
            EnvironmentEvent.BACKUP,
            level="info" if record.verified else "error",
            backup=record.id,
            size=record.size,
            verified=record.verified,
            reason=request.reason,
        )

    # Restore, undo, reset

    def _restore(self, backup: str | None) -> Reply:
        self._refuse_if_busy(touches_data=True)
        op = self._begin(OpKind.RESTORE)

        def chosen(outcome: object) -> None:
            if isinstance(outcome, Rejected):
                self.log.warning("actor.rejected", message="RestoreBackup", error=str(outcome))
                self._fail_operation(outcome)
                return
            name, skipped = self._chosen(outcome)
            restore = lambda: recovery.restore_data(self.layout, name, skipped)  # noqa: E731
            self._replace(op, restore, "operator restore")

        self._run_job("restore", lambda: self._choose_backup(backup), chosen, nothing_to_salvage)
        return op.reply

    def _choose_backup(self, backup: str | None) -> tuple[str, list[tuple[str, str]]]:
        """The backup a restore will use, checked before anything stops (and the newer ones
        it passes over, with why); Rejected if none verifies. Runs in the job's thread."""
        try:
            record, skipped = restores.choose(self.layout.backups, backup)
        except backups.NoVerifiedBackup as exc:
            known = [r.id for r in backups.list_backups(self.layout.backups)]
            raise Rejected(
                f"environment {self.env!r}: {str(exc).removeprefix(f'{exc.path}: ')}; "
                f"backups: {', '.join(known) or 'none'}"
            ) from None
        return record.id, skipped

    @staticmethod
    def _chosen(outcome: object) -> tuple[str, list[tuple[str, str]]]:
        if not isinstance(outcome, tuple):
            raise unexpected(outcome)
        return outcome

    def _undo(self) -> Reply:
        self._refuse_if_busy(touches_data=True)
        if not data.replaced_copies(self.layout.data):
            raise Rejected(f"environment {self.env!r} has no replaced data to put back")
        op = self._begin(OpKind.UNDO)
        self._replace(op, lambda: recovery.undo_data(self.layout), "operator undo")
        return op.reply

    def _reset(self) -> Reply:
        self._refuse_if_busy(touches_data=True)
        if not self.config.reset_on_error:
            raise Rejected(
                f"environment {self.env!r} has reset_on_error = false: its data is never reset "
                "(use restore to go back to a backup)"
            )
        op = self._begin(OpKind.RESET)
        self._replace(op, lambda: recovery.reset_data(self.layout), "operator reset")
        return op.reply

    def _begin(self, kind: OpKind) -> Operation:
        current = self.layout.current_release() or ""
        op = Operation(kind, current, current, pykka.ThreadingFuture())
        self.now = self.now.began(op)
        return op

    def _replace(
        self, op: Operation, replace: Callable[[], Detail], why: str, *, lost: bool = False
    ) -> None:
        """Stop the process and replace the data in a job, then start it again; ``lost``:
        after a data loss (its rows are rescued from the process first, and a failure to
        replace the data fails the actor)."""
        proc, layout, log = self.now.started.proc, self.layout, self.log
        grace = self.config.stop_grace
        self.now = self.now.stopped()

        def work() -> _Replaced:
            rescued, rescue_error = _rescue(self.watch, proc) if lost else (None, "")
            if error := service.stop(proc, grace):
                log.error("environment.stop_failed", error=error)
            process.remove_pidfile(layout.pidfile)
            detail = replace()
            if rescued is not None and detail["saved_copy"]:
                detail["rescued"] = data.merge_into(rescued, Path(detail["saved_copy"]))
            return _Replaced(detail, rescue_error)

        self._run_job(
            op.kind.value,
            work,
            lambda outcome: self._replaced(op, why, lost, outcome),
            lambda outcome: self._report_replaced(op, why, outcome),
        )

    def _replaced(self, op: Operation, why: str, lost: bool, outcome: object) -> None:
        kind = op.kind
        if isinstance(outcome, backups.BackupError | OSError):
            self._start_or_fail(kind.value)  # back on the data it had
            error = EnvironmentFailure(self.env, f"{kind} failed: {outcome}")
            error.__cause__ = outcome
            self._fail_operation(error)
            if lost:
                raise error
            return
        if not isinstance(outcome, _Replaced):
            raise unexpected(outcome)
        self._report_replaced(op, why, outcome)
        if not self._start_or_fail(kind.value):
            assert self.now.operation is not None
            failed = f"{kind}: the process could not start"
            self._finish_operation(self.now.operation, "failed", 0.0, failed)

    def _report_replaced(self, op: Operation, why: str, outcome: object) -> None:
        """The data is replaced: say so (event, alert, incident) and watch the new files."""
        if not isinstance(outcome, _Replaced):
            return
        if outcome.rescue_error:
            self.publish_env(
                EnvironmentEvent.RESCUE_FAILED, level="error", error=outcome.rescue_error
            )
        self.watch.rebaseline()
        detail = outcome.detail
        if self.now.operation is op:
            self.now = self.now.with_detail(detail)
        self.publish_env(op.kind.replaced_event, **detail)
        alerts.data_replaced(
            self.registry, self.name, self.env, kind=op.kind.value, why=why, detail=detail
        )


def _rescue(watch: Any, proc: service.Handle | None) -> tuple[Path | None, str]:
    """Copy databases deleted under the running process out of it, before it stops; where
    they went (or None), and why that failed ("" when it did not)."""
    if proc is None or proc.exited:
        return None, ""
    try:
        return watch.rescue(proc.pid), ""
    except OSError as exc:
        return None, str(exc)
