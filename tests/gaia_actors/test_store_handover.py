"""What a store generation holds and cannot write when it ends (its file unwritable, a crash
or a hang ending it) is handed to the next generation, not dropped with it."""

from __future__ import annotations

from typing import Any

from gaia_actors.messages import Crash, GetState, Insert, InsertNow, Update, fields_of
from gaia_actors.settings import Settings
from gaia_actors.store.models import HealthCheck, Pipeline
from supervisors import Registry
from tests.conftest import wait_until


def _held(registry: Registry) -> int:
    state: dict[str, Any] = registry.ask("store", GetState())
    return int(state["held"])


def _generation(registry: Registry) -> int:
    node = registry.node("store")
    return node.generation if node is not None and node.state == "running" else 0


def test_what_a_crashed_store_could_not_write_is_written_by_its_next_generation(
    tree: tuple[Registry, Any], settings: Settings
) -> None:
    registry, _ = tree
    values = fields_of(kind="k", status="running", started=1.0)
    row_id = registry.ask("store", InsertNow("pipelines", values))
    journal = settings.state_dir / "gaia.db-journal"
    journal.unlink(missing_ok=True)
    journal.mkdir()  # SQLite cannot open its journal: no write transaction can start
    for i in range(50):
        row = fields_of(ts=float(i), env="held", status="healthy")
        registry.tell("store", Insert("health_checks", row))
    registry.tell("store", Update("pipelines", row_id, fields_of(status="failed")))
    wait_until(lambda: _held(registry) >= 51, what="the rows held by the faulty store")
    registry.tell("store", Crash("a bug"))
    wait_until(lambda: _generation(registry) == 2, what="the store restarted")
    journal.rmdir()
    wait_until(
        lambda: HealthCheck.select().where(HealthCheck.env == "held").count() == 50,
        what="the first generation's rows, written by the second",
    )
    wait_until(lambda: Pipeline.get_by_id(row_id).status == "failed", what="its update")
