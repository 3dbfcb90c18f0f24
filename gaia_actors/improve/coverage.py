"""Coverage of the target's tests, read from coverage.py's JSON report, and the gaps it leaves.

Per-function coverage comes from coverage.py's JSON ``functions`` section (coverage >= 7.5;
7.17 is installed here). With an older coverage it is computed from the executed and missing
lines of each file and the function ranges in its AST (a line belongs to the innermost function
containing it, as coverage.py does).

``coverage_gap`` findings: a file or a function (with at least ``min_statements`` statements)
below the threshold (default 50%). Severity medium below half the threshold, else low; priority
2-5, growing with the distance below the threshold. Test files (``test_*.py``, ``*_test.py``,
``conftest.py``, anything under ``tests/`` or ``test/``) are left out by default.
"""

from __future__ import annotations

import ast
import bisect
import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from gaia_actors.improve.files import IgnoreFile
from gaia_actors.improve.findings import Finding, Severity
from supervisors.records import record

DEFAULT_THRESHOLD = 50.0
DEFAULT_TEST_OMIT = ("test_*.py", "*_test.py", "conftest.py", "tests/", "test/", "*_test.go")
GAP_TYPE = "coverage_gap"


@record
class FunctionCoverage:
    name: str  # qualified: "Class.method"
    start_line: int
    statements: int
    percent: float


@record
class FileCoverage:
    path: str  # relative to the target, posix
    statements: int
    percent: float
    functions: tuple[FunctionCoverage, ...] = ()


@record
class CoverageReport:
    """Total and per-file coverage; ``functions_from`` says where per-function numbers came from."""

    percent: float
    files: Mapping[str, FileCoverage]
    functions_from: str  # "coverage.py", "ast" or "none"


# --- coverage JSON -------------------------------------------------------------------


def parse_coverage_json(text: str, root: str | Path) -> CoverageReport:
    """coverage.py's JSON report; per-function numbers from it, or from each file's AST."""
    data: dict[str, Any] = json.loads(text)
    top = Path(root).resolve()
    files: dict[str, FileCoverage] = {}
    sources = set()
    for name, entry in data.get("files", {}).items():
        path = relative_path(name, top)
        if path is None:
            continue
        functions, origin = _functions_of(entry, top / path)
        sources.add(origin)
        summary = entry["summary"]
        files[path] = FileCoverage(
            path, int(summary["num_statements"]), float(summary["percent_covered"]), functions
        )
    percent = float(data.get("totals", {}).get("percent_covered", 0.0))
    origin = (
        "coverage.py" if sources == {"coverage.py"} else ("ast" if "ast" in sources else "none")
    )
    return CoverageReport(percent, files, origin)


def relative_path(name: str, root: Path) -> str | None:
    path = Path(name)
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return None  # measured outside the target: not ours to report


def _functions_of(
    entry: Mapping[str, Any], source: Path
) -> tuple[tuple[FunctionCoverage, ...], str]:
    if "functions" in entry:
        return tuple(
            FunctionCoverage(
                name,
                int(info.get("start_line") or 0),
                int(info["summary"]["num_statements"]),
                float(info["summary"]["percent_covered"]),
            )
            for name, info in entry["functions"].items()
            if name  # "" is the module-level code
        ), "coverage.py"
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return (), "none"
    executed = set(entry.get("executed_lines", ()))
    missing = set(entry.get("missing_lines", ()))
    return functions_from_ast(text, executed, missing), "ast"


def functions_from_ast(
    text: str, executed: set[int], missing: set[int]
) -> tuple[FunctionCoverage, ...]:
    """Per-function statement coverage from line sets: each line to its innermost function.

    As in coverage.py, a function's own ``def`` line (and its decorators) run in the enclosing
    scope, so a function's lines start at its first body statement.
    """
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return ()
    ranges = sorted(_function_ranges(tree, ""), key=lambda r: (r.body_start, -r.end))
    if not ranges:
        return ()
    counts = {r.name: [0, 0] for r in ranges}
    starts = [r.body_start for r in ranges]
    for line in executed | missing:
        owner = _innermost(ranges, starts, line)
        if owner is not None:
            counts[owner][0] += 1
            counts[owner][1] += line in executed
    return tuple(
        FunctionCoverage(r.name, r.def_line, total, 100.0 * hit / total if total else 100.0)
        for r in sorted(ranges, key=lambda r: r.def_line)
        for total, hit in [counts[r.name]]
    )


@record
class _Range:
    name: str
    def_line: int
    body_start: int
    end: int


def _function_ranges(node: ast.AST, prefix: str) -> list[_Range]:
    found: list[_Range] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{prefix}{child.name}"
            if not isinstance(child, ast.ClassDef):
                end = child.end_lineno or child.lineno
                found.append(_Range(name, child.lineno, child.body[0].lineno, end))
            found.extend(_function_ranges(child, name + "."))
        else:
            found.extend(_function_ranges(child, prefix))
    return found


def _innermost(ranges: Sequence[_Range], starts: list[int], line: int) -> str | None:
    """The function with the latest body start that still contains ``line``."""
    for index in range(bisect.bisect_right(starts, line) - 1, -1, -1):
        if ranges[index].body_start <= line <= ranges[index].end:
            return ranges[index].name
    return None


# --- coverage gaps -------------------------------------------------------------------


def coverage_gaps(
    report: CoverageReport,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    min_statements: int = 3,
    only: Collection[str] | None = None,
    omit: Sequence[str] = DEFAULT_TEST_OMIT,
) -> list[Finding]:
    """``coverage_gap`` findings for files and functions below ``threshold`` percent."""
    skip = IgnoreFile.from_lines("", omit)
    findings: list[Finding] = []
    for path, cov in sorted(report.files.items()):
        if (only is not None and path not in only) or skip.covers(path):
            continue
        if cov.statements and cov.percent < threshold:
            text = f"{path} is {cov.percent:.0f}% covered (threshold {threshold:.0f}%)"
            findings.append(_gap(path, 1, text, scope="", percent=cov.percent, threshold=threshold))
        for func in cov.functions:
            if func.statements >= min_statements and func.percent < threshold:
                text = f"{func.name} is {func.percent:.0f}% covered (threshold {threshold:.0f}%)"
                findings.append(
                    _gap(
                        path,
                        func.start_line,
                        text,
                        scope=func.name,
                        percent=func.percent,
                        threshold=threshold,
                    )
                )
    return findings


def _gap(
    path: str, line: int, text: str, *, scope: str, percent: float, threshold: float
) -> Finding:
    deficit = (threshold - percent) / threshold
    severity = Severity.MEDIUM if percent < threshold / 2 else Severity.LOW
    return Finding(
        type=GAP_TYPE,
        file=path,
        line=max(line, 1),
        text=text,
        severity=severity,
        priority=2 + round(3 * deficit),
        detector="coverage",
        scope=scope,
        anchor="",  # the percentage changes from cycle to cycle; the place does not
    )
