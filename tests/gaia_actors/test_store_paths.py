"""The store file is the state directory's ``gaia.db`` whatever characters the directory's
path holds: ``?`` and ``#`` are a path's, not a URL's query or fragment."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from gaia_actors.app import start_root
from gaia_actors.messages import GetState, InsertNow, fields_of
from gaia_actors.settings import load
from gaia_actors.store.models import Pipeline
from supervisors import Registry
from tests.gaia_actors.conftest import write_config


@pytest.mark.parametrize("name", ["ops#2", "state?timeout=1", "50%25 full", "it's"])
def test_a_state_directory_with_url_characters_keeps_its_store_inside(
    tmp_path: Path, name: str
) -> None:
    config = write_config(tmp_path, "[store]\nflush_interval = 0.05\n")
    state_dir = tmp_path / "states" / name
    settings = load(config, environ={"GAIA_STATE_DIR": str(state_dir)})
    registry = Registry()
    root = start_root(settings, registry, capabilities=())
    try:
        row_id = registry.ask(
            "store", InsertNow("pipelines", fields_of(kind="k", status="s", started=1.0))
        )
        state = registry.ask("store", GetState())
        read_back = Pipeline.get_by_id(row_id).kind  # the readers' file is the same
    finally:
        root.stop(block=True, timeout=10)
    assert (state["fault"], read_back) == ("", "k")
    assert [p.name for p in (tmp_path / "states").iterdir()] == [name]  # nothing beside it
    with contextlib.closing(sqlite3.connect(state_dir / "gaia.db")) as conn:
        assert conn.execute("SELECT kind FROM pipelines WHERE id = ?", (row_id,)).fetchone() == (
            "k",
        )
