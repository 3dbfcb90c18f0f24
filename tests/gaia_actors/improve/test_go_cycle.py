"""A whole improve cycle on a real Go module (tests/fixtures/gomodule) with the real toolchain:
markers and panics, go vet, go test's pass rate and coverage, gofmt kept only when the tests
stay green, and ops/s from a Go benchmark."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gaia_actors.improve import history
from tests.gaia_actors.externals import go
from tests.gaia_actors.improve.conftest import snapshot
from tests.gaia_actors.improve.support import config, improve_tree

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "gomodule"
BENCHMARK = ["go", "test", "-run", "^$", "-bench", ".", "-benchtime", "20000x", "./..."]
GOFMT = ["gofmt", "-w", "."]
MUL = "calc/mul.go"


@pytest.fixture
def module(tmp_path: Path) -> Path:
    go()
    root = tmp_path / "gomodule"
    shutil.copytree(FIXTURE, root)
    return root


def settings_text(*fixers: list[str]) -> str:
    return (
        'tests = "go"\nlinters = ["go vet"]\n'
        f"fixers = {json.dumps(list(fixers))}\n"
        f"benchmark_command = {json.dumps(BENCHMARK)}\n"
    )


def test_a_go_module_goes_through_a_whole_cycle_and_apply_writes_gofmt(
    tmp_path: Path, module: Path
) -> None:
    before = snapshot(module)
    with improve_tree(config(tmp_path, module, settings_text(GOFMT))) as tree:
        result = history.show(tree.cycle(apply=True, timeout=120))

    found = {(f["type"], f["where"]) for f in result["top_findings"]}
    # The marker in the comment and the panic call, not "panic(" in a string; go vet's
    # unreachable code (go test's own vet subset does not include it, so the tests still run).
    assert {("todo", "calc/calc.go:14"), ("panic", "calc/calc.go:16")} <= found, found
    assert ("lint", "calc/calc.go:24") in found, found
    tests = result["tests"]
    assert (tests["kind"], tests["status"]) == ("go", "passed")
    assert (tests["tests"], tests["passed"], tests["failed"]) == (3, 3, 0)
    assert result["pass_rate"] == 1.0
    assert 20 < result["coverage"] < 80, result["coverage"]  # Unused and Describe untested
    assert result["verify"]["status"] == "ran", result["verify"]
    assert result["verify"]["ops_per_sec"] > 1_000_000  # an integer add per op

    fixes = result["fixes"]
    assert (fixes["status"], fixes["files"], fixes["applied"]) == ("verified", [MUL], True)
    after = snapshot(module)
    assert {name for name in after if after[name] != before.get(name)} == {MUL}
    assert (module / MUL).read_text() == (
        "package calc\n\n// Mul returns the product of a and b.\n"
        "func Mul(a, b int) int {\n\treturn a * b\n}\n"
    )


def test_gofmt_with_a_change_that_breaks_the_go_tests_is_rolled_back(
    tmp_path: Path, module: Path
) -> None:
    before = snapshot(module)
    # Runs after gofmt (fixers run in order), so it sees gofmt's "a * b".
    breaker = ["sed", "-i", "s/a \\* b/a + b/", MUL]
    with improve_tree(config(tmp_path, module, settings_text(GOFMT, breaker))) as tree:
        result = history.show(tree.cycle(apply=True, timeout=120))

    fixes = result["fixes"]
    assert (fixes["status"], fixes["applied"]) == ("tests_failed", False), fixes
    assert "TestMul" in fixes["tests_tail"]
    assert snapshot(module) == before
