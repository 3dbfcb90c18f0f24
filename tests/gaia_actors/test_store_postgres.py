"""The store on a real PostgreSQL server (GAIA_TEST_POSTGRES_URL; ``.ci/postgres`` starts one):
schema creation and forward migration, batched writes, pruning, and a daemon whose promotion
``status`` and ``history`` read back. Each test gets a database of its own, dropped after it."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pykka
import pytest

from gaia_actors.app import start_root
from gaia_actors.layout import Layout
from gaia_actors.messages import Flush, Insert, InsertNow, Prune, Update, fields_of
from gaia_actors.settings import Settings, load
from gaia_actors.store.database import open_database
from gaia_actors.store.models import (
    MODELS,
    EventRow,
    HealthCheck,
    Pipeline,
    Stage,
    close_thread_connections,
)
from supervisors import Registry
from tests.conftest import wait_until
from tests.gaia_actors.environments.conftest import kill_services, load_settings
from tests.gaia_actors.environments.test_daemon_restart import REPO, Daemon
from tests.gaia_actors.externals import postgres_url
from tests.gaia_actors.pipeline.conftest import release_source, write_pipeline_config

DAY = 86400.0


def _admin(url: str) -> Any:
    import psycopg2

    conn = psycopg2.connect(url)
    conn.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
    return conn


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty database on the test server; its peewee URL."""
    base = postgres_url()
    name = f"gaia_test_{uuid.uuid4().hex[:12]}"
    admin = _admin(base)
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
        close_thread_connections()
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


def pg_settings(tmp_path: Path, url: str, text: str = "") -> Settings:
    config = tmp_path / "gaia.toml"
    config.write_text("[store]\nflush_interval = 0.05\n" + text, encoding="utf-8")
    return load(
        config, environ={"GAIA_STATE_DIR": str(tmp_path / "state"), "GAIA_DATABASE_URL": url}
    )


@contextlib.contextmanager
def store_tree(settings: Settings) -> Iterator[Registry]:
    registry = Registry()
    root = start_root(settings, registry, capabilities=())
    try:
        yield registry
    finally:
        with contextlib.suppress(pykka.ActorDeadError):
            root.stop(block=True, timeout=10)


def columns(url: str, table: str) -> dict[str, str]:
    conn = _admin(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = %s",
                (table,),
            )
            return dict(cursor.fetchall())
    finally:
        conn.close()


def test_the_schema_is_created_then_migrated_forward_keeping_rows(pg_url: str) -> None:
    conn = _admin(pg_url)
    with conn.cursor() as cursor:  # an older schema: health_checks without its later columns
        cursor.execute(
            "CREATE TABLE health_checks (id SERIAL PRIMARY KEY, ts DOUBLE PRECISION NOT NULL, "
            "env VARCHAR(255) NOT NULL, status VARCHAR(255) NOT NULL)"
        )
        cursor.execute("INSERT INTO health_checks (ts, env, status) VALUES (1.5, 'prod', 'down')")
    conn.close()

    db = open_database(pg_url)
    try:
        assert set(db.get_tables()) == {model._meta.table_name for model in MODELS}
        migrated = columns(pg_url, "health_checks")
        assert {"latency_ms", "rss_bytes", "release", "error_rate"} <= migrated.keys()
        with db.connection_context():
            assert [(r.env, r.status, r.latency_ms) for r in HealthCheck.select()] == [
                ("prod", "down", None)
            ]
        open_database(pg_url)  # a second start changes nothing
        assert columns(pg_url, "health_checks") == migrated
    finally:
        db.close()


def test_timestamps_and_byte_counts_keep_their_precision(pg_url: str) -> None:
    # PostgreSQL's FLOAT is REAL (6 significant digits: a Unix time to ~2 minutes) and its
    # INTEGER 32 bits: the store asks for DOUBLE PRECISION and BIGINT instead.
    db = open_database(pg_url)
    try:
        assert columns(pg_url, "health_checks")["ts"] == "double precision"
        assert columns(pg_url, "health_checks")["db_bytes"] == "bigint"
        now = 1_765_000_000.123
        with db.connection_context():
            HealthCheck.insert(ts=now, env="prod", status="healthy", db_bytes=5 << 30).execute()
            row = HealthCheck.get()
        assert (row.ts, row.db_bytes) == (pytest.approx(now, abs=1e-3), 5 << 30)
    finally:
        db.close()


def test_batched_writes_insert_now_and_update(tmp_path: Path, pg_url: str) -> None:
    with store_tree(pg_settings(tmp_path, pg_url)) as registry:
        for i in range(1200):
            check = fields_of(ts=time.time(), env=f"e{i % 3}", status="healthy", latency_ms=i)
            registry.tell("store", Insert("health_checks", check))
        # Rows with different key sets in the same batch go out as separate INSERTs.
        registry.tell("store", Insert("events", fields_of(ts=time.time(), name="a")))
        registry.tell("store", Insert("events", fields_of(ts=time.time(), name="b", env="x")))
        assert registry.ask("store", Flush()) > 0
        assert HealthCheck.select().count() == 1200
        assert HealthCheck.select().where(HealthCheck.env == "e1").count() == 400
        mine = EventRow.select().where(EventRow.name << ["a", "b"])
        assert sorted((e.name, e.env) for e in mine) == [("a", ""), ("b", "x")]

        row = fields_of(kind="dev_to_staging", status="running", started=time.time())
        pipeline_id = registry.ask("store", InsertNow("pipelines", row))
        registry.tell("store", Update("pipelines", pipeline_id, fields_of(status="succeeded")))
        registry.ask("store", Flush())
        assert Pipeline.get_by_id(pipeline_id).status == "succeeded"
        assert registry.ask("store", Flush()) == 0


def test_pruning_removes_expired_rows_and_old_promotions(tmp_path: Path, pg_url: str) -> None:
    settings = pg_settings(tmp_path, pg_url, "[pipeline]\nkeep = 2\n")
    now = time.time()
    with store_tree(settings) as registry:
        for name, age in (("old", 31 * DAY), ("new", 0.0)):  # events: 30 days, checks 7
            registry.tell("store", Insert("events", fields_of(ts=now - age, name=name)))
            check = fields_of(ts=now - age / 3, env="prod", status="healthy")
            registry.tell("store", Insert("health_checks", check))
        ids = []
        for i, status in enumerate(["running", "succeeded", "failed", "succeeded", "succeeded"]):
            row = fields_of(kind="k", status=status, started=now + i)
            ids.append(registry.ask("store", InsertNow("pipelines", row)))
            stage = fields_of(
                pipeline_id=ids[-1], position=1, name="s", kind="command", status="passed"
            )
            registry.ask("store", InsertNow("stages", stage))

        removed = registry.ask("store", Prune())

        assert removed == 1 + 1 + 2 * 2  # an event, a check, two promotions with their stages
        aged = EventRow.select().where(EventRow.name << ["old", "new"])
        assert [e.name for e in aged] == ["new"]
        assert HealthCheck.select().count() == 1
        kept = sorted(p.id for p in Pipeline.select())
        assert kept == [ids[0], ids[3], ids[4]]  # the running one, then the newest two
        assert sorted(s.pipeline_id for s in Stage.select()) == kept


def cli(daemon: Daemon, *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, str(REPO / "run.py"), "--config", str(daemon.config), *args, "--json"],
        capture_output=True,
        text=True,
        env=daemon.environ,
        cwd=daemon.tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def env_status(status: dict[str, Any], env: str) -> dict[str, Any]:
    found: dict[str, Any] = next(e for e in status["environments"] if e["env"] == env)
    return found


def test_a_daemon_on_postgresql_promotes_and_status_and_history_read_it(
    tmp_path: Path, pg_url: str
) -> None:
    source = release_source(tmp_path / "source")
    stages = [
        {"kind": "build", "deploy": False},
        {"kind": "command", "name": "gate", "command": ["true"]},
        {"kind": "deploy"},
    ]
    config = write_pipeline_config(
        tmp_path, source, {"dev_to_staging": stages}, envs=("dev", "staging"),
        extra='[metrics]\nlisten = ""\n[monitor]\ninterval = 0.5\n',
    )  # fmt: skip
    settings = load_settings(tmp_path, config)
    daemon = Daemon(tmp_path, config, settings)
    daemon.environ["GAIA_DATABASE_URL"] = pg_url
    try:
        daemon.start()
        (source / "MARKER").write_text("two\n")
        started = cli(daemon, "promote-dev")
        pipeline_id = started["pipeline_id"]

        def finished() -> Any:
            shown = cli(daemon, "history", str(pipeline_id))
            return shown if shown["status"] not in ("running", "pending") else None

        promotion = wait_until(finished, timeout=90, interval=0.5)
        assert isinstance(promotion, dict)

        def staging_healthy_on_the_new_release() -> bool:
            staging = env_status(cli(daemon, "status"), "staging")
            return (staging["status"], staging["release"]) == ("healthy", promotion["release"])

        wait_until(staging_healthy_on_the_new_release, timeout=30, interval=0.5)
    finally:
        daemon.close()
        kill_services([Layout.of(settings, env).data for env in settings.environments])

    assert promotion["status"] == "succeeded", promotion
    assert [s["name"] for s in promotion["stages"]] == ["build", "gate", "deploy"]
    assert {s["status"] for s in promotion["stages"]} == {"passed"}
    # Without the daemon both read straight from PostgreSQL.
    listed = cli(daemon, "history")
    assert [(p["id"], p["status"]) for p in listed] == [(pipeline_id, "succeeded")]
    stored = cli(daemon, "status")
    assert "no daemon" in stored["source"]
    assert env_status(stored, "staging")["release"] == promotion["release"]
    assert not (settings.state_dir / "gaia.db").exists()  # nothing went to SQLite
    with open_database(pg_url).connection_context():
        assert Pipeline.get_by_id(pipeline_id).status == "succeeded"
        assert Stage.select().where(Stage.pipeline_id == pipeline_id).count() == 3
