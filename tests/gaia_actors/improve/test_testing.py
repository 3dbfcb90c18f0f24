"""Python test runs under coverage on a real tiny project, result parsing, timeouts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gaia_actors.improve.commands import run_command
from gaia_actors.improve.testing import PythonTestOptions, RunStatus, run_python_tests
from gaia_actors.junit import Outcome
from tests.conftest import wait_until
from tests.gaia_actors.improve.conftest import FAST_PYTEST_ENV, snapshot, write


def test_real_project_pass_rate_coverage_and_gaps(project: Path) -> None:
    before = snapshot(project)
    run = run_python_tests(project, timeout=60, options=PythonTestOptions(env=FAST_PYTEST_ENV))
    assert run.status is RunStatus.FAILED
    assert run.junit is not None
    assert (run.junit.tests, run.junit.passed, run.junit.failures) == (3, 2, 1)
    assert run.pass_rate == pytest.approx(2 / 3)
    failed = [c for c in run.junit.cases if c.outcome is Outcome.FAILED]
    assert [c.name for c in failed] == ["test_add_wrong"]
    assert run.coverage is not None
    assert run.coverage.functions_from == "coverage.py"
    module = run.coverage.files["mod.py"]
    functions = {f.name: f.percent for f in module.functions}
    assert functions == {"add": 100.0, "unused": 0.0}
    assert module.percent < 50.0
    gaps = {(g.file, g.scope) for g in run.gaps}
    assert gaps == {("mod.py", ""), ("mod.py", "unused")}  # the test file is left out
    assert run.seconds > 0
    assert snapshot(project) == before  # no .coverage, caches or bytecode left behind


def test_passing_project_reports_passed(project: Path) -> None:
    write(
        project,
        "test_mod.py",
        "from mod import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
    )
    run = run_python_tests(
        project, timeout=60, options=PythonTestOptions(branch=False, env=FAST_PYTEST_ENV)
    )
    assert run.status is RunStatus.PASSED
    assert run.pass_rate == 1.0


def test_collection_error_is_an_error_not_a_failure(tmp_path: Path) -> None:
    write(tmp_path, "test_broken.py", "import no_such_module_here\n\ndef test_x():\n    pass\n")
    run = run_python_tests(
        tmp_path, timeout=60, options=PythonTestOptions(branch=False, env=FAST_PYTEST_ENV)
    )
    assert run.status in (RunStatus.ERROR, RunStatus.FAILED)
    assert run.returncode not in (0, None)
    assert "no_such_module_here" in run.output_tail


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    result = run_command([sys.executable, "-c", script], tmp_path, timeout=1.0)
    assert result.timed_out
    grandchild = int(result.stdout.split()[0])
    wait_until(lambda: not _alive(grandchild), timeout=5)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_test_run_timeout_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "test_slow.py", "import time\n\ndef test_slow():\n    time.sleep(60)\n")
    run = run_python_tests(
        tmp_path, timeout=1, options=PythonTestOptions(branch=False, env=FAST_PYTEST_ENV)
    )
    assert run.status is RunStatus.TIMED_OUT
