"""``main()``: signals, configuration and start-only faults, then the service.

The paths that end before listening (bad configuration, ``crash_on_start``) import only
the light modules, so a crash loop or a config error costs a bare interpreter start;
``service`` (HTTP server, SQLite) is imported after them.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from . import __version__
from .config import ConfigError, load_settings
from .exitcodes import EXIT_CONFIG, EXIT_CRASH
from .faults import FaultError, load_start_faults
from .logs import EventLog


def main(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> int:
    """Run the service until SIGTERM/SIGINT; return the process exit code (see exitcodes)."""
    stop = threading.Event()
    _install_signal_handlers(stop)
    _mask_stop_signals(signal.SIG_BLOCK)  # threads started from here on inherit the mask
    try:
        return _start(os.environ if environ is None else environ, cwd or Path.cwd(), stop)
    finally:
        _mask_stop_signals(signal.SIG_UNBLOCK)


def _start(environ: Mapping[str, str], cwd: Path, stop: threading.Event) -> int:
    started = time.monotonic()
    try:
        settings = load_settings(environ)
        start_faults = load_start_faults(environ, cwd)
    except (ConfigError, FaultError) as exc:
        fail(f"configuration error: {exc}")
        return EXIT_CONFIG
    log = EventLog(
        sys.stdout, settings.log_level, release=settings.release_id, env=settings.env_name
    )
    log.info("service.starting", version=__version__, pid=os.getpid(), faults=start_faults.active())
    if start_faults.crash_on_start:
        log.error("fault.crash_on_start")
        fail("fault crash_on_start: exiting 1 before listening")
        return EXIT_CRASH
    from .service import run

    return run(
        settings, start_faults, log, stop=stop, started=started, on_listening=_unmask_in_main
    )


def _install_signal_handlers(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signal.signal only works in the main thread (main() called from a test)

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)


def _mask_stop_signals(how: int) -> None:
    """Block/unblock SIGTERM and SIGINT for the calling thread (and threads it starts later).

    The kernel hands a process signal to any thread that does not block it. If a handler
    thread takes SIGTERM, the main thread stays asleep in stop.wait() and the Python-level
    handler never runs; so every thread but the main one blocks these signals.
    """
    if threading.current_thread() is threading.main_thread():
        signal.pthread_sigmask(how, {signal.SIGTERM, signal.SIGINT})


def _unmask_in_main() -> None:
    _mask_stop_signals(signal.SIG_UNBLOCK)


def fail(message: str) -> None:
    """A one-line reason on stderr, for the orchestrator's captured stderr file."""
    print(f"demo: {message}", file=sys.stderr, flush=True)
