"""What one cycle runs, decided once at its start: the target and the settings for it.

The configured target (``[improve] target``) gets every command of ``[improve]``. A target
named in ``[improve.targets.NAME]`` gets what the operator configured there (its tests, test
command, fixers), and nothing else of ``[improve]``'s commands (the build and benchmark belong
to the configured target). Any other target gets what needs no configuration: the analysis, the
linters, its tests as pytest finds them, and the fixers its own configuration chooses.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from gaia_actors.improve.commands import which
from gaia_actors.improve.discover import TestPlan, find_tests
from gaia_actors.improve.files import WalkOptions
from gaia_actors.improve.sources import AnalysisSettings
from gaia_actors.settings import ImproveSettings, expand
from supervisors.records import record


@record
class CyclePlan:
    """One cycle's target and the settings that apply to it."""

    cycle_id: int
    target: Path
    configured: bool  # a configured target: its own commands apply
    apply: bool
    settings: ImproveSettings  # with the target's own table ([improve.targets.NAME]) applied
    python: str = sys.executable
    trigger: str = "manual"  # manual | schedule | commit
    patch_dir: Path | None = None  # where the cycle's patch file is written

    @property
    def analysis_settings(self) -> AnalysisSettings:
        return AnalysisSettings(
            markers=self.settings.markers,
            max_function_lines=self.settings.long_function_lines,
            max_bytes=self.settings.max_file_bytes,
        )

    @property
    def walk_options(self) -> WalkOptions:
        return WalkOptions(
            extra_patterns=self.settings.exclude, max_bytes=self.settings.max_file_bytes
        )

    def command(self, argv: Sequence[str], tmp: Path | None = None) -> tuple[str, ...]:
        """``argv`` with "{python}" (and "{tmp}", a scratch directory) filled in, and a bare
        executable found beside the interpreter when it is not on PATH (a venv's ``ruff``
        while the venv is not active)."""
        values = {"python": self.python, **({"tmp": str(tmp)} if tmp is not None else {})}
        words = [expand(word, values) for word in argv]
        if words and os.sep not in words[0] and which(words[0]) is None:
            beside = Path(self.python).parent / words[0]
            if which(str(beside)) is not None:
                words[0] = str(beside)
        return tuple(words)


def test_kind(plan: CyclePlan, python_files: Iterable[str]) -> TestPlan:
    """What runs this target's tests: as configured, else found as pytest finds them."""
    wanted = plan.settings.tests if plan.configured else "auto"
    if wanted != "auto":
        return TestPlan(wanted, "configured")
    return find_tests(plan.target, python_files)


def settings_for(
    improve: ImproveSettings, target: Path, resolve: Callable[[str], Path]
) -> tuple[ImproveSettings, bool, str]:
    """(the settings, configured?, the name of its table or "") for a cycle on ``target``."""
    if target == resolve(improve.target):
        return improve, True, ""
    for name, table in improve.targets.items():
        if resolve(table.path) == target:
            own = dataclasses.replace(
                improve,
                tests=table.tests,
                pytest_args=table.pytest_args,
                test_command=table.test_command,
                test_env=table.test_env,
                fixers=table.fixers,
                build_command=(),
                benchmark_command=(),
            )
            return own, True, name
    return dataclasses.replace(improve, fixers=()), False, ""
