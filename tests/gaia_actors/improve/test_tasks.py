"""Ranked tasks: grouping, scattered findings, scoring inputs, effort, git churn."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gaia_actors.improve.findings import Finding, Severity
from gaia_actors.improve.graph import FanIn
from gaia_actors.improve.tasks import Effort, build_tasks, git_churn, parse_numstat
from tests.gaia_actors.improve.conftest import write


def finding(kind: str, file: str, line: int, severity: Severity, priority: int) -> Finding:
    return Finding(kind, file, line, f"{kind} at {line}", severity, priority, "test")


def test_findings_group_by_file_and_type_and_rank_by_severity() -> None:
    tasks = build_tasks(
        [
            finding("fixme", "a.py", 1, Severity.HIGH, 7),
            finding("fixme", "a.py", 9, Severity.HIGH, 7),
            finding("panic", "b.go", 3, Severity.CRITICAL, 9),
            finding("long_function", "a.py", 20, Severity.LOW, 3),
        ]
    )
    assert [(t.type, t.files, len(t.findings)) for t in tasks] == [
        ("panic", ("b.go",), 1),
        ("fixme", ("a.py",), 2),
        ("long_function", ("a.py",), 1),
    ]
    assert tasks[0].score == 72.0  # 8 * 9
    assert tasks[1].score == 35.0  # 4 * 7 + 0.25 * 4 * 7
    assert tasks[1].title == "2 FIXME findings in a.py"


def test_scattered_single_findings_become_one_task_per_type() -> None:
    findings = [finding("todo", f"m{i}.py", 1, Severity.MEDIUM, 5) for i in range(4)]
    findings += [finding("todo", "big.py", line, Severity.MEDIUM, 5) for line in (1, 2)]
    tasks = build_tasks(findings, scatter_min_files=3)
    titles = sorted(t.title for t in tasks)
    assert titles == ["2 TODO findings in big.py", "4 scattered TODO findings in 4 files"]
    assert not any(t.files == ("m0.py",) for t in tasks)


def test_fan_in_and_churn_raise_the_score_of_the_same_finding() -> None:
    plain = build_tasks([finding("todo", "a.py", 1, Severity.MEDIUM, 5)])[0]
    important = build_tasks(
        [finding("todo", "a.py", 1, Severity.MEDIUM, 5)],
        fan_in={"a.py": FanIn(direct=3, transitive=15)},
        churn={"a.py": 255},
    )[0]
    assert plain.score == 10.0
    assert important.score == pytest.approx(10.0 * 2.0 * 2.0)
    assert "15 dependants" in important.rationale
    assert "255 lines changed" in important.rationale


def test_effort_is_estimated_from_the_finding_types() -> None:
    small = build_tasks([finding("debugger", "a.py", 1, Severity.HIGH, 8)])[0]
    large = build_tasks([finding("long_function", "a.py", i, Severity.LOW, 3) for i in range(3)])[0]
    assert (small.effort, small.minutes) == (Effort.SMALL, 2)
    assert (large.effort, large.minutes) == (Effort.LARGE, 135)


def test_task_ids_are_stable_across_runs() -> None:
    first = build_tasks([finding("todo", "a.py", 1, Severity.MEDIUM, 5)])[0]
    second = build_tasks([finding("todo", "a.py", 40, Severity.MEDIUM, 5)])[0]
    assert first.id == second.id


def test_numstat_parsing_handles_binary_files_and_renames() -> None:
    text = (
        "3\t1\ta.py\n-\t-\tlogo.png\n2\t2\tpkg/{old => new}/m.py\n"
        "1\t0\tx.py => y.py\n\n5\t0\ta.py\n"
    )
    assert parse_numstat(text) == {"a.py": 9, "logo.png": 0, "pkg/new/m.py": 4, "y.py": 1}


def git(cwd: Path, *args: str) -> None:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com", "HOME": str(cwd)}
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


def test_churn_from_a_real_repository_relative_to_the_target(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    write(tmp_path, "target/a.py", "1\n2\n")
    write(tmp_path, "other.py", "x\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "one")
    write(tmp_path, "target/a.py", "1\n3\n4\n")
    git(tmp_path, "commit", "-qam", "two")
    assert git_churn(tmp_path / "target") == {"a.py": 2 + 3}
    assert git_churn(tmp_path / "target", commits=1) == {"a.py": 3}


def test_churn_outside_a_repository_is_empty(tmp_path: Path) -> None:
    write(tmp_path, "a.py", "x\n")
    assert git_churn(tmp_path) == {}
