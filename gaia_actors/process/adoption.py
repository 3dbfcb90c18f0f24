"""Adopting a process an earlier daemon started, found through its pid file, and watched through
a pidfd (or /proc polling where the kernel has none)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from gaia_actors.process.exits import EXITS, Watch, open_pidfd
from gaia_actors.process.handles import Handle
from gaia_actors.process.output import LogSink, read_log_tail
from gaia_actors.process.pidfiles import read_pidfile
from gaia_actors.process.proc import is_same_process

POLL_INTERVAL = 0.05  # /proc polling for adopted processes when pidfd is unavailable


class AdoptedProcess(Handle[int | None]):
    """A live process started by an earlier daemon, found through its pid file.

    It is not our child, so its exit code cannot be known: callbacks and :meth:`stop` get
    None. Its exit is seen through a pidfd (at once), or by polling /proc every 50 ms on
    kernels without pidfd.
    """

    def __init__(self, pid: int, start_time: int, pidfd: int | None, log: LogSink | None) -> None:
        pgid = os.getpgid(pid)
        # Never signal our own group through a process that shares it.
        super().__init__(pid, start_time, pgid if pgid != os.getpgrp() else pid)
        self.log = log
        self.uses_pidfd = pidfd is not None
        self._detached = threading.Event()
        self._watch: Watch | None = None
        if pidfd is None:
            name = f"adopted-{pid}"
            threading.Thread(target=self._poll_proc, name=name, daemon=True).start()
        else:
            self._watch = EXITS.add(pidfd, lambda: self._finish(None))

    def detach(self) -> None:
        self._detached.set()
        if self._watch is not None:  # closes the pidfd: an actor restart leaves nothing behind
            EXITS.cancel(self._watch)

    def _poll_proc(self) -> None:
        while is_same_process(self.pid, self.start_time):
            if self._detached.wait(POLL_INTERVAL):
                return
        self._finish(None)

    def tail(self, count: int) -> list[str]:
        """The last ``count`` lines of its log (empty without a log: its output is not ours)."""
        return [] if self.log is None else read_log_tail(self.log.path, count)


def adopt(path: Path, log: LogSink | None = None, *, pidfd: bool = True) -> AdoptedProcess | None:
    """A handle on the process recorded in the pid file ``path`` if it is still alive and is
    the same process (start time matches); otherwise None. ``pidfd=False`` forces /proc
    polling. Raises PidFileError for a pid file that cannot be read."""
    record = read_pidfile(path)
    if record is None:
        return None
    try:
        fd = open_pidfd(record.pid) if pidfd else None
    except ProcessLookupError:
        return None
    # Checked after opening the pidfd: from then on the pid cannot name another process.
    if not is_same_process(record.pid, record.start_time):
        if fd is not None:
            os.close(fd)
        return None
    try:
        return AdoptedProcess(record.pid, record.start_time, fd, log)
    except ProcessLookupError:  # exited between the check and getpgid
        if fd is not None:
            os.close(fd)
        return None
