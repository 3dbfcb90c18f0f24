"""The improvement cycle's messages (``improve``, ``improve.worker.<i>``): the cycle, its phases
and the workers' batches."""

from __future__ import annotations

from typing import Any

from gaia_actors.messages.base import Fields, message


@message
class RunCycle:
    """Query: start an improvement cycle on ``target`` ("" = the configured one); answers its id.

    ``apply`` writes the cycle's verified patch of mechanical fixes to the target. Busy while a
    cycle runs. The actor named ``watcher`` (a control connection's relay) is told a
    ``Progress`` at phase starts and ends, for analysis progress and a last ``cycle.ended``.
    """

    target: str = ""
    apply: bool = False
    watcher: str = ""


@message
class GetCycleStatus:
    """Query: the running cycle's phase, analysis progress and phase timings, or the last one's."""


@message
class AnalyseBatch:
    """Command: analyse ``paths`` (relative to ``root``); the worker tells ``improve`` a
    BatchResult."""

    cycle_id: int
    batch_id: int
    root: str
    paths: tuple[str, ...]
    markers: tuple[str, ...] = ("TODO", "FIXME", "XXX", "HACK")
    max_function_lines: int = 60
    max_bytes: int = 2_097_152


@message
class BatchResult:
    """Command: a worker's results for one batch (``results`` holds frozen FileResults)."""

    cycle_id: int
    batch_id: int
    worker: str
    generation: int
    results: tuple[Any, ...] = ()
    seconds: float = 0.0
    error: str = ""


@message
class WorkerReady:
    """Command: a worker started; the engine re-queues what an earlier incarnation held.

    ``incarnation`` is unique per actor started (a generation count restarts at 1 when the
    workers' own supervisor is restarted)."""

    worker: str
    generation: int
    incarnation: str = ""


@message
class AnalysisDone:
    """Command (a worker's own): its analysis process answered, died (``lost``), or sent an
    answer that could not be read (``unreadable``: the batch in flight failed)."""

    batch_id: int
    results: tuple[Any, ...] = ()
    seconds: float = 0.0
    error: str = ""
    lost: bool = False
    unreadable: bool = False


@message
class BatchOverdue:
    """Command (a worker's own): batch ``batch_id`` ran past the batch timeout."""

    batch_id: int


@message
class FilesFound:
    """Command (the engine's walk thread): candidate files of cycle ``cycle_id``, in walk order;
    ``done`` ends the walk (``error`` says why it stopped early)."""

    cycle_id: int
    paths: tuple[str, ...] = ()
    skipped: tuple[Any, ...] = ()  # SkippedFile: left out by the walk, with the reason
    done: bool = False
    error: str = ""
    tree: Any = None  # with ``done``: the tree's state (TreeState) when the walk began


@message
class PhaseStarted:
    """Command (the engine's cycle thread): phase ``phase`` of cycle ``cycle_id`` began."""

    cycle_id: int
    phase: str


@message
class PhaseFinished:
    """Command (the engine's cycle thread): phase ``phase`` ended after ``seconds``."""

    cycle_id: int
    phase: str
    seconds: float
    summary: Fields = ()


@message
class CycleEnded:
    """Command (the engine's cycle thread): cycle ``cycle_id`` is over and stored."""

    cycle_id: int
    status: str  # succeeded | failed
    seconds: float
    error: str = ""


@message
class ReleaseProcess:
    """Command: the analysis is over for now; a worker stops its analysis process (a later
    batch starts a new one)."""


@message
class ScheduleTick:
    """Command (the engine's own timer): start the scheduled cycles that are due."""
