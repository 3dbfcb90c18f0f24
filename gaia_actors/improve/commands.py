"""Run one command to completion: own process group, a deadline, stdout and stderr kept apart.

``gaia_actors.process.run`` merges the two streams into a bounded tail, which suits stage logs;
the analysis needs a linter's whole stdout intact (ruff's JSON) and its stderr separately, so
this small runner keeps both. On timeout the whole group (grandchildren included) is sent
SIGTERM, then SIGKILL after a grace period (supervisord ``stopasgroup``/``killasgroup``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gaia_actors.improve.errors import CommandError

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL of a timed-out group
TAIL_CHARS = 4000


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

    @property
    def ok(self) -> bool:
        """Exited 0 within its deadline."""
        return self.returncode == 0 and not self.timed_out

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
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        out, err = _kill_group(proc)
    return CommandResult(
        argv=tuple(argv),
        cwd=str(cwd),
        returncode=proc.returncode,
        stdout=out.decode("utf-8", "replace"),
        stderr=err.decode("utf-8", "replace"),
        seconds=time.monotonic() - started,
        timed_out=timed_out,
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
