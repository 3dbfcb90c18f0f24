"""JUnit XML results: what a test command wrote, as per-test results for the history.

Reads the common shape (pytest ``--junitxml``, Maven Surefire, Go's go-junit-report): a
``<testsuites>`` or ``<testsuite>`` root with ``<testcase name classname time>`` elements,
each with an optional ``<failure>``, ``<error>`` or ``<skipped>`` child. The file comes from
the release's own test command, so it is trusted as much as the release; expat's built-in
entity-expansion limits guard against the classic XML bombs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from gaia_actors.pipeline.errors import StageError

MAX_CASES = 1000  # cases kept per stage; the counts always cover every case
MAX_MESSAGE = 500
_OUTCOMES = ("failure", "error", "skipped")
_STATUS = {"failure": "failed", "error": "error", "skipped": "skipped"}


def parse(path: Path) -> dict[str, Any]:
    """Counts and per-test results of the JUnit XML file at ``path``.

    ``{"total", "passed", "failed", "errors", "skipped", "time", "cases": [{"name",
    "classname", "status", "time", "message"}]}``, failed and erroring cases first, at most
    ``MAX_CASES`` of them. Raises StageError for a file that is not JUnit XML.
    """
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError) as exc:
        raise StageError(f"cannot read the JUnit XML results {path}: {exc}") from exc
    if root.tag not in ("testsuites", "testsuite"):
        raise StageError(f"{path} is not JUnit XML (root element <{root.tag}>)")
    cases = [_case(element) for element in root.iter("testcase")]
    counts = {status: sum(c["status"] == status for c in cases) for status in _STATUS.values()}
    cases.sort(key=lambda c: c["status"] not in ("failed", "error"))
    return {
        "total": len(cases),
        "passed": sum(c["status"] == "passed" for c in cases),
        "failed": counts["failed"],
        "errors": counts["error"],
        "skipped": counts["skipped"],
        "time": round(sum(c["time"] for c in cases), 3),
        "cases": cases[:MAX_CASES],
    }


def _case(element: ElementTree.Element) -> dict[str, Any]:
    outcome = next((child for child in element if child.tag in _OUTCOMES), None)
    message = ""
    if outcome is not None:
        message = (outcome.get("message") or outcome.text or "").strip()[:MAX_MESSAGE]
    return {
        "name": element.get("name", ""),
        "classname": element.get("classname", ""),
        "status": "passed" if outcome is None else _STATUS[outcome.tag],
        "time": _seconds(element.get("time")),
        "message": message,
    }


def _seconds(text: str | None) -> float:
    try:
        return round(float(text or 0), 3)
    except ValueError:
        return 0.0  # a malformed time is not worth failing a test report over


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
