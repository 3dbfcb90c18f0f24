"""The one exit watcher: every watched process's exit seen at once by a single thread."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from gaia_actors.process import spawn
from gaia_actors.process.exits import ExitWatcher, open_pidfd

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def _sleepers(count: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen(SLEEPER) for _ in range(count)]


def test_one_thread_sees_each_exit_at_once() -> None:
    watcher = ExitWatcher("test-exits")
    children = _sleepers(20)
    seen: dict[int, float] = {}
    all_seen = threading.Event()

    def on_exit(pid: int) -> None:
        seen[pid] = time.monotonic()
        if len(seen) == len(children):
            all_seen.set()

    try:
        for child in children:
            pidfd = open_pidfd(child.pid)
            assert pidfd is not None
            watcher.add(pidfd, lambda pid=child.pid: on_exit(pid))
        assert [t.name for t in threading.enumerate()].count("test-exits") == 1
        killed = {}
        for child in children:
            killed[child.pid] = time.monotonic()
            child.kill()
        assert all_seen.wait(10)
        assert max(seen[pid] - killed[pid] for pid in seen) < 1.0
    finally:
        for child in children:
            child.kill()
            child.wait()


def test_a_cancelled_watch_closes_its_pidfd_and_never_calls_back() -> None:
    watcher = ExitWatcher("test-exits")
    (child,) = _sleepers(1)
    called = threading.Event()
    try:
        pidfd = open_pidfd(child.pid)
        assert pidfd is not None
        watch = watcher.add(pidfd, called.set)
        watcher.cancel(watch)
        watcher.cancel(watch)  # twice is harmless
        assert watch.ended.is_set()
        with pytest.raises(OSError):
            os.fstat(pidfd)  # closed by the watcher before cancel() returned
        child.kill()
        child.wait()
        # A later exit on the same watcher proves the cancelled one was passed over.
        (other,) = _sleepers(1)
        later = threading.Event()
        other_fd = open_pidfd(other.pid)
        assert other_fd is not None
        watcher.add(other_fd, later.set)
        other.kill()
        other.wait()
        assert later.wait(10)
        assert not called.is_set()
    finally:
        child.kill()
        child.wait()


def test_a_failing_callback_does_not_blind_the_watcher() -> None:
    watcher = ExitWatcher("test-exits")
    first, second = _sleepers(2)
    seen = threading.Event()

    def boom() -> None:
        raise RuntimeError("boom")

    for child, on_exit in ((first, boom), (second, seen.set)):
        pidfd = open_pidfd(child.pid)
        assert pidfd is not None
        watcher.add(pidfd, on_exit)
    first.kill()
    first.wait()
    second.kill()
    second.wait()
    assert seen.wait(10)


def test_many_services_cost_no_thread_each(tmp_path: os.PathLike[str]) -> None:
    before = threading.active_count()
    children = [spawn(SLEEPER, str(tmp_path)) for _ in range(10)]
    try:
        # Each service's output goes to a memory reader thread here; its exit costs none.
        assert threading.active_count() - before <= len(children) + 1
        assert not [t for t in threading.enumerate() if t.name.startswith("reap-")]
        os.killpg(children[0].pid, signal.SIGKILL)
        assert children[0].wait(10)
        assert children[0].exit_code == -signal.SIGKILL
    finally:
        for child in children:
            child.kill()
            child.wait(10)
