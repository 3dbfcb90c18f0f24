"""A process we can signal and wait for: its exit seen by the shared exit watcher, signals
sent to its whole group, a stop that escalates from SIGTERM to SIGKILL. `Child` is one we
started."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from gaia_actors.process.errors import ProcessError, StopError
from gaia_actors.process.exits import EXITS, open_pidfd
from gaia_actors.process.output import DRAIN_TIMEOUT, CapturedOutput, FileOutput, MemoryOutput
from gaia_actors.process.proc import proc_start_time

KILL_TIMEOUT = 5.0  # seconds a SIGKILLed group may take to disappear before StopError


Code = TypeVar("Code")


def signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


class Handle(Generic[Code]):
    """What a child and an adopted process share: exit event, callbacks, group signals."""

    def __init__(self, pid: int, start_time: int, pgid: int) -> None:
        self.pid = pid
        self.start_time = start_time
        self.pgid = pgid
        self._lock = threading.Lock()
        self._exited = threading.Event()
        self._result: tuple[Code] | None = None
        self._callbacks: list[Callable[[Code], None]] = []

    @property
    def exited(self) -> bool:
        return self._exited.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the process has exited (True) or ``timeout`` passed (False)."""
        return self._exited.wait(timeout)

    def watch(self, on_exit: Callable[[Code], None]) -> None:
        """Call ``on_exit(exit_code)`` from the watcher thread the moment the process exits
        (at once, in this thread, if it already has). Callbacks must be quick and not raise."""
        with self._lock:
            if self._result is None:
                self._callbacks.append(on_exit)
                return
            code = self._result[0]
        on_exit(code)

    def send_signal(self, sig: int) -> None:
        """Signal the whole process group (a no-op once the process has exited)."""
        if not self._exited.is_set():
            signal_group(self.pgid, sig)

    def kill(self) -> None:
        """SIGKILL the process group."""
        self.send_signal(signal.SIGKILL)

    def stop(self, grace: float) -> Code:
        """SIGTERM the group, SIGKILL it after ``grace`` seconds; return the exit code."""
        if not self._exited.is_set():
            self.send_signal(signal.SIGTERM)
            if not self._exited.wait(grace):
                self.kill()
                if not self._exited.wait(KILL_TIMEOUT):
                    raise StopError(self.pid, grace + KILL_TIMEOUT)
        assert self._result is not None  # set before _exited
        return self._result[0]

    def detach(self) -> None:
        """Stop watching: the process runs on and its exit callbacks are never called (the
        next environment generation adopts it). A child we started keeps the thread that
        reaps it: nothing else would, and it would linger as a zombie."""

    def _finish(self, code: Code) -> None:
        # The leader is gone: kill what is left of its group (systemd KillMode=control-group).
        # The pgid cannot be reused while any member lives; once it is empty the kill is a no-op.
        signal_group(self.pgid, signal.SIGKILL)
        with self._lock:
            self._result = (code,)
            self._exited.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(code)


class Child(Handle[int]):
    """A process we started (see :func:`spawn`). Exit codes follow ``Popen.returncode``:
    negative for a signal."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        output: MemoryOutput | FileOutput | CapturedOutput,
    ) -> None:
        start_time = proc_start_time(popen.pid)
        if start_time is None:  # not reaped yet, so /proc/<pid> must exist
            raise ProcessError(f"process {popen.pid} has no /proc entry")
        super().__init__(popen.pid, start_time, popen.pid)
        self.started = time.monotonic()
        self._popen = popen
        self._output = output
        self._drained = threading.Event()
        pidfd = open_pidfd(self.pid)  # a zombie until reaped: the pid is still ours
        if pidfd is None:
            threading.Thread(target=self._reap, name=f"reap-{self.pid}", daemon=True).start()
        else:
            EXITS.add(pidfd, self._exited_now)

    def _reap(self) -> None:
        self._finish(self._popen.wait())
        self._drain()

    def _exited_now(self) -> None:
        # In the shared watcher's thread: reaping a zombie is immediate, draining may wait
        # for a reader, so that waits in a thread of its own that ends with it.
        self._finish(self._popen.wait())
        threading.Thread(target=self._drain, name=f"drain-{self.pid}", daemon=True).start()

    def _drain(self) -> None:
        self._output.drain()
        self._drained.set()

    @property
    def exit_code(self) -> int | None:
        """The exit code, or None while running."""
        return None if self._result is None else self._result[0]

    def tail(self, count: int) -> list[str]:
        """The last ``count`` lines of output (complete once the process has exited)."""
        if self._exited.is_set():
            self._drained.wait(DRAIN_TIMEOUT * 2)
        return self._output.tail(count)

    def _output_error(self) -> Exception | None:
        return self._output.pump.error if isinstance(self._output, MemoryOutput) else None

    def captured(self) -> tuple[str, str]:
        """The whole stdout and stderr of a child started to capture them, else ("", "")."""
        if not isinstance(self._output, CapturedOutput):
            return "", ""
        self._drained.wait()  # drain() gives up on held pipes after DRAIN_TIMEOUT
        return self._output.stdout.text(), self._output.stderr.text()
