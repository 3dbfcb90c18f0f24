"""Run one command to completion: own process group, a deadline, stdout and stderr kept apart.

A thin layer over :func:`gaia_actors.process.run` with ``capture``: the analysis needs a
linter's whole stdout intact (ruff's JSON) and its stderr separately. On timeout the whole
group (grandchildren included) is sent SIGTERM, then SIGKILL after a grace period
(supervisord ``stopasgroup``/``killasgroup``).

A cycle that is cancelled (its engine stopped, crashed or was told to) must not leave a test
suite running to its timeout: inside ``cancelled_by(event)`` every command the thread runs is
watched, and its group is killed the same way as soon as ``event`` is set.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from gaia_actors import process
from gaia_actors.improve.errors import CommandError
from supervisors.records import record

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL of a timed-out group
TAIL_CHARS = 4000
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


@record
class CommandResult:
    """How a command ended and what it printed."""

    argv: tuple[str, ...]
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
    try:
        result = process.run(
            argv,
            cwd,
            full_env,
            timeout=timeout,
            cancel=_CANCEL.get(),
            capture=True,
            grace=KILL_GRACE,
        )
    except process.SpawnError as exc:
        cause = exc.__cause__
        reason = (cause.strerror or str(cause)) if isinstance(cause, OSError) else str(exc)
        raise CommandError(argv, str(cwd), reason) from exc
    return CommandResult(
        argv=tuple(argv),
        returncode=result.exit_code,
        stdout=result.stdout,
        stderr=result.stderr,
        seconds=result.duration,
        timed_out=result.timed_out,
        cancelled=result.cancelled,
    )
