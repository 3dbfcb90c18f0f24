"""An environment's messages (``environment.<env>``): its process, releases, data and backups."""

from __future__ import annotations

from gaia_actors.messages.base import message


@message
class GetEnvStatus:
    """Query: the environment's process, release, data and recovery state."""


@message
class Fail:
    """Command: declare the environment failed (hung or down); its supervisor takes over."""

    reason: str
    cause: str = "down"  # down | hung | exited


@message
class KillProcess:
    """Command: SIGKILL the environment's process group (fault injection)."""


@message
class BuildRelease:
    """Query: build a release from the configured source tree; answers its id and path."""


@message
class Deploy:
    """Query: deploy ``release`` (an id in this environment or a path to a release directory)."""

    release: str
    pipeline_id: int | None = None
    timeout: float | None = None


@message
class Rollback:
    """Query: switch back to ``release`` (default: the previous one) and wait for healthy."""

    release: str = ""
    pipeline_id: int | None = None


@message
class TakeBackup:
    """Query: take a verified online backup of the environment's databases now."""

    reason: str = "manual"
    pipeline_id: int | None = None


@message
class RestoreBackup:
    """Query: restore ``backup`` (default: the newest that verifies), keeping the replaced data;
    ``undo`` puts back the data the last restore or reset replaced instead."""

    backup: str = ""
    undo: bool = False


@message
class ResetData:
    """Query: move the data aside and start empty (only where reset_on_error is true)."""


@message
class GetLogs:
    """Query: the last ``lines`` lines of the environment process's output."""

    lines: int = 50
