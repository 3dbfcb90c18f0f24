"""Errors of the pipeline: ``StageError`` under ``PipelineError`` and ``PromotionRefused``
under ``Rejected``, drawn with the whole tree in ``gaia_actors.errors``. (``Busy`` answers a
promotion whose environment is taken.)"""

from __future__ import annotations

from gaia_actors.errors import PipelineError, Rejected


class StageError(PipelineError):
    """A stage failed; the message says why, for the history and the operator."""


class StageTimeout(StageError):
    """The stage ran past its timeout."""


class StageCancelled(StageError):
    """The promotion was cancelled (or the daemon is stopping) while the stage ran."""


class PromotionRefused(Rejected):
    """A request the coordinator refuses; it keeps running."""
