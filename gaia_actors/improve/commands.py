"""Run one command to completion: own process group, a deadline, stdout and stderr kept apart.

``gaia_actors.process.run`` merges the two streams into a bounded tail, which suits stage logs;
the analysis needs a linter's whole stdout intact (ruff's JSON) and its stderr separately, so
this small runner keeps both. On timeout the whole group (grandchildren included) is sent
SIGTERM, then SIGKILL after a grace period (supervisord ``stopasgroup``/``killasgroup``).

A cycle that is cancelled (its engine stopped, crashed or was told to) must not leave a test
suite running to its timeout: inside ``cancelled_by(event)`` every command the thread runs is
watched, and its group is killed the same way as soon as ``event`` is set.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gaia_actors.improve.errors import CommandError

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL of a timed-out group
TAIL_CHARS = 4000
CANCEL_POLL = 0.1  # seconds between looks at the cancel event while a command runs
_CANCEL: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "improve_cancel", default=None
)


@contextlib.contextmanager
def cancelled_by(event: threading.Event) -> Iterator[None]:
    """Commands run by this thread inside the block are killed once ``event`` is set."""
    token = _CANCEL.set(event)
    try:
        yield
    finally:
        _CANCEL.reset(token)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """How a command ended and what it printed."""

    argv: tuple[str, ...]
    cwd: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool
    cancelled: bool = False  # killed because its cycle was cancelled

    @property
    def ok(self) -> bool:
        """Exited 0 within its deadline."""
        return self.returncode == 0 and not self.timed_out and not self.cancelled

    def tail(self, chars: int = TAIL_CHARS) -> str:
        """The end of stdout and stderr together, for reports."""
        text = (self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr).strip()
        return text[-chars:]


def which(executable: str) -> str | None:
    """The path of ``executable`` if it can be run (an absolute path is checked as is)."""
    if os.sep in executable:
        return executable if os.access(executable, os.X_OK) and Path(executable).is_file() else None
    return shutil.which(executable)


def run_command(
    argv: Sequence[str],
    cwd: str | Path,
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> CommandResult:
    """Run ``argv`` in ``cwd``; kill its process group if it outlives ``timeout`` seconds.

    ``env`` entries are added to the daemon's environment. Raises ``CommandError`` only when the
    command cannot start; a non-zero exit or a timeout is a normal result.
    """
    full_env = {**os.environ, **env} if env else None
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise CommandError(argv, str(cwd), exc.strerror or str(exc)) from exc
    cancel = _CANCEL.get()
    deadline = started + timeout
    timed_out = cancelled = False
    while True:
        remaining = deadline - time.monotonic()
        try:
            # Retrying communicate() after its timeout loses no output (subprocess docs).
            wait = remaining if cancel is None else min(remaining, CANCEL_POLL)
            out, err = proc.communicate(timeout=max(0.0, wait))
            break
        except subprocess.TimeoutExpired:
            timed_out = time.monotonic() >= deadline
            cancelled = cancel is not None and cancel.is_set()
            if timed_out or cancelled:
                out, err = _kill_group(proc)
                break
    return CommandResult(
        argv=tuple(argv),
        cwd=str(cwd),
        returncode=proc.returncode,
        stdout=out.decode("utf-8", "replace"),
        stderr=err.decode("utf-8", "replace"),
        seconds=time.monotonic() - started,
        timed_out=timed_out and not cancelled,
        cancelled=cancelled,
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """SIGTERM the group, SIGKILL it after the grace period; return what was printed."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        return proc.communicate(timeout=KILL_GRACE)
    except subprocess.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGKILL)
    try:
        return proc.communicate(timeout=KILL_GRACE)
    except subprocess.TimeoutExpired:
        # A grandchild that left the group still holds the pipes open: stop reading.
        proc.kill()
        proc.wait()
        return b"", b""


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
        os.killpg(pgid, sig)
