"""Errors of the pipeline, rooted in ``gaia_actors.errors``.

PipelineError (gaia_actors.errors)
└── StageError          a stage could not do its work
    ├── StageTimeout    it ran past its timeout (a command's process group was killed)
    └── StageCancelled  the promotion was cancelled or interrupted while it ran
Rejected (gaia_actors.errors)
└── PromotionRefused    a promotion or cancel cannot be done: not configured, unknown id,
                        not running (``Busy`` answers a promotion whose environment is taken)
"""

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
