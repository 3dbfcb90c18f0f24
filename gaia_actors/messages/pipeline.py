"""The pipeline's messages (``pipeline``): promotions, their status and history."""

from __future__ import annotations

from typing import Literal

from gaia_actors.messages.base import message


@message
class Promote:
    """Query: start a promotion (dev: dev->staging, staging: staging->prod, all: both).

    Answers at once with the first pipeline id, or Busy naming the promotion that holds one
    of its environments. The actor named ``watcher`` (a control connection's relay) is told
    a ``Progress`` at every stage's start and end, with ``output`` also for the running
    stage's output lines, and a last ``run.ended``.
    """

    what: Literal["dev", "staging", "all"]
    trigger: str = "operator"
    watcher: str = ""
    output: bool = False


@message
class CancelPipeline:
    """Query: cancel running promotion ``pipeline_id``; its stage's process group is killed."""

    pipeline_id: int


@message
class GetPipelineStatus:
    """Query: running promotions with their current stage (and its last ``lines`` of output)."""

    lines: int = 0


@message
class GetPipelineHistory:
    """Query: recent promotions, or (with ``pipeline_id``) one promotion stage by stage."""

    pipeline_id: int | None = None
    limit: int = 20
