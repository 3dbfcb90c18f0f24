"""Test runs under coverage on a real tiny project, result parsing, timeouts, benchmarks."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from gaia_actors.improve.commands import run_command
from gaia_actors.improve.errors import BenchmarkError
from gaia_actors.improve.findings import Severity
from gaia_actors.improve.testing import (
    CoverageReport,
    FileCoverage,
    FunctionCoverage,
    PythonTestOptions,
    RunStatus,
    coverage_gaps,
    functions_from_ast,
    parse_coverage_json,
    parse_go_coverprofile,
    parse_go_test_json,
    parse_ops_per_sec,
    run_benchmark,
    run_build,
    run_go_tests,
    run_python_tests,
)
from gaia_actors.junit import Outcome
from tests.conftest import wait_until
from tests.gaia_actors.externals import go
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


def test_per_function_coverage_from_the_ast_when_coverage_has_none() -> None:
    source = textwrap.dedent(
        """\
        def outer():
            x = 1
            def inner():
                return 2
            return x

        class K:
            def m(self):
                a = 1
                return a
        """
    )
    executed = {1, 2, 3, 5, 7, 8}
    missing = {4, 9, 10}
    result = {
        f.name: (f.statements, round(f.percent))
        for f in functions_from_ast(source, executed, missing)
    }
    assert result == {"outer": (3, 100), "outer.inner": (1, 0), "K.m": (2, 0)}


def test_coverage_json_without_functions_falls_back_to_the_ast(tmp_path: Path) -> None:
    write(tmp_path, "m.py", "def f():\n    a = 1\n    return a\n")
    data = {
        "files": {
            "m.py": {
                "executed_lines": [1],
                "missing_lines": [2, 3],
                "summary": {"num_statements": 3, "percent_covered": 33.3},
            },
            "/elsewhere/lib.py": {"executed_lines": [], "missing_lines": [], "summary": {}},
        },
        "totals": {"percent_covered": 33.3},
    }
    report = parse_coverage_json(json.dumps(data), tmp_path)
    assert report.functions_from == "ast"
    assert list(report.files) == ["m.py"]  # files outside the target are dropped
    assert report.files["m.py"].functions == (FunctionCoverage("f", 1, 2, 0.0),)


def test_gap_severity_grows_with_the_distance_below_the_threshold() -> None:
    report = CoverageReport(
        30.0,
        {
            "low.py": FileCoverage("low.py", 10, 10.0),
            "near.py": FileCoverage("near.py", 10, 45.0),
            "fine.py": FileCoverage("fine.py", 10, 80.0),
            "tests/test_x.py": FileCoverage("tests/test_x.py", 10, 0.0),
            "empty.py": FileCoverage("empty.py", 0, 0.0),
        },
        "coverage.py",
    )
    gaps = {g.file: (g.severity, g.priority) for g in coverage_gaps(report, 50.0)}
    assert gaps == {"low.py": (Severity.MEDIUM, 4), "near.py": (Severity.LOW, 2)}


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


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("warming up\nops/sec: 12345.6\n", 12345.6),
        ("OPS_PER_SEC = 1_000\n", 1000.0),
        ("ops/sec: 1,234,567\n", 1234567.0),
        ('{"ops_per_sec": 2.5e3, "runs": 3}\n', 2500.0),
        ("ops/sec: 1\nops/sec: 2\n", 2.0),  # the last figure wins
        ('{"ops_per_sec": true}\n', None),
        ("nothing here\n", None),
        ("BenchmarkAdd-2   \t 2000000\t       250.0 ns/op\nPASS\n", 4e6),  # go test -bench
        ("BenchmarkIdle-2  1  0 ns/op\n", None),
    ],
)
def test_ops_per_sec_formats(output: str, expected: float | None) -> None:
    assert parse_ops_per_sec(output) == expected


def test_run_benchmark_reads_ops_from_a_real_command(tmp_path: Path) -> None:
    result = run_benchmark([sys.executable, "-c", "print('ops/sec: 4200.5')"], tmp_path, timeout=30)
    assert result.ops_per_sec == 4200.5
    with pytest.raises(BenchmarkError, match="no 'ops/sec"):
        run_benchmark([sys.executable, "-c", "print('hi')"], tmp_path, timeout=30)
    with pytest.raises(BenchmarkError, match="exit code 3"):
        run_benchmark([sys.executable, "-c", "raise SystemExit(3)"], tmp_path, timeout=30)


def test_build_is_timed_and_a_missing_tool_is_skipped(tmp_path: Path) -> None:
    built = run_build([sys.executable, "-c", "pass"], tmp_path, timeout=30)
    assert built.status is RunStatus.PASSED
    assert built.seconds > 0
    missing = run_build(["no-such-build-tool-xyz"], tmp_path, timeout=30)
    assert missing.status is RunStatus.SKIPPED


def test_go_tests_are_skipped_cleanly_without_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no go on this PATH, whatever the machine has
    run = run_go_tests(tmp_path, timeout=30)
    assert run.status is RunStatus.SKIPPED
    assert "go not found" in run.reason


GO_EVENTS = "\n".join(
    json.dumps(event)
    for event in [
        {"Action": "start", "Package": "example.com/m/calc"},
        {"Action": "run", "Package": "example.com/m/calc", "Test": "TestAdd"},
        {
            "Action": "output",
            "Package": "example.com/m/calc",
            "Test": "TestAdd",
            "Output": "--- PASS\n",
        },
        {"Action": "pass", "Package": "example.com/m/calc", "Test": "TestAdd", "Elapsed": 0.01},
        {"Action": "fail", "Package": "example.com/m/calc", "Test": "TestSub", "Elapsed": 0},
        {"Action": "skip", "Package": "example.com/m/calc", "Test": "TestMul", "Elapsed": 0},
        {
            "Action": "output",
            "Package": "example.com/m/calc",
            "Output": "coverage: 62.5% of statements\n",
        },
        {"Action": "fail", "Package": "example.com/m/calc", "Elapsed": 0.2},
    ]
)


def test_go_test_json_events_are_parsed() -> None:
    report, packages = parse_go_test_json("# build noise\n" + GO_EVENTS)
    assert [(c.name, c.outcome) for c in report.cases] == [
        ("TestAdd", Outcome.PASSED),
        ("TestSub", Outcome.FAILED),
        ("TestMul", Outcome.SKIPPED),
    ]
    assert report.pass_rate == 0.5
    assert packages == {"example.com/m/calc": 62.5}


def test_go_coverprofile_gives_per_file_coverage() -> None:
    profile = (
        "mode: set\n"
        "example.com/m/calc/calc.go:3.24,5.2 1 1\n"
        "example.com/m/calc/calc.go:7.24,9.2 3 0\n"
        "example.com/m/main.go:5.13,7.2 2 1\n"
    )
    report = parse_go_coverprofile(profile, "example.com/m")
    assert {p: f.percent for p, f in report.files.items()} == {
        "calc/calc.go": 25.0,
        "main.go": 100.0,
    }
    assert report.percent == pytest.approx(50.0)


GO_CALC = """\
package calc

func Add(a, b int) int { return a + b }

func Sub(a, b int) int { return a - b }
"""
GO_CALC_TEST = """\
package calc

import "testing"

func TestAdd(t *testing.T) {
\tif Add(1, 2) != 3 {
\t\tt.Fatal("add")
\t}
}
"""


def test_real_go_project(tmp_path: Path) -> None:
    go()
    write(tmp_path, "go.mod", "module example.com/m\n\ngo 1.21\n")
    write(tmp_path, "calc/calc.go", GO_CALC)
    write(tmp_path, "calc/calc_test.go", GO_CALC_TEST)
    run = run_go_tests(tmp_path, timeout=120)
    assert run.status is RunStatus.PASSED
    assert run.coverage is not None
    assert run.coverage.files["calc/calc.go"].percent == 50.0
