"""One thread that sees every watched process exit: a selector on their pidfds.

A pidfd turns readable once its process has exited (Linux 5.3+), so a single thread blocked
in ``epoll`` on all of them sees each exit within milliseconds, as a thread per process
blocked in ``wait()`` did, for one thread in all instead of one per service. Where the kernel
has no pidfd, :func:`open_pidfd` answers None and the caller keeps a thread of its own.

Every change to the selector happens in its thread (requests arrive through a wake pipe),
and a pidfd is closed there only once it is unregistered: a descriptor number reused by a
new watch can never be mistaken for an old one's exit.
"""

from __future__ import annotations

import os
import selectors
import threading
from collections.abc import Callable

import structlog

_log = structlog.get_logger("gaia.process")

_CANCEL_TIMEOUT = 5.0  # seconds cancel() waits for the thread (it answers in microseconds)


def open_pidfd(pid: int) -> int | None:
    """A pidfd for ``pid``, or None where the kernel has none (before 5.3).
    ProcessLookupError passes through: the process is gone."""
    try:
        return os.pidfd_open(pid)
    except AttributeError:
        return None
    except OSError as exc:
        if isinstance(exc, ProcessLookupError):
            raise
        return None


class Watch:
    """One watched pidfd; ``ended`` is set once it is closed (exited or cancelled)."""

    def __init__(self, pidfd: int, on_exit: Callable[[], None]) -> None:
        self.pidfd = pidfd
        self.on_exit = on_exit
        self.ended = threading.Event()


class ExitWatcher:
    """Calls ``on_exit`` from its one thread when a watched process exits."""

    def __init__(self, name: str = "process-exits") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._requests: list[tuple[bool, Watch]] = []  # (cancel?, watch), in order
        self._wake: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None

    def add(self, pidfd: int, on_exit: Callable[[], None]) -> Watch:
        """Watch ``pidfd`` (the watcher owns and closes it); ``on_exit`` must be quick."""
        watch = Watch(pidfd, on_exit)
        self._post(False, watch)
        return watch

    def cancel(self, watch: Watch) -> None:
        """Stop watching: ``on_exit`` is not called after this returns, and the pidfd is
        closed. Harmless after the exit or a first cancel."""
        if watch.ended.is_set():
            return
        self._post(True, watch)
        if threading.current_thread() is not self._thread:
            watch.ended.wait(_CANCEL_TIMEOUT)

    def _post(self, cancel: bool, watch: Watch) -> None:
        with self._lock:
            if self._thread is None:
                self._wake = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            assert self._wake is not None
            self._requests.append((cancel, watch))
            os.write(self._wake[1], b"x")

    def _run(self) -> None:
        assert self._wake is not None
        selector = selectors.DefaultSelector()
        selector.register(self._wake[0], selectors.EVENT_READ, None)
        while True:
            for key, _ in selector.select():
                if key.data is None:
                    self._serve(selector)
                elif not key.data.ended.is_set():  # not cancelled earlier in this batch
                    self._end(selector, key.data)
                    self._call(key.data)

    def _serve(self, selector: selectors.BaseSelector) -> None:
        assert self._wake is not None
        while True:
            try:
                os.read(self._wake[0], 4096)
            except BlockingIOError:
                break
        with self._lock:
            requests, self._requests = self._requests, []
        for cancel, watch in requests:
            if watch.ended.is_set():
                continue
            if cancel:
                self._end(selector, watch)
            else:
                selector.register(watch.pidfd, selectors.EVENT_READ, watch)

    @staticmethod
    def _end(selector: selectors.BaseSelector, watch: Watch) -> None:
        selector.unregister(watch.pidfd)
        os.close(watch.pidfd)
        watch.ended.set()

    @staticmethod
    def _call(watch: Watch) -> None:
        try:
            watch.on_exit()
        except Exception:  # noqa: BLE001 - one bad callback must not blind the watcher
            _log.exception("process.exit_callback_failed", pidfd=watch.pidfd)


EXITS = ExitWatcher()  # the daemon's one exit watcher
