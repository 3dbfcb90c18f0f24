"""What ``status`` shows of an environment's data, asked of the environment's actor by
message: data lost while running, replaced data kept (and the command that puts it back), a
backup schedule with nothing to back up. Read by the monitor's ``status``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gaia_actors.control.protocol import to_json
from gaia_actors.errors import EnvironmentFailure
from gaia_actors.layout import actor_name
from gaia_actors.messages import GetEnvStatus
from supervisors import SupervisionError

if TYPE_CHECKING:
    from supervisors import Registry

# What ``status`` shows of an environment's data (asked of its actor; nothing while it is down).
DATA_NOTES = ("data_loss", "replaced_data", "undo", "backup_note")


def data_notes(registry: Registry, env: str, timeout: float = 2.0) -> dict[str, Any]:
    """The environment's data warnings for ``status``: data lost while running, replaced
    data kept (and the command that puts it back), a backup schedule with nothing to back up."""
    # The asking half, with the registry's ask, is imported here: ``status``'s rendering
    # (``data_lines``) runs in a command line that starts no actor.
    from gaia_actors.replies import EnvStatus, ask_reply

    try:
        status = ask_reply(registry, actor_name(env), GetEnvStatus(), EnvStatus, timeout)
    except (SupervisionError, EnvironmentFailure):
        return {}
    notes = {key: getattr(status, key) for key in DATA_NOTES}
    return {key: to_json(value) for key, value in notes.items() if value}


def data_lines(environments: list[dict[str, Any]]) -> list[str]:
    """``status``'s lines about data, one or more per environment that has something to say."""
    lines = []
    for env in environments:
        name = env.get("env", "?")
        if loss := env.get("data_loss"):
            lines.append(f"  {name}: DATA LOSS: {'; '.join(loss.get('lost', []))}")
        if replaced := env.get("replaced_data"):
            lines.append(f"  {name}: replaced data kept in {replaced[0]} (undo: {env.get('undo')})")
        if note := env.get("backup_note"):
            lines.append(f"  {name}: {note}")
    return ["", "data:", *lines] if lines else []
