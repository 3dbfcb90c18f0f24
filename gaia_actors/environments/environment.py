"""EnvironmentActor (``environment.<env>``): one environment's process, releases and data.

An environment is its actor and its process together: when the
process exits, or the failover agent declares it down, the actor fails, and its supervisor
restarts it, which starts the process again. A restarted actor first adopts a process that
is still alive (pid file with start time), so an actor crash costs the service nothing.

Deploy and rollback stop and start the process inside the mailbox (quick), then wait for
healthy in a thread that reports back; the asker gets a deferred reply, and liveness pings
keep being answered while a new release warms up. Backups, restores, resets and undos run as
data jobs in a worker thread (``dataops``), for the same reason; lost data is restored
(``dataloss``). The actor's whole state is one ``EnvState`` value (``state``); the process and
the verdicts are in ``core``, the release operations in ``deploys``.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from gaia_actors import process
from gaia_actors.control.protocol import to_json
from gaia_actors.environments import backups, releases, restores
from gaia_actors.environments.dataloss import DataLossOperations
from gaia_actors.environments.deploys import ReleaseOperations
from gaia_actors.environments.notices import (
    CheckData,
    HealthWaited,
    Housekeeping,
    JobDone,
    ProcessExited,
    ScheduledBackup,
)
from gaia_actors.errors import EnvironmentFailure
from gaia_actors.events import EnvironmentEvent
from gaia_actors.messages import (
    BuildRelease,
    Deploy,
    Fail,
    GetEnvStatus,
    GetLogs,
    KillProcess,
    ResetData,
    RestoreBackup,
    Rollback,
    TakeBackup,
)
from gaia_actors.replies import EnvStatus
from gaia_actors.settings import backup_interval

# What waits while a data job runs: the process's news (a verdict about it, its exit) and what
# may replace the data by itself (a failure looks for lost data first).
_WAIT_FOR_JOB = (HealthWaited, ProcessExited, Fail, CheckData)


class EnvironmentActor(ReleaseOperations, DataLossOperations):
    """Owns one environment."""

    # Life cycle

    def on_start(self) -> None:
        if restores.repair_data(self.layout.data):
            self.publish_env(EnvironmentEvent.RESTORE_FINISHED, level="warning", reason="repair")
        self.layout.make_dirs()
        report = releases.repair(self.layout.root)
        if report.changed:
            self.publish_env(
                EnvironmentEvent.REPAIRED,
                level="warning",
                removed=list(report.removed),
                dangling=report.dangling,
                current=report.current,
            )
        if self.layout.current_release() is None:
            self._first_release()
        self._start_process()
        interval = backup_interval(self.config.backup_schedule)
        if interval:
            self.every(interval, ScheduledBackup())
        self.every(3600.0, Housekeeping(), first=30.0)
        # The first look, the baseline, at once: a database deleted before it is not seen.
        self.every(self.config.data_check_interval, CheckData(), first=0.0)

    def on_stop(self) -> None:
        super().on_stop()
        self.cancel.set()
        self._wait_for_job("the environment actor stopped")
        self._fail_operation(EnvironmentFailure(self.env, "the environment actor stopped"))
        proc = self.now.started.proc
        if not self.registry.stopping.is_set():
            # A restart of the actor (a group restart, a reset), not a shutdown: the service
            # keeps serving and the next generation adopts it through the pid file.
            if proc is not None:
                proc.detach()
            self.publish_env(EnvironmentEvent.DETACHED, pid=proc and proc.pid)
            return
        self._stop_process()
        process.remove_pidfile(self.layout.pidfile)
        self.publish_env(EnvironmentEvent.STOPPED, release=self.now.release)

    def on_failure(self, *exc_info: Any) -> None:
        self.cancel.set()
        self._wait_for_job(f"the environment failed: {exc_info[1]}")
        self._fail_operation(EnvironmentFailure(self.env, f"the environment failed: {exc_info[1]}"))
        proc = self.now.started.proc
        if self.now.process_failed and proc is not None and not proc.exited:
            with contextlib.suppress(process.ProcessError):
                proc.stop(self.config.stop_grace)
        elif proc is not None:
            # The actor itself crashed: the process is fine and the next generation adopts
            # it through the pid file.
            proc.detach()
        super().on_failure(*exc_info)

    def state(self) -> dict[str, Any]:
        return {**super().state(), **to_json(self._status())}

    # Messages

    def receive(self, message: Any) -> Any:
        if self._postponed(message):
            return None
        match message:
            case ProcessExited(pid=pid, code=code):
                return self._on_exit(pid, code)
            case HealthWaited(token=token, ok=ok, why=why):
                return self._on_health(token, ok, why)
            case JobDone(token=token, outcome=outcome):
                return self._on_job_done(token, outcome)
            case GetEnvStatus():
                return self._status()
            case Fail(reason=reason, cause=cause):
                return self._fail(reason, cause)
            case KillProcess():
                return self._kill()
            case BuildRelease():
                return self._build()
            case Deploy(release=release, pipeline_id=pipeline_id, timeout=timeout):
                return self._deploy(release, pipeline_id, timeout)
            case Rollback(release=release, pipeline_id=pipeline_id):
                return self._rollback(release, pipeline_id)
            case TakeBackup(reason=reason, pipeline_id=pipeline_id):
                return self._backup(reason, pipeline_id)
            case RestoreBackup(backup=backup, undo=undo):
                return self._undo() if undo else self._restore(backup or None)
            case ResetData():
                return self._reset()
            case GetLogs(lines=lines):
                return process.read_log_tail(self.layout.log_sink.path, max(1, min(lines, 10_000)))
            case ScheduledBackup():
                return self._scheduled_backup()
            case Housekeeping():
                return self._housekeeping()
            case CheckData():
                return self._check_data()
            case _:
                return self.unhandled(message)

    def _postponed(self, message: Any) -> bool:
        """Keep ``message`` for when the running data job ends (see ``dataops``)."""
        if self.now.job is None or not isinstance(message, _WAIT_FOR_JOB):
            return False
        self.now = self.now.postpone(message)
        return True

    # Housekeeping and status

    def _housekeeping(self) -> None:
        process.prune_logs(self.layout.logs, self.config.log_retention_days)
        if self.now.job is None:  # a job may be writing or reading a backup: the next tick
            backups.prune_backups(
                self.layout.backups, self.config.backup_keep, self.config.backup_max_age_days
            )
        self._prune_releases()

    def _status(self) -> EnvStatus:
        started = self.now.started
        running = started.running()
        node = self.registry.node(self.name)
        data_status = self.watch.status()
        return EnvStatus(
            name=self.env,
            state="running" if running else "stopped",
            # A process that has just died is not healthy, even before its exit is handled.
            healthy=self.now.healthy and running,
            pid=started.proc.pid if running and started.proc else None,
            adopted=started.adopted,
            release=self.now.release,
            last_healthy=releases.last_healthy(self.layout.root),
            port=self.config.port,
            url=self.layout.health_url,
            started_at=started.at,
            uptime=round(time.monotonic() - started.mono, 3) if running else 0.0,
            restarts=node.restarts if node else 0,
            operation=self.now.activity(),
            data_bytes=self.layout.data_bytes(),
            databases=data_status.databases,
            watched=data_status.watched,
            backup_note=data_status.backup_note,
            data_loss=data_status.data_loss,
            replaced_data=data_status.replaced_data,
            undo=data_status.undo,
            log_bytes=self.layout.log_bytes(),
            releases=tuple(r.id for r in releases.list_releases(self.layout.root)),
        )
