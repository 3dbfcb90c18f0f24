"""The analysis process's loop: batches of files in through a pipe, their results out.

It runs in a child forked from the forkserver (``worker.py``), which preloaded the analysis;
importing this module costs the child nothing more, where the worker's own module would import
the actor machinery (Pykka, structlog, the store's models) into every analysis process.
"""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.connection import Connection


def serve(conn: Connection) -> None:
    """The analysis process: analyse each batch received, send the results back, until EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the daemon's to handle, not ours
    # Preloaded by the forkserver this process is forked from; the daemon itself, which only
    # hands batches on, does not import the analysis.
    from gaia_actors.improve.analysis import analyse_batch

    while True:
        try:
            batch_id, paths, root, settings = conn.recv()
        except (EOFError, OSError):
            return
        started = time.perf_counter()
        try:
            results, error = analyse_batch(paths, root, settings), ""
        except Exception as exc:  # noqa: BLE001 - reported to the worker, the process carries on
            results, error = (), f"{type(exc).__name__}: {exc}"
        conn.send((batch_id, results, time.perf_counter() - started, error))
