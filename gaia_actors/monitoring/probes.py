"""HTTP health probes: one round checks many targets at once over kept-alive connections.

The engine under the HealthMonitor actor. It knows nothing of actors,
environments or thresholds: it takes `ProbeTarget`s, returns one `ProbeResult` per target,
and never raises because a target misbehaved.

Why asyncio streams here, when every other request goes through `requests`: see
`gaia_actors/httpclient/`, which records the measurements. In short, a fan-out to hundreds
of endpoints is CPU-bound on the GIL, and a single event loop waits on every socket at once
and parses only what a health check needs (status line, four headers, a bounded body). The
loop runs in one thread owned by the `Prober`, so the calling actor stays a plain blocking
caller, idle keep-alive connections notice a server's close while nobody is probing, and the
DNS look-ups it needs run in the loop's own small executor.

Bounds and errors (every one reported in `ProbeResult.error`, never raised)
---------------------------------------------------------------------------
- `connect_timeout`: name resolution plus TCP connect (plus TLS handshake for https).
- `read_timeout`: a *deadline* for the whole exchange, from sending the request to the last
  body byte. Unlike `requests`' per-read timeout, a server that trickles one byte every
  100 ms cannot stretch a check past it. A check lasts at most connect + read timeout.
- `max_body_bytes`: a longer body (declared, chunked or close-delimited) is cut off at the
  bound and reported `too_large`; `max_header_bytes` bounds the response head the same way.
- A body is parsed as JSON when its Content-Type is JSON (`application/json`, `*/*+json`) or
  absent (`gaia_actors.health.read_json`); a body that declares JSON and is invalid JSON,
  invalid UTF-8, nested too deep or not an object is `bad_body`.
- A kept-alive connection that the server closed while idle is replaced once, transparently
  (as urllib3 does): only a reused connection that fails before any response byte is retried.

The HTTP/1.1 exchange itself is ``http11``'s; a check's target and result, ``checks``'s.

Every mutable thing (the idle-connection pool, the concurrency semaphore) lives in the loop
thread; `round()` only hands work over and waits, so calling it from any one thread at a time
(one actor) is safe, and so are concurrent calls. There is no module-level state.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import ssl
import threading
import time
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from gaia_actors.monitoring.checks import ProbeResult, ProbeTarget, answered_result, failed_result
from gaia_actors.monitoring.http11 import (
    Connection,
    Origin,
    ProbeErrorKind,
    ProbeFailed,
    Response,
    exchange,
    open_stream,
)

__all__ = ["Prober"]

DEFAULT_USER_AGENT = "gaia-actors-probe/0.1"
_ROUND_SLACK_S = 10.0  # beyond the per-check deadlines: only a bug in the engine can use it


_T = TypeVar("_T")


class Prober:
    """Checks many `ProbeTarget`s in parallel, reusing one keep-alive connection per check.

    `max_concurrency` bounds the checks (and sockets) in flight; a check's timeouts start
    when it gets a slot. Idle connections unused for `idle_timeout_s` are closed. Use as a
    context manager or call `close()`; a round running while `close()` is called is
    cancelled (its `round()` raises `concurrent.futures.CancelledError`).
    """

    def __init__(
        self,
        *,
        max_concurrency: int = 512,
        max_header_bytes: int = 64 * 1024,
        idle_timeout_s: float = 120.0,
        user_agent: str = DEFAULT_USER_AGENT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_concurrency < 1 or max_header_bytes < 1 or idle_timeout_s <= 0:
            raise ValueError(
                "Prober: max_concurrency and max_header_bytes must be >= 1, "
                f"idle_timeout_s > 0 (got {max_concurrency}, {max_header_bytes}, "
                f"{idle_timeout_s})"
            )
        self._max_concurrency = max_concurrency
        self._max_header_bytes = max_header_bytes
        self._idle_timeout_s = idle_timeout_s
        self._user_agent = user_agent
        self._ssl_context = ssl_context
        self._idle: dict[Origin, list[Connection]] = {}  # loop thread only
        self._opened = 0  # connections opened; the loop thread writes, anyone reads
        self._closed = False
        self._close_lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._slots = asyncio.Semaphore(max_concurrency)
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="gaia-prober", daemon=True
        )
        self._thread.start()

    # -- public API, called from the owner's thread ------------------------------------

    def round(self, targets: Sequence[ProbeTarget]) -> list[ProbeResult]:
        """Check every target at once; one result per target, in the same order."""
        if not targets:
            return []
        future = self._submit(self._round(tuple(targets)))
        try:
            return future.result(timeout=self._round_bound(targets))
        except TimeoutError:
            future.cancel()
            raise TimeoutError(
                f"probe round over {len(targets)} targets overran every per-check deadline"
            ) from None

    def checks(
        self, targets: Sequence[ProbeTarget], *, recheck_after: float, max_checks: int
    ) -> list[tuple[ProbeResult, ...]]:
        """Check every target at once, re-checking one that is slow to answer.

        A target none of whose checks has finished within ``recheck_after`` seconds is
        checked again on a new connection, without waiting for the first check to time out,
        and again every ``recheck_after`` seconds, up to ``max_checks`` checks in flight. A
        hung target thus fails ``max_checks`` checks within one read timeout plus
        ``(max_checks - 1) * recheck_after``, instead of ``max_checks`` read timeouts. Once any
        check of the target finishes, no more are started. Results per target, in the order
        the checks started; the round waits for every check.
        """
        if recheck_after <= 0 or max_checks < 1:
            raise ValueError(
                f"Prober.checks: recheck_after must be > 0 and max_checks >= 1 "
                f"(got {recheck_after}, {max_checks})"
            )
        if not targets:
            return []
        future = self._submit(self._checks(tuple(targets), recheck_after, max_checks))
        bound = self._round_bound(targets) + (max_checks - 1) * recheck_after
        try:
            return future.result(timeout=bound)
        except TimeoutError:
            future.cancel()
            raise TimeoutError(
                f"probe round over {len(targets)} targets overran every per-check deadline"
            ) from None

    def check(self, target: ProbeTarget) -> ProbeResult:
        """Check one target (a round of one)."""
        return self.round([target])[0]

    @property
    def connections_opened(self) -> int:
        """How many connections this prober has opened so far (reuse shows as no growth)."""
        return self._opened

    def idle_connections(self) -> int:
        """How many kept-alive connections wait in the pool."""
        return self._submit(self._count_idle()).result(timeout=5.0)

    def close(self) -> None:
        """Cancel running checks, close every connection, stop the loop thread."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10.0)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10.0)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> Prober:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        if self._closed:
            coro.close()
            raise RuntimeError("Prober is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _round_bound(self, targets: Sequence[ProbeTarget]) -> float:
        waves = math.ceil(len(targets) / self._max_concurrency)
        longest = max(t.connect_timeout + t.read_timeout for t in targets)
        return waves * longest + _ROUND_SLACK_S

    # -- the loop thread -----------------------------------------------------------------

    async def _round(self, targets: tuple[ProbeTarget, ...]) -> list[ProbeResult]:
        self._prune_idle()
        return list(await asyncio.gather(*(self._guarded_check(t) for t in targets)))

    async def _checks(
        self, targets: tuple[ProbeTarget, ...], recheck_after: float, max_checks: int
    ) -> list[tuple[ProbeResult, ...]]:
        self._prune_idle()
        runs = (self._rechecked(t, recheck_after, max_checks) for t in targets)
        return list(await asyncio.gather(*runs))

    async def _rechecked(
        self, target: ProbeTarget, recheck_after: float, max_checks: int
    ) -> tuple[ProbeResult, ...]:
        tasks = [asyncio.ensure_future(self._guarded_check(target))]
        try:
            while len(tasks) < max_checks:
                done, _ = await asyncio.wait(
                    tasks, timeout=recheck_after, return_when=asyncio.FIRST_COMPLETED
                )
                if done:
                    break
                tasks.append(asyncio.ensure_future(self._guarded_check(target)))
            return tuple(await asyncio.gather(*tasks))
        finally:
            for task in tasks:
                task.cancel()  # only a cancelled round leaves any running

    async def _guarded_check(self, target: ProbeTarget) -> ProbeResult:
        async with self._slots:
            checked_at = time.time()
            started = time.perf_counter()
            try:
                return await self._check(target, checked_at, started)
            except Exception as exc:  # noqa: BLE001 - a bug here must not sink the round
                failed = ProbeFailed(
                    ProbeErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}", connected=False
                )
                return failed_result(target, checked_at, started, failed)

    async def _check(self, target: ProbeTarget, checked_at: float, started: float) -> ProbeResult:
        try:
            conn = await self._checkout(target)
            response, conn = await self._exchange_with_retry(conn, target)
        except ProbeFailed as failed:
            return failed_result(target, checked_at, started, failed)
        self._release(conn, response.keep_alive)
        return answered_result(target, checked_at, started, response, conn.reused)

    async def _exchange_with_retry(
        self, conn: Connection, target: ProbeTarget
    ) -> tuple[Response, Connection]:
        # One deadline covers the exchange and, for a stale reused connection, the
        # reconnect and second exchange: a check never exceeds connect + read timeout.
        try:
            async with asyncio.timeout(target.read_timeout):
                try:
                    return await self._exchange(conn, target), conn
                except ProbeFailed as failed:
                    if not failed.stale:
                        raise
                    conn.close()
                    conn = await self._connect(target)
                    return await self._exchange(conn, target), conn
        except TimeoutError:
            conn.close()
            raise ProbeFailed(
                ProbeErrorKind.TIMEOUT,
                f"no complete response within {target.read_timeout} s",
                status=conn.status,
            ) from None
        except BaseException:
            conn.close()
            raise

    # -- connections ----------------------------------------------------------------------

    async def _checkout(self, target: ProbeTarget) -> Connection:
        pool = self._idle.get(_origin(target))
        while pool:
            conn = pool.pop()
            if conn.usable():
                conn.reused = True
                return conn
            conn.close()
        return await self._connect(target)

    async def _connect(self, target: ProbeTarget) -> Connection:
        endpoint = target._endpoint
        tls = self._tls_context() if endpoint.scheme == "https" else None
        try:
            async with asyncio.timeout(target.connect_timeout):
                reader, writer = await open_stream(endpoint, tls, self._max_header_bytes)
        except TimeoutError:
            raise ProbeFailed(
                ProbeErrorKind.CONNECT_TIMEOUT,
                f"no connection to {endpoint.host}:{endpoint.port} "
                f"within {target.connect_timeout} s",
                connected=False,
            ) from None
        self._opened += 1
        return Connection(_origin(target), reader, writer)

    async def _exchange(self, conn: Connection, target: ProbeTarget) -> Response:
        return await exchange(
            conn,
            target._endpoint,
            target.max_body_bytes,
            user_agent=self._user_agent,
            max_header_bytes=self._max_header_bytes,
        )

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _release(self, conn: Connection, keep_alive: bool) -> None:
        if not keep_alive or not conn.usable():
            conn.close()
            return
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.origin, []).append(conn)

    def _prune_idle(self) -> None:
        cutoff = time.monotonic() - self._idle_timeout_s
        for origin, pool in list(self._idle.items()):
            keep = []
            for conn in pool:
                if conn.idle_since >= cutoff and conn.usable():
                    keep.append(conn)
                else:
                    conn.close()
            if keep:
                self._idle[origin] = keep
            else:
                del self._idle[origin]

    async def _count_idle(self) -> int:
        return sum(len(pool) for pool in self._idle.values())

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        running = [t for t in asyncio.all_tasks() if t is not current]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for pool in self._idle.values():
            for conn in pool:
                conn.close()
        self._idle.clear()
        # Joins the executor threads that ran getaddrinfo; a hung resolver is abandoned.
        loop = asyncio.get_running_loop()
        await asyncio.wait({loop.create_task(loop.shutdown_default_executor())}, timeout=2.0)


# -- framing and parsing (pure functions on bytes) ------------------------------------------


def _origin(target: ProbeTarget) -> Origin:
    endpoint = target._endpoint
    return (endpoint.scheme, endpoint.host, endpoint.port)


# -- results --------------------------------------------------------------------------------
