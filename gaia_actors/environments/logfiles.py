"""The log pump: a tiny process that writes a service's output into size-rotated files.

``gaia_actors.process.spawn(..., log=LogSink(...))`` runs this file as a script
(``python -I -S logfiles.py PATH MAX_BYTES BACKUPS``) with the read end of the service's
output pipe as its stdin. Being a process of its own, it outlives a daemon restart, so an
adopted service keeps a reader instead of dying of EPIPE (the runit/svlogd model); it ends at
EOF, once every writer (the service's whole group) is gone.

It imports nothing but ``os``, ``signal`` and ``sys`` and is started without ``site``: its
start-up (~20 ms idle here) runs beside the service's own, so it must stay small. Reading
and pruning the files are in ``gaia_actors.process`` (``read_log_tail``, ``prune_logs``).
"""

from __future__ import annotations

import os
import signal
import sys

TYPE_CHECKING = False  # typing itself is not imported: this file must start fast
if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

__all__ = ["RotatingFile", "main"]

_CHUNK = 64 * 1024


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


def main(args: Sequence[str]) -> int:
    """Copy stdin into the rotated file ``args[0]`` until every writer is gone."""
    path, max_bytes, backups = args
    # Own session, so only a deliberate signal reaches it; it ends on EOF, after the service.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with RotatingFile(path, int(max_bytes), int(backups)) as out:
        while chunk := os.read(0, _CHUNK):
            out.write(chunk)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
