"""JUnit XML results as typed records: outcomes, counts, messages and failure text."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest

from gaia_actors.junit import Outcome, parse, read

JUNIT = """<?xml version="1.0"?>
<testsuites><testsuite name="s" tests="4">
<testcase classname="t" name="ok" time="0.5"/>
<testcase classname="t" name="bad" time="0.1"><failure message="boom">trace</failure></testcase>
<testcase classname="t" name="err"><error message="fixture"/></testcase>
<testcase classname="t" name="skip"><skipped message="later"/></testcase>
</testsuite></testsuites>"""


def test_junit_counts_and_pass_rate_excludes_skipped() -> None:
    report = parse(JUNIT)
    counts = (report.tests, report.passed, report.failures, report.errors, report.skipped)
    assert counts == (4, 1, 1, 1, 1)
    assert report.pass_rate == pytest.approx(1 / 3)
    assert report.cases[1].message == "boom"
    assert parse("<testsuite/>").pass_rate is None


def test_a_case_keeps_its_failure_text_and_a_malformed_time_reads_zero() -> None:
    (case,) = parse(
        '<testsuite><testcase name="x" time="1,5"><failure>Traceback</failure></testcase>'
        "</testsuite>"
    ).cases
    assert (case.outcome, case.message, case.detail, case.seconds) == (
        Outcome.FAILED,
        "",
        "Traceback",
        0.0,
    )


def test_a_failure_and_a_teardown_error_in_one_case_count_as_the_failure() -> None:
    (case,) = parse(
        '<testsuite><testcase name="x"><error message="teardown"/><failure message="assert"/>'
        "</testcase></testsuite>"
    ).cases
    assert (case.outcome, case.message) == (Outcome.FAILED, "assert")


def test_read_names_the_root_element_and_raises_on_broken_xml(tmp_path: Path) -> None:
    path = tmp_path / "results.xml"
    path.write_text("<report><testcase name='x'/></report>", encoding="utf-8")
    tag, report = read(path)
    assert (tag, report.tests) == ("report", 1)
    path.write_text("<testsuite>", encoding="utf-8")
    with pytest.raises(ElementTree.ParseError):
        read(path)
