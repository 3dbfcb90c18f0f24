"""The Api object over a real database, without sockets."""

from __future__ import annotations

import io
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from demosvc.api import Api, Request, Response
from demosvc.config import Settings
from demosvc.db import Database
from demosvc.faults import Faults, FaultState
from demosvc.logs import EventLog
from demosvc.metrics import Metrics

SHIPPED_MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = Settings(port=0, data_dir=tmp_path, release_id="r7", env_name="dev")
    db = Database.open(settings.db_path, SHIPPED_MIGRATIONS)
    faults = FaultState(Faults(), on_exit_after=lambda _s: None)
    metrics = Metrics(db_size_bytes=lambda: 0.0, items=lambda: 0.0, build={})
    log = EventLog(io.StringIO())
    yield Api(
        settings=settings, db=db, faults=faults, metrics=metrics, log=log, started=time.monotonic()
    )
    faults.close()
    db.close()


def call(
    api: Api, method: str, path: str, body: object = None, client: str = "127.0.0.1"
) -> tuple[str, Response, object]:
    raw = b"" if body is None else json.dumps(body).encode()
    path, _, query = path.partition("?")
    route, response = api.handle(Request(method, path, query, raw, client))
    payload = (
        json.loads(response.body)
        if response.body and response.content_type == "application/json"
        else None
    )
    return route, response, payload


def test_health_reports_release_env_and_item_count(api: Api) -> None:
    call(api, "POST", "/items", {"name": "a", "value": 1})
    _, response, body = call(api, "GET", "/health")
    assert response.status == 200
    assert isinstance(body, dict)
    assert body["status"] == "ok"
    assert body["release"] == "r7"
    assert body["env"] == "dev"
    assert body["db"] == "ok"
    assert body["items"] == 1
    assert isinstance(body["uptime_s"], float)


def test_unhealthy_fault_answers_503(api: Api) -> None:
    call(api, "POST", "/admin/fault", {"unhealthy": True})
    _, response, body = call(api, "GET", "/health")
    assert response.status == 503
    assert isinstance(body, dict)
    assert (body["status"], body["db"], body["fault"]) == ("error", "ok", "unhealthy")


def test_create_answers_201_with_location(api: Api) -> None:
    route, response, body = call(api, "POST", "/items", {"name": "a", "value": 5})
    assert (route, response.status) == ("/items", 201)
    assert isinstance(body, dict)
    assert dict(response.headers)["Location"] == f"/items/{body['id']}"


def test_validation_error_names_the_field(api: Api) -> None:
    _, response, body = call(api, "POST", "/items", {"name": "a"})
    assert response.status == 400
    assert body == {"error": "is required", "field": "value"}


def test_unknown_path_is_404_labelled_other(api: Api) -> None:
    route, response, body = call(api, "GET", "/nope/1")
    assert (route, response.status) == ("other", 404)
    assert body == {"error": "not found", "path": "/nope/1"}


def test_wrong_method_is_405_with_allow(api: Api) -> None:
    _, response, body = call(api, "PUT", "/items/1")
    assert response.status == 405
    assert isinstance(body, dict)
    assert body["allow"] == "DELETE, GET"


def test_missing_item_is_404_and_delete_is_204(api: Api) -> None:
    _, _, item = call(api, "POST", "/items", {"name": "a", "value": 5})
    assert isinstance(item, dict)
    assert call(api, "DELETE", f"/items/{item['id']}")[1].status == 204
    assert call(api, "GET", f"/items/{item['id']}")[1].status == 404
    assert call(api, "DELETE", f"/items/{item['id']}")[1].status == 404


def test_admin_refuses_non_loopback_clients(api: Api) -> None:
    _, response, _ = call(api, "POST", "/admin/fault", {"unhealthy": True}, client="192.0.2.7")
    assert response.status == 403
    assert call(api, "GET", "/health")[1].status == 200


def test_admin_rejects_unknown_fault_with_400(api: Api) -> None:
    _, response, body = call(api, "POST", "/admin/fault", {"melt": True})
    assert response.status == 400
    assert isinstance(body, dict)
    assert body["field"] == "melt"


def test_items_answer_503_when_the_table_is_gone(api: Api, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "app.db") as conn:
        conn.execute("DROP TABLE items")
    _, response, body = call(api, "GET", "/items")
    assert response.status == 503
    assert isinstance(body, dict)
    assert "no such table" in body["detail"]
    assert call(api, "GET", "/health")[1].status == 503
