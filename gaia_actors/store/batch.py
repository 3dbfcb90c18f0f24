"""A batch: the rows and updates the store holds, written in the caller's transaction.

Rows of a table go in ``insert_many`` chunks; a chunk SQLite refuses for what it holds (a
constraint, a value: the sender's error, not the store's) is written again row by row, each
in a savepoint, and what is refused is reported and left out, so one bad row or update never
holds the others back. A storage fault (``OperationalError``, a corrupt file) is raised: the
whole transaction is tried again later."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import peewee

from gaia_actors.errors import InvalidMessage
from gaia_actors.store.database import is_corrupt
from gaia_actors.store.models import TABLES

CHUNK_ROWS = 200  # SQLite caps the variables per statement
Rows = Mapping[str, Sequence[dict[str, Any]]]
Updates = Sequence[tuple[str, int, dict[str, Any]]]
Refused = Callable[[str, BaseException], None]  # the table, and SQLite's reason


def model_for(table: str) -> Any:
    model = TABLES.get(table)
    if model is None:
        raise InvalidMessage(
            "Insert", f"unknown table {table!r}; tables: {', '.join(TABLES)}", "table"
        )
    return model


def write(
    db: peewee.Database,
    rows: Rows,
    updates: Updates,
    floors: Mapping[str, int],
    refused: Refused,
) -> tuple[int, int]:
    """Write ``rows`` and then ``updates``; answers how many rows and updates SQLite
    refused. A table's first row is numbered above its floor (see ``above_floor``)."""
    refused_rows = refused_updates = 0
    for table, held in rows.items():
        if not held:
            continue
        model, rest = model_for(table), held
        first = above_floor(db, floors, table, held[0])
        if first is not held[0]:  # the new file's first row, numbered above the lost ones
            refused_rows += not savepoint(db, _inserter(db, model, [first]), table, refused)
            rest = held[1:]
        for chunk in _chunks(rest, CHUNK_ROWS):
            if savepoint(db, _inserter(db, model, chunk)):
                continue
            for row in chunk:
                refused_rows += not savepoint(db, _inserter(db, model, [row]), table, refused)
    for table, row_id, values in updates:
        change = functools.partial(write_update, db, table, row_id, values)
        refused_updates += not savepoint(db, change, table, refused)
    return refused_rows, refused_updates


def write_update(db: peewee.Database, table: str, row_id: int, values: dict[str, Any]) -> int:
    model = model_for(table)
    changed: int = model.update(values).where(model.id == row_id).execute(db)
    return changed


def above_floor(
    db: peewee.Database, floors: Mapping[str, int], table: str, row: dict[str, Any]
) -> dict[str, Any]:
    """``row``, with an id above every one answered for ``table`` before the file was
    replaced (its floor): SQLite numbers a new file's rows from 1 again, and an update still
    told for a row of the lost file must find no row, not the new one that took its id."""
    floor = floors.get(table, 0)
    if not floor or "id" in row:
        return row
    model = model_for(table)
    newest = model.select(peewee.fn.MAX(model.id)).scalar(db) or 0
    return row if newest >= floor else {**row, "id": floor + 1}


def savepoint(
    db: peewee.Database, work: Callable[[], Any], table: str = "", refused: Refused | None = None
) -> bool:
    """Run ``work`` in a savepoint; False when SQLite refused it for what it holds (told to
    ``refused`` when ``table`` names the single row's or update's table)."""
    try:
        with db.atomic():
            work()
    except peewee.DatabaseError as exc:
        if isinstance(exc, peewee.OperationalError) or is_corrupt(exc):
            raise  # the store's fault: the whole transaction is tried again later
        if table and refused is not None:
            refused(table, exc)
        return False
    return True


def _inserter(db: peewee.Database, model: Any, rows: list[dict[str, Any]]) -> Callable[[], Any]:
    return lambda: model.insert_many(rows).execute(db)


def _chunks(rows: Sequence[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    # Rows with different key sets cannot share one INSERT; group them by their keys first.
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(sorted(row))].append(row)
    return [group[i : i + size] for group in groups.values() for i in range(0, len(group), size)]
