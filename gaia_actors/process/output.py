"""A child's output: kept in memory as a bounded tail of lines, captured whole, or sent through
the shared log pump process to rotated files (which are read back and pruned here too)."""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import os
import re
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from gaia_actors.process.errors import ProcessError
from gaia_actors.process.exits import EXITS, open_pidfd
from supervisors.records import record

# Log retention the environment actor uses unless configured otherwise.
DEFAULT_LOG_RETENTION_DAYS: Mapping[str, int] = MappingProxyType(
    {"dev": 7, "staging": 30, "prod": 90}
)


DEFAULT_TAIL_CHARS = 64 * 1024


DRAIN_TIMEOUT = 2.0  # seconds to wait for the output of an exited process to be read


_CHUNK = 64 * 1024


_MAX_LINE = 64 * 1024  # a "line" without newline is split after this many bytes


# The log pump runs as a script by path, not imported: see environments/logfiles.py.
_LOG_PUMP = Path(__file__).resolve().parents[1] / "environments" / "logfiles.py"


_HANDOVER_TIMEOUT = 10.0  # seconds the pump has to open the file and answer a handover
_HANDOVER_TRIES = 3  # a pump may end (its linger over) just as we connect: start another


_ROTATED = re.compile(r".+\.\d+$")


@record
class LogSink:
    """Where a service's stdout+stderr go: ``path``, rotated at ``max_bytes`` keeping
    ``backups`` older files (``app.log.1`` is the newest of them), by the log pump process
    shared by every sink naming the same ``pump`` directory."""

    path: Path
    max_bytes: int = 10 * 1024 * 1024
    backups: int = 5
    pump: Path | None = None  # services whose sinks name one directory share a pump (else
    # the log's own directory does)


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


class MemoryOutput:
    """Output kept in memory (stage commands, services without a log file)."""

    def __init__(self, fd: int, limit: int, on_line: Callable[[str], None] | None) -> None:
        self.lines = _LineTail(limit)
        self.pump = _OutputPump(fd, self.lines, on_line)

    def tail(self, count: int) -> list[str]:
        return self.lines.last(count)

    def drain(self) -> None:
        self.pump.close(DRAIN_TIMEOUT)


class CapturedOutput:
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


class FileOutput:
    """Output written by the log pump process into a rotated file; ``conn`` is the handover's
    connection, on which the pump says ``eof`` once it has written the last byte."""

    def __init__(self, log: LogSink, conn: socket.socket) -> None:
        self.log = log
        self.conn = conn

    def tail(self, count: int) -> list[str]:
        return read_log_tail(self.log.path, count)

    def drain(self) -> None:
        # The pump reaches EOF once the service's whole group is gone.
        self.conn.settimeout(DRAIN_TIMEOUT)
        with contextlib.suppress(OSError):
            self.conn.recv(16)
        self.conn.close()


_pump_lock = threading.Lock()  # one daemon thread at a time starts a pump


def _pump_name(log: LogSink) -> str:
    """The abstract socket of the pump for ``log``: one per ``LogSink.pump`` directory and
    version of the pump's script (two checkouts never share one)."""
    key = f"{os.getuid()}\0{(log.pump or log.path.parent).resolve()}\0{_LOG_PUMP}"
    return "gaia-logpump-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def _connect(name: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect("\0" + name)
    except OSError:  # nobody listens (ECONNREFUSED)
        sock.close()
        return None
    return sock


def _start_pump(name: str) -> None:
    """Start a pump on ``name`` and wait until it listens (or finds another one there)."""
    # -I: no PYTHON* variables, the script's folder not on sys.path; -S: no site (it needs
    # nothing outside the stdlib, and skipping site saves most of its start-up).
    pump = subprocess.Popen(
        [sys.executable, "-I", "-S", str(_LOG_PUMP), "--serve", name],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        start_new_session=True,  # a terminal's Ctrl-C or a daemon's group kill spares it
        close_fds=True,
    )
    assert pump.stdout is not None
    with pump.stdout:
        pump.stdout.readline()  # "ready", or EOF when it exits (another pump listens)
    pidfd = open_pidfd(pump.pid)
    if pidfd is None:  # no pidfd: reaped by a thread that waits as long as the pump lives
        threading.Thread(target=pump.wait, name="log-pump-reap", daemon=True).start()
    else:  # reaped when it ends, by the shared watcher: never left a zombie
        EXITS.add(pidfd, functools.partial(_reap, pump))


def _reap(pump: subprocess.Popen[bytes]) -> None:
    pump.wait()


def _pump_connection(log: LogSink) -> socket.socket:
    name = _pump_name(log)
    with _pump_lock:
        sock = _connect(name)
        if sock is None:
            _start_pump(name)
            sock = _connect(name)
    if sock is None:
        raise ProcessError(f"the log pump for {log.path} did not start")
    return sock


def start_log_pump(log: LogSink) -> None:
    """Start the log pump for ``log`` in a thread unless one listens, so that a spawn made
    meanwhile hands its output over at once instead of waiting for a pump to start (a spawn
    starts one anyway, and reports what keeps it from starting)."""

    def start() -> None:
        with contextlib.suppress(OSError, ProcessError):
            _pump_connection(log).close()

    threading.Thread(target=start, name="log-pump-start", daemon=True).start()


def hand_to_log_pump(log: LogSink, read_fd: int) -> FileOutput:
    """Give the read end of a service's output pipe to the log pump (started if none runs)
    to write into ``log``; the caller still closes its own ``read_fd``. Raises OSError or
    ProcessError when no pump takes it (``spawn`` makes that a SpawnError)."""
    log.path.parent.mkdir(parents=True, exist_ok=True)
    header = f"{log.max_bytes} {log.backups} {log.path.resolve()}".encode()
    for _ in range(_HANDOVER_TRIES):
        sock = _pump_connection(log)
        try:
            socket.send_fds(sock, [header], [read_fd])
            sock.settimeout(_HANDOVER_TIMEOUT)
            answer = sock.recv(4096).decode(errors="replace").strip()
        except OSError:
            answer = ""
        if answer == "ok":
            sock.settimeout(None)
            return FileOutput(log, sock)
        sock.close()
        if answer:  # the pump refused it (the file cannot be opened): no retry helps
            raise ProcessError(f"the log pump refused {log.path}: {answer}")
        # No answer: that pump was ending as we connected (its linger ran out); start anew.
    raise ProcessError(f"the log pump took no pipe for {log.path} in {_HANDOVER_TRIES} tries")
