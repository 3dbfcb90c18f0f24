"""A stand-in for the daemon's log sink, for ``test_tail.py``.

Writes numbered records through structlog and a stdlib ``RotatingFileHandler``, as the daemon
does, then exits::

    python tail_writer.py PATH --count N [--start S] [--max-bytes B] [--backups K]
                          [--pause-every M]

Record ``i`` carries the fields ``fields(i)`` (plus ``timestamp``), so a test can compute which
records a filter must keep.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import time
from pathlib import Path
from typing import Any

import structlog

ENVS = ("dev", "staging", "prod")
EVENTS = ("health.changed", "stage.finished", "supervisor.restart", "backup.taken")
LEVELS = ("debug", "info", "warning", "error", "critical")
ACTORS = ("monitor", "environment.prod", "pipeline", "improve.worker.0", "failover")
# Now and then a record larger than the 8 KiB write buffer, so readers meet half-written lines.
BIG_EVERY = 97
BIG_SIZE = 10_000


def fields(i: int) -> dict[str, Any]:
    """The fields of record ``i`` (the level is the method it is logged with)."""
    record: dict[str, Any] = {
        "event": EVENTS[i % len(EVENTS)],
        "level": LEVELS[i % len(LEVELS)],
        "env": ENVS[i % len(ENVS)],
        "actor": ACTORS[(i // 2) % len(ACTORS)],
        "seq": i,
    }
    if i % BIG_EVERY == 0:
        record["blob"] = "x" * BIG_SIZE
    return record


def build_logger(handler: logging.Handler) -> Any:
    handler.setFormatter(logging.Formatter("%(message)s"))
    # A logger of its own per call: tests also run this writer in their own process.
    sink = logging.Logger(f"gaia.tail_writer.{id(handler)}", logging.DEBUG)
    sink.addHandler(handler)
    return structlog.wrap_logger(
        sink,
        processors=[
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
    )


def write(
    path: Path, *, start: int = 0, count: int, max_bytes: int, backups: int, pause_every: int = 0
) -> None:
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
    )
    log = build_logger(handler)
    try:
        for i in range(start, start + count):
            record = fields(i)
            level = record.pop("level")
            getattr(log, level)(record.pop("event"), **record)
            if pause_every and i % pause_every == 0:
                # Workload pacing (a daemon does not log in one burst), not synchronisation.
                time.sleep(0.001)
    finally:
        handler.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--max-bytes", type=int, default=16_384)
    parser.add_argument("--backups", type=int, default=500)
    parser.add_argument("--pause-every", type=int, default=0)
    args = parser.parse_args()
    write(
        args.path,
        start=args.start,
        count=args.count,
        max_bytes=args.max_bytes,
        backups=args.backups,
        pause_every=args.pause_every,
    )


if __name__ == "__main__":
    main()
