"""A hostile "service" the daemon manages like any environment.

    PORT=8081 python hostile_service.py trickle|slowloris|endless|utf8|headers

It serves ``/health`` and ``/metrics`` with one misbehaviour from the monitoring tests'
``hostile.py`` (copied beside this file into the environment's release), so the real
daemon's HealthMonitor and MetricsCollector meet it over real sockets: a body trickled a
byte at a time, response headers trickled slowloris-style and never finished, an endless
chunked body, invalid UTF-8 (and a broken exposition), a megabyte of headers. SIGTERM stops it.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hostile import (  # type: ignore[import-not-found]  # beside it at run time
    Behaviour,
    EndlessChunked,
    HostileServer,
    HugeHeaders,
    Request,
    Respond,
    Trickle,
    invalid_utf8,
)


@dataclass(frozen=True, slots=True)
class HeaderTrickle(Behaviour):  # type: ignore[misc]  # found at run time
    """Slowloris towards the client: a status line, then one header byte every ``interval``
    seconds, never ending the head."""

    interval: float = 0.05

    def serve(self, conn: socket.socket, request: Request, stop: threading.Event) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        while not stop.wait(self.interval):
            conn.sendall(b"a")
        return False


BROKEN_METRICS = (
    b"# TYPE demo_requests_total counter\n"
    b'demo_requests_total{path="\xff\xfe"} 1\n'
    b"\xc3\x28 2\n"
    b"demo_items NaN\n"
)

BEHAVIOURS: dict[str, Callable[[], dict[str, Behaviour]]] = {
    "trickle": lambda: {"/health": Trickle(0.05, 100_000), "/metrics": Trickle(0.05, 100_000)},
    "slowloris": lambda: {"/health": HeaderTrickle(), "/metrics": HeaderTrickle()},
    "endless": lambda: {"/health": EndlessChunked(), "/metrics": EndlessChunked()},
    "utf8": lambda: {
        "/health": invalid_utf8(),
        "/metrics": Respond(body=BROKEN_METRICS, content_type="text/plain; version=0.0.4"),
    },
    "headers": lambda: {"/health": HugeHeaders(), "/metrics": HugeHeaders()},
}


def main() -> int:
    kind = sys.argv[1]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with HostileServer(BEHAVIOURS[kind](), port=int(os.environ["PORT"])):
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
