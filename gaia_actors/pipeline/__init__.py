"""The promotion pipeline: the ``pipeline`` actor and its stages.

coordinator.py  PipelineCoordinator: locks, status, cancel, recovery at start
runs.py         a run's state, its locks and its runner thread (the coordinator's base)
recovery.py     promotions a previous daemon left unfinished, interrupted and rolled back
runner.py       the per-promotion worker thread that runs the stages and reports back
reports.py      what a runner tells its coordinator, and the run's handle they share
reporting.py    how a runner reports and writes its history through the store
leftovers.py    stage processes a SIGKILLed daemon left running, found and killed
stage.py        a stage's base, what it is given (context, promotion) and answers (outcome)
stages.py       the stage kinds (build, command, health, load, backup, deploy)
rollback.py     code and data rollback of a promotion's target
junit.py        JUnit XML results (gaia_actors.junit) as the history's per-test records
load.py         the built-in HTTP load of the ``load`` stage
history.py      store queries for ``history`` and ``pipeline-status``
commands.py     promote-dev, promote-staging, promote-all, cancel, history, pipeline-status
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gaia_actors.settings import Settings
    from supervisors import ChildSpec, Link, Registry


def child_specs(
    settings: Settings, registry: Registry, listener: Any, supervisor_config: Any
) -> list[ChildSpec]:
    """The ``pipeline`` actor; started after the environments it drives."""
    from gaia_actors.pipeline.coordinator import PipelineCoordinator
    from gaia_actors.pipeline.runs import JOIN_TIMEOUT
    from gaia_actors.pipeline.status import NAME
    from supervisors import ChildSpec

    def factory(link: Link) -> Any:
        return PipelineCoordinator.start(link, settings)

    return [ChildSpec(NAME, factory, shutdown_timeout=JOIN_TIMEOUT + 5.0)]
