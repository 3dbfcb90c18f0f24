"""The environment actor's core: its state, its process, its data jobs and the verdicts.

``EnvironmentCore`` starts and stops the process, waits for healthy in a thread that reports
back (``HealthWaited``), and turns a verdict into the end of the operation waiting for it:
success, a switch back to the previous release, or the failure of the actor (its supervisor
and recovery ladder take over). A failure carries the live data's verdict, read in a data job
(``_run_job``: work in a worker thread that reports back with ``JobDone``, one at a time, see
``dataops``). The operations themselves live in ``deploys`` (releases), ``dataops`` (backups
and data) and ``dataloss``, built on this class; ``environment`` puts them together.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

from gaia_actors import process
from gaia_actors.actor import GaiaActor
from gaia_actors.environments import data, releases, service
from gaia_actors.environments.notices import (
    HealthWaited,
    JobDone,
    ProcessExited,
    nothing_to_salvage,
    tell,
    unexpected,
)
from gaia_actors.environments.state import EnvState, Job, Operation, Reply
from gaia_actors.environments.watch import DataWatch
from gaia_actors.errors import Busy, EnvironmentFailure, Rejected
from gaia_actors.events import EnvironmentEvent
from gaia_actors.health import BodyRule
from gaia_actors.httpclient import wait_healthy
from gaia_actors.layout import Layout
from gaia_actors.messages import Fail
from gaia_actors.settings import Settings
from supervisors import Link

CHECK = "check"  # the job that reads the live data's verdict on a failure

# What starting a process may raise: a busy port or no release (EnvironmentFailure), a
# command that cannot run or a pid file we cannot read (ProcessError), a bad release, I/O.
START_ERRORS = (EnvironmentFailure, process.ProcessError, releases.ReleaseError, OSError)


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
        # No release of this environment existed before this generation's first one: nothing
        # can run from one, so its first start does not look for strays (a scan of /proc).
        self.new_environment = False

    def publish_env(self, event: str, level: str = "info", **data: Any) -> None:
        self.publish(event, level=level, env=self.env, **data)

    # The process

    def _start_process(self) -> None:
        release = self.layout.current_release()
        if release is None:
            raise EnvironmentFailure(self.env, "no current release to run")
        self.now = self.now.starting(release)
        first = self.link.generation == 1 and not self.new_environment
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
        what = "exited during start" if early else "exited"
        self._fail_with_data(f"process {pid} {what} with code {code}")

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

    # Data jobs: work in proportion to the data, in a worker thread that reports back

    def _run_job(
        self,
        kind: str,
        work: Callable[[], Any],
        then: Callable[[Any], None],
        salvage: Callable[[Any], None],
        reply: Reply | None = None,
    ) -> None:
        token, ref, outcome_box = self.now.jobs + 1, self.actor_ref, []

        def run() -> None:
            try:
                outcome = work()
            except Exception as exc:  # noqa: BLE001 - the actor decides what it means
                outcome = exc
            outcome_box.append(outcome)
            tell(ref, JobDone(token, outcome))

        thread = threading.Thread(target=run, name=f"{self.name}-{kind}", daemon=True)
        job = Job(kind, token, thread, then, salvage, reply, outcome_box)
        self.now = self.now.job_began(job)
        thread.start()

    def _on_job_done(self, token: int, outcome: object) -> None:
        job = self.now.job
        if job is None or job.token != token:
            return
        self.now = self.now.job_ended()
        job.then(outcome)
        while self.now.job is None:
            postponed, self.now = self.now.take_postponed()
            if postponed is None:
                break
            self.receive(postponed)
        if self.now.job is None:
            self._after_job()

    def _after_job(self) -> None:
        """Extension point: the actor is free for the next job (none by default)."""

    def _wait_for_job(self, why: str) -> None:
        """Let a running job end (the data is never replaced under it), then fail the
        backups asked for: the actor is going away."""
        job, waiting = self.now.job, self.now.backups
        self.now = self.now.job_ended()
        if job is not None:
            job.thread.join()
            if job.outcome:
                job.salvage(job.outcome[0])
        stopped = EnvironmentFailure(self.env, why)
        for reply in [job.reply if job else None, *(r.reply for r in waiting)]:
            if reply is not None:
                reply.set(stopped)

    def _check_live_data(self, then: Callable[[str], None]) -> None:
        """Read the live data's verdict in a job (``quick_check`` of every database takes
        time in proportion to them), then ``then("; the live data fails its check (why)")``,
        or ``then("")`` when it passes: read on a failure, so that the recovery ladder knows
        at once whether restarts can help."""
        layout, patterns = self.layout, self.config.databases

        def work() -> str:
            problems = data.live_problems(layout.data, patterns, layout.backups)
            return f"; {data.DATA_FAILS} ({'; '.join(problems)})" if problems else ""

        def checked(outcome: object) -> None:
            if not isinstance(outcome, str):
                raise unexpected(outcome)
            then(outcome)

        self._run_job(CHECK, work, checked, nothing_to_salvage)

    def _fail_with_data(self, why: str) -> None:
        """Fail the actor (its process's failure) with ``why`` and the live data's verdict."""
        self.now = self.now.failing()

        def fail(damaged: str) -> None:
            raise EnvironmentFailure(self.env, f"{why}{damaged}")

        self._check_live_data(fail)

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
            self._check_live_data(functools.partial(self._unhealthy_on, why))

    def _unhealthy_on(self, why: str, damaged: str) -> None:
        if damaged:  # never healthy on damaged data: restarts cannot help
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
