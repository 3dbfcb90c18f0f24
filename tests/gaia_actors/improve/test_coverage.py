"""Coverage read from coverage.py's JSON or the AST, and the gaps it leaves as findings."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from gaia_actors.improve.coverage import (
    CoverageReport,
    FileCoverage,
    FunctionCoverage,
    coverage_gaps,
    functions_from_ast,
    parse_coverage_json,
)
from gaia_actors.improve.findings import Severity
from tests.gaia_actors.improve.conftest import write


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
