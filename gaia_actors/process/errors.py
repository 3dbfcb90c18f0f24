"""The errors of child processes: a spawn that failed, a group that would not die, a bad pid
file. Drawn in the tree of ``gaia_actors.errors``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gaia_actors.errors import GaiaError


class ProcessError(GaiaError):
    """A child process could not be run, stopped or found again."""


class SpawnError(ProcessError):
    """The command could not be started."""

    def __init__(self, argv: Sequence[str], cwd: Path, reason: str) -> None:
        self.argv = tuple(argv)
        self.cwd = cwd
        super().__init__(f"cannot start {list(argv)!r} in {cwd}: {reason}")


class StopError(ProcessError):
    """The process group did not disappear after SIGKILL (stuck in the kernel?)."""

    def __init__(self, pid: int, waited: float) -> None:
        self.pid = pid
        super().__init__(f"process {pid} still running {waited:.1f}s after SIGKILL")


class PidFileError(ProcessError):
    """A pid file exists but does not hold a pid and a start time."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        super().__init__(f"unreadable pid file {path}: {reason}")
