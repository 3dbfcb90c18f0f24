"""Whole cycles on real third-party projects (pinned sdists from PyPI, see realprojects.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gaia_actors.improve import history
from tests.gaia_actors.improve.conftest import snapshot
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
