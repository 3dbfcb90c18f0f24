"""The engine's answer to ``GetCycleStatus``: the running cycle's progress, or the last one."""

from __future__ import annotations

from collections.abc import Mapping

from supervisors.records import record

NAME = "improve"  # the engine's registered name, which answers GetCycleStatus
PHASES = (
    "analyse",
    "detect",
    "test",
    "generate_tasks",
    "execute_improvements",
    "verify",
    "persist",
)


@record
class WorkerView:
    ready: bool
    generation: int
    batch: int | None  # the batch it analyses now


@record
class LastCycle:
    cycle_id: int
    status: str  # succeeded | failed | interrupted
    seconds: float
    error: str


@record
class Analysis:
    """How far the running cycle's analysis is."""

    files_done: int
    files_found: int
    files_total: int | None  # known once the walk is over
    requeued: int
    queued: int  # batches waiting for a worker
    in_flight: Mapping[str, int]  # worker -> its batch


@record
class CycleRunning:
    running: bool  # always True: the JSON object says so
    cycle_id: int
    target: str
    apply: bool
    phase: str
    phase_elapsed: float
    elapsed: float
    phases: Mapping[str, float]  # finished phases -> seconds
    analysis: Analysis
    workers: Mapping[str, WorkerView]


@record
class EngineIdle:
    running: bool  # always False
    last: LastCycle | None  # the last cycle this engine ran
    workers: Mapping[str, WorkerView]


CycleStatus = CycleRunning | EngineIdle

__all__ = ["Analysis", "CycleRunning", "CycleStatus", "EngineIdle", "LastCycle", "WorkerView"]
