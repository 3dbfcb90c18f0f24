"""A store file deleted while the daemon runs is replaced by a new one, whose rows SQLite numbers
from 1 again: an update still told for a row of the lost file must not change the new row that
would take its id."""

from __future__ import annotations

from typing import Any

import pytest

from gaia_actors.messages import Flush, Insert, InsertNow, Update, fields_of
from gaia_actors.settings import Settings
from gaia_actors.store.models import Pipeline
from supervisors import Registry


def _pipeline(registry: Registry, kind: str) -> int:
    values = fields_of(kind=kind, status="running", started=1.0)
    row_id: int = registry.ask("store", InsertNow("pipelines", values))
    return row_id


@pytest.mark.parametrize("asked", [True, False], ids=["InsertNow", "told Insert"])
def test_a_new_file_gives_no_row_the_id_of_a_lost_one_nor_its_updates(
    tree: tuple[Registry, Any], settings: Settings, asked: bool
) -> None:
    registry, _ = tree
    old = _pipeline(registry, "old")
    (settings.state_dir / "gaia.db").unlink()
    values = fields_of(kind="new", status="running", started=2.0)
    for _ in range(2):  # SQLite alone would number them from 1 in the new file
        if asked:
            registry.ask("store", InsertNow("pipelines", values))
        else:
            registry.tell("store", Insert("pipelines", values))
    registry.tell("store", Update("pipelines", old, fields_of(status="failed")))  # meant for old
    registry.ask("store", Flush())
    rows = [(p.id, p.kind, p.status) for p in Pipeline.select().order_by(Pipeline.id)]
    assert rows == [(old + 1, "new", "running"), (old + 2, "new", "running")]
