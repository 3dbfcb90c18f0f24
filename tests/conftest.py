"""Fixtures shared by the whole suite, and how its tests share the workers.

The suite runs on parallel workers (pytest-xdist, ``--dist loadgroup`` in pyproject.toml).
A test that uses a module- or class-scoped fixture (a daemon started once for a module) is
kept on one worker with the other users of that fixture, so the fixture starts once. A test
marked ``serial`` measures what the other workers' load would distort (CPU shares, wall-clock
budgets of CPU-bound work): it runs while no other test of the run does.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")
SHARED_SCOPES: dict[str, type[pytest.Node]] = {
    "class": pytest.Class,
    "module": pytest.Module,
    "package": pytest.Package,
}


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.005, what: str = ""
) -> T:
    """Re-check ``predicate`` until it is truthy and return its value; fail the test after
    ``timeout`` seconds. The sleep is the polling interval of a bounded re-check, not
    synchronisation."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {what or predicate}")
        time.sleep(interval)


def shared_fixtures(item: pytest.Item) -> set[str]:
    """The class- and module-scoped fixtures ``item`` uses (directly or through others),
    each named with the node it is set up for."""
    shared = set()
    for name, defs in item._fixtureinfo.name2fixturedefs.items():  # type: ignore[attr-defined]
        scope = defs[-1].scope  # the definition that applies here (the closest override)
        if scope in SHARED_SCOPES and (node := item.getparent(SHARED_SCOPES[scope])) is not None:
            shared.add(f"{node.nodeid}::{name}")
    return shared


@pytest.hookimpl(tryfirst=True)  # before xdist's worker reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """One xdist group for each set of tests linked by the fixture instances they share."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    uses = {item: sorted(shared_fixtures(item)) for item in items}
    for keys in uses.values():
        for key in keys[1:]:
            parent[root(key)] = root(keys[0])
    for item, keys in uses.items():
        if keys and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(root(keys[0])))


class RunLock:
    """A readers-writer lock over the workers of one run: every test holds it shared, a
    ``serial`` test exclusively. The turnstile makes a waiting ``serial`` test stop new tests
    from starting, so it waits only for those already running."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(exist_ok=True)
        self.turnstile = os.open(directory / "turnstile", os.O_RDWR | os.O_CREAT, 0o600)
        self.main = os.open(directory / "main", os.O_RDWR | os.O_CREAT, 0o600)

    @contextlib.contextmanager
    def held(self, exclusive: bool) -> Iterator[None]:
        fcntl.flock(self.turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(self.main, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        finally:
            if not exclusive:
                fcntl.flock(self.turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(self.main, fcntl.LOCK_UN)
            if exclusive:
                fcntl.flock(self.turnstile, fcntl.LOCK_UN)


_run_lock: RunLock | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _run_lock
    if hasattr(config, "workerinput"):  # an xdist worker: its basetemp is in the run's own
        _run_lock = RunLock(Path(config.option.basetemp).parent / "run-lock")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    if _run_lock is None:  # one process runs every test: nothing to share
        yield
        return
    with _run_lock.held(exclusive=item.get_closest_marker("serial") is not None):
        yield
