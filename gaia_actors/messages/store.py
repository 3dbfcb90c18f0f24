"""The store's messages (``store``): writes, batched or at once, and retention."""

from __future__ import annotations

from gaia_actors.messages.base import Fields, message


@message
class Insert:
    """Command: queue one row for ``table``; written in a batch shortly after."""

    table: str
    values: Fields


@message
class InsertNow:
    """Query: write one row now (after everything queued) and answer its id.

    ``reply_by`` is set by ``ask`` (the monotonic time its asker stops waiting): a write that
    reaches a hung or busy store after that is dropped, so an ask that timed out was not
    written behind its asker's back, and a retry cannot write it twice."""

    table: str
    values: Fields
    reply_by: float | None = None


@message
class Update:
    """Command/query: update the row ``row_id`` of ``table`` (after everything queued).
    Asked, it is dropped after ``reply_by`` as ``InsertNow`` is; told, it is always applied."""

    table: str
    row_id: int
    values: Fields
    reply_by: float | None = None


@message
class Flush:
    """Query: write everything queued now; answers the number of rows written."""


@message
class Prune:
    """Command: delete rows older than each table's retention."""
