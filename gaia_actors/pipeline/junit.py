"""JUnit XML results: what a test command wrote, as per-test results for the history.

The file comes from the release's own test command, so it is trusted as much as the release;
:mod:`gaia_actors.junit` parses it, this module shapes it into the history's records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from gaia_actors import junit
from gaia_actors.pipeline.errors import StageError

MAX_CASES = 1000  # cases kept per stage; the counts always cover every case
MAX_MESSAGE = 500


def parse(path: Path) -> dict[str, Any]:
    """Counts and per-test results of the JUnit XML file at ``path``.

    ``{"total", "passed", "failed", "errors", "skipped", "time", "cases": [{"name",
    "classname", "status", "time", "message"}]}``, failed and erroring cases first, at most
    ``MAX_CASES`` of them. Raises StageError for a file that is not JUnit XML.
    """
    try:
        tag, report = junit.read(path)
    except (ElementTree.ParseError, OSError) as exc:
        raise StageError(f"cannot read the JUnit XML results {path}: {exc}") from exc
    if tag not in junit.ROOT_TAGS:
        raise StageError(f"{path} is not JUnit XML (root element <{tag}>)")
    cases = [_case(case) for case in report.cases]
    cases.sort(key=lambda c: c["status"] not in ("failed", "error"))
    return {
        "total": report.tests,
        "passed": report.passed,
        "failed": report.failures,
        "errors": report.errors,
        "skipped": report.skipped,
        "time": round(sum(c["time"] for c in cases), 3),
        "cases": cases[:MAX_CASES],
    }


def _case(case: junit.TestCaseResult) -> dict[str, Any]:
    return {
        "name": case.name,
        "classname": case.classname,
        "status": str(case.outcome),
        "time": round(case.seconds, 3),
        "message": (case.message or case.detail).strip()[:MAX_MESSAGE],
    }


def describe(results: dict[str, Any]) -> str:
    """``7 tests: 6 passed, 1 failed (test_x.test_y)``."""
    parts = [f"{results['passed']} passed"]
    parts += [
        f"{results[key]} {word}"
        for key, word in (("failed", "failed"), ("errors", "errors"), ("skipped", "skipped"))
        if results[key]
    ]
    text = f"{results['total']} tests: {', '.join(parts)}"
    broken = [c for c in results["cases"] if c["status"] in ("failed", "error")]
    if broken:
        names = ", ".join(_full_name(c) for c in broken[:3])
        text += f" ({names}{', ...' if len(broken) > 3 else ''})"
    return text


def _full_name(case: dict[str, Any]) -> str:
    return f"{case['classname']}.{case['name']}" if case["classname"] else str(case["name"])
