"""The store's commits are durable: ``synchronous=full`` on every connection that writes (also
after a corrupt file is set aside or a deleted one recreated), an acknowledged batch is in the
file after its writer is SIGKILLed, and a notification is committed before it is sent."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gaia_actors.alerts.final import send_last_alert
from gaia_actors.alerts.receivers import build_receiver
from gaia_actors.messages import Event, Flush, GetState, Insert, InsertNow, Update, fields_of
from gaia_actors.settings import Settings, load
from gaia_actors.store import database as store_database
from gaia_actors.store.database import sqlite_path
from gaia_actors.store.models import EventRow, Pipeline, database
from supervisors import Registry
from tests.conftest import wait_until
from tests.gaia_actors.alerts.hooks import alerts_tree
from tests.gaia_actors.conftest import write_config

REPO = Path(__file__).resolve().parents[2]


def _store_file(settings: Settings) -> Path:
    path = sqlite_path(settings.database_url)
    assert path is not None
    return path


def _synchronous(registry: Registry) -> tuple[str, int]:
    """The level in effect on the store's writer connection and on this thread's reader."""
    state: dict[str, Any] = registry.ask("store", GetState(), timeout=5)
    reader = int(database.execute_sql("PRAGMA synchronous").fetchone()[0])
    return state["synchronous"], reader


def _pipeline(registry: Registry, kind: str) -> int:
    values = fields_of(kind=kind, status="running", started=time.time())
    row_id: int = registry.ask("store", InsertNow("pipelines", values))
    return row_id


def test_every_writer_connection_commits_with_synchronous_full(tree: tuple[Any, Any]) -> None:
    registry, _ = tree
    assert _synchronous(registry) == ("full", 2)


def test_a_store_recreated_after_its_file_was_deleted_is_still_full(
    tree: tuple[Any, Any], settings: Settings
) -> None:
    registry, _ = tree
    _pipeline(registry, "before")
    _store_file(settings).unlink()
    row_id = _pipeline(registry, "after")  # written to a new file, opened again
    assert Pipeline.get_by_id(row_id).kind == "after"
    assert _synchronous(registry) == ("full", 2)


def test_a_store_opened_after_a_corrupt_one_was_set_aside_is_full(
    settings: Settings, tmp_path: Path
) -> None:
    from gaia_actors.app import start_root

    path = _store_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a database" * 1024)
    registry = Registry()
    root = start_root(settings, registry, capabilities=())
    try:
        state = registry.ask("store", GetState(), timeout=5)
        assert len(state["set_aside"]) == 1
        _pipeline(registry, "new")
        assert _synchronous(registry) == ("full", 2)
    finally:
        root.stop(block=True, timeout=10)


def test_told_updates_are_written_with_the_batch_and_a_bad_one_is_refused_alone(
    tree: tuple[Any, Any],
) -> None:
    registry, _ = tree
    row_id = _pipeline(registry, "k")
    registry.tell("store", Update("pipelines", row_id, fields_of(nope="x")))
    registry.tell("store", Update("pipelines", row_id, fields_of(status="succeeded")))
    registry.tell("store", Insert("events", fields_of(ts=time.time(), name="after.update")))
    registry.ask("store", Flush())
    assert Pipeline.get_by_id(row_id).status == "succeeded"
    assert EventRow.select().where(EventRow.name == "after.update").count() == 1


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from gaia_actors.app import start_root
    from gaia_actors.messages import Flush, Insert, fields_of
    from gaia_actors.settings import load
    from supervisors import Registry

    settings = load(Path(sys.argv[1]), environ={"GAIA_STATE_DIR": sys.argv[2]})
    registry = Registry()
    start_root(settings, registry, capabilities=())
    for i in range(int(sys.argv[3])):
        row = fields_of(ts=time.time(), env="dev", status="healthy", latency_ms=float(i))
        registry.tell("store", Insert("health_checks", row))
    print("acknowledged", registry.ask("store", Flush(), timeout=30), flush=True)
    time.sleep(120)
    """
)


def test_an_acknowledged_batch_is_in_the_file_after_its_writer_is_sigkilled(
    tmp_path: Path,
) -> None:
    # No timer flush and no full batch: only the asked Flush writes, so what it acknowledged
    # is exactly what must be found.
    config = write_config(tmp_path, "[store]\nflush_interval = 60\nbatch_size = 100000\n")
    state_dir = tmp_path / "state"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", CHILD, str(config), str(state_dir), "1500"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout is not None
        acknowledged = next(  # the log lines on stdout before it skipped
            (int(line.split()[1]) for line in child.stdout if line.startswith("acknowledged ")), 0
        )
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert acknowledged >= 1500  # the checks, and the events the start published
    with contextlib.closing(sqlite3.connect(state_dir / "gaia.db")) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM health_checks").fetchone() == (1500,)
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    assert 1500 + events == acknowledged


class StoreReadingReceiver:
    """A webhook receiver on 127.0.0.1 that, when a notification arrives, reads its row and
    its alert's from the store file through a connection of its own (committed rows only)."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.seen: list[dict[str, Any]] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def read_store(self, uid: str) -> dict[str, Any]:
        uri = f"{self.store.as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as conn:
            row = conn.execute(
                "SELECT state, alert_ids FROM notifications WHERE uid = ?", (uid,)
            ).fetchone()
            alerts = conn.execute("SELECT key FROM alerts").fetchall()
        return {"uid": uid, "row": row, "alerts": [key for (key,) in alerts]}

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.seen.append(receiver.read_store(body["id"]))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def alerting(tmp_path: Path) -> Iterator[tuple[Settings, StoreReadingReceiver]]:
    state_dir = tmp_path / "state"
    receiver = StoreReadingReceiver(state_dir / "gaia.db")
    text = (
        "[environments.prod]\nport = 9180\n[store]\nflush_interval = 5\n"
        "[alerts]\ngroup_wait = 0.05\n[[alerts.receivers]]\nname = 'ops'\nkind = 'webhook'\n"
        f"url = '{receiver.url()}'\ntimeout = 5\n"
    )
    settings = load(write_config(tmp_path, text), environ={"GAIA_STATE_DIR": str(state_dir)})
    try:
        yield settings, receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def test_a_notification_is_committed_before_its_receiver_is_called(
    alerting: tuple[Settings, StoreReadingReceiver],
) -> None:
    settings, receiver = alerting
    with alerts_tree(settings) as registry:
        data = fields_of(reason="port 9180 held")
        registry.tell("bus", Event("environment.failed", "critical", env="prod", data=data))
        wait_until(lambda: receiver.seen, what="the notification at the receiver")
    _committed_before_the_send(receiver)


def test_the_daemons_last_alert_is_committed_before_its_receiver_is_called(
    alerting: tuple[Settings, StoreReadingReceiver],
) -> None:
    """Sent by the daemon itself once the store actor has stopped: its own transaction."""
    settings, receiver = alerting
    assert send_last_alert(settings, build_receiver, "services", "kept failing") == 1
    _committed_before_the_send(receiver)


def _committed_before_the_send(receiver: StoreReadingReceiver) -> None:
    (seen,) = receiver.seen
    state, alert_ids = seen["row"]
    assert state == "pending"  # committed before the send, marked delivered after it
    assert json.loads(alert_ids) == seen["alerts"] != []  # its alert with it


def test_a_new_store_file_and_a_set_aside_are_made_durable_in_their_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory's fsync cannot be seen without cutting the power: the real one runs, and
    which directories it was given is recorded."""
    synced: list[Path] = []
    fsync_dir = store_database.fsync_dir

    def recording(directory: Path) -> None:
        synced.append(directory)
        fsync_dir(directory)

    monkeypatch.setattr(store_database, "fsync_dir", recording)
    path = tmp_path / "made" / "here" / "gaia.db"
    store_database.open_database(f"sqlite:///{path}").close()
    assert synced == [tmp_path / "made", tmp_path, path.parent]  # new entries, deepest first

    synced.clear()
    moved = store_database.set_aside(path)
    assert synced == [path.parent]
    assert moved.exists()
    assert not path.exists()


def test_a_row_or_an_update_sqlite_refuses_is_left_out_and_the_rest_is_written(
    tree: tuple[Any, Any],
) -> None:
    """A batch is one transaction: what SQLite refuses in it (a NOT NULL here) must not hold
    back, for good, the rows and updates told with it."""
    registry, _ = tree
    row_id = _pipeline(registry, "k")
    registry.ask("store", Flush())
    now = time.time()
    registry.tell("store", Insert("events", fields_of(ts=now, name="good.before")))
    registry.tell("store", Insert("events", fields_of(name="no.ts")))
    registry.tell("store", Update("pipelines", row_id, fields_of(status=None)))
    registry.tell("store", Update("pipelines", row_id, fields_of(kind="kept")))
    registry.tell("store", Insert("events", fields_of(ts=now, name="good.after")))
    registry.ask("store", Flush())
    names = {row.name for row in EventRow.select().where(EventRow.ts == now)}
    assert names == {"good.before", "good.after"}
    assert (Pipeline.get_by_id(row_id).kind, Pipeline.get_by_id(row_id).status) == (
        "kept",
        "running",
    )
    state = registry.ask("store", GetState(), timeout=5)
    assert (state["rejected"], state["fault"], state["pending"]) == (2, "", 0)
