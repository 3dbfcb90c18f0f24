"""A store file deleted while the daemon runs is replaced by a new one, whose rows SQLite numbers
from 1 again: an update still told for a row of the lost file must not change the new row that
would take its id."""

from __future__ import annotations

from typing import Any

from gaia_actors.messages import Flush, Insert, InsertNow, Update, fields_of
from gaia_actors.settings import Settings
from gaia_actors.store.models import Pipeline
from supervisors import Registry


def _pipeline(registry: Registry, kind: str) -> int:
    values = fields_of(kind=kind, status="running", started=1.0)
    row_id: int = registry.ask("store", InsertNow("pipelines", values))
    return row_id


def test_an_update_for_a_row_of_a_lost_file_changes_no_row_of_the_new_one(
    tree: tuple[Registry, Any], settings: Settings
) -> None:
    registry, _ = tree
    old = _pipeline(registry, "old")
    (settings.state_dir / "gaia.db").unlink()
    new = _pipeline(registry, "new")  # in a new file
    registry.tell("store", Update("pipelines", old, fields_of(status="failed")))  # meant for old
    registry.ask("store", Flush())
    assert new > old
    assert [(p.kind, p.status) for p in Pipeline.select()] == [("new", "running")]
    assert _pipeline(registry, "next") == new + 1


def test_a_row_told_to_a_new_file_does_not_take_the_id_of_a_row_of_the_lost_one(
    tree: tuple[Registry, Any], settings: Settings
) -> None:
    registry, _ = tree
    old = _pipeline(registry, "old")
    (settings.state_dir / "gaia.db").unlink()
    values = fields_of(kind="told", status="running", started=2.0)
    registry.tell("store", Insert("pipelines", values))  # its id: SQLite's next in the new file
    registry.tell("store", Insert("pipelines", values))
    registry.tell("store", Update("pipelines", old, fields_of(status="failed")))  # meant for old
    registry.ask("store", Flush())
    rows = [(p.id, p.kind, p.status) for p in Pipeline.select().order_by(Pipeline.id)]
    assert rows == [(old + 1, "told", "running"), (old + 2, "told", "running")]
