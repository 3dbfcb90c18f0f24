"""A bounded built-in HTTP load: ``requests`` GETs over ``concurrency`` keep-alive connections.

What the ``load`` stage measures an environment with: the error rate (no complete answer, or
an HTTP status of 400 and above) and the latency percentiles. Each worker thread has its own
`gaia_actors.httpclient.Client` (one kept-alive connection), so every request has the
project's bounds: a deadline for the whole request and a bound on the body.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

from gaia_actors.httpclient import Client, Limits
from supervisors.records import record

ERROR_STATUS = 400
MAX_REQUEST_TIMEOUT = 5.0
MAX_BODY_BYTES = 8 * 1024 * 1024  # a larger answer is counted as an error, not read on


@record
class LoadResult:
    """What a load run saw."""

    planned: int
    sent: int
    errors: int
    elapsed: float
    latencies_ms: tuple[float, ...] = ()
    first_error: str = ""

    @property
    def complete(self) -> bool:
        return self.sent >= self.planned

    @property
    def error_rate(self) -> float:
        return self.errors / self.sent if self.sent else 1.0

    def percentile_ms(self, fraction: float) -> float:
        """The nearest-rank percentile of the latencies (0.0 without any)."""
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]

    def describe(self) -> str:
        rate = self.sent / self.elapsed if self.elapsed > 0 else 0.0
        text = (
            f"{self.sent} requests in {self.elapsed:.2f}s ({rate:.0f}/s): "
            f"{self.error_rate:.1%} errors, p50 {self.percentile_ms(0.5):.1f} ms, "
            f"p95 {self.percentile_ms(0.95):.1f} ms, max {self.percentile_ms(1.0):.1f} ms"
        )
        return text + (f"; first error: {self.first_error}" if self.first_error else "")


@dataclass
class _Worker:
    """One connection's share of the run; only its own thread touches it until joined."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""


class _Tickets:
    """Hands out the request budget to the workers."""

    def __init__(self, total: int) -> None:
        self._left = total
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            return True


def run_load(
    host: str,
    port: int,
    path: str,
    *,
    requests: int,
    concurrency: int,
    deadline: float,
    cancel: threading.Event | None = None,
) -> LoadResult:
    """GET ``path`` ``requests`` times over ``concurrency`` connections, stopping early at
    ``deadline`` (a ``time.monotonic()`` value) or when ``cancel`` is set."""
    tickets = _Tickets(requests)
    workers = [_Worker() for _ in range(max(1, min(concurrency, requests)))]
    stop = cancel or threading.Event()
    started = time.monotonic()
    threads = [
        threading.Thread(
            target=_work,
            args=(worker, (host, port, path)),
            kwargs={"tickets": tickets, "deadline": deadline, "stop": stop},
            name=f"load-{i}",
            daemon=True,
        )
        for i, worker in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies = tuple(ms for worker in workers for ms in worker.latencies_ms)
    return LoadResult(
        planned=requests,
        sent=len(latencies),
        errors=sum(w.errors for w in workers),
        elapsed=time.monotonic() - started,
        latencies_ms=latencies,
        first_error=next((w.first_error for w in workers if w.first_error), ""),
    )


def _work(
    worker: _Worker,
    where: tuple[str, int, str],
    *,
    tickets: _Tickets,
    deadline: float,
    stop: threading.Event,
) -> None:
    host, port, path = where
    url = f"http://{host}:{port}{path}"
    with Client() as client:
        while not stop.is_set() and time.monotonic() < deadline and tickets.take():
            timeout = min(MAX_REQUEST_TIMEOUT, max(0.1, deadline - time.monotonic()))
            error = _one_request(client, url, Limits(timeout, timeout, MAX_BODY_BYTES), worker)
            if error:
                worker.errors += 1
                worker.first_error = worker.first_error or error


def _one_request(client: Client, url: str, limits: Limits, worker: _Worker) -> str:
    """One GET, its latency recorded; answers the error ('' when it succeeded)."""
    answer = client.get(url, limits)
    worker.latencies_ms.append(answer.elapsed * 1000)
    if answer.status is None or answer.error is not None:
        return f"connection: {answer.describe()}"
    return f"HTTP {answer.status}" if answer.status >= ERROR_STATUS else ""
