"""The environment actor's state: one immutable value, changed only by the transitions here.

``EnvState`` says what the actor knows at any moment: the release it runs, the process it
started or adopted, whether that process proved healthy, the operation (deploy, rollback,
restore, reset, undo) waiting for its verdict, and the data job (a backup, or the stop and
replacement of the data) running in a worker thread. The actor holds one ``EnvState`` and
replaces it through the methods below, so every change of state has a name.

Ordering rules the data relies on (enforced by the actor with ``busy_reason``):

- one operation at a time; another deploy, rollback, restore, reset or undo is refused
  (``Busy``, retried by the pipeline) until it has its verdict;
- one data job at a time: backups asked meanwhile wait their turn (queued, like a message
  behind a busy mailbox), and data-replacing requests are refused with the running job named,
  so a restore and a backup of the same data never run at once.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import field
from enum import StrEnum
from typing import Any

import pykka

from gaia_actors import process
from gaia_actors.events import (
    DATA_OPERATION_REPLACED,
    OPERATION_DONE,
    OPERATION_FAILED,
    OPERATION_REVERTED,
    OPERATION_STARTED,
)
from supervisors.records import record

Handle = process.Child | process.AdoptedProcess
BACKUP = "backup"  # the kind of a backup's job (the others block every operation)
Reply = pykka.ThreadingFuture[Any]


class OpKind(StrEnum):
    """What an operation does; its value names it in events, records and ``status``."""

    DEPLOY = "deploy"
    ROLLBACK = "rollback"
    RESTORE = "restore"
    RESET = "reset"
    UNDO = "undo"

    @property
    def switches_release(self) -> bool:
        """Deploy and rollback switch ``current`` (and switch back on failure)."""
        return self in (OpKind.DEPLOY, OpKind.ROLLBACK)

    @property
    def done(self) -> str:
        """Its status in the ``deployments`` table once it succeeded."""
        return {OpKind.DEPLOY: "deployed", OpKind.ROLLBACK: "rolled_back"}.get(self, self.value)

    @property
    def started_event(self) -> str:
        return OPERATION_STARTED[self]

    @property
    def done_event(self) -> str:
        return OPERATION_DONE[self]

    @property
    def failed_event(self) -> str:
        return OPERATION_FAILED[self]

    @property
    def reverted_event(self) -> str:
        return OPERATION_REVERTED[self]

    @property
    def replaced_event(self) -> str:
        """Published once a data operation has replaced the data, before the process starts."""
        return DATA_OPERATION_REPLACED[self]


@record
class Operation:
    """A deploy, rollback, restore, reset or undo, from its start until its verdict."""

    kind: OpKind
    target: str
    previous: str | None
    reply: Reply
    started: float = field(default_factory=time.monotonic)
    pipeline_id: int | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    reverting: str = ""  # why it failed, while it switches back to ``previous``

    def duration(self) -> float:
        return round(time.monotonic() - self.started, 3)


@record
class Started:
    """The process this generation started or adopted; ``proc`` is None once it stopped it
    on purpose (how and when it started stay, for ``status``)."""

    proc: Handle | None = None
    adopted: bool = False
    at: float = 0.0  # wall-clock time
    mono: float = 0.0  # time.monotonic() at the start

    def running(self) -> bool:
        return self.proc is not None and not self.proc.exited


@record
class Job:
    """Work on the data in a worker thread; ``then`` runs in the actor with its outcome
    (its value, or the exception it raised). When the actor goes away first, it waits for
    the thread and hands the outcome to ``salvage``, so what the job did is still said."""

    kind: str  # BACKUP, "check" (the live data's verdict), or the OpKind it works for
    token: int
    thread: threading.Thread
    then: Callable[[Any], None]
    salvage: Callable[[Any], None]
    reply: Reply | None = None  # a backup's asker (an operation's asker is its own)
    outcome: list[Any] = field(default_factory=list)  # set once by the thread, before it ends


@record
class BackupRequest:
    """A backup asked for (``reply`` None: the schedule's) waiting for its turn."""

    reason: str
    pipeline_id: int | None
    reply: Reply | None


@record
class EnvState:
    """Everything the environment actor knows about its environment."""

    release: str | None = None
    started: Started = Started()
    healthy: bool = False
    health_wait: int = 0  # the wait for healthy whose verdict counts (older ones are stale)
    operation: Operation | None = None
    job: Job | None = None
    backups: tuple[BackupRequest, ...] = ()  # asked while a job ran, oldest first
    postponed: tuple[Any, ...] = ()  # messages that wait for the job to end
    process_failed: bool = False  # the failure is the process's: kill it on the way down
    jobs: int = 0

    # The process

    def starting(self, release: str) -> EnvState:
        return dataclasses.replace(self, release=release)

    def running(self, proc: Handle, adopted: bool) -> EnvState:
        started = Started(proc, adopted, time.time(), time.monotonic())
        return dataclasses.replace(self, started=started)

    def stopped(self) -> EnvState:
        """The process is stopped on purpose: not healthy, and a verdict still on its way
        about it is stale."""
        started = dataclasses.replace(self.started, proc=None)
        return dataclasses.replace(
            self, started=started, healthy=False, health_wait=self.health_wait + 1
        )

    def waiting_for_health(self) -> EnvState:
        return dataclasses.replace(self, health_wait=self.health_wait + 1)

    def proved_healthy(self) -> EnvState:
        return dataclasses.replace(self, healthy=True)

    def failing(self) -> EnvState:
        return dataclasses.replace(self, process_failed=True)

    # Operations

    def began(self, operation: Operation) -> EnvState:
        return dataclasses.replace(self, operation=operation)

    def reverting(self, why: str) -> EnvState:
        assert self.operation is not None
        operation = dataclasses.replace(self.operation, reverting=why)
        return dataclasses.replace(self, operation=operation)

    def with_detail(self, detail: Mapping[str, Any]) -> EnvState:
        assert self.operation is not None
        operation = dataclasses.replace(self.operation, detail=detail)
        return dataclasses.replace(self, operation=operation)

    def finished(self) -> EnvState:
        return dataclasses.replace(self, operation=None)

    # Data jobs

    def job_began(self, job: Job) -> EnvState:
        return dataclasses.replace(self, job=job, jobs=job.token)

    def job_ended(self) -> EnvState:
        return dataclasses.replace(self, job=None)

    def backup_asked(self, request: BackupRequest) -> EnvState:
        return dataclasses.replace(self, backups=(*self.backups, request))

    def next_backup(self) -> tuple[BackupRequest | None, EnvState]:
        if not self.backups:
            return None, self
        return self.backups[0], dataclasses.replace(self, backups=self.backups[1:])

    def postpone(self, message: Any) -> EnvState:
        """Keep ``message`` for the end of the job; a timer's tick already kept is not kept
        twice (a long job would otherwise leave a pile of identical looks to replay)."""
        if message in self.postponed:
            return self
        return dataclasses.replace(self, postponed=(*self.postponed, message))

    def take_postponed(self) -> tuple[Any | None, EnvState]:
        if not self.postponed:
            return None, self
        return self.postponed[0], dataclasses.replace(self, postponed=self.postponed[1:])

    # Questions

    def busy_reason(self, touches_data: bool) -> str | None:
        """Why an operation cannot start now, or None; one that ``touches_data`` (restore,
        reset, undo) waits for a backup too, a deploy or rollback does not (any other job
        is part of an operation or of a failure)."""
        if self.operation is not None:
            return f"a {self.operation.kind} of {self.operation.target} is running"
        if self.job is not None and (touches_data or self.job.kind != BACKUP):
            return f"a {self.job.kind} of its data is running"
        return None

    def activity(self) -> str | None:
        """What ``status`` shows as the operation under way (a backup, when it is alone)."""
        if self.operation is not None:
            return self.operation.kind.value
        return BACKUP if self.job is not None and self.job.kind == BACKUP else None
