"""The environment actor's core: its state, its process and the health verdicts.

``EnvironmentCore`` starts and stops the process, waits for healthy in a thread that reports
back (``HealthWaited``), and turns a verdict into the end of the operation waiting for it:
success, a switch back to the previous release, or the failure of the actor (its supervisor
and recovery ladder take over). The operations themselves live in ``deploys`` (releases) and
``dataops`` (backups and data), built on this class; ``environment`` puts them together.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import pykka

from gaia_actors import process
from gaia_actors.actor import GaiaActor
from gaia_actors.environments import data, releases, service
from gaia_actors.environments.state import EnvState, Operation
from gaia_actors.environments.watch import DataWatch
from gaia_actors.errors import Busy, EnvironmentFailure, Rejected
from gaia_actors.events import EnvironmentEvent
from gaia_actors.health import BodyRule
from gaia_actors.httpclient import wait_healthy
from gaia_actors.layout import Layout
from gaia_actors.messages import Fail, message
from gaia_actors.settings import Settings
from supervisors import Link

# What starting a process may raise: a busy port or no release (EnvironmentFailure), a
# command that cannot run or a pid file we cannot read (ProcessError), a bad release, I/O.
START_ERRORS = (EnvironmentFailure, process.ProcessError, releases.ReleaseError, OSError)


# Messages the actor sends itself (from watcher threads, workers and timers).


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


class EnvironmentCore(GaiaActor):
    """One environment's state, process and health verdicts."""

    def __init__(self, link: Link, settings: Settings, env: str) -> None:
        super().__init__(link)
        self.settings = settings
        self.env = env
        self.layout = Layout.of(settings, env)
        self.config = self.layout.config
        self.log = self.log.bind(env=env)
        self.now = EnvState()
        self.cancel = threading.Event()
        self.watch = DataWatch(self.layout)

    def publish_env(self, event: str, level: str = "info", **data: Any) -> None:
        self.publish(event, level=level, env=self.env, **data)

    # The process

    def _start_process(self) -> None:
        release = self.layout.current_release()
        if release is None:
            raise EnvironmentFailure(self.env, "no current release to run")
        self.now = self.now.starting(release)
        first = self.link.generation == 1
        proc, adopted = service.start(self.layout, release, first, self.publish_env)
        self.now = self.now.running(proc, adopted)
        ref = self.actor_ref
        proc.watch(lambda code: tell(ref, ProcessExited(proc.pid, code)))
        self.publish_env(
            EnvironmentEvent.STARTED,
            pid=proc.pid,
            release=release,
            adopted=adopted,
            port=self.config.port,
        )
        self._wait_for_health(self.config.deploy_timeout)

    def _stop_process(self) -> None:
        proc = self.now.started.proc
        self.now = self.now.stopped()
        if error := service.stop(proc, self.config.stop_grace):
            self.log.error("environment.stop_failed", error=error)

    def _restart_process(self) -> None:
        self._stop_process()
        process.remove_pidfile(self.layout.pidfile)
        self._start_process()

    def _start_or_fail(self, why: str) -> bool:
        """Start the process after ``why``; if it cannot start, fail the actor (soon)."""
        try:
            self._start_process()
        except START_ERRORS as exc:
            self._fail_soon(f"cannot start after {why}: {exc}")
            return False
        return True

    def _on_exit(self, pid: int, code: int | None) -> None:
        proc = self.now.started.proc
        if proc is None or pid != proc.pid:
            return  # a process we stopped on purpose, or one from before a restart
        uptime = time.monotonic() - self.now.started.mono
        early = uptime < self.config.startsecs
        self.publish_env(
            EnvironmentEvent.EXITED,
            level="error",
            pid=pid,
            code=code,
            uptime=round(uptime, 3),
            failed_start=early,
            release=self.now.release,
        )
        if self.now.operation is not None:
            self._on_health(self.now.health_wait, False, f"process exited with code {code}")
            return
        self.now = self.now.failing()
        what = "exited during start" if early else "exited"
        raise EnvironmentFailure(self.env, f"process {pid} {what} with code {code}{self._data()}")

    def _data(self) -> str:
        """ "; the live data fails its check (why)" when it does, else "": read on a failure,
        so that the recovery ladder knows at once whether restarts can help."""
        problems = data.live_problems(self.layout.data, self.config.databases, self.layout.backups)
        return f"; {data.DATA_FAILS} ({'; '.join(problems)})" if problems else ""

    def _kill(self) -> dict[str, Any]:
        proc = self.now.started.proc
        if proc is None or proc.exited:
            raise Rejected(f"environment {self.env!r} has no running process")
        proc.kill()
        return {"env": self.env, "killed": proc.pid}

    def _fail_soon(self, reason: str) -> None:
        """Fail the actor from an asked handler (whose exceptions go to the asker): the
        supervisor then restarts it, and its ladder takes over if that fails too."""
        self.now = self.now.failing()
        self.actor_ref.tell(Fail(reason, "exited"))

    # Health verdicts

    def _wait_for_health(self, timeout: float) -> None:
        self.now = self.now.waiting_for_health()
        token, url = self.now.health_wait, self.layout.health_url
        cancel, ref = self.cancel, self.actor_ref
        rule = BodyRule.of(self.config)

        def wait() -> None:
            verdict = wait_healthy(url, timeout, rule, cancel=cancel)
            tell(ref, HealthWaited(token, verdict.healthy, verdict.reason))

        threading.Thread(target=wait, name=f"{self.name}-health", daemon=True).start()

    def _on_health(self, token: int, ok: bool, why: str) -> None:
        if token != self.now.health_wait:
            return  # superseded by a later start, or about a process stopped since
        if ok:
            self._proved_healthy()
        if self.now.operation is not None:
            self._operation_verdict(ok, why)
        elif ok:
            pid = proc.pid if (proc := self.now.started.proc) is not None else None
            self.publish_env(EnvironmentEvent.HEALTHY, release=self.now.release, pid=pid)
            if note := self.watch.new_backup_note():
                # A backup schedule with no database to back up is said out loud, once.
                self.publish_env(EnvironmentEvent.NOTHING_TO_BACK_UP, level="warning", note=note)
        else:
            self.publish_env(
                EnvironmentEvent.UNHEALTHY, level="warning", release=self.now.release, reason=why
            )
            if damaged := self._data():  # never healthy on damaged data: restarts cannot help
                self.now = self.now.failing()
                raise EnvironmentFailure(self.env, f"not healthy after its start ({why}){damaged}")

    def _proved_healthy(self) -> None:
        self.now = self.now.proved_healthy()
        # A healthy service ends the failure that restarted it: the next one is new, not
        # a failed ladder step (which would take the next step, up to parking it).
        self.report_proven()
        if self.now.release:
            releases.mark_healthy(self.layout.root, self.now.release)
        if (proc := self.now.started.proc) is not None:
            process.write_pidfile(self.layout.verified, proc.pid, proc.start_time)

    # Operations: started by deploys and dataops, ended here by their verdict

    def _refuse_if_busy(self, touches_data: bool = False) -> None:
        if (reason := self.now.busy_reason(touches_data)) is not None:
            raise Busy(f"environment {self.env!r}", reason)

    def _operation_verdict(self, ok: bool, why: str) -> None:
        op = self.now.operation
        assert op is not None
        if ok and not op.reverting:
            self._finish_operation(op, "succeeded", op.duration())
        elif ok:
            error = f"{op.kind} of {op.target} failed ({op.reverting}); back on {op.previous}"
            self._finish_operation(op, "reverted", op.duration(), error)
        elif not op.reverting and op.previous and op.kind.switches_release:
            self.now = self.now.reverting(why)
            self._publish_switch_failed(op, why)
            releases.switch_current(self.layout.root, op.previous)
            self._restart_process()
        else:
            self._finish_operation(op, "failed", op.duration(), f"{op.kind} of {op.target}: {why}")
            self.now = self.now.failing()
            raise EnvironmentFailure(self.env, f"unhealthy after {op.kind}: {why}")

    def _publish_switch_failed(self, op: Operation, why: str) -> None:
        self.publish_env(
            op.kind.failed_event,
            level="error",
            release=op.target,
            reason=why,
            reverting_to=op.previous,
        )

    def _finish_operation(
        self, op: Operation, outcome: str, duration: float, error: str = ""
    ) -> None:
        self.now = self.now.finished()
        if op.kind.switches_release:
            self._record_deployment(op, outcome, duration, error)
        if error:
            failed = op.kind.reverted_event if outcome == "reverted" else op.kind.failed_event
            self.publish_env(failed, level="error", error=error)
            op.reply.set(EnvironmentFailure(self.env, error))
            return
        self.publish_env(
            op.kind.done_event,
            release=op.target,
            previous=op.previous,
            duration=duration,
        )
        if op.kind.switches_release:
            self._prune_releases()
        op.reply.set(self._result(op, outcome, duration))

    def _result(self, op: Operation, outcome: str, duration: float) -> dict[str, Any]:
        return {
            "env": self.env,
            "operation": op.kind.value,
            "release": self.layout.current_release(),
            "target": op.target,
            "previous": op.previous,
            "outcome": outcome,
            "duration": duration,
            **op.detail,
        }

    def _record_deployment(self, op: Operation, outcome: str, duration: float, error: str) -> None:
        self.record(
            "deployments",
            ts=time.time(),
            env=self.env,
            release_id=op.target,
            previous=op.previous or "",
            status=outcome if error else op.kind.done,
            kind=op.kind.value,
            duration=duration,
            error=error,
            pipeline_id=op.pipeline_id,
        )

    def _fail_operation(self, error: Exception) -> None:
        op = self.now.operation
        self.now = self.now.finished()
        if op is not None:  # a finished operation is cleared before its reply is set
            op.reply.set(error)

    def _prune_releases(self) -> None:
        removed = releases.prune_releases(self.layout.root, self.config.keep_releases)
        if removed:
            self.publish_env(EnvironmentEvent.RELEASES_PRUNED, removed=removed)


def tell(ref: pykka.ActorRef[Any], message: object) -> None:
    """Tell ``ref`` from a thread of the actor; an older generation's is dropped."""
    with contextlib.suppress(pykka.ActorDeadError):  # an older generation: nothing to do
        ref.tell(message)
