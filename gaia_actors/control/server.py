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

Here the socket's life cycle; a client's threads in ``connection``, the frames' decoding and
errors in ``frames``, the operations in ``ops``, event streams in ``streams``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import struct
import threading
from pathlib import Path
from typing import Any

import structlog

from gaia_actors.actor import GaiaActor
from gaia_actors.control.connection import MAX_CLIENTS, Clients, Connection
from gaia_actors.control.ops import OPS
from gaia_actors.control.protocol import Code
from gaia_actors.control.protocol import unix_address as _unix_address
from gaia_actors.errors import DaemonError
from gaia_actors.lock import make_state_dir, probe_socket
from gaia_actors.messages import message
from gaia_actors.settings import Settings
from supervisors import ChildSpec, Link, Registry

ACCEPT_BACKLOG = 128  # a burst of connections waits for the accept thread, not refused
DRAIN_SECONDS = 1.0  # on stop, how long running requests get to send their replies
SOCKET_CHECK_INTERVAL = 1.0  # seconds between checks that the socket file is still ours

log = structlog.get_logger("gaia.control")


def child_specs(
    settings: Settings, registry: Registry, listener: Any, supervisor_config: Any
) -> list[ChildSpec]:
    """The control server is a plain child of the root, started last."""
    return [
        ChildSpec("control", lambda link: ControlServer.start(link, settings), shutdown_timeout=5.0)
    ]


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
        self.clients = Clients()
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
            _set_timeouts(
                sock, self.settings.control.send_timeout, self.settings.control.idle_timeout
            )
            connection = Connection(sock, self.settings, self.registry, self.clients, OPS)
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
