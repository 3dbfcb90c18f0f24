"""JUnit XML test results, as typed per-test records.

Reads the common shape (pytest ``--junitxml``, Maven Surefire, Go's go-junit-report): a
``<testsuites>`` or ``<testsuite>`` root with ``<testcase name classname time>`` elements,
each with an optional ``<failure>``, ``<error>`` or ``<skipped>`` child. The files come from
test commands the project runs itself; expat's built-in entity-expansion limits guard against
the classic XML bombs. Parse errors are ``xml.etree.ElementTree.ParseError``; callers say
which file and what it means for them.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from xml.etree import ElementTree

from supervisors.records import record

ROOT_TAGS = ("testsuites", "testsuite")


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"


# The child element that marks each outcome, in the order one is looked for when a testcase
# carries several (pytest writes a failure and a teardown error into the same testcase).
_MARKERS = (("failure", Outcome.FAILED), ("error", Outcome.ERROR), ("skipped", Outcome.SKIPPED))


@record
class TestCaseResult:
    """One test as JUnit XML (or ``go test -json``) reports it."""

    __test__ = False  # not a pytest class, whatever its name says

    name: str
    classname: str
    outcome: Outcome
    seconds: float
    message: str = ""  # the outcome element's ``message`` attribute
    detail: str = ""  # the outcome element's text (a failure's traceback)


@record
class JUnitReport:
    """Counts and per-test results of one test run."""

    cases: tuple[TestCaseResult, ...]

    def count(self, outcome: Outcome) -> int:
        return sum(1 for case in self.cases if case.outcome is outcome)

    @property
    def tests(self) -> int:
        return len(self.cases)

    @property
    def passed(self) -> int:
        return self.count(Outcome.PASSED)

    @property
    def failures(self) -> int:
        return self.count(Outcome.FAILED)

    @property
    def errors(self) -> int:
        return self.count(Outcome.ERROR)

    @property
    def skipped(self) -> int:
        return self.count(Outcome.SKIPPED)

    @property
    def pass_rate(self) -> float | None:
        """passed / (tests - skipped); None when nothing ran."""
        ran = self.tests - self.skipped
        return self.passed / ran if ran else None


def parse(xml_text: str) -> JUnitReport:
    """Every ``testcase`` of a JUnit XML document (``testsuites`` or a single ``testsuite``)."""
    return from_element(ElementTree.fromstring(xml_text))


def read(path: Path) -> tuple[str, JUnitReport]:
    """The root element's tag and the results of the JUnit XML file at ``path`` (the tag lets
    a caller refuse a file that is XML but not JUnit)."""
    root = ElementTree.parse(path).getroot()
    return root.tag, from_element(root)


def from_element(root: ElementTree.Element) -> JUnitReport:
    return JUnitReport(tuple(_case(node) for node in root.iter("testcase")))


def _case(node: ElementTree.Element) -> TestCaseResult:
    outcome, message, detail = Outcome.PASSED, "", ""
    for tag, kind in _MARKERS:
        child = node.find(tag)
        if child is not None:
            outcome, message, detail = kind, child.get("message", ""), child.text or ""
            break
    return TestCaseResult(
        name=node.get("name", ""),
        classname=node.get("classname", ""),
        outcome=outcome,
        seconds=_seconds(node.get("time")),
        message=message,
        detail=detail,
    )


def _seconds(text: str | None) -> float:
    try:
        return float(text or 0)
    except ValueError:
        return 0.0  # a malformed time is not worth failing a test report over
