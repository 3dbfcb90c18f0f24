"""Where the suite's CPU goes, per module: ``python -m pytest -p tests.cpu_report``.

Each test's CPU is taken in the process that runs it: its own (every thread, so the actors
a test starts in-process count too) and that of the child processes it waited for (daemons,
services, CLI commands, pytest runs: ``RUSAGE_CHILDREN``, counted when they are reaped, so a
module-scoped daemon is counted to the test that stops it). A child nobody waits for is not
counted. With xdist, each worker sends its figures with its reports, and the run ends with
the modules that took the most CPU.
"""

from __future__ import annotations

import resource
import time
from collections import defaultdict
from collections.abc import Iterator

import pytest

SHOWN = 25  # modules listed at the end
_PROPERTY = "cpu_report"


def _cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


_START = pytest.StashKey[tuple[float, float, float]]()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    item.stash[_START] = (time.monotonic(), *_cpu())
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    if call.when == "teardown":  # after the teardown, before its report is sent
        wall, own, children = item.stash[_START]
        now_own, now_children = _cpu()
        spent = (time.monotonic() - wall, now_own - own, now_children - children)
        item.user_properties.append((_PROPERTY, spent))
    yield


# module -> [tests, wall seconds, own CPU-s, children's CPU-s], in the process that reports
_modules: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "teardown":
        return
    for name, spent in report.user_properties:
        if name == _PROPERTY:
            row = _modules[report.nodeid.split("::", maxsplit=1)[0]]
            row[0] += 1
            for column, value in enumerate(spent, start=1):
                row[column] += value


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rows = _modules
    if not rows:
        return
    own = sum(r[2] for r in rows.values())
    children = sum(r[3] for r in rows.values())
    write = terminalreporter.write_line
    terminalreporter.section("CPU by module")
    write(f"tests' own processes {own:.1f} CPU-s, the children they waited for {children:.1f}")
    write(f"{'CPU-s':>7} {'own':>6} {'child':>6} {'wall':>6} {'tests':>5}  module")
    ranked = sorted(rows.items(), key=lambda kv: -(kv[1][2] + kv[1][3]))
    for module, (count, wall, mine, theirs) in ranked[:SHOWN]:
        write(
            f"{mine + theirs:7.1f} {mine:6.1f} {theirs:6.1f} {wall:6.1f} {int(count):5d}  {module}"
        )
