"""``main()``: the start-up phases, signal handling and a graceful shutdown.

Exit codes::

    0  stopped by SIGTERM/SIGINT
    1  crashed on purpose (fault crash_on_start / exit_after) or the server loop failed
    2  bad configuration: an environment variable or a fault knob (message on stderr)
    3  a schema migration failed (message on stderr names the file)
    4  cannot listen on HOST:PORT (e.g. the port is busy)
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

import prometheus_client

from . import __version__
from .api import Api
from .config import ConfigError, Settings, load_settings
from .db import Database, DatabaseUnavailable, MigrationError, discover_migrations
from .faults import FaultError, Faults, FaultState, load_start_faults
from .httpd import DemoServer
from .logs import EventLog
from .metrics import Metrics

EXIT_OK, EXIT_CRASH, EXIT_CONFIG, EXIT_MIGRATION, EXIT_LISTEN = 0, 1, 2, 3, 4
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
POLL_INTERVAL_S = 0.1  # how soon serve_forever notices shutdown()
DRAIN_TIMEOUT_S = 0.5  # requests in flight get this long to finish on SIGTERM


def main(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> int:
    """Run the service until SIGTERM/SIGINT; return the process exit code."""
    stop = threading.Event()
    _install_signal_handlers(stop)
    started = time.monotonic()
    try:
        settings = load_settings(os.environ if environ is None else environ)
        start_faults = load_start_faults(
            os.environ if environ is None else environ, Path.cwd() if cwd is None else cwd
        )
    except (ConfigError, FaultError) as exc:
        _fail(f"configuration error: {exc}")
        return EXIT_CONFIG
    log = EventLog(
        sys.stdout, settings.log_level, release=settings.release_id, env=settings.env_name
    )
    log.info("service.starting", version=__version__, pid=os.getpid(), faults=start_faults.active())
    if start_faults.crash_on_start:
        log.error("fault.crash_on_start")
        _fail("fault crash_on_start: exiting 1 before listening")
        return EXIT_CRASH
    return _run(settings, start_faults, log, stop, started)


def _run(
    settings: Settings, start_faults: Faults, log: EventLog, stop: threading.Event, started: float
) -> int:
    faults = FaultState(start_faults, on_exit_after=lambda seconds: _exit_now(log, seconds))
    try:
        db = _open_database(settings, log)
    except MigrationError as exc:
        log.error("db.migration_failed", path=str(exc.path), error=str(exc))  # noqa: TRY400 - not stdlib logging; the message is the whole story
        _fail(str(exc))
        return EXIT_MIGRATION
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # this process only: no *_created series
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
    return _serve(server, faults, db, log, stop)


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
    server: DemoServer, faults: FaultState, db: Database, log: EventLog, stop: threading.Event
) -> int:
    failed: list[BaseException] = []
    loop = threading.Thread(
        target=_serve_forever, args=(server, stop, failed), name="serve", daemon=True
    )
    loop.start()
    host, port = server.server_name, server.server_port
    log.info("service.listening", host=host, port=port, url=f"http://{host}:{port}")
    stop.wait()
    log.info("service.stopping")
    faults.close()  # wake requests parked by `hang` or `slow`
    server.shutdown()
    left = server.drain(DRAIN_TIMEOUT_S)
    server.server_close()
    db.close()
    log.info("service.stopped", requests_abandoned=left)
    if failed:
        _fail(f"server loop failed: {failed[0]!r}")
        return EXIT_CRASH
    return EXIT_OK


def _serve_forever(server: DemoServer, stop: threading.Event, failed: list[BaseException]) -> None:
    try:
        server.serve_forever(poll_interval=POLL_INTERVAL_S)
    except BaseException as exc:  # noqa: BLE001 - reported by _serve, which exits 1
        failed.append(exc)
    finally:
        stop.set()


def _install_signal_handlers(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signal.signal only works in the main thread (main() called from a test)

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)


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
