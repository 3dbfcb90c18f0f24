"""Data incidents of an environment: each is an alert event on the bus and an incident row.

Used by the environment actor and by its recovery ladder (which runs while the actor is
down), so both say the same thing: what happened to the data, why, where the replaced data
was kept, and the one command that puts it back. Both go through the registry's outbox, so
an alert raised while the bus or the store restarts is delivered once they are back.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from gaia_actors.events import AlertEvent
from gaia_actors.messages import Event, Insert, fields_of
from gaia_actors.outbox import outbox_for
from supervisors import Registry


def undo_command(env: str) -> str:
    return f"python run.py restore {env} --undo"


def publish(registry: Registry, actor: str, env: str, name: str, level: str, **data: Any) -> None:
    event = Event(name, level=level, actor=actor, env=env, data=fields_of(**data))
    outbox_for(registry).tell("bus", event)


def _incident(registry: Registry, env: str, cause: str, status: str, detail: str) -> None:
    now = time.time()
    row = fields_of(env=env, cause=cause, started=now, detected=now, status=status, detail=detail)
    if status == "recovered":
        row += fields_of(recovered=now, time_to_detect=0.0, time_to_recover=0.0)
    outbox_for(registry).tell("store", Insert("incidents", row))


def data_replaced(
    registry: Registry,
    actor: str,
    env: str,
    *,
    kind: str,
    why: str,
    detail: Mapping[str, Any],
) -> None:
    """Data was replaced (``kind``: restore, reset, undo) because of ``why``; ``detail``
    holds ``saved_copy``, where the replaced data is kept."""
    saved = str(detail.get("saved_copy") or "")
    undo = undo_command(env) if saved else ""
    publish(
        registry,
        actor,
        env,
        AlertEvent.DATA_REPLACED,
        "critical",
        kind=kind,
        why=why,
        undo=undo,
        **detail,
    )
    text = f"{kind}: {why}; replaced data kept in {saved or '(there was none)'}"
    _incident(
        registry, env, "data_replaced", "recovered", text + (f"; undo: {undo}" if undo else "")
    )


def data_loss(
    registry: Registry, actor: str, env: str, lost: Sequence[str], restoring: bool
) -> None:
    """Databases were lost while the environment ran (``lost`` says how)."""
    action = (
        "restoring the newest verified backup"
        if restoring
        else (f"restore_on_data_loss is off: to go back to a backup, python run.py restore {env}")
    )
    publish(registry, actor, env, AlertEvent.DATA_LOSS, "critical", lost=list(lost), action=action)
    _incident(registry, env, "data_loss", "closed", "; ".join(lost) + f" ({action})")
