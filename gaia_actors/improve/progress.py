"""Progress lines for ``improve``: the engine's watcher updates as text, the analysis as a bar."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from gaia_actors.events import CycleProgress
from gaia_actors.formatting import scalar
from gaia_actors.improve.report import secs

BAR_WIDTH = 30
PROGRESS_EVERY = 2.0  # seconds between bar lines when the percentage moves slowly


def progress_bar(done: int, total: int | None, width: int = BAR_WIDTH) -> str:
    """``[#########.....................]  30% 120/400 files`` (total unknown: a count)."""
    if not total:
        return f"[{'?' * width}] {done} files so far"
    filled = min(width, width * done // total)
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {100 * done // total:3d}% {done}/{total} files"
    )


class Progress:
    """Turns the engine's watcher updates into progress lines (``emit``), the analysis as a
    bar that is printed again when it has moved a tenth, or every few seconds."""

    def __init__(
        self,
        emit: Callable[[dict[str, Any]], None],
        clock: Callable[[], float] = time.monotonic,
        every: float = PROGRESS_EVERY,
    ) -> None:
        self.emit = emit
        self.clock = clock
        self.every = every
        self.tenth = -1
        self.last = 0.0

    def update(self, update: Mapping[str, Any]) -> None:
        event = update.get("event")
        if event == CycleProgress.CYCLE_STARTED:
            self._say(f"cycle #{update['cycle_id']} on {update['target']}")
        elif event == CycleProgress.PHASE_STARTED:
            self._say(f"{update['phase']} ...")
        elif event == CycleProgress.ANALYSIS_PROGRESS:
            self._bar(update)
        elif event == CycleProgress.BATCH_REQUEUED:
            self._say(f"batch {update['batch_id']} re-queued: {update['reason']}")
        elif event == CycleProgress.PHASE_FINISHED:
            summary = update.get("summary") or {}
            said = ", ".join(f"{k}={scalar(v)}" for k, v in summary.items() if v != "")
            self._say(f"{update['phase']} done in {secs(update['seconds'])}: {said}".rstrip(": "))

    def _bar(self, update: Mapping[str, Any]) -> None:
        done, total = int(update["files_done"]), update.get("files_total")
        tenth = 10 * done // total if total else -1
        now = self.clock()
        if tenth == self.tenth and now - self.last < self.every and done != total:
            return
        self.tenth, self.last = tenth, now
        self._say(f"analyse {progress_bar(done, total)}")

    def _say(self, text: str) -> None:
        self.emit({"message": text})
