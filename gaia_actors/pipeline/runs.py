"""The coordinator's runs: each run's state, kept current by its runner's reports, the locks
it holds on environments, and the runner thread that carries it out.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pykka

from gaia_actors.actor import GaiaActor
from gaia_actors.pipeline.reports import RunHandle
from gaia_actors.pipeline.runner import Runner
from gaia_actors.pipeline.status import RunView
from gaia_actors.settings import Settings
from gaia_actors.store.models import closing_connections
from supervisors import Link

JOIN_TIMEOUT = 10.0  # seconds a stopping coordinator waits for its runners to wind down
RECOVERY = "recovery"


@dataclass
class RunState:
    """The coordinator's view of one run, kept current by the runner's reports."""

    handle: RunHandle
    what: str  # dev | staging | all | recovery
    envs: tuple[str, ...]
    trigger: str
    pipeline_id: int
    kind: str
    started: float = field(default_factory=time.time)
    pipeline_ids: list[int] = field(default_factory=list)
    release: str = ""
    stage: str = ""
    stage_kind: str = ""
    stage_started: float | None = None
    stages: dict[str, str] = field(default_factory=dict)  # "<id>:<name>" -> status

    def holder(self) -> str:
        if self.what == RECOVERY:
            return (
                f"the rollback of interrupted promotion #{self.pipeline_id} holds it; "
                "wait for it to finish"
            )
        doing = f"stage {self.stage}" if self.stage else "starting"
        return (
            f"promotion #{self.pipeline_id} ({self.kind}, {doing}) holds it; wait for it, "
            f"or run: cancel {self.pipeline_id}"
        )

    def view(self, lines: int) -> RunView:
        now = time.time()
        return RunView(
            pipeline_id=self.pipeline_id,
            run=self.handle.run_id,
            pipeline_ids=tuple(self.pipeline_ids),
            what=self.what,
            kind=self.kind,
            release=self.release,
            environments=tuple(self.envs),
            stage=self.stage or None,
            stage_kind=self.stage_kind or None,
            stage_elapsed=round(now - self.stage_started, 3) if self.stage_started else None,
            elapsed=round(now - self.started, 3),
            trigger=self.trigger,
            stages=MappingProxyType(dict(self.stages)),
            cancelling=self.handle.stop.is_set(),
            output=tuple(self.handle.output.last(lines)) if lines > 0 else None,
        )


class RunKeeper(GaiaActor):
    """Starts runs in runner threads, holds their locks, and interrupts them at stop."""

    def __init__(self, link: Link, settings: Settings) -> None:
        super().__init__(link)
        self.settings = settings
        self.runs: dict[int, RunState] = {}
        self.locks: dict[str, int] = {}  # environment -> run id

    def _start(
        self,
        run: RunState,
        body: Callable[[Runner], None],
        watcher: str = "",
        output: bool = False,
    ) -> None:
        runner = Runner(
            self.settings,
            self.registry,
            run.handle,
            self._reporter(),
            watcher=watcher,
            output=output,
        )
        thread = threading.Thread(
            target=closing_connections(body),
            args=(runner,),
            name=f"pipeline-run-{run.handle.run_id}",
            daemon=True,
        )
        run.handle.thread = thread
        run.pipeline_ids.append(run.pipeline_id)
        self.runs[run.handle.run_id] = run
        for env in run.envs:
            self.locks[env] = run.handle.run_id
        thread.start()

    def _reporter(self) -> Callable[[Any], None]:
        ref = self.actor_ref

        def report(message: Any) -> None:
            with contextlib.suppress(pykka.ActorDeadError):  # a stopped generation: nobody
                ref.tell(message)

        return report

    # Interruptions at stop

    def _interrupt_all(self) -> None:
        runs = list(self.runs.values())
        for run in runs:
            run.handle.cancel("interrupted")
        deadline = time.monotonic() + JOIN_TIMEOUT
        for run in runs:
            thread = run.handle.thread
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
