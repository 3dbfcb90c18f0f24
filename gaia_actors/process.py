"""Child processes: spawn in their own group, watch, stop, adopt, run a command with a timeout.

Shared by the environments (long-running services), the pipeline stages and the improvement
cycle (commands with a deadline). Everything here is synchronous and thread-based; the actors
turn the callbacks into messages.

Why the pieces look the way they do:

- Every child starts with ``start_new_session=True`` and is signalled through its process
  group, so grandchildren die with it (supervisord ``stopasgroup``/``killasgroup``). When the
  leader exits, whatever is left of its group is SIGKILLed too (systemd
  ``KillMode=control-group``): a half-dead service must not keep its port.
- Exits are seen by a thread blocked in ``wait()`` (our children) or on a pidfd (adopted
  processes), ~2 ms here, instead of polling.
- A service's output goes through a pipe to a small *log pump process*
  (``environments/logfiles.py`` run as a script), not to a thread of the daemon: the pump
  outlives a daemon restart, so an adopted service keeps a reader on its stdout instead of
  dying of EPIPE (the runit/svlogd model).
  Stage commands, which never outlive the daemon, are read by a thread into a bounded tail.
- A pid file records the pid *and* the process start time (``/proc/<pid>/stat`` field 22), so a
  restarted daemon never adopts an unrelated process that reused the pid (pid_max is 32768 here).

Its errors, ``ProcessError`` and its subclasses, are drawn in the tree of ``gaia_actors.errors``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Generic, TypeVar

from gaia_actors.errors import GaiaError

__all__ = [
    "DEFAULT_LOG_RETENTION_DAYS",
    "AdoptedProcess",
    "Child",
    "LogSink",
    "PidFileError",
    "PidRecord",
    "ProcStats",
    "ProcessError",
    "RunResult",
    "SpawnError",
    "StopError",
    "adopt",
    "fsync_dir",
    "is_same_process",
    "proc_start_time",
    "proc_stats",
    "prune_logs",
    "read_log_tail",
    "read_pidfile",
    "remove_pidfile",
    "run",
    "spawn",
    "write_atomic",
    "write_pidfile",
]

# Log retention the environment actor uses unless configured otherwise.
DEFAULT_LOG_RETENTION_DAYS: Mapping[str, int] = MappingProxyType(
    {"dev": 7, "staging": 30, "prod": 90}
)
DEFAULT_TAIL_CHARS = 64 * 1024
KILL_TIMEOUT = 5.0  # seconds a SIGKILLed group may take to disappear before StopError
DRAIN_TIMEOUT = 2.0  # seconds to wait for the output of an exited process to be read
POLL_INTERVAL = 0.05  # /proc polling for adopted processes when pidfd is unavailable
_CANCEL_CHECK = 0.02  # run(): how often a cancel Event is looked at
_CHUNK = 64 * 1024
_MAX_LINE = 64 * 1024  # a "line" without newline is split after this many bytes
# The log pump runs as a script by path, not imported: see environments/logfiles.py.
_LOG_PUMP = Path(__file__).resolve().with_name("environments") / "logfiles.py"
_ROTATED = re.compile(r".+\.\d+$")


# --------------------------------------------------------------------------- errors


class ProcessError(GaiaError):
    """A child process could not be run, stopped or found again."""


class SpawnError(ProcessError):
    """The command could not be started."""

    def __init__(self, argv: Sequence[str], cwd: Path, reason: str) -> None:
        self.argv = tuple(argv)
        self.cwd = cwd
        super().__init__(f"cannot start {list(argv)!r} in {cwd}: {reason}")


class StopError(ProcessError):
    """The process group did not disappear after SIGKILL (stuck in the kernel?)."""

    def __init__(self, pid: int, waited: float) -> None:
        self.pid = pid
        super().__init__(f"process {pid} still running {waited:.1f}s after SIGKILL")


class PidFileError(ProcessError):
    """A pid file exists but does not hold a pid and a start time."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        super().__init__(f"unreadable pid file {path}: {reason}")


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class LogSink:
    """Where a service's stdout+stderr go: ``path``, rotated at ``max_bytes`` keeping
    ``backups`` older files (``app.log.1`` is the newest of them)."""

    path: Path
    max_bytes: int = 10 * 1024 * 1024
    backups: int = 5


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome of :func:`run`. ``exit_code`` is negative for a signal (``-9`` when killed)."""

    exit_code: int
    duration: float
    timed_out: bool
    cancelled: bool
    output_tail: str
    pid: int
    stdout: str = ""  # with run(capture=True): the whole stdout, and stderr apart
    stderr: str = ""

    @property
    def ok(self) -> bool:
        """Exited 0 on its own."""
        return self.exit_code == 0 and not self.timed_out and not self.cancelled


@dataclass(frozen=True, slots=True)
class ProcStats:
    """One sample of a process from /proc; pass it back as ``since`` for the next one."""

    pid: int
    start_time: int
    cpu_seconds: float
    cpu_percent: float  # since the previous sample, or over the whole life without one
    rss_bytes: int
    threads: int
    sampled_at: float  # time.monotonic()


@dataclass(frozen=True, slots=True)
class PidRecord:
    """What a pid file holds."""

    pid: int
    start_time: int


# --------------------------------------------------------------------------- /proc


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat; index ``n - 3`` is field ``n`` of proc(5)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may itself contain ") ".
    return raw[raw.rindex(b")") + 2 :].decode().split()


def _field(fields: list[str], number: int) -> str:
    return fields[number - 3]


def proc_start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot, or None when there is no such pid."""
    fields = _stat_fields(pid)
    return None if fields is None else int(_field(fields, 22))


def is_same_process(pid: int, start_time: int) -> bool:
    """True while ``pid`` is still the process that started at ``start_time`` and has not
    exited (a zombie counts as exited). Safe against pid reuse."""
    fields = _stat_fields(pid)
    if fields is None:
        return False
    return int(_field(fields, 22)) == start_time and _field(fields, 3) not in ("Z", "X")


def proc_stats(pid: int, since: ProcStats | None = None) -> ProcStats | None:
    """CPU, memory and threads of ``pid``; None when it is gone.

    ``cpu_percent`` covers the interval since ``since`` (the caller keeps the previous sample,
    so there is no shared state here); without one, or when the pid now names another
    process, it covers the process's whole life. 100 means one core busy.
    """
    fields = _stat_fields(pid)
    if fields is None:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    now = time.monotonic()
    start = int(_field(fields, 22))
    cpu = (int(_field(fields, 14)) + int(_field(fields, 15))) / ticks
    if (
        since is not None
        and (since.pid, since.start_time) == (pid, start)
        and now > since.sampled_at
    ):
        percent = 100.0 * (cpu - since.cpu_seconds) / (now - since.sampled_at)
    else:
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - start / ticks
        percent = 100.0 * cpu / age if age > 0 else 0.0
    return ProcStats(
        pid=pid,
        start_time=start,
        cpu_seconds=cpu,
        cpu_percent=percent,
        rss_bytes=int(_field(fields, 24)) * os.sysconf("SC_PAGE_SIZE"),
        threads=int(_field(fields, 20)),
        sampled_at=now,
    )


# --------------------------------------------------------------------------- files


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new entry in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never a
    partial one (temp file in the same directory, fsync, ``os.replace``)."""
    payload = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_pidfile(path: Path, pid: int, start_time: int) -> None:
    """Record ``pid`` and its start time, atomically."""
    write_atomic(path, json.dumps({"pid": pid, "start_time": start_time}) + "\n")


def read_pidfile(path: Path) -> PidRecord | None:
    """The record in ``path``; None when there is no pid file. Raises PidFileError when the
    file exists but is not one of ours (it is written atomically, so never half-written)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        raw = json.loads(text)
        return PidRecord(pid=int(raw["pid"]), start_time=int(raw["start_time"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise PidFileError(path, f"{type(exc).__name__}: {exc}") from exc


def remove_pidfile(path: Path) -> None:
    """Forget the recorded process (after it was stopped)."""
    path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- logs


def _last_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of one file, reading backwards in blocks."""
    with open(path, "rb") as src:
        position = src.seek(0, os.SEEK_END)
        data = b""
        while position > 0 and data.count(b"\n") <= count:
            step = min(_CHUNK, position)
            position -= step
            src.seek(position)
            data = src.read(step) + data
    return [_decode(line) for line in data.splitlines()[-count:]] if count > 0 else []


def read_log_tail(path: Path, count: int) -> list[str]:
    """The last ``count`` lines written to the rotated log ``path`` (reaching into
    ``path.1``, ``path.2``... when the current file holds fewer)."""
    lines: list[str] = []
    index = 0
    while len(lines) < count:
        candidate = path if index == 0 else path.with_name(f"{path.name}.{index}")
        if candidate.exists():
            lines = _last_lines(candidate, count - len(lines)) + lines
        elif index > 0:  # the current file may be missing for an instant while rotating
            break
        index += 1
    return lines


def prune_logs(directory: Path, max_age_days: float, now: datetime | None = None) -> list[Path]:
    """Delete rotated logs (``*.N``) last written more than ``max_age_days`` before ``now``.
    The active files are never touched. Returns what was deleted."""
    cutoff = (now or datetime.now(UTC)).timestamp() - max_age_days * 86400
    removed: list[Path] = []
    for entry in sorted(directory.iterdir()):
        if _ROTATED.fullmatch(entry.name) and entry.is_file() and entry.stat().st_mtime < cutoff:
            entry.unlink()
            removed.append(entry)
    return removed


# --------------------------------------------------------------------------- output capture


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").rstrip("\r")


class _LineSplitter:
    """Bytes in, complete decoded lines out."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> list[str]:
        *complete, self._pending = (self._pending + chunk).split(b"\n")
        while len(self._pending) > _MAX_LINE:
            complete.append(self._pending[:_MAX_LINE])
            self._pending = self._pending[_MAX_LINE:]
        return [_decode(line) for line in complete]

    def flush(self) -> list[str]:
        rest, self._pending = self._pending, b""
        return [_decode(rest)] if rest else []


class _LineTail:
    """The last lines of a stream within a character budget; safe to read from any thread."""

    def __init__(self, limit: int) -> None:
        self._limit = max(1, limit)
        self._lines: collections.deque[str] = collections.deque()
        self._size = 0
        self._lock = threading.Lock()

    def add(self, line: str) -> None:
        line = line[-self._limit :]
        with self._lock:
            self._lines.append(line)
            self._size += len(line) + 1
            while self._size > self._limit and len(self._lines) > 1:
                self._size -= len(self._lines.popleft()) + 1

    def last(self, count: int) -> list[str]:
        with self._lock:
            return list(self._lines)[-count:] if count > 0 else []


class _PipeReader:
    """A thread reading a pipe to its end, handing each chunk to :meth:`_take`."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._abandon = threading.Event()
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name=f"pump-{fd}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        try:
            while not self._abandon.is_set():
                if not poller.poll(100):  # wake now and then to notice close()
                    continue
                chunk = os.read(self._fd, _CHUNK)
                if not chunk:
                    break
                self._take(chunk)
            self._end()
        finally:
            os.close(self._fd)

    def _take(self, chunk: bytes) -> None:
        raise NotImplementedError

    def _end(self) -> None:
        """The pipe is at its end (or abandoned): flush what is pending."""

    def close(self, timeout: float) -> None:
        """Wait for EOF; after ``timeout`` give up on a pipe an escaped grandchild still holds."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abandon.set()
            self._thread.join()


class _OutputPump(_PipeReader):
    """Lines of a pipe into a :class:`_LineTail` and an optional line callback."""

    def __init__(self, fd: int, tail: _LineTail, on_line: Callable[[str], None] | None) -> None:
        self._tail = tail
        self._on_line = on_line
        self._splitter = _LineSplitter()
        super().__init__(fd)  # starts the thread: every attribute it reads is set

    def _take(self, chunk: bytes) -> None:
        self._emit(self._splitter.feed(chunk))

    def _end(self) -> None:
        self._emit(self._splitter.flush())

    def _emit(self, lines: list[str]) -> None:
        for line in lines:
            self._tail.add(line)
            if self._on_line is None or self.error is not None:
                continue
            try:
                self._on_line(line)
            except Exception as exc:  # noqa: BLE001 - the caller's callback; run() re-raises it
                self.error = exc


class _BytesPump(_PipeReader):
    """A pipe's whole output, byte for byte."""

    def __init__(self, fd: int) -> None:
        self.data = bytearray()
        super().__init__(fd)

    def _take(self, chunk: bytes) -> None:
        self.data += chunk

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


class _MemoryOutput:
    """Output kept in memory (stage commands, services without a log file)."""

    def __init__(self, fd: int, limit: int, on_line: Callable[[str], None] | None) -> None:
        self.lines = _LineTail(limit)
        self.pump = _OutputPump(fd, self.lines, on_line)

    def tail(self, count: int) -> list[str]:
        return self.lines.last(count)

    def drain(self) -> None:
        self.pump.close(DRAIN_TIMEOUT)


class _CapturedOutput:
    """stdout and stderr kept whole and apart (a tool's JSON report on stdout, its complaints
    on stderr)."""

    def __init__(self, out_fd: int, err_fd: int) -> None:
        self.stdout = _BytesPump(out_fd)
        self.stderr = _BytesPump(err_fd)

    def tail(self, count: int) -> list[str]:
        return self.stdout.text().splitlines()[-count:] if count > 0 else []

    def drain(self) -> None:
        self.stdout.close(DRAIN_TIMEOUT)
        self.stderr.close(DRAIN_TIMEOUT)


class _FileOutput:
    """Output written by a log pump process into a rotated file."""

    def __init__(self, log: LogSink, pump: subprocess.Popen[bytes]) -> None:
        self.log = log
        self.pump = pump

    def tail(self, count: int) -> list[str]:
        return read_log_tail(self.log.path, count)

    def drain(self) -> None:
        # The pump ends at EOF, once the service's group is gone; it is our child, so reap it.
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.pump.wait(DRAIN_TIMEOUT)


def _start_log_pump(log: LogSink, read_fd: int) -> subprocess.Popen[bytes]:
    log.path.parent.mkdir(parents=True, exist_ok=True)
    # -I: no PYTHON* variables, the script's folder not on sys.path; -S: no site (it needs
    # nothing outside the stdlib, and skipping site saves most of its start-up).
    argv = [sys.executable, "-I", "-S", str(_LOG_PUMP), str(log.path.resolve())]
    argv += [str(log.max_bytes), str(log.backups)]
    return subprocess.Popen(
        argv, stdin=read_fd, stdout=subprocess.DEVNULL, start_new_session=True, close_fds=True
    )


# --------------------------------------------------------------------------- handles

Code = TypeVar("Code")


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


class _Handle(Generic[Code]):
    """What a child and an adopted process share: exit event, callbacks, group signals."""

    def __init__(self, pid: int, start_time: int, pgid: int) -> None:
        self.pid = pid
        self.start_time = start_time
        self.pgid = pgid
        self._lock = threading.Lock()
        self._exited = threading.Event()
        self._result: tuple[Code] | None = None
        self._callbacks: list[Callable[[Code], None]] = []

    @property
    def exited(self) -> bool:
        return self._exited.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the process has exited (True) or ``timeout`` passed (False)."""
        return self._exited.wait(timeout)

    def watch(self, on_exit: Callable[[Code], None]) -> None:
        """Call ``on_exit(exit_code)`` from the watcher thread the moment the process exits
        (at once, in this thread, if it already has). Callbacks must be quick and not raise."""
        with self._lock:
            if self._result is None:
                self._callbacks.append(on_exit)
                return
            code = self._result[0]
        on_exit(code)

    def send_signal(self, sig: int) -> None:
        """Signal the whole process group (a no-op once the process has exited)."""
        if not self._exited.is_set():
            _signal_group(self.pgid, sig)

    def kill(self) -> None:
        """SIGKILL the process group."""
        self.send_signal(signal.SIGKILL)

    def stop(self, grace: float) -> Code:
        """SIGTERM the group, SIGKILL it after ``grace`` seconds; return the exit code."""
        if not self._exited.is_set():
            self.send_signal(signal.SIGTERM)
            if not self._exited.wait(grace):
                self.kill()
                if not self._exited.wait(KILL_TIMEOUT):
                    raise StopError(self.pid, grace + KILL_TIMEOUT)
        assert self._result is not None  # set before _exited
        return self._result[0]

    def detach(self) -> None:
        """Stop watching: the process runs on and its exit callbacks are never called (the
        next environment generation adopts it). A child we started keeps the thread that
        reaps it: nothing else would, and it would linger as a zombie."""

    def _finish(self, code: Code) -> None:
        # The leader is gone: kill what is left of its group (systemd KillMode=control-group).
        # The pgid cannot be reused while any member lives; once it is empty the kill is a no-op.
        _signal_group(self.pgid, signal.SIGKILL)
        with self._lock:
            self._result = (code,)
            self._exited.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(code)


class Child(_Handle[int]):
    """A process we started (see :func:`spawn`). Exit codes follow ``Popen.returncode``:
    negative for a signal."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        output: _MemoryOutput | _FileOutput | _CapturedOutput,
    ) -> None:
        start_time = proc_start_time(popen.pid)
        if start_time is None:  # not reaped yet, so /proc/<pid> must exist
            raise ProcessError(f"process {popen.pid} has no /proc entry")
        super().__init__(popen.pid, start_time, popen.pid)
        self.started = time.monotonic()
        self._popen = popen
        self._output = output
        self._drained = threading.Event()
        threading.Thread(target=self._reap, name=f"reap-{self.pid}", daemon=True).start()

    def _reap(self) -> None:
        self._finish(self._popen.wait())
        self._output.drain()
        self._drained.set()

    @property
    def exit_code(self) -> int | None:
        """The exit code, or None while running."""
        return None if self._result is None else self._result[0]

    def tail(self, count: int) -> list[str]:
        """The last ``count`` lines of output (complete once the process has exited)."""
        if self._exited.is_set():
            self._drained.wait(DRAIN_TIMEOUT * 2)
        return self._output.tail(count)

    def _output_error(self) -> Exception | None:
        return self._output.pump.error if isinstance(self._output, _MemoryOutput) else None

    def captured(self) -> tuple[str, str]:
        """The whole stdout and stderr of a child started to capture them, else ("", "")."""
        if not isinstance(self._output, _CapturedOutput):
            return "", ""
        self._drained.wait()  # drain() gives up on held pipes after DRAIN_TIMEOUT
        return self._output.stdout.text(), self._output.stderr.text()


def _popen(
    argv: Sequence[str],
    cwd: Path | str,
    env: Mapping[str, str] | None,
    output_fd: int,
    error_fd: int | None = None,
    *,
    input_fd: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv``; stderr goes to ``error_fd``, or with stdout to ``output_fd``; stdin
    reads ``input_fd`` (else /dev/null)."""
    if not argv:
        raise SpawnError(argv, Path(cwd), "empty argv")
    try:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL if input_fd is None else input_fd,
            stdout=output_fd,
            stderr=output_fd if error_fd is None else error_fd,
            start_new_session=True,  # own session and group: signal the group, not just the pid
            close_fds=True,
        )
    except OSError as exc:
        raise SpawnError(argv, Path(cwd), str(exc)) from exc


def _spawn_to_memory(
    argv: Sequence[str],
    cwd: Path | str,
    env: Mapping[str, str] | None,
    limit: int,
    on_line: Callable[[str], None] | None,
    *,
    input_fd: int | None = None,
) -> Child:
    read_fd, write_fd = os.pipe()
    try:
        popen = _popen(argv, cwd, env, write_fd, input_fd=input_fd)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return Child(popen, _MemoryOutput(read_fd, limit, on_line))


def _spawn_captured(
    argv: Sequence[str], cwd: Path | str, env: Mapping[str, str] | None, input_fd: int | None
) -> Child:
    (out_read, out_write), (err_read, err_write) = os.pipe(), os.pipe()
    try:
        popen = _popen(argv, cwd, env, out_write, err_write, input_fd=input_fd)
    except BaseException:
        os.close(out_read)
        os.close(err_read)
        raise
    finally:
        os.close(out_write)
        os.close(err_write)
    return Child(popen, _CapturedOutput(out_read, err_read))


def _spawn_to_log(
    argv: Sequence[str], cwd: Path | str, env: Mapping[str, str] | None, log: LogSink
) -> Child:
    read_fd, write_fd = os.pipe()
    try:
        popen = _popen(argv, cwd, env, write_fd)
        try:
            pump = _start_log_pump(log, read_fd)
        except BaseException:
            _signal_group(popen.pid, signal.SIGKILL)
            popen.wait()
            raise
    finally:
        os.close(read_fd)
        os.close(write_fd)
    return Child(popen, _FileOutput(log, pump))


def spawn(
    argv: Sequence[str],
    cwd: Path | str,
    env: Mapping[str, str] | None = None,
    log: LogSink | None = None,
    *,
    tail_limit: int = DEFAULT_TAIL_CHARS,
) -> Child:
    """Start ``argv`` (no shell) in ``cwd`` in its own session and process group.

    stdout and stderr go, merged, to ``log`` through a log pump process (rotated by size; it
    survives a daemon restart), or without a ``log`` into an in-memory tail of ``tail_limit``
    characters. ``env`` None inherits ours. A thread reaps the child at once, so
    :meth:`Child.watch` callbacks fire within milliseconds of the exit.
    """
    if log is None:
        return _spawn_to_memory(argv, cwd, env, tail_limit, None)
    return _spawn_to_log(argv, cwd, env, log)


def run(
    argv: Sequence[str],
    cwd: Path | str,
    env: Mapping[str, str] | None = None,
    *,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
    on_line: Callable[[str], None] | None = None,
    output_limit: int = DEFAULT_TAIL_CHARS,
    capture: bool = False,
    grace: float = 0.0,
    input: bytes | None = None,
) -> RunResult:
    """Run a stage, test or tool command to completion.

    A ``timeout`` (seconds) or a set ``cancel`` event SIGKILLs the whole process group,
    grandchildren included (after a SIGTERM and ``grace`` seconds, if ``grace`` is given);
    so does the command's own exit (nothing it started outlives it). With ``capture``,
    stdout and stderr are kept whole and apart in ``RunResult.stdout``/``stderr`` (lines
    are then neither delivered nor kept in ``output_tail``).
    Each output line goes to ``on_line`` as it arrives (from a reader thread); if ``on_line``
    raises, it is not called again and the exception is re-raised here once the command is
    over. ``output_tail`` keeps the last ``output_limit`` characters. A child process that
    buffers its stdout (Python without ``-u``) delivers its lines late: that is its choice.
    ``input`` is the command's stdin (else /dev/null).
    """
    started = time.monotonic()
    with _stdin(input) as input_fd:
        if capture:
            child = _spawn_captured(argv, cwd, env, input_fd)
        else:
            child = _spawn_to_memory(argv, cwd, env, output_limit, on_line, input_fd=input_fd)
    timed_out = cancelled = False
    try:
        timed_out, cancelled = _await_exit(child, started, timeout, cancel)
    finally:
        if not child.exited:
            _end_group(child, grace)
    duration = time.monotonic() - started
    tail = "" if capture else "\n".join(child.tail(sys.maxsize))
    if (error := child._output_error()) is not None:
        raise error
    assert child.exit_code is not None
    stdout, stderr = child.captured()
    return RunResult(
        child.exit_code, duration, timed_out, cancelled, tail, child.pid, stdout, stderr
    )


@contextlib.contextmanager
def _stdin(data: bytes | None) -> Iterator[int | None]:
    """A descriptor to give a child as stdin holding ``data``: an unlinked file, not a pipe,
    so a command that never reads it cannot block a writer."""
    if data is None:
        yield None
        return
    with tempfile.TemporaryFile() as file:
        file.write(data)
        file.flush()
        file.seek(0)
        yield file.fileno()


def _end_group(child: Child, grace: float) -> None:
    """SIGKILL the group, after a SIGTERM and ``grace`` seconds if there is a grace period."""
    if grace > 0:
        child.stop(grace)
        return
    child.kill()
    if not child.wait(KILL_TIMEOUT):
        raise StopError(child.pid, KILL_TIMEOUT)


def _await_exit(
    child: Child, started: float, timeout: float | None, cancel: threading.Event | None
) -> tuple[bool, bool]:
    """Wait for the exit, the deadline or the cancel event; returns (timed_out, cancelled)."""
    deadline = None if timeout is None else started + timeout
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return True, False
        if cancel is not None:
            # An Event cannot be waited on together with the process: look at it every 20 ms.
            remaining = _CANCEL_CHECK if remaining is None else min(remaining, _CANCEL_CHECK)
        if child.wait(remaining):
            return False, False
        if cancel is not None and cancel.is_set():
            return False, True


# --------------------------------------------------------------------------- adoption


def _open_pidfd(pid: int) -> int | None:
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


class AdoptedProcess(_Handle[int | None]):
    """A live process started by an earlier daemon, found through its pid file.

    It is not our child, so its exit code cannot be known: callbacks and :meth:`stop` get
    None. Its exit is seen through a pidfd (at once), or by polling /proc every 50 ms on
    kernels without pidfd.
    """

    def __init__(self, pid: int, start_time: int, pidfd: int | None, log: LogSink | None) -> None:
        pgid = os.getpgid(pid)
        # Never signal our own group through a process that shares it.
        super().__init__(pid, start_time, pgid if pgid != os.getpgrp() else pid)
        self.log = log
        self.uses_pidfd = pidfd is not None
        self._detached = threading.Event()
        # detach() writes to this pipe to wake the watcher blocked on the pidfd, which then
        # ends and closes its descriptors: an actor restart must leave nothing behind.
        self._wake_lock = threading.Lock()
        self._wake: tuple[int, int] | None = os.pipe() if pidfd is not None else None
        target = self._wait_pidfd if pidfd is not None else self._poll_proc
        threading.Thread(target=target, args=(pidfd,), name=f"adopted-{pid}", daemon=True).start()

    def detach(self) -> None:
        self._detached.set()
        with self._wake_lock:  # never write to a descriptor the watcher closed (and reused)
            if self._wake is not None:
                os.write(self._wake[1], b"x")

    def _wait_pidfd(self, pidfd: int | None) -> None:
        assert pidfd is not None
        assert self._wake is not None
        try:
            # The pidfd turns readable once the process has exited.
            readable, _, _ = select.select([pidfd, self._wake[0]], [], [])
        finally:
            os.close(pidfd)
            with self._wake_lock:
                wake, self._wake = self._wake, None
                for fd in wake:
                    os.close(fd)
        if pidfd in readable:
            self._finish(None)

    def _poll_proc(self, _pidfd: int | None) -> None:
        while is_same_process(self.pid, self.start_time):
            if self._detached.wait(POLL_INTERVAL):
                return
        self._finish(None)

    def tail(self, count: int) -> list[str]:
        """The last ``count`` lines of its log (empty without a log: its output is not ours)."""
        return [] if self.log is None else read_log_tail(self.log.path, count)


def adopt(path: Path, log: LogSink | None = None, *, pidfd: bool = True) -> AdoptedProcess | None:
    """A handle on the process recorded in the pid file ``path`` if it is still alive and is
    the same process (start time matches); otherwise None. ``pidfd=False`` forces /proc
    polling. Raises PidFileError for a pid file that cannot be read."""
    record = read_pidfile(path)
    if record is None:
        return None
    try:
        fd = _open_pidfd(record.pid) if pidfd else None
    except ProcessLookupError:
        return None
    # Checked after opening the pidfd: from then on the pid cannot name another process.
    if not is_same_process(record.pid, record.start_time):
        if fd is not None:
            os.close(fd)
        return None
    try:
        return AdoptedProcess(record.pid, record.start_time, fd, log)
    except ProcessLookupError:  # exited between the check and getpgid
        if fd is not None:
            os.close(fd)
        return None
