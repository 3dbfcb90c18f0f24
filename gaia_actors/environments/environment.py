"""EnvironmentActor (``environment.<env>``): one environment's process, releases and data.

An environment is its actor and its process together: when the
process exits, or the failover agent declares it down, the actor fails, and its supervisor
restarts it, which starts the process again. A restarted actor first adopts a process that
is still alive (pid file with start time), so an actor crash costs the service nothing.

Deploy, rollback, restore and reset stop and start the process inside the mailbox (quick),
then wait for healthy in a thread that reports back; the asker gets a deferred reply, and
liveness pings keep being answered while a new release warms up.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pykka

from gaia_actors import process
from gaia_actors.actor import GaiaActor
from gaia_actors.environments import (
    alerts,
    backups,
    builds,
    data,
    evidence,
    recovery,
    releases,
    restores,
)
from gaia_actors.environments.watch import DataWatch
from gaia_actors.errors import Busy, EnvironmentFailure, Rejected
from gaia_actors.events import (
    DATA_OPERATION_REPLACED,
    OPERATION_DONE,
    OPERATION_FAILED,
    OPERATION_REVERTED,
    OPERATION_STARTED,
    EnvironmentEvent,
)
from gaia_actors.health import BodyRule
from gaia_actors.httpclient import wait_healthy
from gaia_actors.layout import Layout, port_in_use
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
    message,
)
from gaia_actors.settings import Settings, backup_interval
from supervisors import Link

Handle = process.Child | process.AdoptedProcess
# What starting a process may raise: a busy port or no release (EnvironmentFailure), a
# command that cannot run or a pid file we cannot read (ProcessError), a bad release, I/O.
_START_ERRORS = (EnvironmentFailure, process.ProcessError, releases.ReleaseError, OSError)


# Messages the actor sends itself (from watcher threads and timers).


@message
class ProcessExited:
    """The environment's process exited (from its watcher thread)."""

    pid: int
    code: int | None


@message
class HealthWaited:
    """A wait-for-healthy finished: for the start of a process, or for an operation."""

    token: int
    ok: bool
    why: str


@message
class ScheduledBackup:
    """Timer: take a scheduled backup."""


@message
class Housekeeping:
    """Timer: prune old logs, backups and releases."""


@message
class CheckData:
    """Timer: look for databases lost while the process runs."""


@dataclass
class _Operation:
    """A deploy, rollback, restore or reset waiting for its health verdict."""

    kind: str
    target: str
    previous: str | None
    future: pykka.ThreadingFuture[Any]
    started: float = field(default_factory=time.monotonic)
    reverting: bool = False
    pipeline_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class EnvironmentActor(GaiaActor):
    """Owns one environment."""

    def __init__(self, link: Link, settings: Settings, env: str) -> None:
        super().__init__(link)
        self.settings = settings
        self.env = env
        self.layout = Layout.of(settings, env)
        self.config = self.layout.config
        self.log = self.log.bind(env=env)
        self.proc: Handle | None = None
        self.release: str | None = None
        self.started_at = 0.0
        self.started_mono = 0.0
        self.adopted = False
        self.process_failed = False  # the failure is the process's: kill it on the way down
        self.operation: _Operation | None = None
        self.tokens = 0
        self.healthy = False
        self.cancel = threading.Event()
        self.watch = DataWatch(self.layout)

    # Life cycle

    def on_start(self) -> None:
        if restores.repair_data(self.layout.data):
            self.publish(
                EnvironmentEvent.RESTORE_FINISHED, level="warning", env=self.env, reason="repair"
            )
        self.layout.make_dirs()
        report = releases.repair(self.layout.root)
        if report.changed:
            self.publish(
                EnvironmentEvent.REPAIRED,
                level="warning",
                env=self.env,
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
        self._fail_operation(EnvironmentFailure(self.env, "the environment actor stopped"))
        if not self.registry.stopping.is_set():
            # A restart of the actor (a group restart, a reset), not a shutdown: the service
            # keeps serving and the next generation adopts it through the pid file.
            if self.proc is not None:
                self.proc.detach()
            self.publish(EnvironmentEvent.DETACHED, env=self.env, pid=self.proc and self.proc.pid)
            return
        self._stop_process()
        process.remove_pidfile(self.layout.pidfile)
        self.publish(EnvironmentEvent.STOPPED, env=self.env, release=self.release)

    def on_failure(self, *exc_info: Any) -> None:
        self.cancel.set()
        self._fail_operation(EnvironmentFailure(self.env, f"the environment failed: {exc_info[1]}"))
        if self.process_failed and self.proc is not None and not self.proc.exited:
            with contextlib.suppress(process.ProcessError):
                self.proc.stop(self.config.stop_grace)
        elif self.proc is not None:
            # The actor itself crashed: the process is fine and the next generation adopts
            # it through the pid file.
            self.proc.detach()
        super().on_failure(*exc_info)

    def state(self) -> dict[str, Any]:
        return {**super().state(), **self._status()}

    # Messages

    def receive(self, message: Any) -> Any:
        match message:
            case ProcessExited(pid=pid, code=code):
                return self._on_exit(pid, code)
            case HealthWaited(token=token, ok=ok, why=why):
                return self._on_health(token, ok, why)
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

    # The process

    def _first_release(self) -> None:
        release = self._build_release()
        releases.switch_current(self.layout.root, release.id)
        self.publish(EnvironmentEvent.INITIALISED, env=self.env, release=release.id)

    def _build_release(self) -> releases.Release:
        release = builds.build_release(
            self.layout.source,
            self.layout.releases,
            self.config.ignore,
            self.layout.build_argv(),
            timeout=self.config.build_timeout,
        )
        self.record(
            "releases",
            ts=time.time(),
            env=self.env,
            release_id=release.id,
            source=release.source,
            content_hash=release.content_hash,
            status="built",
        )
        return release

    def _start_process(self) -> None:
        self.release = self.layout.current_release()
        if self.release is None:
            raise EnvironmentFailure(self.env, "no current release to run")
        adopted = self._adoptable(process.adopt(self.layout.pidfile, self.layout.log_sink))
        if adopted is not None and _release_of(adopted.pid) not in (None, self.release):
            # The daemon died between switching `current` and restarting the process: the
            # survivor runs another release, so it is replaced rather than adopted.
            self.publish(
                EnvironmentEvent.STALE_PROCESS,
                level="warning",
                env=self.env,
                pid=adopted.pid,
                running=_release_of(adopted.pid),
                current=self.release,
            )
            adopted.stop(self.config.stop_grace)
            adopted = None
        if adopted is not None:
            self.proc, self.adopted = adopted, True
        else:
            self._stop_strays()
            self.proc, self.adopted = self._spawn(self.release), False
        self.started_at, self.started_mono = time.time(), time.monotonic()
        pid = self.proc.pid
        ref = self.actor_ref
        self.proc.watch(lambda code: _tell(ref, ProcessExited(pid, code)))
        self.publish(
            EnvironmentEvent.STARTED,
            env=self.env,
            pid=pid,
            release=self.release,
            adopted=self.adopted,
            port=self.config.port,
        )
        self._wait_for_health(self.config.deploy_timeout)

    def _adoptable(self, adopted: process.AdoptedProcess | None) -> process.AdoptedProcess | None:
        """``adopted``, unless it was started with another command or environment values
        than the configuration now gives: then it is stopped, to start under the new one."""
        if adopted is None or self.release is None:
            return adopted
        wanted = self.layout.command_record(self.release)
        was = _started_with(self.layout, adopted.pid)
        if was is None or was == wanted:
            return adopted
        self.publish(
            EnvironmentEvent.CONFIG_CHANGED,
            level="warning",
            env=self.env,
            pid=adopted.pid,
            was=json.dumps(was, sort_keys=True),
            now=json.dumps(wanted, sort_keys=True),
        )
        adopted.stop(self.config.stop_grace)
        return None

    def _stop_strays(self) -> None:
        """Stop service processes of this environment that no pid file names.

        A daemon killed between spawning a process and writing its pid file leaves one
        behind, holding the port: the next daemon would find the port busy and park the
        environment. Looked for on a generation's first start (after a daemon or supervisor
        restart) and whenever the port is busy; the scan of /proc costs a few milliseconds.
        """
        if self.link.generation > 1 and not port_in_use(self.config.host, self.config.port):
            return
        for pid in self.layout.service_pids():
            start_time = process.proc_start_time(pid)
            if start_time is None:
                continue
            try:
                stray = process.AdoptedProcess(pid, start_time, None, None)
            except ProcessLookupError:
                continue  # exited meanwhile
            self.publish(
                EnvironmentEvent.STRAY_STOPPED,
                level="warning",
                env=self.env,
                pid=pid,
                running=_release_of(pid),
            )
            stray.stop(self.config.stop_grace)

    def _spawn(self, release: str) -> process.Child:
        if port_in_use(self.config.host, self.config.port):
            held = evidence.port_reason(self.layout) or f"port {self.config.port} is in use"
            raise EnvironmentFailure(
                self.env, f"{held}; stop it or change the port in the configuration"
            )
        child = process.spawn(
            self.layout.argv(release),
            cwd=self.layout.current,
            env=self.layout.process_env(release),
            log=self.layout.log_sink,
        )
        record = self.layout.command_record(release)
        process.write_atomic(self.layout.started_with, json.dumps(record) + "\n")
        process.write_pidfile(self.layout.pidfile, child.pid, child.start_time)
        return child

    def _stop_process(self) -> None:
        proc, self.proc = self.proc, None
        self.healthy = False
        if proc is None or proc.exited:
            return
        try:
            proc.stop(self.config.stop_grace)
        except process.ProcessError as exc:
            self.log.error("environment.stop_failed", error=str(exc))

    def _restart_process(self) -> None:
        self._stop_process()
        process.remove_pidfile(self.layout.pidfile)
        self._start_process()

    def _on_exit(self, pid: int, code: int | None) -> None:
        if self.proc is None or pid != self.proc.pid:
            return  # a process we stopped on purpose, or one from before a restart
        uptime = time.monotonic() - self.started_mono
        early = uptime < self.config.startsecs
        self.publish(
            EnvironmentEvent.EXITED,
            level="error",
            env=self.env,
            pid=pid,
            code=code,
            uptime=round(uptime, 3),
            failed_start=early,
            release=self.release,
        )
        if self.operation is not None:
            self._on_health(self.tokens, False, f"process exited with code {code}")
            return
        self.process_failed = True
        what = "exited during start" if early else "exited"
        raise EnvironmentFailure(self.env, f"process {pid} {what} with code {code}{self._data()}")

    def _fail(self, reason: str, cause: str) -> None:
        if self._restoring_lost_data():
            return  # the restore restarts the service on its data: the failure is dealt with
        self.publish(
            EnvironmentEvent.FAILING, level="error", env=self.env, reason=reason, cause=cause
        )
        self.process_failed = True
        raise EnvironmentFailure(self.env, f"{cause}: {reason}{self._data()}")

    def _data(self) -> str:
        """ "; the live data fails its check (why)" when it does, else "": read on a failure,
        so that the recovery ladder knows at once whether restarts can help."""
        problems = data.live_problems(self.layout.data, self.config.databases, self.layout.backups)
        return f"; {data.DATA_FAILS} ({'; '.join(problems)})" if problems else ""

    def _kill(self) -> dict[str, Any]:
        if self.proc is None or self.proc.exited:
            raise Rejected(f"environment {self.env!r} has no running process")
        pid = self.proc.pid
        self.proc.kill()
        return {"env": self.env, "killed": pid}

    # Health verdicts

    def _wait_for_health(self, timeout: float) -> None:
        self.tokens += 1
        token, url, cancel, ref = self.tokens, self.layout.health_url, self.cancel, self.actor_ref
        rule = BodyRule.of(self.config)

        def wait() -> None:
            verdict = wait_healthy(url, timeout, rule, cancel=cancel)
            ok, why = verdict.healthy, verdict.reason
            _tell(ref, HealthWaited(token, ok, why))

        threading.Thread(target=wait, name=f"{self.name}-health", daemon=True).start()

    def _on_health(self, token: int, ok: bool, why: str) -> None:
        if token != self.tokens:
            return  # superseded by a later start
        if ok:
            self.healthy = True
            # A healthy service ends the failure that restarted it: the next one is new, not
            # a failed ladder step (which would take the next step, up to parking it).
            self.report_proven()
            if self.release:
                releases.mark_healthy(self.layout.root, self.release)
            if self.proc is not None:
                process.write_pidfile(self.layout.verified, self.proc.pid, self.proc.start_time)
        if self.operation is not None:
            self._operation_verdict(ok, why)
        elif ok:
            pid = self.proc.pid if self.proc is not None else None
            self.publish(EnvironmentEvent.HEALTHY, env=self.env, release=self.release, pid=pid)
            self._report_nothing_to_back_up()
        else:
            self.publish(
                EnvironmentEvent.UNHEALTHY,
                level="warning",
                env=self.env,
                release=self.release,
                reason=why,
            )
            if damaged := self._data():  # never healthy on damaged data: restarts cannot help
                self.process_failed = True
                raise EnvironmentFailure(self.env, f"not healthy after its start ({why}){damaged}")

    # Releases: deploy and rollback

    def _build(self) -> pykka.ThreadingFuture[Any]:
        future: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()

        def build() -> None:
            try:
                release = self._build_release()
            except Exception as exc:  # noqa: BLE001 - the asker gets the error
                future.set(EnvironmentFailure(self.env, f"build failed: {exc}"))
                return
            future.set({"env": self.env, "release": release.id, "path": str(release.path)})

        threading.Thread(target=build, name=f"{self.name}-build", daemon=True).start()
        return future

    def _deploy(self, release: str, pipeline_id: int | None, timeout: float | None) -> Any:
        self._refuse_if_busy()
        target = self._import(release)
        return self._switch("deploy", target, pipeline_id, timeout)

    def _rollback(self, release: str, pipeline_id: int | None) -> Any:
        self._refuse_if_busy()
        target = self._require_release(release or self._previous_release())
        return self._switch("rollback", target, pipeline_id, None)

    def _switch(
        self, kind: str, target: str, pipeline_id: int | None, timeout: float | None
    ) -> Any:
        previous = self.layout.current_release()
        future: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
        op = _Operation(kind, target, previous, future, pipeline_id=pipeline_id)
        self.operation = op
        self.publish(OPERATION_STARTED[kind], env=self.env, release=target, previous=previous)
        try:
            releases.switch_current(self.layout.root, target)
            self._restart_process()
        except _START_ERRORS as exc:
            # Failing here must not leave the operation pending (every later one would be
            # Busy) nor the environment without a process: switch back at once.
            self._revert_now(op, f"cannot start {target}: {exc}")
            return future
        if timeout is not None:
            self._wait_for_health(timeout)
        return future

    def _revert_now(self, op: _Operation, why: str) -> None:
        """Back on the previous release after a switch that could not even start."""
        duration = round(time.monotonic() - op.started, 3)
        self.publish(
            OPERATION_FAILED[op.kind],
            level="error",
            env=self.env,
            release=op.target,
            reason=why,
            reverting_to=op.previous,
        )
        try:
            if op.previous:
                releases.switch_current(self.layout.root, op.previous)
            self._restart_process()
        except _START_ERRORS as exc:
            error = f"{op.kind} of {op.target}: {why}; back on {op.previous}: {exc}"
            self._finish_operation(op, "failed", duration, error)
            self._fail_soon(f"cannot start again after a failed {op.kind}: {exc}")
            return
        error = f"{op.kind} of {op.target} failed ({why}); back on {op.previous}"
        self._finish_operation(op, "reverted", duration, error)

    def _fail_soon(self, reason: str) -> None:
        """Fail the actor from an asked handler (whose exceptions go to the asker): the
        supervisor then restarts it, and its ladder takes over if that fails too."""
        self.process_failed = True
        self.actor_ref.tell(Fail(reason, "exited"))

    def _import(self, release: str) -> str:
        if "/" not in release:
            return self._require_release(release)
        path = Path(release)
        if not path.is_dir():
            raise Rejected(f"release directory {release!r} does not exist")
        try:
            return builds.import_release(path, self.layout.releases).id
        except releases.ReleaseError as exc:
            raise Rejected(f"environment {self.env!r}: cannot deploy {release}: {exc}") from None

    def _require_release(self, release: str) -> str:
        """``release`` if this environment has it complete; Rejected (nothing touched) if not."""
        missing = Rejected(f"environment {self.env!r} has no release {release!r}")
        if not releases.valid_id(release):
            raise missing
        try:
            releases.load_release(self.layout.releases / release)
        except releases.ReleaseError:
            raise missing from None
        return release

    def _previous_release(self) -> str:
        current = self.layout.current_release()
        ids = [r.id for r in releases.list_releases(self.layout.root)]  # newest first
        older = ids[ids.index(current) + 1 :] if current in ids else ids
        if not older:
            raise Rejected(f"environment {self.env!r} has no release older than {current!r}")
        return older[0]

    def _operation_verdict(self, ok: bool, why: str) -> None:
        op = self.operation
        assert op is not None
        duration = round(time.monotonic() - op.started, 3)
        if ok and not op.reverting:
            self._finish_operation(op, "succeeded", duration)
        elif ok:
            error = f"{op.kind} of {op.target} failed ({op.detail['why']}); back on {op.previous}"
            self._finish_operation(op, "reverted", duration, error)
        elif not op.reverting and op.previous and op.kind in ("deploy", "rollback"):
            op.reverting, op.detail["why"] = True, why
            self.publish(
                OPERATION_FAILED[op.kind],
                level="error",
                env=self.env,
                release=op.target,
                reason=why,
                reverting_to=op.previous,
            )
            releases.switch_current(self.layout.root, op.previous)
            self._restart_process()
        else:
            self._finish_operation(op, "failed", duration, f"{op.kind} of {op.target}: {why}")
            self.process_failed = True
            raise EnvironmentFailure(self.env, f"unhealthy after {op.kind}: {why}")

    def _finish_operation(
        self, op: _Operation, outcome: str, duration: float, error: str = ""
    ) -> None:
        self.operation = None
        kind = {"deploy": "deployed", "rollback": "rolled_back"}.get(op.kind, op.kind)
        if op.kind in ("deploy", "rollback"):
            self.record(
                "deployments",
                ts=time.time(),
                env=self.env,
                release_id=op.target,
                previous=op.previous or "",
                status=outcome if error else kind,
                kind=op.kind,
                duration=duration,
                error=error,
                pipeline_id=op.pipeline_id,
            )
        result = {
            "env": self.env,
            "operation": op.kind,
            "release": self.layout.current_release(),
            "target": op.target,
            "previous": op.previous,
            "outcome": outcome,
            "duration": duration,
            **op.detail,
        }
        if error:
            self.publish(
                OPERATION_REVERTED[op.kind] if outcome == "reverted" else OPERATION_FAILED[op.kind],
                level="error",
                env=self.env,
                error=error,
            )
            op.future.set(EnvironmentFailure(self.env, error))
            return
        self.publish(
            OPERATION_DONE[op.kind],
            env=self.env,
            release=op.target,
            previous=op.previous,
            duration=duration,
        )
        if op.kind in ("deploy", "rollback"):
            self._prune_releases()
        op.future.set(result)

    def _fail_operation(self, error: Exception) -> None:
        op, self.operation = self.operation, None
        if op is not None:  # a finished operation is cleared before its future is set
            op.future.set(error)

    def _refuse_if_busy(self) -> None:
        if self.operation is not None:
            op = self.operation
            raise Busy(f"environment {self.env!r}", f"a {op.kind} of {op.target} is running")

    # Data: backups, restore, reset

    def _backup(self, reason: str, pipeline_id: int | None) -> dict[str, Any]:
        try:
            record = data.back_up(self.layout.data, self.layout.backups, self.config.databases)
        except backups.NothingToBackUp as exc:
            raise Rejected(f"environment {self.env!r}: nothing to back up ({exc})") from None
        except data.NotADatabase as exc:
            raise Rejected(f"environment {self.env!r}: {exc}") from None
        self.record(
            "backups",
            ts=time.time(),
            env=self.env,
            path=str(record.path),
            size=record.size,
            sha256=record.sha256,
            integrity=record.integrity,
            verified=record.verified,
            reason=reason,
            pipeline_id=pipeline_id,
        )
        level = "info" if record.verified else "error"
        self.publish(
            EnvironmentEvent.BACKUP,
            level=level,
            env=self.env,
            backup=record.id,
            size=record.size,
            verified=record.verified,
            reason=reason,
        )
        backups.prune_backups(
            self.layout.backups, self.config.backup_keep, self.config.backup_max_age_days
        )
        return {
            "env": self.env,
            "backup": record.id,
            "path": str(record.path),
            "size": record.size,
            "sha256": record.sha256,
            "verified": record.verified,
            "integrity": record.integrity,
        }

    def _report_nothing_to_back_up(self) -> None:
        """When the service has started: a backup schedule with no database to back up is
        said out loud (once), not left a silent no-op."""
        if note := self.watch.new_backup_note():
            self.publish(
                EnvironmentEvent.NOTHING_TO_BACK_UP, level="warning", env=self.env, note=note
            )

    def _scheduled_backup(self) -> None:
        try:
            self._backup("scheduled", None)
        except (Rejected, backups.BackupError, OSError) as exc:
            self.publish(
                EnvironmentEvent.BACKUP_FAILED, level="error", env=self.env, error=str(exc)
            )

    def _restore(self, backup: str | None) -> Any:
        self._refuse_if_busy()
        chosen, skipped = self._require_backup(backup)
        return self._replace_data(
            "restore",
            lambda: recovery.restore_data(self.layout, chosen, skipped),
            "operator restore",
        )

    def _require_backup(self, backup: str | None) -> tuple[str, list[tuple[str, str]]]:
        """The backup a restore will use, checked before anything stops (and the newer ones
        it passes over, with why); Rejected if none verifies."""
        try:
            record, skipped = restores.choose(self.layout.backups, backup)
        except backups.NoVerifiedBackup as exc:
            known = [r.id for r in backups.list_backups(self.layout.backups)]
            raise Rejected(
                f"environment {self.env!r}: {str(exc).removeprefix(f'{exc.path}: ')}; "
                f"backups: {', '.join(known) or 'none'}"
            ) from None
        return record.id, skipped

    def _undo(self) -> Any:
        self._refuse_if_busy()
        if not data.replaced_copies(self.layout.data):
            raise Rejected(f"environment {self.env!r} has no replaced data to put back")
        return self._replace_data("undo", lambda: recovery.undo_data(self.layout), "operator undo")

    def _reset(self) -> Any:
        self._refuse_if_busy()
        if not self.config.reset_on_error:
            raise Rejected(
                f"environment {self.env!r} has reset_on_error = false: its data is never reset "
                "(use restore to go back to a backup)"
            )
        return self._replace_data(
            "reset", lambda: recovery.reset_data(self.layout), "operator reset"
        )

    def _replace_data(self, kind: str, replace: Any, why: str) -> Any:
        current = self.layout.current_release() or ""
        self._stop_process()
        process.remove_pidfile(self.layout.pidfile)
        try:
            detail = replace()
        except (backups.BackupError, OSError) as exc:
            self._start_or_fail(kind)  # back on the data it had
            raise EnvironmentFailure(self.env, f"{kind} failed: {exc}") from exc
        self.watch.rebaseline()
        future: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
        op = _Operation(kind, current, current, future, detail=detail)
        self.operation = op
        self.publish(DATA_OPERATION_REPLACED[kind], env=self.env, **detail)
        alerts.data_replaced(self.registry, self.name, self.env, kind=kind, why=why, detail=detail)
        if not self._start_or_fail(kind):
            self._finish_operation(op, "failed", 0.0, f"{kind}: the process could not start")
        return future

    def _start_or_fail(self, kind: str) -> bool:
        """Start the process after ``kind``; if it cannot start, fail the actor (soon)."""
        try:
            self._start_process()
        except _START_ERRORS as exc:
            self._fail_soon(f"cannot start after {kind}: {exc}")
            return False
        return True

    # Data loss

    def _check_data(self) -> None:
        if self.operation is not None or self.proc is None or self.proc.exited:
            return
        if lost := self.watch.look():
            self._on_data_loss(lost)

    def _restoring_lost_data(self) -> bool:
        """Look for lost databases now, before failing: a service declared down because its
        database was deleted under it is a data loss (its rows rescued from the running
        process), not a failure for the ladder, which would stop the process first. True
        when a restore of the lost data has begun."""
        if self.operation is not None:
            return False  # a deploy or restore under way: the failure is its verdict
        self._check_data()
        return self.operation is not None

    def _on_data_loss(self, lost: list[str]) -> None:
        restoring = self.config.restore_on_data_loss
        noticed = self.watch.noticed(lost)
        alerts.data_loss(self.registry, self.name, self.env, lost, restoring)
        if not restoring:
            return
        try:
            chosen, skipped = self._require_backup(None)
        except Rejected as exc:
            self.publish(
                EnvironmentEvent.RESTORE_FAILED, level="error", env=self.env, error=str(exc)
            )
            return
        noticed["restored"] = chosen
        why = "data loss: " + "; ".join(lost)
        rescued = self._rescue_deleted()

        def restore() -> dict[str, Any]:
            detail = recovery.restore_data(self.layout, chosen, skipped)
            if rescued is not None and detail["saved_copy"]:
                detail["rescued"] = data.merge_into(rescued, Path(detail["saved_copy"]))
            return detail

        self._replace_data("restore", restore, why)

    def _rescue_deleted(self) -> Path | None:
        """Copy databases deleted under the running process out of it, before it stops."""
        if self.proc is None or self.proc.exited:
            return None
        try:
            return self.watch.rescue(self.proc.pid)
        except OSError as exc:
            self.publish(
                EnvironmentEvent.RESCUE_FAILED, level="error", env=self.env, error=str(exc)
            )
            return None

    # Housekeeping

    def _housekeeping(self) -> None:
        process.prune_logs(self.layout.logs, self.config.log_retention_days)
        backups.prune_backups(
            self.layout.backups, self.config.backup_keep, self.config.backup_max_age_days
        )
        self._prune_releases()

    def _prune_releases(self) -> None:
        removed = releases.prune_releases(self.layout.root, self.config.keep_releases)
        if removed:
            self.publish(EnvironmentEvent.RELEASES_PRUNED, env=self.env, removed=removed)

    def _status(self) -> dict[str, Any]:
        running = self.proc is not None and not self.proc.exited
        return {
            "name": self.env,
            "state": "running" if running else "stopped",
            # A process that has just died is not healthy, even before its exit is handled.
            "healthy": self.healthy and running,
            "pid": self.proc.pid if running and self.proc else None,
            "adopted": self.adopted,
            "release": self.release,
            "last_healthy": releases.last_healthy(self.layout.root),
            "port": self.config.port,
            "url": self.layout.health_url,
            "started_at": self.started_at,
            "uptime": round(time.monotonic() - self.started_mono, 3) if running else 0.0,
            "restarts": node.restarts if (node := self.registry.node(self.name)) else 0,
            "operation": self.operation.kind if self.operation else None,
            "data_bytes": self.layout.data_bytes(),
            **self.watch.status(),
            "log_bytes": self.layout.log_bytes(),
            "releases": [r.id for r in releases.list_releases(self.layout.root)],
        }


def _started_with(layout: Layout, pid: int) -> dict[str, Any] | None:
    """What ``pid`` was started with: the record beside the pid file, else its argv from
    /proc (environment values unknown: taken as unchanged); None when neither is readable."""
    try:
        record = json.loads(layout.started_with.read_text())
        if isinstance(record, dict) and {"argv", "env"} <= record.keys():
            return record
    except (OSError, ValueError):
        pass
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    argv = [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]
    return {"argv": argv, "env": layout.configured_env(_release_of(pid) or "")}


def _release_of(pid: int) -> str | None:
    """The release a process runs from: the name of its working directory."""
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")).name
    except OSError:
        return None


def _tell(ref: pykka.ActorRef[Any], message: object) -> None:
    with contextlib.suppress(pykka.ActorDeadError):  # an older generation: nothing to do
        ref.tell(message)
