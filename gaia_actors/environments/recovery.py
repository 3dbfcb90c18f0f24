"""Steps that replace an environment's data or stop its leftover process.

Shared by the environment actor (operator restore, reset, undo; a restore after data loss)
and its recovery ladder, which runs them while the actor is down, so both replace data the
same way and describe it the same way (the ``detail`` dict that goes into events and alerts).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from gaia_actors import process
from gaia_actors.environments import data, restores
from gaia_actors.layout import Layout


def stop_leftover(layout: Layout) -> None:
    """Stop a process the pid file still names (the data must not be open while replaced)."""
    leftover = process.adopt(layout.pidfile)
    if leftover is not None:
        leftover.stop(layout.config.stop_grace)
    process.remove_pidfile(layout.pidfile)


def restore_data(
    layout: Layout, backup: str | None = None, passed_over: Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    """Restore ``backup`` (default: the newest that verifies); ``passed_over`` lists the
    newer backups that were refused when ``backup`` was chosen."""
    result = restores.restore(layout.data, layout.backups, backup)
    return {
        "backup": result.used.id,
        "skipped": [f"{name}: {why}" for name, why in (*passed_over, *result.skipped)],
        "saved_copy": str(result.saved_copy_path or ""),
    }


def undo_data(layout: Layout) -> dict[str, Any]:
    put_back, saved = data.undo_replace(layout.data)
    return {"put_back": str(put_back), "saved_copy": str(saved or "")}


def reset_data(layout: Layout) -> dict[str, Any]:
    saved = restores.reset_data(layout.data, datetime.now(UTC))
    return {"saved_copy": str(saved or "")}
