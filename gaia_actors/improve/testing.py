"""Run the target's Python tests under coverage and read the results.

Python: ``<python> -m coverage run [--branch] --source=. -m pytest --junitxml=<tmp> -p
no:cacheprovider <args>`` in the target directory, then ``coverage json``. The coverage data,
the JUnit XML and the JSON report live in a temporary directory (``COVERAGE_FILE``), and
bytecode and pytest's cache are not written, so a test run leaves the target tree as it found it
(except for whatever the target's own tests write).

Pass rate = passed / (tests - skipped), where errors count as not passed; None with no tests.

Coverage is read by ``coverage``, Go's tests run by ``gotests``, builds and benchmarks by
``benchmark``.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import field, replace
from enum import StrEnum
from pathlib import Path

from gaia_actors.improve.commands import CommandResult, run_command
from gaia_actors.improve.coverage import (
    DEFAULT_THRESHOLD,
    CoverageReport,
    coverage_gaps,
    parse_coverage_json,
    relative_path,
)
from gaia_actors.improve.errors import CommandError
from gaia_actors.improve.findings import Finding
from gaia_actors.junit import JUnitReport, Outcome, TestCaseResult
from gaia_actors.junit import parse as parse_junit
from gaia_actors.process.running import no_bytecode_in_tree
from supervisors.records import record

COLLECTION_FAILURE = "collection failure"  # pytest's JUnit message for a module that broke
# No cache written into the target; a test module that cannot be imported is reported while
# the rest of the suite runs (pytest stops before any test by default).
PYTEST_FLAGS = ("-p", "no:cacheprovider", "--continue-on-collection-errors")
DETAIL_CHARS = 4000


# --- results --------------------------------------------------------------------------


class RunStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # tests ran and some failed
    ERROR = "error"  # the run itself broke (collection error, crash, missing tool)
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"  # the tool is not installed


@record
class TestRun:
    """One test run: how it ended, its results, coverage, gaps and duration."""

    __test__ = False

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


@record
class TestProblem:
    """Why the tests of one file (or the whole run, ``file`` "") could not run."""

    __test__ = False

    file: str
    reason: str


# --- running Python tests -------------------------------------------------------------


@record
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
        return TestRun(RunStatus.SKIPPED, reason=f"pytest is not importable by {opts.python}")
    with tempfile.TemporaryDirectory(prefix="gaia-tests-") as tmp:
        work = Path(tmp)
        env = {
            **opts.env,
            "COVERAGE_FILE": str(work / ".coverage"),
            **no_bytecode_in_tree(opts.env),
        }
        argv = _pytest_argv(opts, work / "junit.xml", with_coverage=not missing)
        try:
            result = run_command(argv, top, timeout=timeout, env=env)
        except CommandError as exc:
            return TestRun(RunStatus.ERROR, tuple(argv), reason=str(exc))
        junit = _read_junit(work / "junit.xml")
        coverage = None if missing else _coverage_report(opts.python, top, work, env, timeout)
    gaps = coverage_gaps(coverage, opts.threshold, only=opts.only) if coverage else []
    problems = find_problems(junit, result, top)
    reason = "coverage is not importable: no coverage measured" if missing else ""
    run = finished_run(result, junit=junit, coverage=coverage, gaps=gaps, reason=reason)
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


def finished_run(
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
        file = relative_path(match.group(1), root) or match.group(1)
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
        return relative_path(match.group(1), root) or match.group(1)
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
