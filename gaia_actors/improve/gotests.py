"""Go's tests: ``go test -json -cover -coverprofile=<tmp> ./...`` when ``go`` is installed
(skipped otherwise): per-test results from the JSON events, per-file coverage from the profile.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from gaia_actors.improve.commands import run_command, which
from gaia_actors.improve.coverage import (
    DEFAULT_THRESHOLD,
    CoverageReport,
    FileCoverage,
    coverage_gaps,
)
from gaia_actors.improve.errors import CommandError
from gaia_actors.improve.testing import RunStatus, TestRun, finished_run
from gaia_actors.junit import JUnitReport, Outcome, TestCaseResult

_GO_COVERAGE = re.compile(r"coverage: ([0-9.]+)% of statements")


def run_go_tests(
    target: str | Path, timeout: float, *, go: str = "go", threshold: float = DEFAULT_THRESHOLD
) -> TestRun:
    """``go test -json -cover`` in ``target``; skipped when ``go`` is not installed."""
    if which(go) is None:
        return TestRun(RunStatus.SKIPPED, reason=f"{go} not found on PATH")
    top = Path(target).resolve()
    with tempfile.TemporaryDirectory(prefix="gaia-gotest-") as tmp:
        profile = Path(tmp) / "cover.out"
        argv = [go, "test", "-json", "-cover", f"-coverprofile={profile}", "./..."]
        try:
            result = run_command(argv, top, timeout=timeout)
        except CommandError as exc:
            return TestRun(RunStatus.ERROR, tuple(argv), reason=str(exc))
        junit, _packages = parse_go_test_json(result.stdout)
        coverage = None
        if profile.exists():
            text = profile.read_text(encoding="utf-8", errors="replace")
            coverage = parse_go_coverprofile(text, _go_module(top))
    gaps = coverage_gaps(coverage, threshold) if coverage else []
    return finished_run(result, junit=junit, coverage=coverage, gaps=gaps, reason="")


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
