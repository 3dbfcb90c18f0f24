"""Running a command to completion with a timeout or a cancel event: the whole group is killed
at the end, and the result carries the exit, the duration and the output."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from gaia_actors.process.errors import StopError
from gaia_actors.process.handles import KILL_TIMEOUT, Child
from gaia_actors.process.output import DEFAULT_TAIL_CHARS
from gaia_actors.process.spawning import spawn_captured, spawn_to_memory
from supervisors.records import record

_CANCEL_CHECK = 0.02  # run(): how often a cancel Event is looked at


@record
class RunResult:
    """The outcome of :func:`run`. ``exit_code`` is negative for a signal (``-9`` when killed)."""

    exit_code: int
    duration: float
    timed_out: bool
    cancelled: bool
    output_tail: str
    pid: int
    stdout: str = ""  # with run(capture=True): the whole stdout, and stderr apart
    stderr: str = ""

    @property
    def ok(self) -> bool:
        """Exited 0 on its own."""
        return self.exit_code == 0 and not self.timed_out and not self.cancelled


def no_bytecode_in_tree(env: Mapping[str, str]) -> dict[str, str]:
    """What a Python child's environment needs so that it writes no bytecode into the tree it
    runs in (an immutable release, a target's checkout): nothing when ``env`` or this
    process's environment names a pycache prefix (``PYTHONPYCACHEPREFIX``), which already
    sends every cache file elsewhere and lets the next run read them; else
    ``PYTHONDONTWRITEBYTECODE``, and every run compiles again what it imports from the tree.
    """
    if env.get("PYTHONPYCACHEPREFIX", os.environ.get("PYTHONPYCACHEPREFIX")):
        return {}
    return {"PYTHONDONTWRITEBYTECODE": "1"}


def run(
    argv: Sequence[str],
    cwd: Path | str,
    env: Mapping[str, str] | None = None,
    *,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
    on_line: Callable[[str], None] | None = None,
    output_limit: int = DEFAULT_TAIL_CHARS,
    capture: bool = False,
    grace: float = 0.0,
    input: bytes | None = None,
) -> RunResult:
    """Run a stage, test or tool command to completion.

    A ``timeout`` (seconds) or a set ``cancel`` event SIGKILLs the whole process group,
    grandchildren included (after a SIGTERM and ``grace`` seconds, if ``grace`` is given);
    so does the command's own exit (nothing it started outlives it). With ``capture``,
    stdout and stderr are kept whole and apart in ``RunResult.stdout``/``stderr`` (lines
    are then neither delivered nor kept in ``output_tail``).
    Each output line goes to ``on_line`` as it arrives (from a reader thread); if ``on_line``
    raises, it is not called again and the exception is re-raised here once the command is
    over. ``output_tail`` keeps the last ``output_limit`` characters. A child process that
    buffers its stdout (Python without ``-u``) delivers its lines late: that is its choice.
    ``input`` is the command's stdin (else /dev/null).
    """
    started = time.monotonic()
    with _stdin(input) as input_fd:
        if capture:
            child = spawn_captured(argv, cwd, env, input_fd)
        else:
            child = spawn_to_memory(argv, cwd, env, output_limit, on_line, input_fd=input_fd)
    timed_out = cancelled = False
    try:
        timed_out, cancelled = _await_exit(child, started, timeout, cancel)
    finally:
        if not child.exited:
            _end_group(child, grace)
    duration = time.monotonic() - started
    tail = "" if capture else "\n".join(child.tail(sys.maxsize))
    if (error := child._output_error()) is not None:
        raise error
    assert child.exit_code is not None
    stdout, stderr = child.captured()
    return RunResult(
        child.exit_code, duration, timed_out, cancelled, tail, child.pid, stdout, stderr
    )


@contextlib.contextmanager
def _stdin(data: bytes | None) -> Iterator[int | None]:
    """A descriptor to give a child as stdin holding ``data``: an unlinked file, not a pipe,
    so a command that never reads it cannot block a writer."""
    if data is None:
        yield None
        return
    with tempfile.TemporaryFile() as file:
        file.write(data)
        file.flush()
        file.seek(0)
        yield file.fileno()


def _end_group(child: Child, grace: float) -> None:
    """SIGKILL the group, after a SIGTERM and ``grace`` seconds if there is a grace period."""
    if grace > 0:
        child.stop(grace)
        return
    child.kill()
    if not child.wait(KILL_TIMEOUT):
        raise StopError(child.pid, KILL_TIMEOUT)


def _await_exit(
    child: Child, started: float, timeout: float | None, cancel: threading.Event | None
) -> tuple[bool, bool]:
    """Wait for the exit, the deadline or the cancel event; returns (timed_out, cancelled)."""
    deadline = None if timeout is None else started + timeout
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return True, False
        if cancel is not None:
            # An Event cannot be waited on together with the process: look at it every 20 ms.
            remaining = _CANCEL_CHECK if remaining is None else min(remaining, _CANCEL_CHECK)
        if child.wait(remaining):
            return False, False
        if cancel is not None and cancel.is_set():
            return False, True
