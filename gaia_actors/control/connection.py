"""One client of the control server: a reader thread parses its frames, workers answer the
slow ones, and the server's book of live connections admits, evicts and closes them."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from gaia_actors.control.frames import FrameError, classify, decode, frame_id
from gaia_actors.control.protocol import Code, LineReader, encode, to_json
from gaia_actors.settings import Settings
from gaia_actors.store.models import closing_connections
from supervisors import Registry

MAX_CLIENTS = 32
MAX_IN_FLIGHT = 8  # asks, commands and streams running at once on one connection
# A connection with nothing in flight that sent no request for this long may be closed to
# admit a new client when all MAX_CLIENTS places are taken (the newest is never the one).
EVICT_AFTER = 0.5
TELL_RATE = 200.0  # tells per second one connection may send, on average
TELL_BURST = 400  # tells one connection may send at once


class Clients:
    """The live connections and counters, shared by the accept and connection threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.live: set[Connection] = set()
        self.closed = False
        self.counters = {
            "connections": 0,
            "frames": 0,
            "errors": 0,
            "dropped_events": 0,
            "evicted": 0,
            "idle_closed": 0,
            "tells_refused": 0,
        }

    def add(self, connection: Connection) -> Code | None:
        """Admit ``connection``, or say why not (None: admitted). When every place is
        taken, the connection idle the longest gives its place up: idle peers cannot lock
        the operator out."""
        evicted = None
        with self.lock:
            if self.closed:
                return Code.CANCELLED  # the server is stopping
            if len(self.live) >= MAX_CLIENTS:
                evicted = max(self.live, key=Connection.idle_for)
                if evicted.idle_for() < EVICT_AFTER:
                    return Code.TOO_MANY_CLIENTS
                self.live.discard(evicted)
                self.counters["evicted"] += 1
            self.live.add(connection)
            self.counters["connections"] += 1
        if evicted is not None:
            evicted.close_idle(f"{MAX_CLIENTS} clients were connected and a new one came")
        return None

    def remove(self, connection: Connection) -> None:
        with self.lock:
            self.live.discard(connection)

    def count(self, key: str, amount: int = 1) -> None:
        with self.lock:
            self.counters[key] += amount

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {"clients": len(self.live), **self.counters}

    def close_all(self, grace: float) -> None:
        """Cancel every request, give them ``grace`` seconds to answer, then hang up.

        A command that brought the server down (``crash bus`` restarts control with the
        bus) has usually finished and only its reply is on its way: it must reach the client.
        """
        with self.lock:
            self.closed = True
            live = list(self.live)
        for connection in live:
            connection.drain()
        deadline = time.monotonic() + grace
        for connection in live:
            connection.wait_idle(deadline)
            connection.hang_up()


class Request:
    """One request in flight on a connection (an ask, a command or a stream)."""

    def __init__(self, request_id: Any) -> None:
        self.id = request_id
        self.cancel = threading.Event()
        self.on_cancel: Callable[[], None] = lambda: None

    def stop(self) -> None:
        self.cancel.set()
        self.on_cancel()


Op = Callable[["Connection", Any, Mapping[str, Any]], Any]


class Connection:
    """One client: a reader thread parses frames; workers answer the slow ones.

    The socket is closed by whoever finishes last (the reader or a worker), so no thread
    ever writes to a file descriptor number that was closed and reused.
    """

    def __init__(
        self,
        sock: socket.socket,
        settings: Settings,
        registry: Registry,
        clients: Clients,
        ops: Mapping[str, Op],
    ) -> None:
        self.sock = sock
        self.ops = ops
        self.settings = settings
        self.registry = registry
        self.clients = clients
        self.write_lock = threading.Lock()
        self.state_lock = threading.Lock()
        self.idle = threading.Condition(self.state_lock)  # notified when a request ends
        self.draining = False
        self.broken = False
        self.users = 1  # the reader; each worker adds one
        self.requests: dict[Any, Request] = {}
        self.last_active = time.monotonic()  # a request arrived or ended
        self.tells = _TokenBucket(TELL_RATE, TELL_BURST)

    # Life cycle

    def serve(self) -> None:
        reader = LineReader(self.settings.control.max_line_bytes)
        try:
            while True:
                try:
                    chunk = self.sock.recv(65536)
                except BlockingIOError:
                    chunk = None  # SO_RCVTIMEO: nothing for idle_timeout seconds
                except OSError:
                    break
                if chunk == b"":
                    break  # the client left; a partial last line is dropped with it
                for line in reader.feed(chunk or b""):
                    self._handle_line(line)
                # Measured in requests, not bytes: a trickle of bytes is no request.
                if self.idle_for() >= self.settings.control.idle_timeout:
                    self.clients.count("idle_closed")
                    self.close_idle(f"idle for {self.settings.control.idle_timeout:g} s")
                    break
        finally:
            self._cancel_all()
            self.hang_up()
            self.clients.remove(self)
            self._release()

    def hang_up(self) -> None:
        """Wake every thread blocked on this socket; the last one closes it."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def idle_for(self) -> float:
        """Seconds since the last request arrived or ended; 0 while one is in flight."""
        with self.state_lock:
            return 0.0 if self.requests else time.monotonic() - self.last_active

    def close_idle(self, why: str) -> None:
        """Say why (if the client's buffer has room: an idle peer may read nothing), then
        hang up; the reader thread finishes the connection."""
        error = {"code": str(Code.CANCELLED), "message": f"connection closed: {why}"}
        with self.write_lock, contextlib.suppress(OSError):
            self.sock.send(encode({"id": None, "ok": False, "error": error}), socket.MSG_DONTWAIT)
        self.hang_up()

    def reject(self, code: Code, message: str) -> None:
        self.send({"id": None, "ok": False, "error": {"code": str(code), "message": message}})
        self.sock.close()

    def _release(self) -> None:
        with self.state_lock:
            self.users -= 1
            last = self.users == 0
        if last:
            self.sock.close()

    def _cancel_all(self) -> None:
        with self.state_lock:
            requests = list(self.requests.values())
        for request in requests:
            request.stop()

    # Writing

    def send(self, frame: Mapping[str, Any]) -> bool:
        """Write one frame; False once the client is gone (the caller stops streaming)."""
        data = encode(frame)
        with self.write_lock:
            if self.broken:
                return False
            try:
                self.sock.sendall(data)
            except OSError:
                self.broken = True
                self.hang_up()
                return False
        return True

    def reply(self, request_id: Any, result: Any) -> bool:
        return self.send({"id": request_id, "ok": True, "result": to_json(result)})

    def fail(self, request_id: Any, error: FrameError) -> bool:
        self.clients.count("errors")
        return self.send({"id": request_id, "ok": False, "error": error.body()})

    # Reading

    def _handle_line(self, line: bytes | None) -> None:
        self.clients.count("frames")
        with self.state_lock:
            self.last_active = time.monotonic()
        request_id: Any = None
        try:
            frame = decode(line, self.settings.control.max_line_bytes)
            if frame is None:
                return  # a blank line: keep-alive, not a request
            request_id = frame_id(frame)
            result = _operation(frame, self.ops)(self, request_id, frame)
            if result is not ASYNC:
                self.reply(request_id, result)
        except FrameError as exc:
            self.fail(request_id, exc)
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the connection
            self.fail(request_id, classify(exc))

    # Workers

    def start_worker(self, request_id: Any, work: Callable[[Request], Any]) -> Any:
        """Run ``work`` in a thread; its result (or error) becomes the final reply."""
        request = Request(request_id)
        with self.state_lock:
            if request_id in self.requests:
                raise FrameError(
                    Code.DUPLICATE_ID, f"request {request_id!r} is still in flight", "id"
                )
            if self.draining:
                raise FrameError(Code.CANCELLED, "the control server is stopping")
            if len(self.requests) >= MAX_IN_FLIGHT:
                raise FrameError(Code.BUSY, f"more than {MAX_IN_FLIGHT} requests in flight")
            self.requests[request_id] = request
            self.users += 1
        threading.Thread(
            target=closing_connections(self._work),
            args=(request, work),
            name="control-worker",
            daemon=True,
        ).start()
        return ASYNC

    def _work(self, request: Request, work: Callable[[Request], Any]) -> None:
        try:
            result = work(request)
            self.reply(request.id, result)
        except FrameError as exc:
            self.fail(request.id, exc)
        except Exception as exc:  # noqa: BLE001 - a worker's failure is the client's reply
            self.fail(request.id, classify(exc))
        finally:
            with self.state_lock:
                self.requests.pop(request.id, None)
                self.last_active = time.monotonic()
                self.idle.notify_all()
            self._release()

    def drain(self) -> None:
        """Refuse new requests and cancel the running ones (they still send a reply)."""
        with self.state_lock:
            self.draining = True
        self._cancel_all()

    def wait_idle(self, deadline: float) -> None:
        with self.state_lock:
            self.idle.wait_for(lambda: not self.requests, max(0.0, deadline - time.monotonic()))

    def cancel(self, target: Any) -> bool:
        with self.state_lock:
            request = self.requests.get(target)
        if request is None:
            return False
        request.stop()
        return True


ASYNC = object()  # an op that answers later, from a worker


class _TokenBucket:
    """``rate`` per second on average, ``burst`` at once: a tell costs a mailbox no reply
    bounds, so one client must not be able to fill the actors' inboxes."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> float:
        """Take a token: 0.0 when there was one, else the seconds until there will be."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


def _operation(frame: Mapping[str, Any], ops: Mapping[str, Op]) -> Op:
    op = frame.get("op")
    handler = ops.get(op) if isinstance(op, str) else None
    if handler is None:
        raise FrameError(Code.UNKNOWN_OP, f"unknown op {op!r}; ops are: {', '.join(ops)}", "op")
    return handler
