"""The running service: open the database, build the API and the server, serve, shut down.

Shutdown on SIGTERM (``stop`` set): wake requests parked by faults, stop accepting, give
requests in flight DRAIN_TIMEOUT_S, close the socket and the database, exit 0.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from . import __version__
from .api import Api
from .config import Settings
from .db import Database, DatabaseUnavailable, MigrationError, discover_migrations
from .exitcodes import EXIT_CRASH, EXIT_LISTEN, EXIT_MIGRATION, EXIT_OK
from .faults import Faults, FaultState
from .httpd import DemoServer
from .logs import EventLog
from .metrics import Metrics

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
POLL_INTERVAL_S = 0.05  # how soon serve_forever notices shutdown(); 20 idle wakeups/s
DRAIN_TIMEOUT_S = 0.5  # requests in flight get this long to finish on SIGTERM


def run(
    settings: Settings,
    start_faults: Faults,
    log: EventLog,
    *,
    stop: threading.Event,
    started: float,
    on_listening: Callable[[], None] = lambda: None,
) -> int:
    """Serve until ``stop`` is set; return the exit code."""
    faults = FaultState(start_faults, on_exit_after=lambda seconds: _exit_now(log, seconds))
    try:
        db = _open_database(settings, log)
    except MigrationError as exc:
        log.error("db.migration_failed", path=str(exc.path), error=str(exc))
        _fail(str(exc))
        return EXIT_MIGRATION
    metrics = Metrics(
        db_size_bytes=lambda: float(db.size_bytes()),
        items=lambda: _count_or_nan(db),
        build={"release": settings.release_id, "version": __version__},
        started=started,
    )
    api = Api(settings=settings, db=db, faults=faults, metrics=metrics, log=log, started=started)
    try:
        server = DemoServer((settings.host, settings.port), api, metrics, log)
    except OSError as exc:
        db.close()
        _fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")
        return EXIT_LISTEN
    return _serve(server, faults, db, log, stop=stop, on_listening=on_listening)


def _open_database(settings: Settings, log: EventLog) -> Database:
    db = Database.open(
        settings.db_path,
        MIGRATIONS_DIR,
        on_applied=lambda m: log.info("db.migrated", migration=m.version, name=m.name),
    )
    if not db.is_open:
        log.error("db.open_failed", path=str(settings.db_path), error=db.health().reason)
        return db
    known = max((m.version for m in discover_migrations(MIGRATIONS_DIR)), default=0)
    current = db.schema_version()
    if current is not None and current > known:
        # An older release (a rollback) on data migrated by a newer one: run, but say so.
        log.warning("db.schema_ahead", schema_version=current, release_knows=known)
    log.info("db.opened", path=str(settings.db_path), schema_version=current)
    return db


def _serve(
    server: DemoServer,
    faults: FaultState,
    db: Database,
    log: EventLog,
    *,
    stop: threading.Event,
    on_listening: Callable[[], None],
) -> int:
    failed: list[BaseException] = []
    loop = threading.Thread(
        target=_serve_forever, args=(server, stop, failed), name="serve", daemon=True
    )
    loop.start()
    host, port = server.server_name, server.server_port
    log.info("service.listening", host=host, port=port, url=f"http://{host}:{port}")
    on_listening()
    stop.wait()
    log.info("service.stopping")
    phases = _PhaseTimer()
    server.closing = True
    faults.close()  # wake requests parked by `hang` or `slow`
    server.shutdown()
    phases.mark("accept_stopped")
    left = server.drain(DRAIN_TIMEOUT_S)
    server.server_close()
    phases.mark("drained")
    db.close()  # checkpoints the WAL: an fsync, the slow part on a busy disk
    phases.mark("db_closed")
    log.info("service.stopped", requests_abandoned=left, phases_ms=phases.durations)
    if failed:
        _fail(f"server loop failed: {failed[0]!r}")
        return EXIT_CRASH
    return EXIT_OK


class _PhaseTimer:
    """Milliseconds spent in each named phase of the shutdown, for the service.stopped line."""

    def __init__(self) -> None:
        self._last = time.perf_counter()
        self.durations: dict[str, float] = {}

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        self.durations[phase] = round((now - self._last) * 1000, 1)
        self._last = now


def _serve_forever(server: DemoServer, stop: threading.Event, failed: list[BaseException]) -> None:
    try:
        server.serve_forever(poll_interval=POLL_INTERVAL_S)
    except BaseException as exc:  # noqa: BLE001 - reported by _serve, which exits 1
        failed.append(exc)
    finally:
        stop.set()


def _count_or_nan(db: Database) -> float:
    try:
        return float(db.count_items())
    except DatabaseUnavailable:
        return math.nan


def _exit_now(log: EventLog, seconds: float) -> None:
    """The exit_after fault: die like a crash (no cleanup), exit code 1."""
    log.error("fault.exit_after", after_s=seconds)
    _fail(f"fault exit_after={seconds}: exiting 1")
    os._exit(EXIT_CRASH)


def _fail(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)
