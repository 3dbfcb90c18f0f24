"""Errors of the improvement engine: the ``ImproveError`` subtree of ``GaiaError``, drawn with
the whole tree in ``gaia_actors.errors``."""

from __future__ import annotations

from collections.abc import Sequence

from gaia_actors.errors import GaiaError


class ImproveError(GaiaError):
    """Root of the improvement engine's errors."""


class CommandError(ImproveError):
    """A command could not be started at all (missing executable, bad working directory)."""

    def __init__(self, argv: Sequence[str], cwd: str, reason: str) -> None:
        self.argv = tuple(argv)
        self.cwd = cwd
        super().__init__(f"cannot run {' '.join(argv)!r} in {cwd}: {reason}")


class BenchmarkError(ImproveError):
    """The benchmark command failed, timed out or printed no ops/sec figure."""

    def __init__(self, argv: Sequence[str], problem: str, output_tail: str = "") -> None:
        self.argv = tuple(argv)
        self.problem = problem
        self.output_tail = output_tail
        super().__init__(f"benchmark {' '.join(argv)!r}: {problem}")


class PatchError(ImproveError):
    """A patch could not be produced or applied."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class PatchConflict(PatchError):
    """The file in the target tree is not the pre-image the patch was made from."""

    def __init__(self, path: str, expected: str | None, actual: str | None) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            path,
            f"pre-image mismatch (expected sha256 {expected or 'absent'}, "
            f"found {actual or 'absent'}); nothing was written",
        )


class PatchApplyError(PatchError):
    """Writing the patch failed part way; every file already touched was restored."""
