"""A runner's reporting: reports to its coordinator and its watcher, and its history written
through the store by asks (so what was reported is already written).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from gaia_actors.errors import StoreError
from gaia_actors.events import RunProgress, StageEvent
from gaia_actors.messages import InsertNow, Progress, Update, fields_of
from gaia_actors.pipeline.reports import (
    PipelineReport,
    RunEnded,
    RunHandle,
    StageReport,
    event_name,
)
from gaia_actors.pipeline.stage import Promotion, Step
from gaia_actors.settings import Settings
from supervisors import AskTimeout, NotRunning, Registry

log = structlog.get_logger("gaia.pipeline.runner")
STORE_PATIENCE = 30.0  # seconds a runner waits for a store that cannot write


def _fields(report: Any) -> dict[str, Any]:
    return {name: getattr(report, name) for name in report.__dataclass_fields__}


class Reporter:
    """How a runner reports (to its coordinator and its watcher) and writes its history."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        handle: RunHandle,
        report: Callable[[Any], None],
        *,
        watcher: str = "",
        output: bool = False,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.handle = handle
        self._report_to = report
        self.watcher = watcher
        self.stream_output = output
        self.log = log.bind(run_id=handle.run_id)

    # Reporting

    def _pipeline_report(
        self,
        promotion: Promotion,
        status: str,
        error: str = "",
        rollback: str = "",
        duration: float = 0.0,
    ) -> None:
        report = PipelineReport(
            self.handle.run_id,
            promotion.pipeline_id,
            promotion.kind,
            promotion.source,
            promotion.target,
            promotion.release,
            status,
            error,
            rollback,
            duration,
        )
        self._tell(report)

    def _stage_message(
        self,
        promotion: Promotion,
        step: Step,
        status: str,
        *,
        duration: float = 0.0,
        summary: str = "",
        error: str = "",
    ) -> StageReport:
        return StageReport(
            self.handle.run_id, promotion.pipeline_id, step.position, step.name, step.kind,
            step.env, step.blocking, status, duration, summary, error,
        )  # fmt: skip

    def _tell(self, report: PipelineReport | StageReport | RunEnded) -> None:
        self._report_to(report)
        self._watch(report)

    def _watch(self, report: PipelineReport | StageReport | RunEnded) -> None:
        if not self.watcher:
            return
        name = RunProgress.RUN_ENDED if isinstance(report, RunEnded) else event_name(report)
        self._call_watcher({"event": name, **_fields(report)})

    def _on_line(self, line: str) -> None:
        self.handle.output.add(line)
        if self.stream_output and self.watcher:
            output = self.handle.output
            self._call_watcher(
                {
                    "event": StageEvent.OUTPUT,
                    "pipeline_id": output.pipeline_id,
                    "name": output.stage,
                    "line": line,
                }
            )

    def _call_watcher(self, update: dict[str, Any]) -> None:
        watcher = self.watcher
        if not watcher:
            return
        try:
            self.registry.tell(watcher, Progress.of(**update))
        except NotRunning:  # whoever followed the promotion left: nobody to tell any more
            self.watcher = ""

    # The store: asks, so what was reported is already written

    def _insert(self, table: str, **values: Any) -> int:
        row_id: int = self._store(InsertNow(table, fields_of(**values)))
        return row_id

    def _update(self, table: str, row_id: int, **values: Any) -> None:
        self._store(Update(table, row_id, fields_of(**values)))

    def _store(self, request: InsertNow | Update) -> Any:
        """Ask the store, waiting out a restart of it or a storage fault it retries itself
        (up to ``STORE_PATIENCE`` seconds): a promotion whose deploy has begun must not be
        abandoned half-way because its history could not be written for a moment."""
        deadline = time.monotonic() + STORE_PATIENCE
        attempt = 0
        while True:
            try:
                return self.registry.ask("store", request, timeout=10.0)
            except (NotRunning, AskTimeout, StoreError) as exc:
                if time.monotonic() >= deadline:
                    raise StoreError(f"cannot write {request.table}: {exc}") from exc
                attempt += 1
                # Restarting, or retrying its file: nothing to wait on but time.
                time.sleep(min(0.2 * attempt, 2.0))
