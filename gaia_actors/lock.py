"""One daemon per state directory, whatever happens to the files in it.

Three checks, so that no single file anyone can delete decides:

- an ``flock`` on the state directory itself (held through an open descriptor: deleting or
  replacing a file inside cannot release it, and the directory cannot be removed while it
  holds the state);
- an ``flock`` on ``daemon.lock``, which also holds the daemon's pid for clients; when that
  file is deleted or replaced, the running daemon writes a new one (``StateLock.check``);
- no other daemon answers on the control socket (``probe_socket``).

A new state directory is created 0700; an existing one keeps its mode (``GAIA_STATE_DIR=/tmp``
must not strip /tmp's sticky bit). What must stay private (the socket, the store) is made
0600 where it is created.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import IO

from gaia_actors.control.protocol import connect_socket, encode
from gaia_actors.errors import DaemonError, LockHeld

PROBE_TIMEOUT = 0.5  # a server that does not answer a ping this fast is not a daemon
LOCK_NAME = "daemon.lock"


def make_state_dir(path: Path) -> None:
    """Create ``path`` (mode 0700) if it does not exist; an existing one is left as it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        return
    os.chmod(path, 0o700)  # the umask cannot loosen what mkdir asked; this undoes a stricter one


def probe_socket(path: Path) -> int | None:
    """The pid of the server answering on ``path``; None if nothing does, 0 if unknown."""
    try:
        sock = connect_socket(path, timeout=PROBE_TIMEOUT)
    except OSError:
        return None
    try:
        sock.settimeout(PROBE_TIMEOUT)
        sock.sendall(encode({"id": "probe", "op": "ping"}))
        reply = json.loads(sock.makefile("rb").readline() or b"{}")
        return int(reply.get("result", {}).get("pid", 0))
    except (OSError, ValueError, AttributeError, TypeError):
        return 0
    finally:
        sock.close()


class StateLock:
    """Held by the daemon from start to exit: ``acquire``, ``check`` now and then, ``release``."""

    def __init__(self, state_dir: Path, socket_path: Path) -> None:
        self.state_dir = state_dir
        self.socket_path = socket_path
        self.path = state_dir / LOCK_NAME
        self._dir_fd: int | None = None
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the state directory or raise ``LockHeld`` naming the daemon that has it."""
        make_state_dir(self.state_dir)
        fd = os.open(self.state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = _read_pid(self.path) or str(probe_socket(self.socket_path) or "")
            raise LockHeld(str(self.state_dir), pid) from None
        self._dir_fd = fd
        try:
            self._file = self._lock_file()
            self._refuse_if_answered()
        except BaseException:
            self.release()
            raise

    def _refuse_if_answered(self) -> None:
        owner = probe_socket(self.socket_path)
        if owner is not None and owner != os.getpid():
            raise LockHeld(str(self.state_dir), str(owner or ""))

    def check(self) -> bool:
        """Write ``daemon.lock`` again if it is no longer the file this daemon holds (deleted
        or replaced); answers True when it did."""
        held = self._file
        if held is None:
            return False
        try:
            if os.stat(self.path).st_ino == os.fstat(held.fileno()).st_ino:
                return False
        except FileNotFoundError:
            pass
        self._file = self._lock_file()
        held.close()
        return True

    def release(self) -> None:
        held, self._file = self._file, None
        if held is not None:
            with contextlib.suppress(OSError):
                held.truncate(0)  # no pid left behind for clients to wait on
            held.close()
        fd, self._dir_fd = self._dir_fd, None
        if fd is not None:
            os.close(fd)

    def _lock_file(self) -> IO[str]:
        """Open, lock and fill ``daemon.lock`` with this process's pid."""
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            # The directory lock is ours, so whoever holds this file does not run a daemon
            # on this directory through this code; refuse rather than share it.
            raise DaemonError(
                f"another process holds {self.path}; stop it, or remove the file"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return handle


def _read_pid(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
