"""What a runner shares with its coordinator: the reports it tells at every transition, and
the run's handle (a stop event with its reason, and the live output of the running stage);
and the timer the coordinator tells itself while unfinished promotions wait for recovery.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field

from gaia_actors.events import PipelineEvent, StageEvent
from gaia_actors.messages import message

LIVE_LINES = 1000


# --- runner -> coordinator -----------------------------------------------------------


@message
class PipelineReport:
    """A promotion started (status ``running``) or ended."""

    run_id: int
    pipeline_id: int
    kind: str
    source: str
    target: str
    release: str
    status: str
    error: str = ""
    rollback: str = ""
    duration: float = 0.0


@message
class StageReport:
    """A stage started (status ``running``) or ended."""

    run_id: int
    pipeline_id: int
    position: int
    name: str
    kind: str
    env: str
    blocking: bool
    status: str
    duration: float = 0.0
    summary: str = ""
    error: str = ""


@message
class RunEnded:
    """The runner thread is done: the promotions' ids and the overall status."""

    run_id: int
    status: str
    pipeline_ids: tuple[int, ...]
    error: str = ""


# --- coordinator -> itself -----------------------------------------------------------


@message
class RecoverUnfinished:
    """Timer: look again for promotions a previous daemon left unfinished."""


_STAGE_EVENTS = {
    "running": StageEvent.STARTED,
    "passed": StageEvent.FINISHED,
    "warned": StageEvent.WARNED,
    "skipped": StageEvent.SKIPPED,
}


def event_name(report: PipelineReport | StageReport) -> str:
    """The bus event for a report: ``pipeline.started|finished|failed``,
    ``stage.started|finished|warned|skipped|failed``."""
    if isinstance(report, PipelineReport):
        return {"running": PipelineEvent.STARTED, "succeeded": PipelineEvent.FINISHED}.get(
            report.status, PipelineEvent.FAILED
        )
    return _STAGE_EVENTS.get(report.status, StageEvent.FAILED)


# --- shared between the coordinator and the runner thread, thread-safe ---------------


class LiveOutput:
    """The running stage's last output lines; written by the runner, read by status queries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: collections.deque[str] = collections.deque(maxlen=LIVE_LINES)
        self.pipeline_id = 0
        self.stage = ""

    def start(self, pipeline_id: int, stage: str) -> None:
        with self._lock:
            self._lines.clear()
            self.pipeline_id, self.stage = pipeline_id, stage

    def add(self, line: str) -> None:
        with self._lock:
            self._lines.append(line)

    def last(self, count: int) -> list[str]:
        with self._lock:
            return list(self._lines)[-count:] if count > 0 else []


@dataclass
class RunHandle:
    """What the coordinator holds of a run besides its status: how to stop it, its output."""

    run_id: int
    stop: threading.Event = field(default_factory=threading.Event)
    reason: str = "cancelled"  # cancelled (an operator) | interrupted (the daemon stops)
    output: LiveOutput = field(default_factory=LiveOutput)
    thread: threading.Thread | None = None

    def cancel(self, reason: str) -> None:
        if not self.stop.is_set():
            self.reason = reason  # written before the event: the runner reads it after
            self.stop.set()
