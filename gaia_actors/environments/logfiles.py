"""The log pump: one small process that writes the output of every service of a state
directory into size-rotated files.

``gaia_actors.process.spawn(..., log=LogSink(...))`` hands the read end of each service's
output pipe to this pump over a Unix socket (the descriptor passed with SCM_RIGHTS), starting
it first if none listens (``python -I -S logfiles.py --serve NAME``, NAME an abstract socket
name). Being a process of its own, in a session of its own, it outlives a daemon restart or
SIGKILL, so an adopted service keeps a reader instead of dying of EPIPE (the runit/svlogd
model), and the next daemon hands its new services to the same pump. One pump for all
services rather than one each: a process per environment cost more than the services' own
output. It ends once it has read every pipe to EOF (each service's whole group gone) and
nothing new came for a few seconds.

Each handover (``MAX_BYTES BACKUPS PATH`` with the pipe) is answered ``ok`` once the file is
open (or ``error: ...``), and the connection then stays open until the pump has written the
pipe's last byte and says ``eof``: the daemon waits for that to read a complete tail of an
exited service.

It imports only the standard library and is started without ``site``: its start-up runs
beside the services' own, so it must stay small. Reading and pruning the files are in
``gaia_actors.process`` (``read_log_tail``, ``prune_logs``).
"""

from __future__ import annotations

import contextlib
import os
import resource
import selectors
import signal
import socket
import sys

TYPE_CHECKING = False  # typing itself is not imported: this file must start fast
if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

__all__ = ["RotatingFile", "main", "serve"]

_CHUNK = 64 * 1024
_LINGER = 5.0  # seconds the pump waits, with no pipe left, for new ones before it ends
_HANDSHAKE_TIMEOUT = 5.0  # seconds a connected daemon has to hand over its pipe


class RotatingFile:
    """An append-only file rotated by size: ``app.log`` -> ``app.log.1`` -> ... ``.{backups}``.

    Rotates on line boundaries, so no file exceeds ``max_bytes`` unless a single line does
    (such a line is split). Writes are unbuffered (``O_APPEND``): a reader sees them at once.
    """

    def __init__(self, path: str | os.PathLike[str], max_bytes: int, backups: int) -> None:
        if max_bytes < 1 or backups < 0:
            raise ValueError(f"{path}: max_bytes must be >= 1 and backups >= 0")
        self.path = os.fspath(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def write(self, data: bytes) -> None:
        """Append ``data``, rotating first whenever the next piece would not fit."""
        while data:
            room = self.max_bytes - self._size
            if len(data) <= room:
                self._write(data)
                return
            cut = data.rfind(b"\n", 0, room) + 1
            if cut == 0 and self._size == 0:
                cut = room  # one line longer than a whole file: split it
            self._write(data[:cut])
            self.rotate()
            data = data[cut:]

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self._size += len(data)

    def rotate(self) -> None:
        """Shift ``.N`` to ``.N+1`` (dropping the oldest) and start a new empty file."""
        os.close(self._fd)
        if self.backups == 0:
            os.unlink(self.path)
        for index in range(self.backups - 1, 0, -1):
            if os.path.exists(older := f"{self.path}.{index}"):
                os.replace(older, f"{self.path}.{index + 1}")
        if self.backups:
            os.replace(self.path, f"{self.path}.1")
        self._fd = self._open()
        self._size = 0

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> RotatingFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _listen(name: str) -> socket.socket | None:
    """The pump's socket, or None when another pump already listens on ``name``."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind("\0" + name)
    except OSError:
        listener.close()
        return None
    listener.listen(128)
    return listener


def _raise_fd_limit() -> None:
    # Three descriptors per service (pipe, file, connection): the soft limit of 1024 would
    # stop near 340 services; the hard limit is ours to take.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class _Pipe:
    """One service's pipe: its file, and the daemon's connection to tell at EOF."""

    def __init__(self, fd: int, out: RotatingFile, conn: socket.socket) -> None:
        self.fd = fd
        self.out = out
        self.conn = conn

    def end(self) -> None:
        self.out.close()
        os.close(self.fd)
        # The daemon that handed it over may be gone (restarted): then nobody waits.
        with contextlib.suppress(OSError):
            self.conn.sendall(b"eof\n")
        self.conn.close()


def _one_pipe(fds: list[int]) -> None:
    if len(fds) != 1:
        raise ValueError(f"{len(fds)} descriptors passed, not one pipe")


def _accept(listener: socket.socket) -> _Pipe | None:
    """Take one handed-over pipe: ``MAX_BYTES BACKUPS PATH`` (UTF-8) with its fd."""
    conn, _ = listener.accept()
    conn.settimeout(_HANDSHAKE_TIMEOUT)
    fds: list[int] = []
    try:
        data, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        max_bytes, backups, path = data.decode().split(" ", 2)
        _one_pipe(fds)
        out = RotatingFile(path, int(max_bytes), int(backups))
    except (OSError, ValueError) as exc:
        for fd in fds:
            os.close(fd)
        with contextlib.suppress(OSError):
            conn.sendall(f"error: {type(exc).__name__}: {exc}\n".encode())
        conn.close()
        return None
    conn.sendall(b"ok\n")
    return _Pipe(fds[0], out, conn)


def _copy(pipe: _Pipe) -> bool:
    """Copy what the pipe holds; False at EOF."""
    try:
        chunk = os.read(pipe.fd, _CHUNK)
    except BlockingIOError:
        return True
    if not chunk:
        return False
    pipe.out.write(chunk)
    return True


def serve(listener: socket.socket) -> None:
    """Copy every handed-over pipe into its file until none is left for ``_LINGER`` s."""
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, None)
    pipes = 0
    while True:
        events = selector.select(None if pipes else _LINGER)
        if not events:
            return  # nothing left to read and nothing new came
        for key, _ in events:
            if key.data is None:
                pipe = _accept(listener)
                if pipe is not None:
                    os.set_blocking(pipe.fd, False)
                    selector.register(pipe.fd, selectors.EVENT_READ, pipe)
                    pipes += 1
            elif not _copy(key.data):
                selector.unregister(key.data.fd)
                key.data.end()
                pipes -= 1


def main(args: Sequence[str]) -> int:
    """``--serve NAME``: listen on the abstract socket NAME, say ``ready`` on stdout (or
    exit 3 if another pump listens there), then serve."""
    if len(args) != 2 or args[0] != "--serve":
        print("usage: logfiles.py --serve NAME", file=sys.stderr)
        return 2
    # Own session, so only a deliberate signal reaches it; it ends after the services.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    listener = _listen(args[1])
    if listener is None:
        return 3
    _raise_fd_limit()
    os.write(1, b"ready\n")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)  # the starter stops reading at "ready"
    os.close(null)
    serve(listener)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
