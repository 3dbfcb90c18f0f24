"""Whole cycles on real third-party projects (pinned sdists from PyPI, see realprojects.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gaia_actors.improve import history
from tests.gaia_actors.improve.conftest import git, snapshot, write
from tests.gaia_actors.improve.realprojects import real_project
from tests.gaia_actors.improve.support import config, improve_tree


def run_cycle(tmp_path: Path, target: Path, extra: str = "", apply: bool = False) -> dict[str, Any]:
    with improve_tree(config(tmp_path, target, 'linters = ["ruff"]\n' + extra)) as tree:
        return history.show(tree.cycle(apply=apply, timeout=120))


def test_idna_tests_are_found_without_any_pytest_configuration(tmp_path: Path) -> None:
    target = real_project("idna", tmp_path)
    before = snapshot(target)

    result = run_cycle(tmp_path, target)

    tests = result["tests"]
    assert tests["kind"] == "pytest"
    assert tests["why"].startswith("test files pytest collects: tests/test_idna.py")
    assert (tests["status"], tests["failed"], tests["errors"]) == ("passed", 0, 0)
    assert tests["passed"] >= 30
    assert result["pass_rate"] == 1.0
    assert result["coverage"] is not None
    assert result["coverage"] > 50
    # idna configures no formatter or fixer: findings and tasks, no reformatting.
    assert result["fixes"]["status"] == "skipped"
    assert result["fixes"]["reason"].startswith("the target has chosen no formatter or fixer")
    assert result["detect"]["findings"] > 0
    assert result["tasks"]["count"] > 0
    assert snapshot(target) == before


def test_cachetools_src_layout_is_tested_with_src_on_the_path(tmp_path: Path) -> None:
    target = real_project("cachetools", tmp_path)

    result = run_cycle(tmp_path, target)

    tests = result["tests"]
    assert tests["kind"] == "pytest"
    assert "src/" in tests["src_layout"]
    assert (tests["status"], tests["failed"], tests["errors"]) == ("passed", 0, 0)
    assert tests["passed"] >= 200
    assert result["coverage"] is not None
    assert result["coverage"] > 80


def test_inflection_with_a_ruff_configuration_gets_its_fix_as_a_branch_commit(
    tmp_path: Path,
) -> None:
    target = real_project("inflection", tmp_path)
    # inflection ships an [isort] section; here it also chooses ruff and its formatter.
    write(target, "ruff.toml", "[lint]\nselect = ['F401']\n\n[format]\nquote-style = 'preserve'\n")
    git(target, "init", "-q", "-b", "main")
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", "inflection 0.5.1 with a ruff configuration")
    head = git(target, "rev-parse", "HEAD")

    result = run_cycle(tmp_path, target, apply=True)

    tests = result["tests"]
    assert (tests["kind"], tests["status"], tests["failed"]) == ("pytest", "passed", 0)
    assert tests["passed"] >= 400
    assert result["coverage"] is not None
    fixes = result["fixes"]
    assert [(t["name"], t["evidence"]) for t in fixes["tools"]] == [
        ("isort", "setup.cfg [isort]"),
        ("ruff", "ruff.toml"),
        ("ruff format", "ruff.toml [format]"),
    ]
    isort = next(f for f in fixes["fixers"] if f["name"] == "isort")
    assert isort["status"] == "skipped"  # chosen, but not installed here: said, not faked
    assert (fixes["status"], fixes["applied"]) == ("verified", True)
    assert fixes["issues_fixed"] == len(fixes["fixed"]) > 0
    assert all(path.endswith(".py") and not path.startswith("docs/") for path in fixes["files"])
    branch = fixes["branch"]
    assert git(target, "rev-parse", "HEAD") == head  # still on main, at the same commit
    assert git(target, "status", "--porcelain") == ""
    assert git(target, "diff", "--name-only", head, branch).split() == fixes["files"]
