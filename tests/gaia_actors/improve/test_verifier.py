"""The fix verifier: a test command's JUnit results against the baseline's passed tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from gaia_actors.improve.verifier import verify_main

# Writes its --junitxml argument's file with what it is given, then exits with code 0.
WRITER = (
    "import sys; path = sys.argv[-1].split('=', 1)[1]; "
    "open(path, 'w', encoding='utf-8').write(sys.argv[1])"
)


def run(tmp_path: Path, junit_text: str, passed: list[list[str]]) -> int:
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"passed": passed}), encoding="utf-8")
    command = [sys.executable, "-c", WRITER, junit_text]
    return verify_main(["--baseline", str(baseline), "--", *command])


def test_results_that_are_not_xml_fail_the_verification_with_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, "<testsuite><testcase", []) == 1
    assert "wrote no readable JUnit results" in capsys.readouterr().err


def test_a_test_that_passed_before_and_fails_now_fails_the_verification(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junit = '<testsuite><testcase classname="m" name="t"><failure/></testcase></testsuite>'
    assert run(tmp_path, junit, [["m", "t"]]) == 1
    assert "do not pass: m.t" in capsys.readouterr().out
    junit = '<testsuite><testcase classname="m" name="t"/></testsuite>'
    assert run(tmp_path, junit, [["m", "t"]]) == 0
