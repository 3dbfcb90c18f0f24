"""The coordinator's answer to ``GetPipelineStatus``: the running promotions."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from gaia_actors.control.protocol import OMIT_NONE
from supervisors.records import record

NAME = "pipeline"  # the coordinator's registered name, which answers GetPipelineStatus


@record
class RunView:
    """One running promotion (or the rollback of an interrupted one) and its current stage."""

    pipeline_id: int  # the promotion running now (a chained run moves on to the next)
    run: int  # the first promotion of the run, which names it
    pipeline_ids: tuple[int, ...]
    what: str  # dev | staging | all | the recovery of an interrupted one
    kind: str
    release: str
    environments: tuple[str, ...]  # every environment it holds
    stage: str | None
    stage_kind: str | None
    stage_elapsed: float | None
    elapsed: float
    trigger: str
    stages: Mapping[str, str]  # "<pipeline id>:<stage>" -> its status
    cancelling: bool
    output: tuple[str, ...] | None = dataclasses.field(default=None, metadata=OMIT_NONE)


@record
class PipelineStatus:
    running: tuple[RunView, ...]
    locks: Mapping[str, int]  # environment -> the run holding it


__all__ = ["PipelineStatus", "RunView"]
