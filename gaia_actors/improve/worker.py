"""AnalysisWorker (``improve.worker.<i>``): analyses batches of files for the engine.

The analysis is CPU-bound pure Python, so worker *threads* would take turns on the GIL. Each
worker actor therefore owns one child process that runs ``analyse_batch``, and stays an actor:
a batch arrives as a message, goes down a pipe to the process, and the answer comes back as a
message from a reader thread, so the mailbox keeps answering liveness pings (and ``Crash``)
while the process works.

The processes come from a ``forkserver``: a server started once from a clean interpreter
(with the analysis modules preloaded) forks each of them, so no worker is forked from this
many-threaded daemon (a lock held by another thread at fork time would stay held in the
child), and a new process costs ~10 ms instead of an interpreter start.

Failure. A worker whose process dies, or whose batch runs past ``batch_timeout``, raises: its
supervisor restarts it, the new generation announces itself with ``WorkerReady``, and the
engine re-queues the batch the old generation held (engine.py). The process is killed with the
actor, so a crashed worker leaves no analysis running behind it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import threading
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.context import BaseContext
from typing import TYPE_CHECKING, Any

import pykka

from gaia_actors.actor import GaiaActor
from gaia_actors.improve.batches import serve
from gaia_actors.improve.errors import ImproveError
from gaia_actors.messages import (
    AnalyseBatch,
    AnalysisDone,
    BatchOverdue,
    BatchResult,
    ReleaseProcess,
    WorkerReady,
)
from supervisors import Link

if TYPE_CHECKING:
    from gaia_actors.improve.sources import AnalysisSettings

ENGINE = "improve"
PREFIX = "improve.worker."
KILL_WAIT = 5.0  # seconds to wait for a killed process and its reader thread
_PRELOAD = ["gaia_actors.improve.analysis", "gaia_actors.improve.batches"]
_context_lock = threading.Lock()
_context: BaseContext | None = None


def worker_name(index: int) -> str:
    return f"{PREFIX}{index}"


class WorkerFailure(ImproveError):
    """A worker gave up on its batch (its process died, or the batch ran too long)."""


# --- the child process ------------------------------------------------------------------


def process_context() -> BaseContext:
    """The forkserver context, its server preloading the analysis modules (set up once)."""
    global _context  # one forkserver per daemon process
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(_PRELOAD)
            _context = context
        return _context


class AnalysisProcess:
    """One analysis child process and the thread that reads its answers.

    ``deliver`` gets an ``AnalysisDone`` per answer, and one with ``lost=True`` when the
    process dies unasked; it runs in the reader thread and must not block.
    """

    def __init__(self, name: str, deliver: Callable[[AnalysisDone], None]) -> None:
        self.name = name
        self.deliver = deliver
        self.process: Any = None
        self.conn: multiprocessing.connection.Connection | None = None
        self.reader: threading.Thread | None = None
        self.stopping = threading.Event()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def submit(
        self, batch_id: int, paths: Sequence[str], root: str, settings: AnalysisSettings
    ) -> None:
        """Send a batch to the process (started first if there is none; started again once
        if the one there died before it could take the batch)."""
        job = (batch_id, tuple(paths), root, settings)
        if self.process is None or not self.process.is_alive():
            self.stop()
            self._start()
        try:
            assert self.conn is not None
            self.conn.send(job)
        except OSError:
            self.stop()
            self._start()
            assert self.conn is not None
            self.conn.send(job)

    def _start(self) -> None:
        context = process_context()
        parent, child = context.Pipe()
        process = context.Process(  # type: ignore[attr-defined]
            target=serve, args=(child,), name=f"gaia-{self.name}", daemon=True
        )
        process.start()
        child.close()
        self.process, self.conn = process, parent
        self.stopping = threading.Event()
        self.reader = threading.Thread(
            target=self._read,
            args=(process, parent, self.stopping),
            name=f"{self.name}-reader",
            daemon=True,
        )
        self.reader.start()

    def _read(
        self, process: Any, conn: multiprocessing.connection.Connection, stopping: threading.Event
    ) -> None:
        while True:
            try:
                batch_id, results, seconds, error = conn.recv()
            except (EOFError, OSError):
                if not stopping.is_set():
                    error = f"analysis process exited ({process.exitcode})"
                    self.deliver(AnalysisDone(-1, error=error, lost=True))
                return
            except Exception as exc:  # noqa: BLE001 - said, never a silent end of this thread
                # (an answer that does not unpickle): the batch fails at once, not at its timeout
                if not stopping.is_set():  # else the process is being stopped anyway
                    self._broken(process, exc)
                return
            self.deliver(AnalysisDone(batch_id, tuple(results), seconds, error))

    def _broken(self, process: Any, exc: Exception) -> None:
        """Kill a process whose answer could not be read (what it sends next cannot be trusted;
        the next batch starts a new one) and fail the batch it was on."""
        with contextlib.suppress(OSError, ValueError):
            process.kill()
        process.join(KILL_WAIT)
        error = f"unreadable answer from the analysis process: {exc!r}"
        self.deliver(AnalysisDone(-1, error=error, unreadable=True))

    def stop(self) -> None:
        """Kill the process (if any) and wait for it and its reader."""
        process, conn, reader = self.process, self.conn, self.reader
        self.process = self.conn = self.reader = None
        self.stopping.set()
        if process is not None:
            with contextlib.suppress(OSError, ValueError):
                process.kill()
            process.join(KILL_WAIT)
        if reader is not None:
            reader.join(KILL_WAIT)
        if conn is not None:
            conn.close()


# --- the actor ----------------------------------------------------------------------------


class AnalysisWorker(GaiaActor):
    """Takes ``AnalyseBatch`` from the engine, answers each with a ``BatchResult``."""

    def __init__(self, link: Link, *, engine: str = ENGINE, batch_timeout: float = 300.0) -> None:
        super().__init__(link)
        self.engine = engine
        self.batch_timeout = batch_timeout
        self.pending: deque[AnalyseBatch] = deque()
        self.current: AnalyseBatch | None = None
        self.overdue: threading.Event | None = None
        self.done = 0
        self.process = AnalysisProcess(self.name, self._deliver)

    def on_start(self) -> None:
        ready = WorkerReady(self.name, self.link.generation, self.actor_urn)
        self.tell(self.engine, ready)

    def on_terminate(self) -> None:
        self.process.stop()

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "batch": self.current.batch_id if self.current else None,
            "pending": [batch.batch_id for batch in self.pending],
            "batches_done": self.done,
            "process": self.process.pid,
        }

    def receive(self, message: Any) -> Any:
        match message:
            case AnalyseBatch():
                self.pending.append(message)
                self._next()
            case AnalysisDone():
                self._on_done(message)
            case BatchOverdue(batch_id=batch_id):
                if self.current is not None and self.current.batch_id == batch_id:
                    raise WorkerFailure(
                        f"{self.name}: batch {batch_id} ran past {self.batch_timeout:g}s"
                    )
            case ReleaseProcess():
                if self.current is None and not self.pending:
                    self.process.stop()
            case _:
                return self.unhandled(message)
        return None

    def _deliver(self, done: AnalysisDone) -> None:
        with contextlib.suppress(pykka.ActorDeadError):  # a dead worker's answer is lost with it
            self.actor_ref.tell(done)

    def _next(self) -> None:
        if self.current is not None or not self.pending:
            return
        from gaia_actors.improve.sources import AnalysisSettings

        batch = self.current = self.pending.popleft()
        settings = AnalysisSettings(
            markers=batch.markers,
            max_function_lines=batch.max_function_lines,
            max_bytes=batch.max_bytes,
        )
        try:
            self.process.submit(batch.batch_id, batch.paths, batch.root, settings)
        except Exception as exc:  # noqa: BLE001 - no process to be had: said for this batch,
            # rather than a crash that would fail the same way on every restart
            self.log.error("improve.worker.no_process", batch_id=batch.batch_id, error=repr(exc))
            self._answer(batch, (), 0.0, f"analysis process could not start: {exc!r}")
            return
        self.overdue = self.after(self.batch_timeout, BatchOverdue(batch.batch_id))

    def _on_done(self, done: AnalysisDone) -> None:
        batch = self.current
        if done.unreadable:
            batch_id = batch.batch_id if batch is not None else None
            self.log.error("improve.worker.unreadable_answer", batch_id=batch_id, error=done.error)
            if batch is not None:
                self._answer(batch, (), 0.0, done.error)
            return
        if done.lost:
            if batch is not None:
                raise WorkerFailure(f"{self.name}: {done.error} during batch {batch.batch_id}")
            return  # died while idle: the next batch starts a new one
        if batch is None or done.batch_id != batch.batch_id:
            return  # an answer for a batch this generation no longer holds
        self._answer(batch, done.results, done.seconds, done.error)

    def _answer(
        self, batch: AnalyseBatch, results: tuple[Any, ...], seconds: float, error: str
    ) -> None:
        if self.overdue is not None:
            self.overdue.set()
            self.overdue = None
        self.current = None
        self.done += 1
        self.tell(
            self.engine,
            BatchResult(
                batch.cycle_id,
                batch.batch_id,
                self.name,
                self.link.generation,
                results,
                seconds,
                error,
            ),
        )
        self._next()
