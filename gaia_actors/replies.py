"""Replies that cross capabilities: typed records of what one actor answers another, and
``ask_reply``, the ask that hands the type checker the record a query answers.

An environment's status is asked by the pipeline (a rollback waits for it to be idle) and by
``status`` (its data notes), so its record lives here, below every capability. Replies read
only inside their own capability live beside the actor that builds them. The control
protocol turns any of them into JSON (``control.protocol.to_json``), fields in order.
"""

from __future__ import annotations

from typing import Any, TypeVar

from gaia_actors.errors import UnexpectedReply
from supervisors import Registry
from supervisors.records import record
from supervisors.registry import DEFAULT_ASK_TIMEOUT

R = TypeVar("R")


def ask_reply(
    registry: Registry,
    name: str,
    query: Any,
    reply: type[R],
    timeout: float = DEFAULT_ASK_TIMEOUT,
) -> R:
    """Ask ``name`` and return its answer as a ``reply``: checked here, so the record's type
    holds from the actor that built it to the code that reads it (UnexpectedReply if not)."""
    answer = registry.ask(name, query, timeout=timeout)
    if not isinstance(answer, reply):
        got = type(answer).__name__
        raise UnexpectedReply(name, type(query).__name__, reply.__name__, got)
    return answer


@record
class DataLoss:
    """Databases an environment lost while it ran, and the backup restored for them."""

    at: float  # when the loss was noticed (epoch seconds)
    lost: tuple[str, ...]  # what was lost, one line each
    restored: str | bool = False  # the backup restored, or False while none is


@record
class EnvStatus:
    """An environment's answer to ``GetEnvStatus``: its process, release, data and whether an
    operation (deploy, rollback, restore) holds it."""

    name: str
    state: str  # running | stopped
    healthy: bool
    pid: int | None
    adopted: bool  # the process outlived a daemon and was taken over, not started
    release: str | None
    last_healthy: str | None
    port: int
    url: str
    started_at: float
    uptime: float
    restarts: int
    operation: str | None  # the operation under way, or None when idle
    data_bytes: int
    databases: tuple[str, ...]
    watched: tuple[str, ...]  # what the data-loss watch has seen
    backup_note: str  # why scheduled backups would back up nothing, or ""
    data_loss: DataLoss | None
    replaced_data: tuple[str, ...]  # data a restore or reset replaced, kept (newest first)
    undo: str | None  # the command that puts the replaced data back
    log_bytes: int
    releases: tuple[str, ...]  # newest first


__all__ = ["DataLoss", "EnvStatus", "ask_reply"]
