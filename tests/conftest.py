"""Fixtures shared by the whole suite, and how its tests share the workers.

A plain ``python -m pytest``, or one naming only folders, runs on ``WORKERS`` parallel workers
(pytest-xdist, ``--dist loadscope``: each module, or class, runs on one worker, so a daemon a
module's tests share starts once; xdist's ``loadgroup`` cannot rename nodes on pytest 9). A run
naming files or tests runs in one process, as does ``-n 0`` or ``-p no:xdist``; ``-n N`` picks
the number of workers. A test marked ``serial`` measures what the other workers' load would
distort (CPU shares, wall-clock budgets of CPU-bound work): it runs while no other test of the
run does.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")

# More workers than the 2 cores this suite is measured on: its tests mostly wait on child
# processes, sockets and timers, so the workers' waits overlap.
WORKERS = 4

# The suite starts hundreds of Python children (daemons, CLI commands, services), each
# importing the package afresh. With bytecode writing turned off in the environment
# (PYTHONDONTWRITEBYTECODE, set on some machines and CI images), each of them compiled every
# module again: ~1.3 CPU-s a child. Their bytecode is cached for the run outside the working
# tree instead, which keeps the tree as free of bytecode as the setting asked.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
    _pycache = Path(tempfile.gettempdir()) / f"gaia-tests-pycache-{os.getuid()}"
    os.environ["PYTHONPYCACHEPREFIX"] = str(_pycache)
    sys.pycache_prefix = str(_pycache)
    sys.dont_write_bytecode = False


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


def _names_only_folders(config: pytest.Config) -> bool:
    here = config.invocation_params.dir
    return all((here / arg.split("::")[0]).is_dir() for arg in config.args)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Run on ``WORKERS`` workers unless the command line chose (``-n``, ``--tx``), xdist is
    absent or disabled, the run debugs (``--pdb``, ``-s``), or it names files or tests. Runs
    before xdist's own hook, which turns the worker count into worker processes."""
    option = config.option
    if (
        not config.pluginmanager.hasplugin("xdist")
        or hasattr(config, "workerinput")
        or option.numprocesses is not None
        or option.tx
        or option.usepdb
        or option.capture == "no"  # -s: output to the terminal, which workers would swallow
        or not _names_only_folders(config)
    ):
        return
    option.numprocesses = WORKERS
    if option.dist == "no":
        option.dist = "loadscope"
        # In collection order, which starts with the longest modules (tests/chaos), rather
        # than by number of tests, which left those few long tests to run last, alone.
        option.loadscopereorder = False


def pytest_configure(config: pytest.Config) -> None:
    global _run_lock
    if hasattr(config, "workerinput"):  # an xdist worker: its basetemp is in the run's own
        _run_lock = RunLock(Path(config.option.basetemp).parent / "run-lock")
    if not getattr(config.option, "tx", None):  # a process that runs tests, not xdist's controller
        _children_skip_hypothesis_plugin()


def _children_skip_hypothesis_plugin() -> None:
    """The pytest runs the tests start (pipeline stages, improve cycles) leave out hypothesis's
    pytest plugin, which imports hypothesis at every session's end (~1 CPU-s a run) even when
    no test uses it. Set after this process parsed its own options, so it keeps the plugin."""
    flag = "-p no:hypothesispytest"
    current = os.environ.get("PYTEST_ADDOPTS", "")
    if flag not in current:
        os.environ["PYTEST_ADDOPTS"] = f"{current} {flag}".strip()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    if _run_lock is None:  # one process runs every test: nothing to share
        yield
        return
    with _run_lock.held(exclusive=item.get_closest_marker("serial") is not None):
        yield
