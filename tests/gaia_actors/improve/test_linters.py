"""Configured linters: a real ruff run, a missing tool skipped, go vet output parsed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gaia_actors.improve.findings import Severity
from gaia_actors.improve.linters import (
    DEFAULT_LINTERS,
    LinterSpec,
    LinterStatus,
    parse_go_vet,
    ruff_severity,
    run_linters,
)
from tests.gaia_actors.improve.conftest import RUFF, snapshot, write


@pytest.mark.skipif(not RUFF.exists(), reason="ruff is not installed beside the interpreter")
def test_real_ruff_run_becomes_lint_findings(tmp_path: Path) -> None:
    write(tmp_path, "ruff.toml", 'lint.select = ["F", "E9"]\n')
    write(tmp_path, "pkg/a.py", "import os\n\nprint(undefined_name)\n")
    write(tmp_path, "broken.py", "x = (\n")
    before = snapshot(tmp_path)
    spec = LinterSpec(
        "ruff",
        (str(RUFF), "check", "--output-format=json", "--no-cache", "--exit-zero", "."),
        "ruff-json",
    )
    result = run_linters(tmp_path, [spec], timeout=60)
    [run] = result.runs
    assert run.status is LinterStatus.RAN
    found = sorted((f.file, f.line, f.text.split()[0], f.severity) for f in result.findings)
    assert found == [
        ("broken.py", 2, "invalid-syntax", Severity.HIGH),
        ("pkg/a.py", 1, "F401", Severity.LOW),
        ("pkg/a.py", 3, "F821", Severity.HIGH),
    ]
    assert all(f.type == "lint" and f.detector == "ruff" for f in result.findings)
    assert snapshot(tmp_path) == before  # --no-cache: no .ruff_cache in the target


def test_missing_linters_are_skipped_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither ruff nor go on this PATH
    result = run_linters(tmp_path, DEFAULT_LINTERS, timeout=10)
    assert [(run.name, run.status) for run in result.runs] == [
        ("ruff", LinterStatus.SKIPPED),
        ("go vet", LinterStatus.SKIPPED),
    ]
    assert "go not found" in result.runs[1].reason
    assert result.findings == ()


def test_linter_that_crashes_is_reported_failed(tmp_path: Path) -> None:
    spec = LinterSpec("bad", (sys.executable, "-c", "raise SystemExit(2)"), "ruff-json")
    [run] = run_linters(tmp_path, [spec], timeout=10).runs
    assert run.status is LinterStatus.FAILED
    assert "exit code 2" in run.reason


def test_unreadable_linter_output_is_reported_failed(tmp_path: Path) -> None:
    spec = LinterSpec("garbled", (sys.executable, "-c", "print('not json')"), "ruff-json")
    [run] = run_linters(tmp_path, [spec], timeout=10).runs
    assert run.status is LinterStatus.FAILED
    assert "unreadable output" in run.reason


@pytest.mark.parametrize(
    ("code", "severity"),
    [
        ("E999", Severity.HIGH),
        ("F821", Severity.HIGH),
        ("invalid-syntax", Severity.HIGH),
        (None, Severity.HIGH),
        ("F401", Severity.LOW),
        ("E501", Severity.LOW),
    ],
)
def test_ruff_severity_by_rule_prefix(code: str | None, severity: Severity) -> None:
    assert ruff_severity(code)[0] is severity


def test_go_vet_output_is_parsed(tmp_path: Path) -> None:
    stderr = (
        "# example.com/m/calc\n"
        "./calc/calc.go:12:2: fmt.Printf format %d has arg s of wrong type string\n"
        "vet: ./main.go:3:1: unreachable code\n"
        "some other line\n"
    )
    findings = parse_go_vet("", stderr, tmp_path)
    assert [(f.file, f.line, f.text) for f in findings] == [
        ("calc/calc.go", 12, "vet fmt.Printf format %d has arg s of wrong type string"),
        ("main.go", 3, "vet unreachable code"),
    ]
