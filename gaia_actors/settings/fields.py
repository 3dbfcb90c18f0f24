"""The vocabulary of a setting's declaration: a number's accepted range (``bounded``) and the
placeholders a command template may use, both read by the generic loader."""

from __future__ import annotations

from dataclasses import field
from typing import TypeVar

# A number setting's accepted values, declared beside the field (``bounded``) and enforced by
# the generic loader: a zero interval or threshold would burn a core, flood the store or stop
# the daemon, so every number has a range (NaN and infinity are never accepted).
RANGE = "range"


Number = TypeVar("Number", int, float)


def bounded(default: Number, low: float, high: float) -> Number:
    """A setting with ``default`` that accepts numbers from ``low`` to ``high`` inclusive."""
    return field(default=default, metadata={RANGE: (low, high)})


# Without a declared range a number must still be finite and non-negative.
DEFAULT_RANGE = (0, 1e12)


SCHEDULE_SECONDS = (0.1, 31_536_000)  # a numeric backup_schedule: up to a year


# Command templates: a field whose metadata names its placeholders is checked at load, and
# expanded at run time by ``expand`` with the same rules: ``{name}`` is a placeholder, ``{{``
# and ``}}`` are literal braces (a shell's ``${{VAR}}``, JSON in an argument).
PLACEHOLDERS = "placeholders"


# What an environment's command and env values may use (Layout.substitutions fills them).
ENV_PLACEHOLDERS = ("python", "port", "host", "data_dir", "release_id", "name", "env_dir")


BUILD_PLACEHOLDERS = ("python",)


# What a promotion stage's command, environ values and junit path may use.
STAGE_PLACEHOLDERS = (
    "python", "release_dir", "release", "url", "env", "port", "junit", "pipeline_id"
)  # fmt: skip


IMPROVE_PLACEHOLDERS = ("python",)


IMPROVE_BUILD_PLACEHOLDERS = ("python", "tmp")  # "{tmp}": the cycle's scratch directory
