"""Whole cycles on a small real project: findings, tests and coverage, fixes, --apply, history."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gaia_actors.improve import history
from tests.gaia_actors.improve.conftest import RUFF, snapshot, write
from tests.gaia_actors.improve.support import config, improve_tree

MODULE = """\
def add(a,b):
    # TODO: handle overflow
    return a + b


def describe():
    return "TODO is only a word in this string"


def parse(text):
    try:
        return int(text)
    except:
        return None


def unused(flag):
    if flag:
        return 1
    doubled = flag * 2
    return doubled
"""

TESTS = """\
from mod import add, parse


def test_add():
    assert add(1, 2) == 3


def test_parse():
    assert parse("7") == 7


def test_add_wrong():
    assert add(2, 2) == 5
"""

# Removes the to-do comment (a finding gone, so the change is kept) and breaks add().
BREAK_ADD = (
    "import pathlib; p = pathlib.Path('mod.py'); "
    "p.write_text(p.read_text().replace('a + b', 'a - b').replace('# TODO: handle overflow', ''))"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """mod.py (a TODO comment, TODO in a string, a bare except, an untested function, one
    unformatted line) and three tests, one of which fails; pytest.ini makes it a pytest
    project."""
    root = tmp_path / "project"
    write(root, "mod.py", MODULE)
    write(root, "test_mod.py", TESTS)
    write(root, "pytest.ini", "[pytest]\n")
    return root


def fixers(*argvs: list[str]) -> str:
    return f"fixers = {json.dumps(argvs)}\n"  # a JSON array of strings is a TOML one


def found(result: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["type"], f["where"]) for f in result["top_findings"]}


def test_a_cycle_finds_exactly_the_issues_and_reads_pass_rate_and_coverage(
    tmp_path: Path, project: Path
) -> None:
    with improve_tree(config(tmp_path, project, 'linters = ["ruff"]\n' + fixers())) as tree:
        cycle_id = tree.cycle()
        result = history.show(cycle_id)

    # The marker in the comment, not the one in the string; ruff's E722 says what bare_except
    # says and is dropped; no test calls unused(), and mod.py as a whole is below 50%.
    assert found(result) == {
        ("todo", "mod.py:2"),
        ("bare_except", "mod.py:13"),
        ("coverage_gap", "mod.py:17"),
        ("coverage_gap", "mod.py:1"),
    }
    tests = result["tests"]
    assert (tests["kind"], tests["status"]) == ("pytest", "failed")
    assert (tests["tests"], tests["passed"], tests["failed"]) == (3, 2, 1)
    assert result["pass_rate"] == pytest.approx(2 / 3)
    assert tests["failures"][0]["test"] == "test_mod.test_add_wrong"
    assert 50 < result["coverage"] < 90, result["coverage"]  # mod.py's and the tests' lines
    assert result["status"] == "succeeded"
    # No ruff, black or isort configuration in the project, none configured for it: no fixes.
    assert result["fixes"]["status"] == "skipped"
    assert result["fixes"]["reason"].startswith("the target has chosen no formatter or fixer")
    assert result["phases"].keys() == {
        "analyse",
        "detect",
        "test",
        "generate_tasks",
        "execute_improvements",
        "verify",
        "persist",
    }


def formatted(tmp_path: Path, text: str) -> str:
    """What ruff format makes of ``text`` (run on a copy)."""
    copy = tmp_path / "expected" / "mod.py"
    copy.parent.mkdir()
    copy.write_text(text, encoding="utf-8")
    subprocess.run([str(RUFF), "format", "--no-cache", str(copy)], check=True, capture_output=True)
    return copy.read_text(encoding="utf-8")


def test_a_fix_that_keeps_the_tests_passing_is_verified_and_apply_writes_exactly_it(
    tmp_path: Path, project: Path
) -> None:
    before = snapshot(project)
    settings = config(tmp_path, project, "linters = []\n" + fixers(["ruff", "format", "."]))
    with improve_tree(settings) as tree:
        report_only = history.show(tree.cycle())
        untouched = snapshot(project)
        applied = history.show(tree.cycle(apply=True))

    assert untouched == before  # without --apply the tree is not written
    # Verified although test_add_wrong fails: it failed before the fix too.
    assert report_only["fixes"]["status"] == "verified"
    assert report_only["fixes"]["files"] == ["mod.py"]
    assert report_only["fixes"]["applied"] is False
    assert "-def add(a,b):\n+def add(a, b):" in report_only["fixes"]["diff"]
    assert applied["fixes"]["applied"] is True
    assert applied["fixes"]["applied_files"] == ["mod.py"]
    assert applied["fixes"]["diff"] == report_only["fixes"]["diff"]
    after = snapshot(project)
    assert {k for k in after if after[k] != before.get(k)} == {"mod.py"}
    assert (project / "mod.py").read_text() == formatted(tmp_path, MODULE)


def test_a_fix_that_breaks_the_tests_is_rolled_back_and_the_tree_is_byte_identical(
    tmp_path: Path, project: Path
) -> None:
    before = snapshot(project)
    breaker = fixers(["{python}", "-c", BREAK_ADD])
    with improve_tree(config(tmp_path, project, "linters = []\n" + breaker)) as tree:
        result = history.show(tree.cycle(apply=True))
        rolled_back = tree.events("improve.fix.rolled_back")

    fixes = result["fixes"]
    assert fixes["status"] == "tests_failed"
    assert fixes["files"] == ["mod.py"]
    assert fixes["applied"] is False
    assert "test_mod.test_add" in fixes["tests_tail"]  # passed before, fails with the fix
    assert len(rolled_back) == 1
    assert snapshot(project) == before


def test_history_shows_fixed_and_new_findings_across_two_cycles(
    tmp_path: Path, project: Path
) -> None:
    with improve_tree(config(tmp_path, project, "linters = []\n" + fixers())) as tree:
        first = tree.cycle()
        # Between the cycles: the to-do comment goes, a fix-me one comes, and everything moves
        # down two lines (the bare except is the same finding on another line).
        text = "import os\n\n" + MODULE.replace("    # TODO: handle overflow\n", "")
        write(project, "mod.py", text.replace("def describe():", "def describe():  # FIXME"))
        second = tree.cycle()
        trend = history.trend(str(project))

    assert [c["cycle_id"] for c in trend["cycles"]] == [first, second]
    assert (trend["cycles"][1]["new"], trend["cycles"][1]["fixed"]) == (1, 1)
    latest = trend["latest"]
    assert (latest["cycle_id"], latest["previous_cycle"]) == (second, first)
    assert [(f["type"], f["where"]) for f in latest["new_examples"]] == [("fixme", "mod.py:7")]
    assert [(f["type"], f["where"]) for f in latest["fixed_examples"]] == [("todo", "mod.py:2")]
    assert latest["unchanged"] >= 1  # the bare except, now on line 14


def test_another_target_gets_no_configured_commands(tmp_path: Path, project: Path) -> None:
    other = tmp_path / "other"
    write(other, "lib.py", "# XXX: look at this\n")
    extra = "linters = []\n" + fixers(["ruff", "format", "."])
    extra += f"benchmark_command = {json.dumps([sys.executable, '-c', 'print(1)'])}\n"
    with improve_tree(config(tmp_path, project, extra)) as tree:
        result = history.show(tree.cycle(str(other)))

    assert found(result) == {("xxx", "lib.py:1")}
    assert result["tests"]["kind"] == "none"
    assert result["fixes"]["status"] == "skipped"
    # The configured target's ruff format is not this target's choice.
    assert result["fixes"]["reason"].startswith("the target has chosen no formatter or fixer")
    assert result["verify"]["reason"] == "the benchmark belongs to the configured target"


def test_coverage_omit_keeps_gaps_out_of_the_findings(tmp_path: Path, project: Path) -> None:
    extra = 'linters = []\ncoverage_omit = ["mod.py"]\n' + fixers()
    with improve_tree(config(tmp_path, project, extra)) as tree:
        result = history.show(tree.cycle())

    assert found(result) == {("todo", "mod.py:2"), ("bare_except", "mod.py:13")}
    assert result["tests"]["coverage_gaps"] == 0
    assert result["coverage"] is not None  # still measured, only not reported as gaps


def test_a_target_named_in_the_config_runs_its_own_test_command_and_fixers(
    tmp_path: Path, project: Path
) -> None:
    other = tmp_path / "other"
    write(other, "calc.py", "def double(x):\n    return x*2\n")
    write(other, "check.py", "import calc\nassert calc.double(2) == 4\nprint('checked')\n")
    table = (
        f'[improve.targets.other]\npath = "{other}"\ntests = "command"\n'
        f'test_command = ["{{python}}", "check.py"]\nfixers = [["ruff", "format", "."]]\n'
    )
    with improve_tree(config(tmp_path, project, "linters = []\n" + table)) as tree:
        result = history.show(tree.cycle(str(other)))

    tests = result["tests"]
    assert (tests["kind"], tests["why"], tests["status"]) == ("command", "configured", "passed")
    fixes = result["fixes"]
    assert [(t["name"], t["evidence"]) for t in fixes["tools"]] == [("ruff format", "configured")]
    assert (fixes["status"], fixes["issues_fixed"]) == ("verified", len(fixes["files"]))
    assert "calc.py" in fixes["files"]
    assert "+    return x * 2" in fixes["diff"]
