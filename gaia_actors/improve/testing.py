"""Run the target's tests under coverage, read the results, and run its benchmark.

Python: ``<python> -m coverage run [--branch] --source=. -m pytest --junitxml=<tmp> -p
no:cacheprovider <args>`` in the target directory, then ``coverage json``. The coverage data,
the JUnit XML and the JSON report live in a temporary directory (``COVERAGE_FILE``), and
bytecode and pytest's cache are not written, so a test run leaves the target tree as it found it
(except for whatever the target's own tests write).

Per-function coverage comes from coverage.py's JSON ``functions`` section (coverage >= 7.5;
7.17 is installed here). With an older coverage it is computed from the executed and missing
lines of each file and the function ranges in its AST (a line belongs to the innermost function
containing it, as coverage.py does).

``coverage_gap`` findings: a file or a function (with at least ``min_statements`` statements)
below the threshold (default 50%). Severity medium below half the threshold, else low; priority
2-5, growing with the distance below the threshold. Test files (``test_*.py``, ``*_test.py``,
``conftest.py``, anything under ``tests/`` or ``test/``) are left out by default.

Pass rate = passed / (tests - skipped), where errors count as not passed; None with no tests.

Go: ``go test -json -cover -coverprofile=<tmp> ./...`` when ``go`` is installed (skipped
otherwise): per-test results from the JSON events, per-file coverage from the profile.

Benchmarks: ``run_benchmark`` accepts, on stdout or stderr, the last of either a line
``ops/sec: 12345.6`` (also ``ops_per_sec``, ``:`` or ``=``, any case, ``_`` or ``,`` digit
separators, exponents allowed), a line holding a JSON object with a numeric ``"ops_per_sec"``,
or a ``go test -bench`` result line (``BenchmarkAdd-2  1000000  312.5 ns/op``: 1e9 / ns per op).
"""

from __future__ import annotations

import ast
import bisect
import importlib.util
import json
import re
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from gaia_actors.improve.commands import CommandResult, run_command, which
from gaia_actors.improve.errors import BenchmarkError, CommandError
from gaia_actors.improve.files import IgnoreFile
from gaia_actors.improve.findings import Finding, Severity
from gaia_actors.junit import JUnitReport, Outcome, TestCaseResult
from gaia_actors.junit import parse as parse_junit

DEFAULT_THRESHOLD = 50.0
COLLECTION_FAILURE = "collection failure"  # pytest's JUnit message for a module that broke
# No cache written into the target; a test module that cannot be imported is reported while
# the rest of the suite runs (pytest stops before any test by default).
PYTEST_FLAGS = ("-p", "no:cacheprovider", "--continue-on-collection-errors")
DETAIL_CHARS = 4000
DEFAULT_TEST_OMIT = ("test_*.py", "*_test.py", "conftest.py", "tests/", "test/", "*_test.go")
GAP_TYPE = "coverage_gap"


# --- results --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FunctionCoverage:
    name: str  # qualified: "Class.method"
    start_line: int
    statements: int
    percent: float


@dataclass(frozen=True, slots=True)
class FileCoverage:
    path: str  # relative to the target, posix
    statements: int
    percent: float
    functions: tuple[FunctionCoverage, ...] = ()


@dataclass(frozen=True, slots=True)
class CoverageReport:
    """Total and per-file coverage; ``functions_from`` says where per-function numbers came from."""

    percent: float
    files: Mapping[str, FileCoverage]
    functions_from: str  # "coverage.py", "ast" or "none"


class RunStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # tests ran and some failed
    ERROR = "error"  # the run itself broke (collection error, crash, missing tool)
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"  # the tool is not installed


@dataclass(frozen=True, slots=True)
class TestRun:
    """One test run: how it ended, its results, coverage, gaps and duration."""

    __test__ = False

    tool: str
    status: RunStatus
    command: tuple[str, ...] = ()
    returncode: int | None = None
    seconds: float = 0.0
    junit: JUnitReport | None = None
    coverage: CoverageReport | None = None
    gaps: tuple[Finding, ...] = ()
    output_tail: str = ""
    reason: str = ""
    problems: tuple[TestProblem, ...] = ()

    @property
    def pass_rate(self) -> float | None:
        return self.junit.pass_rate if self.junit is not None else None


@dataclass(frozen=True, slots=True)
class TestProblem:
    """Why the tests of one file (or the whole run, ``file`` "") could not run."""

    __test__ = False

    file: str
    reason: str


# --- coverage JSON --------------------------------------------------------------------


def parse_coverage_json(text: str, root: str | Path) -> CoverageReport:
    """coverage.py's JSON report; per-function numbers from it, or from each file's AST."""
    data: dict[str, Any] = json.loads(text)
    top = Path(root).resolve()
    files: dict[str, FileCoverage] = {}
    sources = set()
    for name, entry in data.get("files", {}).items():
        path = _relative(name, top)
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


def _relative(name: str, root: Path) -> str | None:
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


@dataclass(frozen=True, slots=True)
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


# --- coverage gaps --------------------------------------------------------------------


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


# --- running Python tests -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PythonTestOptions:
    """How to run a Python target's tests (all optional)."""

    python: str = sys.executable
    pytest_args: tuple[str, ...] = ("-q",)
    branch: bool = True
    threshold: float = DEFAULT_THRESHOLD
    only: frozenset[str] | None = None  # restrict gaps to these files (the analysed set)
    env: Mapping[str, str] = field(default_factory=dict)


def run_python_tests(
    target: str | Path, timeout: float, options: PythonTestOptions | None = None
) -> TestRun:
    """pytest under coverage.py in ``target``; the process group is killed after ``timeout``."""
    opts = options or PythonTestOptions()
    top = Path(target).resolve()
    missing = [m for m in ("pytest", "coverage") if not _has_module(opts.python, m, top)]
    if "pytest" in missing:
        return TestRun(
            "pytest", RunStatus.SKIPPED, reason=f"pytest is not importable by {opts.python}"
        )
    with tempfile.TemporaryDirectory(prefix="gaia-tests-") as tmp:
        work = Path(tmp)
        env = {**opts.env, "COVERAGE_FILE": str(work / ".coverage"), "PYTHONDONTWRITEBYTECODE": "1"}
        argv = _pytest_argv(opts, work / "junit.xml", with_coverage=not missing)
        try:
            result = run_command(argv, top, timeout=timeout, env=env)
        except CommandError as exc:
            return TestRun("pytest", RunStatus.ERROR, tuple(argv), reason=str(exc))
        junit = _read_junit(work / "junit.xml")
        coverage = None if missing else _coverage_report(opts.python, top, work, env, timeout)
    gaps = coverage_gaps(coverage, opts.threshold, only=opts.only) if coverage else []
    problems = find_problems(junit, result, top)
    reason = "coverage is not importable: no coverage measured" if missing else ""
    run = _test_run("pytest", result, junit=junit, coverage=coverage, gaps=gaps, reason=reason)
    if not problems:
        return run
    return replace(run, problems=problems, reason=reason or summarise(problems))


def _pytest_argv(opts: PythonTestOptions, junit: Path, *, with_coverage: bool) -> list[str]:
    pytest = ["-m", "pytest", f"--junitxml={junit}", *PYTEST_FLAGS, *opts.pytest_args]
    if not with_coverage:
        return [opts.python, *pytest]
    branch = ["--branch"] if opts.branch else []
    return [opts.python, "-m", "coverage", "run", *branch, "--source=.", *pytest]


def _has_module(python: str, module: str, cwd: Path) -> bool:
    if python == sys.executable:
        return importlib.util.find_spec(module) is not None
    try:
        probe = run_command([python, "-c", f"import {module}"], cwd, timeout=30.0)
    except CommandError:
        return False
    return probe.ok


def _read_junit(path: Path) -> JUnitReport | None:
    try:
        return parse_junit(path.read_text(encoding="utf-8"))
    except (OSError, ET.ParseError):
        return None  # pytest never got far enough to write it


def _coverage_report(
    python: str, top: Path, work: Path, env: Mapping[str, str], timeout: float
) -> CoverageReport | None:
    data = work / ".coverage"
    if not data.exists() and any(work.glob(".coverage.*")):
        run_command([python, "-m", "coverage", "combine"], top, timeout=timeout, env=env)
    if not data.exists():
        return None
    out = work / "coverage.json"
    result = run_command(
        [python, "-m", "coverage", "json", "-o", str(out)], top, timeout=timeout, env=env
    )
    if not result.ok or not out.exists():
        return None
    return parse_coverage_json(out.read_text(encoding="utf-8"), top)


def _test_run(
    tool: str,
    result: CommandResult,
    *,
    junit: JUnitReport | None,
    coverage: CoverageReport | None,
    gaps: Sequence[Finding],
    reason: str,
) -> TestRun:
    if result.timed_out:
        status = RunStatus.TIMED_OUT
    elif result.returncode == 0:
        status = RunStatus.PASSED
    elif junit is not None and junit.tests and (junit.failures or junit.errors):
        status = RunStatus.FAILED
    else:
        status = RunStatus.ERROR
    return TestRun(
        tool=tool,
        status=status,
        command=result.argv,
        returncode=result.returncode,
        seconds=result.seconds,
        junit=junit,
        coverage=coverage,
        gaps=tuple(gaps),
        output_tail=result.tail(),
        reason=reason,
    )


# --- why tests could not run ---------------------------------------------------------

_MODULE_FILE = re.compile(r"(?:test module|conftest) '([^']+)'")
_CONFTEST = re.compile(r"ImportError while loading conftest '([^']+)'")
_PYTEST_ERROR = re.compile(r"\berror: (?!usage:)", re.I)  # not the usage line argparse adds
_EXIT_REASONS = {
    2: "pytest was interrupted",
    3: "pytest hit an internal error",
    4: "pytest usage error",
    5: "pytest collected no tests",
}


def find_problems(
    junit: JUnitReport | None, result: CommandResult, root: Path
) -> tuple[TestProblem, ...]:
    """Why tests could not run: each test module that failed to import (pytest's collection
    errors), a conftest.py that failed to import, or why pytest stopped before any test."""
    found = [
        _collection_problem(case, root)
        for case in (junit.cases if junit is not None else ())
        if case.outcome is Outcome.ERROR and case.message == COLLECTION_FAILURE
    ]
    output = result.stdout + "\n" + result.stderr
    for match in _CONFTEST.finditer(output):
        file = _relative(match.group(1), root) or match.group(1)
        found.append(TestProblem(file, _error_line(output[match.end() :]) or "import failed"))
    if not found and result.returncode in _EXIT_REASONS and not result.timed_out:
        said = [line.strip() for line in output.splitlines() if _PYTEST_ERROR.search(line)]
        detail = f": {_PYTEST_ERROR.split(said[-1], 1)[-1].strip()}" if said else ""
        found.append(TestProblem("", _EXIT_REASONS[result.returncode] + detail))
    return tuple(found)


def _collection_problem(case: TestCaseResult, root: Path) -> TestProblem:
    detail = case.detail[-DETAIL_CHARS:]  # the end of pytest's report names what broke
    return TestProblem(_problem_file(case, detail, root), _error_line(detail) or detail[-300:])


def _problem_file(case: TestCaseResult, detail: str, root: Path) -> str:
    match = _MODULE_FILE.search(detail)
    if match is not None:
        return _relative(match.group(1), root) or match.group(1)
    return case.name.replace(".", "/") + ".py"  # pytest names a broken module by its dotted path


_EXCEPTION = re.compile(r"^E\s+((?:[A-Za-z_][\w.]*)?(?:Error|Exception|Exit)\b.*)$")


def _error_line(text: str) -> str:
    """The exception pytest reports under ``E``: the first ``SomeError: message`` line (a
    SyntaxError's source lines come before it), else the first ``E`` line."""
    lines = [line for line in text.splitlines() if line.startswith("E ")]
    for line in lines:
        if match := _EXCEPTION.match(line):
            return match.group(1).strip()
    return lines[0][1:].strip() if lines else ""


def summarise(problems: Sequence[TestProblem]) -> str:
    """One line for a run's problems: the most common reasons and how many files each."""
    files = [p for p in problems if p.file]
    if not files:
        return "; ".join(p.reason for p in problems)
    counts = Counter(p.reason for p in files)
    top = ", ".join(f"{reason} ({n})" for reason, n in counts.most_common(3))
    return f"{len(files)} file(s) could not be imported: {top}"


# --- Go -------------------------------------------------------------------------------

_GO_COVERAGE = re.compile(r"coverage: ([0-9.]+)% of statements")


def run_go_tests(
    target: str | Path, timeout: float, *, go: str = "go", threshold: float = DEFAULT_THRESHOLD
) -> TestRun:
    """``go test -json -cover`` in ``target``; skipped when ``go`` is not installed."""
    if which(go) is None:
        return TestRun("go test", RunStatus.SKIPPED, reason=f"{go} not found on PATH")
    top = Path(target).resolve()
    with tempfile.TemporaryDirectory(prefix="gaia-gotest-") as tmp:
        profile = Path(tmp) / "cover.out"
        argv = [go, "test", "-json", "-cover", f"-coverprofile={profile}", "./..."]
        try:
            result = run_command(argv, top, timeout=timeout)
        except CommandError as exc:
            return TestRun("go test", RunStatus.ERROR, tuple(argv), reason=str(exc))
        junit, _packages = parse_go_test_json(result.stdout)
        coverage = None
        if profile.exists():
            text = profile.read_text(encoding="utf-8", errors="replace")
            coverage = parse_go_coverprofile(text, _go_module(top))
    gaps = coverage_gaps(coverage, threshold) if coverage else []
    return _test_run("go test", result, junit=junit, coverage=coverage, gaps=gaps, reason="")


def parse_go_test_json(stdout: str) -> tuple[JUnitReport, dict[str, float]]:
    """Per-test results and per-package coverage from ``go test -json`` events."""
    cases: list[TestCaseResult] = []
    packages: dict[str, float] = {}
    outcomes = {"pass": Outcome.PASSED, "fail": Outcome.FAILED, "skip": Outcome.SKIPPED}
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # build output interleaved with the events
        if not isinstance(event, dict):
            continue
        action, package, test = event.get("Action"), event.get("Package", ""), event.get("Test")
        if action == "output" and (match := _GO_COVERAGE.search(event.get("Output", ""))):
            packages[package] = float(match.group(1))
        elif test and action in outcomes:
            elapsed = event.get("Elapsed")
            seconds = float(elapsed) if isinstance(elapsed, int | float) else 0.0
            cases.append(TestCaseResult(test, package, outcomes[action], seconds))
    return JUnitReport(tuple(cases)), packages


def _go_module(root: Path) -> str:
    try:
        text = (root / "go.mod").read_text(encoding="utf-8")
    except OSError:
        return ""
    match = re.search(r"^module\s+(\S+)", text, re.M)
    return match.group(1) if match else ""


def parse_go_coverprofile(text: str, module: str) -> CoverageReport:
    """Per-file statement coverage from a ``-coverprofile`` (``file:a.b,c.d stmts count``)."""
    totals: dict[str, list[int]] = {}
    blocks: dict[tuple[str, str], tuple[int, int]] = {}
    for line in text.splitlines()[1:]:  # the first line is "mode: ..."
        match = re.match(r"^(.+\.go):(\d+\.\d+,\d+\.\d+) (\d+) (\d+)$", line.strip())
        if match is None:
            continue
        name, span, stmts, count = (
            match.group(1),
            match.group(2),
            int(match.group(3)),
            int(match.group(4)),
        )
        # The same block appears once per test binary that covers the package: merge them.
        old = blocks.get((name, span), (stmts, 0))
        blocks[(name, span)] = (stmts, max(old[1], count))
    for (name, _span), (stmts, count) in blocks.items():
        path = name[len(module) + 1 :] if module and name.startswith(module + "/") else name
        entry = totals.setdefault(path, [0, 0])
        entry[0] += stmts
        entry[1] += stmts if count else 0
    files = {
        path: FileCoverage(path, total, 100.0 * hit / total if total else 100.0)
        for path, (total, hit) in totals.items()
    }
    all_total = sum(t for t, _ in totals.values())
    all_hit = sum(h for _, h in totals.values())
    percent = 100.0 * all_hit / all_total if all_total else 100.0
    return CoverageReport(percent, files, "none")


# --- builds and benchmarks ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuildRun:
    """A build command's outcome and duration (``SKIPPED`` when its executable is missing)."""

    status: RunStatus
    seconds: float = 0.0
    output_tail: str = ""
    reason: str = ""


def run_build(argv: Sequence[str], cwd: str | Path, timeout: float) -> BuildRun:
    """Run the target's build command and time it."""
    if not argv or which(argv[0]) is None:
        return BuildRun(
            RunStatus.SKIPPED, reason=f"{argv[0] if argv else '(no command)'} not found"
        )
    try:
        result = run_command(argv, cwd, timeout=timeout)
    except CommandError as exc:
        return BuildRun(RunStatus.ERROR, reason=str(exc))
    if result.timed_out:
        return BuildRun(
            RunStatus.TIMED_OUT, result.seconds, result.tail(), f"timed out after {timeout}s"
        )
    status = RunStatus.PASSED if result.ok else RunStatus.FAILED
    return BuildRun(status, result.seconds, result.tail())


@dataclass(frozen=True, slots=True)
class BenchmarkResult:
    ops_per_sec: float
    seconds: float
    command: tuple[str, ...]


_OPS_LINE = re.compile(
    r"\bops(?:/|_per_)sec\s*[:=]\s*([0-9][0-9_,]*(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)", re.I
)


_GO_BENCH_LINE = re.compile(r"^Benchmark\S*\s+\d+\s+([0-9]+(?:\.[0-9]+)?) ns/op\b")


def parse_ops_per_sec(output: str) -> float | None:
    """The last ops/sec figure in ``output`` (formats in the module docstring), or None."""
    found: float | None = None
    for line in output.splitlines():
        value = _json_ops(line) if line.lstrip().startswith("{") else None
        if value is None and (match := _OPS_LINE.search(line)):
            value = float(match.group(1).replace("_", "").replace(",", ""))
        if value is None and (match := _GO_BENCH_LINE.match(line)) and float(match.group(1)):
            value = 1e9 / float(match.group(1))
        if value is not None:
            found = value
    return found


def _json_ops(line: str) -> float | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    value = data.get("ops_per_sec") if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def run_benchmark(argv: Sequence[str], cwd: str | Path, timeout: float) -> BenchmarkResult:
    """Run the benchmark and return its ops/sec; ``BenchmarkError`` if it fails or says none."""
    try:
        result = run_command(argv, cwd, timeout=timeout)
    except CommandError as exc:
        raise BenchmarkError(argv, str(exc)) from exc
    if result.timed_out:
        raise BenchmarkError(argv, f"timed out after {timeout}s", result.tail())
    if result.returncode != 0:
        raise BenchmarkError(argv, f"exit code {result.returncode}", result.tail())
    ops = parse_ops_per_sec(result.stdout + "\n" + result.stderr)
    if ops is None:
        raise BenchmarkError(
            argv, "no 'ops/sec: N' line or {\"ops_per_sec\": N} in its output", result.tail()
        )
    return BenchmarkResult(ops, result.seconds, result.argv)
