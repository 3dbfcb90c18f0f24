"""Go's tests: skipped without go, their JSON events and cover profile read, a real project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gaia_actors.improve.gotests import parse_go_coverprofile, parse_go_test_json, run_go_tests
from gaia_actors.improve.testing import RunStatus
from gaia_actors.junit import Outcome
from tests.gaia_actors.externals import go
from tests.gaia_actors.improve.conftest import write


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
