"""Fixers in a scratch copy, kept only as a verified patch."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gaia_actors.improve.fixes import FixerSpec, FixStatus, run_fixers
from gaia_actors.improve.patches import apply_patch
from tests.gaia_actors.improve.conftest import FAST_PYTEST_ENV, RUFF, snapshot, write

TESTS = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


def python_fixer(name: str, code: str) -> FixerSpec:
    return FixerSpec(name, (sys.executable, "-c", code))


BREAK_ADD = python_fixer(
    "breaker",
    "import pathlib; p = pathlib.Path('mod.py'); "
    "p.write_text(p.read_text().replace('a + b', 'a - b'))",
)
RENAME_LOCAL = python_fixer(
    "renamer",
    "import pathlib; p = pathlib.Path('mod.py'); "
    "p.write_text(p.read_text().replace('doubled', 'twice'))",
)


@pytest.fixture
def passing(project: Path) -> Path:
    """The shared project with its failing test removed."""
    text = (project / "test_mod.py").read_text()
    write(project, "test_mod.py", text.split("def test_add_wrong")[0])
    return project


def test_a_fixer_that_breaks_the_tests_is_rolled_back_and_the_tree_untouched(passing: Path) -> None:
    before = snapshot(passing)
    outcome = run_fixers(passing, [BREAK_ADD], TESTS, timeout=60, test_env=FAST_PYTEST_ENV)
    assert outcome.status is FixStatus.TESTS_FAILED
    assert outcome.patch is None
    assert outcome.changed_files == ("mod.py",)
    assert outcome.tests is not None
    assert "assert -1 == 3" in outcome.tests.stdout
    assert snapshot(passing) == before


def test_a_safe_fix_gives_a_verified_patch_and_leaves_the_tree_alone(passing: Path) -> None:
    before = snapshot(passing)
    outcome = run_fixers(passing, [RENAME_LOCAL], TESTS, timeout=60, test_env=FAST_PYTEST_ENV)
    assert outcome.status is FixStatus.VERIFIED
    assert outcome.patch is not None
    assert outcome.patch.files == ("mod.py",)
    assert (
        "-    doubled = flag * 2\n-    return doubled\n+    twice = flag * 2\n"
        in outcome.patch.diff
    )
    assert snapshot(passing) == before  # only apply_patch writes to the target


def test_apply_patch_applies_exactly_the_verified_patch(passing: Path) -> None:
    outcome = run_fixers(passing, [RENAME_LOCAL], TESTS, timeout=60, test_env=FAST_PYTEST_ENV)
    assert outcome.patch is not None
    expected = (passing / "mod.py").read_text().replace("doubled", "twice")
    tests_before = (passing / "test_mod.py").read_bytes()
    assert apply_patch(passing, outcome.patch) == ("mod.py",)
    assert (passing / "mod.py").read_text() == expected
    assert (passing / "test_mod.py").read_bytes() == tests_before


@pytest.mark.skipif(not RUFF.exists(), reason="ruff is not installed beside the interpreter")
def test_real_ruff_format_fixer(passing: Path) -> None:
    write(passing, "ugly.py", "x=[1,2 ,3]\ndef f( a ):\n  return a\n")
    fixer = FixerSpec("ruff format", (str(RUFF), "format", "--no-cache", "."))
    outcome = run_fixers(passing, [fixer], TESTS, timeout=60, test_env=FAST_PYTEST_ENV)
    assert outcome.status is FixStatus.VERIFIED
    assert outcome.patch is not None
    assert "ugly.py" in outcome.patch.files
    apply_patch(passing, outcome.patch)
    assert (passing / "ugly.py").read_text() == "x = [1, 2, 3]\n\n\ndef f(a):\n    return a\n"


def test_missing_fixers_and_no_op_fixers(passing: Path) -> None:
    missing = FixerSpec("gofmt", ("no-such-fixer-xyz", "-w", "."))
    outcome = run_fixers(passing, [missing], TESTS, timeout=60)
    assert outcome.status is FixStatus.NO_FIXERS
    assert outcome.fixers[0].status == "skipped"
    noop = python_fixer("noop", "pass")
    assert run_fixers(passing, [noop], TESTS, timeout=60).status is FixStatus.NO_CHANGES


def test_a_crashing_fixer_stops_the_run(passing: Path) -> None:
    crash = python_fixer("crash", "raise SystemExit(4)")
    outcome = run_fixers(passing, [crash, RENAME_LOCAL], TESTS, timeout=60)
    assert outcome.status is FixStatus.FIXER_FAILED
    assert [run.status for run in outcome.fixers] == ["failed"]
    assert "exit code 4" in outcome.reason


def test_the_scratch_copy_honours_exclusions(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "secret/\n")
    write(tmp_path, "secret/data.py", "x = 1\n")
    write(tmp_path, "keep.py", "x = 1\n")
    write(
        tmp_path,
        "test_ok.py",
        "import os\n\ndef test_copy():\n    assert not os.path.exists('secret')\n",
    )
    outcome = run_fixers(
        tmp_path,
        [python_fixer("touch", "open('keep.py', 'a').write('y = 2\\n')")],
        TESTS,
        timeout=60,
        test_env=FAST_PYTEST_ENV,
    )
    assert outcome.status is FixStatus.VERIFIED
