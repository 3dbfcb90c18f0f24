"""The control server (``control``): the daemon's Unix socket for the REPL and the CLI.

Newline-delimited JSON (the frame format is in gaia_actors/control/protocol.py). Operations:

    ping                                   -> {"pong": true, "pid", "protocol", "version"}
    actors                                 -> the supervision tree (registry.snapshot())
    messages                               -> every message type with its fields
    commands                               -> every registered command with its arguments
    tell   actor message [fields]          -> {"sent": true}
    ask    actor message [fields] [timeout]-> the actor's reply (timeout <= 60 s, default 5 s)
    command name [args]                    -> progress frames, then the command's result
    subscribe [patterns] [env] [since]     -> "subscribed", then "event" frames until cancelled
    cancel target                          -> {"cancelled": bool}: stop a command or a stream

The actor owns the listening socket (bound in ``on_start``, closed and unlinked in
``on_stop``) but serves nothing from its mailbox: an accept thread hands each connection to
its own reader thread, and asks, commands and streams run in worker threads, so a hung actor
or a slow client never blocks the others. Everything is bounded: line size, clients,
requests in flight per connection, ask timeouts, and each stream's event queue (a slow
client loses events, counted and reported, and never blocks the bus).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import os
import queue
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import peewee
import structlog

from gaia_actors import __version__
from gaia_actors.actor import GaiaActor
from gaia_actors.control import commands, core_commands
from gaia_actors.control.commands import CommandContext, UsageError
from gaia_actors.control.protocol import PROTOCOL_VERSION, Code, LineReader, encode
from gaia_actors.control.protocol import unix_address as _unix_address
from gaia_actors.errors import (
    Busy,
    ControlError,
    DaemonError,
    GaiaError,
    InvalidMessage,
    Rejected,
)
from gaia_actors.lock import make_state_dir, probe_socket
from gaia_actors.messages import (
    Event,
    Flush,
    SubscribeSink,
    Unsubscribe,
    build,
    describe,
    message,
    message_types,
)
from gaia_actors.models import closing_connections
from gaia_actors.settings import Settings
from supervisors import AskTimeout, ChildSpec, Link, NotRunning, Registry

MAX_CLIENTS = 32
MAX_IN_FLIGHT = 8  # asks, commands and streams running at once on one connection
DEFAULT_ASK_TIMEOUT = 5.0
MAX_ASK_TIMEOUT = 60.0
STREAM_QUEUE = 1000  # events buffered per stream before they are dropped
REPLAY_LIMIT = 1000  # stored events sent to a stream that asks for `since`
SEND_TIMEOUT = 10.0  # a client that reads nothing for this long is disconnected
ACCEPT_BACKLOG = 128  # a burst of connections waits for the accept thread, not refused
DRAIN_SECONDS = 1.0  # on stop, how long running requests get to send their replies
SOCKET_CHECK_INTERVAL = 1.0  # seconds between checks that the socket file is still ours
# A connection with nothing in flight that sent no request for this long may be closed to
# admit a new client when all MAX_CLIENTS places are taken (the newest is never the one).
EVICT_AFTER = 0.5
TELL_RATE = 200.0  # tells per second one connection may send, on average
TELL_BURST = 400  # tells one connection may send at once

log = structlog.get_logger("gaia.control")


def child_specs(
    settings: Settings, registry: Registry, listener: Any, supervisor_config: Any
) -> list[ChildSpec]:
    """The control server is a plain child of the root, started last."""
    return [
        ChildSpec("control", lambda link: ControlServer.start(link, settings), shutdown_timeout=5.0)
    ]


class FrameError(ControlError):
    """A request that cannot be served; becomes an error reply (the server carries on)."""

    def __init__(self, code: Code, message: str, field: str = "") -> None:
        self.code = code
        self.field = field
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": str(self.code), "message": str(self)}
        if self.field:
            body["field"] = self.field
        return body


@message
class CheckSocket:
    """Timer: bind the control socket again if its file was deleted or replaced."""


class ControlServer(GaiaActor):
    """Owns the socket's life cycle; connections are served by threads outside the mailbox."""

    def __init__(self, link: Link, settings: Settings) -> None:
        super().__init__(link)
        self.settings = settings
        self.path = settings.socket_path
        self.listener: socket.socket | None = None
        self.inode: int | None = None
        self.clients = _Clients()
        self.closing = threading.Event()

    def on_start(self) -> None:
        self._listen(self._bind())
        self.every(SOCKET_CHECK_INTERVAL, CheckSocket())
        self.log.info("control.listening", socket=str(self.path))

    def on_terminate(self) -> None:
        self._close()

    def receive(self, message: Any) -> Any:
        match message:
            case CheckSocket():
                self._check_socket()
            case _:
                return self.unhandled(message)
        return None

    def state(self) -> dict[str, Any]:
        return {**super().state(), "socket": str(self.path), **self.clients.stats()}

    # The listening socket

    def _listen(self, listener: socket.socket) -> None:
        self.listener = listener
        threading.Thread(
            target=self._accept_loop, args=(listener,), name="control-accept", daemon=True
        ).start()

    def _check_socket(self) -> None:
        """Clients find the daemon by the socket's path: when the file is gone (or another
        took its place), listen on a new one and close the old listener."""
        old = self.listener
        if old is None or self.closing.is_set() or self._socket_is_ours():
            return
        try:
            self._listen(self._bind())
        except DaemonError as exc:
            self.log.error("control.socket_lost", socket=str(self.path), error=str(exc))
            return
        _shut(old)
        self.log.warning("control.socket_restored", socket=str(self.path))

    def _socket_is_ours(self) -> bool:
        try:
            return self.path.lstat().st_ino == self.inode
        except FileNotFoundError:
            return False

    def _bind(self) -> socket.socket:
        _prepare_directory(self.path.parent, self.settings.state_dir)
        self._clear_stale()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with _unix_address(self.path) as address:
                sock.bind(address)
            # 0600 whatever the directory's mode (an existing state directory keeps its
            # own). Nothing can connect before listen().
            os.chmod(self.path, 0o600)
            sock.listen(ACCEPT_BACKLOG)
        except OSError as exc:
            sock.close()
            raise DaemonError(f"cannot listen on control socket {self.path}: {exc}") from exc
        self.inode = self.path.stat().st_ino
        return sock

    def _clear_stale(self) -> None:
        """Remove a socket file nothing answers on; refuse to steal a live one."""
        try:
            mode = self.path.lstat().st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise DaemonError(f"control socket path {self.path} exists and is not a socket")
        owner = probe_socket(self.path)
        if owner is not None and owner != os.getpid():
            raise DaemonError(
                f"another process (pid {owner or 'unknown'}) answers on control socket "
                f"{self.path}; stop it or set control.socket elsewhere"
            )
        # Nothing answers (stale), or an abandoned generation of this very server (it was
        # hung and replaced): take the path over. Its on_stop leaves our file alone (inode).
        self.path.unlink(missing_ok=True)
        self.log.info("control.stale_socket_removed", socket=str(self.path), owner=owner)

    def _close(self) -> None:
        self.closing.set()
        listener, self.listener = self.listener, None
        if listener is not None:
            _shut(listener)
            with contextlib.suppress(OSError):
                if self.inode is not None and self.path.stat().st_ino == self.inode:
                    self.path.unlink()
        self.clients.close_all(DRAIN_SECONDS)

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError as exc:
                if self.closing.is_set() or listener is not self.listener:
                    return  # the listener was shut down: stopping, or replaced by a new one
                # Out of file descriptors or similar: keep serving once it clears.
                log.warning("control.accept_failed", error=str(exc))
                self.closing.wait(0.1)
                continue
            _set_timeouts(sock, SEND_TIMEOUT, self.settings.control.idle_timeout)
            connection = Connection(sock, self.settings, self.registry, self.clients)
            refused = self.clients.add(connection)
            if refused is Code.TOO_MANY_CLIENTS:
                connection.reject(refused, f"more than {MAX_CLIENTS} clients are connected")
                continue
            if refused is not None:
                sock.close()  # stopping: the client sees the connection close, as after a stop
                continue
            threading.Thread(target=connection.serve, name="control-client", daemon=True).start()


def _prepare_directory(directory: Path, state_dir: Path) -> None:
    if directory == state_dir:
        make_state_dir(directory)  # an existing one keeps its mode; the socket is 0600
    else:
        directory.mkdir(parents=True, exist_ok=True)


def _set_timeouts(sock: socket.socket, send: float, receive: float) -> None:
    for option, seconds in ((socket.SO_SNDTIMEO, send), (socket.SO_RCVTIMEO, receive)):
        whole = int(seconds)
        sock.setsockopt(
            socket.SOL_SOCKET, option, struct.pack("ll", whole, int((seconds - whole) * 1e6))
        )


def _shut(listener: socket.socket) -> None:
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)  # wakes its accept thread
    listener.close()


class _Clients:
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


class _Request:
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
        self, sock: socket.socket, settings: Settings, registry: Registry, clients: _Clients
    ) -> None:
        self.sock = sock
        self.settings = settings
        self.registry = registry
        self.clients = clients
        self.write_lock = threading.Lock()
        self.state_lock = threading.Lock()
        self.idle = threading.Condition(self.state_lock)  # notified when a request ends
        self.draining = False
        self.broken = False
        self.users = 1  # the reader; each worker adds one
        self.requests: dict[Any, _Request] = {}
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
            frame = _decode(line, self.settings.control.max_line_bytes)
            if frame is None:
                return  # a blank line: keep-alive, not a request
            request_id = _request_id(frame)
            result = _operation(frame)(self, request_id, frame)
            if result is not _ASYNC:
                self.reply(request_id, result)
        except FrameError as exc:
            self.fail(request_id, exc)
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the connection
            self.fail(request_id, _classify(exc))

    # Workers

    def start_worker(self, request_id: Any, work: Callable[[_Request], Any]) -> Any:
        """Run ``work`` in a thread; its result (or error) becomes the final reply."""
        request = _Request(request_id)
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
        return _ASYNC

    def _work(self, request: _Request, work: Callable[[_Request], Any]) -> None:
        try:
            result = work(request)
            self.reply(request.id, result)
        except FrameError as exc:
            self.fail(request.id, exc)
        except Exception as exc:  # noqa: BLE001 - a worker's failure is the client's reply
            self.fail(request.id, _classify(exc))
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


_ASYNC = object()  # an op that answers later, from a worker


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


# --- decoding and validation ----------------------------------------------------------------


def _decode(line: bytes | None, limit: int) -> dict[str, Any] | None:
    if line is None:
        raise FrameError(Code.TOO_LARGE, f"frame exceeds control.max_line_bytes ({limit} bytes)")
    if not line.strip():
        return None
    try:
        frame = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise FrameError(Code.BAD_JSON, f"frame is not UTF-8: {exc}") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, digit limits, deep nesting
        raise FrameError(Code.BAD_JSON, f"frame is not JSON: {_short(exc)}") from None
    if not isinstance(frame, dict):
        raise FrameError(Code.BAD_FRAME, f"frame must be a JSON object, got {_kind(frame)}")
    return frame


def _operation(frame: Mapping[str, Any]) -> Op:
    op = frame.get("op")
    handler = OPS.get(op) if isinstance(op, str) else None
    if handler is None:
        raise FrameError(Code.UNKNOWN_OP, f"unknown op {op!r}; ops are: {', '.join(OPS)}", "op")
    return handler


def _request_id(frame: Mapping[str, Any]) -> Any:
    request_id = frame.get("id")
    valid = request_id is None or (
        isinstance(request_id, int | str) and not isinstance(request_id, bool)
    )
    if not valid or (isinstance(request_id, str) and len(request_id) > 200):
        raise FrameError(Code.BAD_FRAME, "id must be an integer or a short string", "id")
    return request_id


def _get(
    frame: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any = ...
) -> Any:
    """A frame field of type ``kind``; missing -> ``default`` or a MISSING_FIELD error."""
    if key not in frame or frame[key] is None:
        if default is ...:
            raise FrameError(Code.MISSING_FIELD, f"field {key!r} is required", key)
        return default
    value = frame[key]
    if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
        expected = (
            kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        )
        raise FrameError(
            Code.BAD_FIELD,
            f"field {key!r} must be {_TYPE_WORDS.get(expected, expected)}, got {_kind(value)}",
            key,
        )
    return value


_TYPE_WORDS = {
    "str": "a string",
    "dict": "an object",
    "list": "a list",
    "int or float": "a number",
    "int or str": "an integer or a string",
    "bool": "a boolean",
}


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def _actor(registry: Registry, frame: Mapping[str, Any]) -> str:
    name: str = _get(frame, "actor", str)
    if name in registry.names():
        return name
    if registry.node(name) is None:
        known = ", ".join(sorted(registry.names())) or "none"
        raise FrameError(Code.UNKNOWN_ACTOR, f"no actor named {name!r}; actors: {known}", "actor")
    try:
        registry.lookup(name)
    except NotRunning as exc:
        raise FrameError(Code.NOT_RUNNING, str(exc), "actor") from None
    return name


def _message(frame: Mapping[str, Any], settings: Settings) -> Any:
    """Build the frame's message, with a code for each way its name or fields can be wrong."""
    name: str = _get(frame, "message", str)
    fields: dict[str, Any] = _get(frame, "fields", dict, {})
    cls = message_types().get(name)
    if cls is None:
        known = ", ".join(sorted(message_types()))
        raise FrameError(
            Code.UNKNOWN_MESSAGE, f"unknown message {name!r}; messages: {known}", "message"
        )
    infos = {info.name: info for info in describe(cls)}
    for key in fields:
        if key not in infos:
            listed = ", ".join(infos) or "none"
            raise FrameError(
                Code.UNKNOWN_FIELD, f"{name} has no field {key!r}; fields: {listed}", key
            )
    for info in infos.values():
        if info.required and info.name not in fields:
            raise FrameError(
                Code.MISSING_FIELD, f"{name}.{info.name} is required (type {info.type})", info.name
            )
    try:
        return build(name, fields, settings.environments)
    except InvalidMessage as exc:
        raise FrameError(Code.BAD_FIELD, str(exc), exc.field) from None


def _classify(exc: Exception) -> FrameError:
    """An exception from an ask or a command as an error reply with its code."""
    if isinstance(exc, peewee.PeeweeException):  # a read of a store that is faulty
        return FrameError(Code.FAILED, f"the store cannot be read now: {exc}")
    kinds: list[tuple[type[Exception], Code]] = [
        (UsageError, Code.BAD_ARGUMENT),
        (Busy, Code.BUSY),
        (Rejected, Code.REJECTED),
        (NotRunning, Code.NOT_RUNNING),
        (AskTimeout, Code.TIMEOUT),
        (GaiaError, Code.FAILED),
    ]
    for kind, code in kinds:
        if isinstance(exc, kind):
            return FrameError(code, str(exc), getattr(exc, "param", "") or "")
    log.error("control.command_crashed", error=repr(exc), exc_info=exc)
    return FrameError(Code.INTERNAL, f"internal error in the daemon: {exc!r} (see its log)")


# --- operations -----------------------------------------------------------------------------


def op_ping(conn: Connection, request_id: Any, frame: Mapping[str, Any]) -> Any:
    return {"pong": True, "pid": os.getpid(), "protocol": PROTOCOL_VERSION, "version": __version__}


def op_actors(conn: Connection, request_id: Any, frame: Mapping[str, Any]) -> Any:
    return core_commands.actors(CommandContext(conn.settings, conn.registry))


def op_messages(conn: Connection, request_id: Any, frame: Mapping[str, Any]) -> Any:
    return core_commands.messages(CommandContext(conn.settings, conn.registry))


def op_commands(conn: Connection, request_id: Any, frame: Mapping[str, Any]) -> Any:
    return [describe_command(cmd) for cmd in sorted(commands.commands().values(), key=_name)]


def _name(cmd: commands.Command) -> str:
    return cmd.name


def describe_command(cmd: commands.Command) -> dict[str, Any]:
    params = [
        {**dataclasses.asdict(p), "type": p.type.__name__, "kind": kind}
        for kind, group in (("arg", cmd.args), ("option", cmd.options))
        for p in group
    ]
    return {
        "name": cmd.name,
        "help": cmd.help,
        "usage": cmd.usage(),
        "offline": cmd.offline,
        "params": params,
    }


def op_tell(conn: Connection, request_id: Any, frame: Mapping[str, Any]) -> Any:
    actor = _actor(conn.registry, frame)
    message = _message(frame, conn.settings)
    wait = conn.tells.take()
    if wait:
        conn.clients.count("tells_refused")
        raise FrameError(
            Code.BUSY,
            f"more than {TELL_RATE:g} tells per second on this connection; retry in {wait:.2f} s",
        )
    try:
        conn.registry.tell(actor, message)
    except NotRunning as exc:
        raise FrameError(Code.NOT_RUNNING, str(exc), "actor") from None
    return {"sent": True, "actor": actor, "message": type(message).__name__}


def op_ask(conn: Connection, request_id: Any, frame: Mapping[str, Any]) -> Any:
    actor = _actor(conn.registry, frame)
    message = _message(frame, conn.settings)
    timeout = float(_get(frame, "timeout", (int, float), DEFAULT_ASK_TIMEOUT))
    if not 0 < timeout <= MAX_ASK_TIMEOUT:
        raise FrameError(
            Code.BAD_FIELD, f"timeout must be in (0, {MAX_ASK_TIMEOUT:g}] seconds", "timeout"
        )

    def work(_request: _Request) -> Any:
        try:
            return conn.registry.ask(actor, message, timeout=timeout)
        except (Rejected, NotRunning, AskTimeout):
            raise
        except Exception as exc:  # noqa: BLE001 - the actor answered with an exception
            raise FrameError(Code.ACTOR_ERROR, f"{actor} answered with {exc!r}") from None

    return conn.start_worker(request_id, work)


def op_command(conn: Connection, request_id: Any, frame: Mapping[str, Any]) -> Any:
    name: str = _get(frame, "name", str)
    values: dict[str, Any] = _get(frame, "args", dict, {})
    cmd = commands.get(name)
    if cmd is None:
        known = ", ".join(sorted(commands.commands()))
        raise FrameError(
            Code.UNKNOWN_COMMAND, f"unknown command {name!r}; commands: {known}", "name"
        )
    try:
        kwargs = commands.bind(cmd, values, conn.settings)
    except UsageError as exc:
        raise FrameError(Code.BAD_ARGUMENT, str(exc), exc.param) from None

    def work(request: _Request) -> Any:
        def progress(update: dict[str, Any]) -> None:
            conn.send({"id": request_id, "progress": to_json(update)})

        ctx = CommandContext(
            conn.settings, conn.registry, request.cancel, progress, lambda: conn.draining
        )
        return cmd.handler(ctx, **kwargs)

    return conn.start_worker(request_id, work)


def op_subscribe(conn: Connection, request_id: Any, frame: Mapping[str, Any]) -> Any:
    patterns = _get(frame, "patterns", list, ["*"])
    if not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise FrameError(Code.BAD_FIELD, "patterns must be a list of non-empty strings", "patterns")
    env: str | None = _get(frame, "env", str, None)
    since = _get(frame, "since", (int, float), None)
    stream = _Stream(conn, request_id, tuple(patterns), env, since)
    return conn.start_worker(request_id, stream.run)


def op_cancel(conn: Connection, request_id: Any, frame: Mapping[str, Any]) -> Any:
    target = _get(frame, "target", (int, str))
    return {"cancelled": conn.cancel(target)}


OPS: dict[str, Op] = {
    "ping": op_ping,
    "actors": op_actors,
    "messages": op_messages,
    "commands": op_commands,
    "tell": op_tell,
    "ask": op_ask,
    "command": op_command,
    "subscribe": op_subscribe,
    "cancel": op_cancel,
}


# --- event streams --------------------------------------------------------------------------

_WAKE = object()


class _Stream:
    """One subscription: the bus calls ``offer`` (never blocks); a worker writes frames."""

    def __init__(
        self,
        conn: Connection,
        request_id: Any,
        patterns: tuple[str, ...],
        env: str | None,
        since: float | None,
    ) -> None:
        self.conn = conn
        self.request_id = request_id
        self.patterns = patterns
        self.env = env
        self.since = since
        self.key = f"control.stream.{id(self):x}"
        self.queue: queue.Queue[Any] = queue.Queue(STREAM_QUEUE)
        self.lock = threading.Lock()
        self.dropped = 0
        self.sent = 0

    def offer(self, event: Event) -> None:
        """Called in the bus's thread: queue or count as dropped, never wait."""
        if self.env and event.env != self.env:
            return
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            with self.lock:
                self.dropped += 1

    def run(self, request: _Request) -> dict[str, Any]:
        registry = self.conn.registry
        registry.ask("bus", SubscribeSink(self.key, self.offer, self.patterns), timeout=5.0)
        request.on_cancel = self._wake
        try:
            self.conn.send(
                {
                    "id": self.request_id,
                    "subscribed": {"patterns": list(self.patterns), "env": self.env},
                }
            )
            seen = self._replay() if self.since is not None else set()
            self._pump(request, seen)
        finally:
            with contextlib.suppress(NotRunning):
                registry.tell("bus", Unsubscribe(self.key))
            if self.dropped:
                self.conn.clients.count("dropped_events", self.dropped)
        return {"events": self.sent, "dropped": self.dropped}

    def _wake(self) -> None:
        with contextlib.suppress(queue.Full):  # a full queue wakes the pump by itself
            self.queue.put_nowait(_WAKE)

    def _pump(self, request: _Request, seen: set[tuple[float, str, str]]) -> None:
        reported = 0
        while not request.cancel.is_set():
            item = self.queue.get()
            if item is _WAKE:
                continue
            with self.lock:
                dropped = self.dropped
            if dropped != reported:
                reported = dropped
                if not self.conn.send({"id": self.request_id, "dropped": dropped}):
                    return
            if (item.ts, item.name, item.actor) in seen:
                continue  # already sent from the store
            if not self._send(item.as_dict()):
                return

    def _send(self, record: dict[str, Any]) -> bool:
        self.sent += 1
        return self.conn.send({"id": self.request_id, "event": to_json(record)})

    def _replay(self) -> set[tuple[float, str, str]]:
        """Stored events newer than ``since`` (a watcher reconnecting after a restart)."""
        import fnmatch

        from gaia_actors.models import EventRow

        with contextlib.suppress(NotRunning, AskTimeout, GaiaError):
            self.conn.registry.ask("store", Flush(), timeout=2.0)
        rows = (
            EventRow.select()
            .where(EventRow.ts > self.since)
            .order_by(EventRow.ts)
            .limit(REPLAY_LIMIT)
        )
        seen: set[tuple[float, str, str]] = set()
        for row in rows:
            if self.env and row.env != self.env:
                continue
            if not any(fnmatch.fnmatchcase(row.name, p) for p in self.patterns):
                continue
            seen.add((row.ts, row.name, row.actor))
            if not self._send(dict(row.data or {"event": row.name, "ts": row.ts})):
                break
        return seen


# --- JSON ------------------------------------------------------------------------------------


def to_json(value: Any) -> Any:
    """A JSON-friendly copy of a reply: dataclasses, tuples, enums, paths, exceptions."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if isinstance(value, BaseException):
        return {"error": type(value).__name__, "message": str(value)}
    return str(value)


__all__ = [
    "OPS",
    "ControlServer",
    "FrameError",
    "child_specs",
    "describe_command",
    "to_json",
]
