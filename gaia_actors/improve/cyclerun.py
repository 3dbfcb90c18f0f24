"""The running cycle: the record the engine's thread keeps of it, and the threads that do its
slow work (the walk, which streams the candidate files back, and phases 2-7), writing through
``StoreRecorder``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pykka

from gaia_actors.improve import history
from gaia_actors.messages import (
    CycleEnded,
    Fields,
    FilesFound,
    Flush,
    Insert,
    PhaseFinished,
    PhaseStarted,
    Update,
    fields_of,
)
from gaia_actors.outbox import outbox_for
from supervisors import Registry

if TYPE_CHECKING:
    from gaia_actors.improve.analysis import FileResult
    from gaia_actors.improve.cycle import Cycle
    from gaia_actors.improve.delivery import TreeState
    from gaia_actors.improve.files import SkippedFile
    from gaia_actors.improve.plan import CyclePlan

# The cycle's machinery (the walk, the analysis, the phases) is imported when a cycle runs: the
# daemon starts the engine without it.

STORE_TIMEOUT = 30.0


@dataclass
class Batch:
    batch_id: int
    paths: tuple[str, ...]
    attempts: int = 0
    split: bool = False  # re-queued as single files: its own answer no longer counts


@dataclass
class Slot:
    """The engine's view of one worker."""

    name: str
    generation: int = 0
    incarnation: str = ""
    ready: bool = False
    batch: Batch | None = None


@dataclass
class CycleRun:
    """The running cycle (owned by the engine's thread)."""

    plan: CyclePlan
    watcher: str  # the actor told the cycle's Progress ("" for none)
    started: float = field(default_factory=time.time)
    clock: float = field(default_factory=time.monotonic)
    phase: str = "analyse"
    phase_clock: float = field(default_factory=time.monotonic)
    phases: dict[str, float] = field(default_factory=dict)
    queue: deque[Batch] = field(default_factory=deque)
    batches: dict[int, Batch] = field(default_factory=dict)
    results: dict[int, tuple[FileResult, ...]] = field(default_factory=dict)
    walk_done: bool = False
    walk_skipped: tuple[SkippedFile, ...] = ()
    files_found: int = 0
    files_done: int = 0
    requeued: int = 0
    analysing: bool = True
    cancel: threading.Event = field(default_factory=threading.Event)
    tree: TreeState | None = None  # the tree as the walk found it, for applying a fix

    @property
    def cycle_id(self) -> int:
        return self.plan.cycle_id

    def pending(self) -> list[int]:
        return [i for i, b in self.batches.items() if i not in self.results and not b.split]


def run_walk(ref: pykka.ActorRef[Any], run: CycleRun, size: int) -> None:
    """The walk thread: candidate files to the engine in batches, as they are found."""
    from gaia_actors.improve.delivery import read_state
    from gaia_actors.improve.files import SkippedFile, iter_walk

    cycle_id, skipped = run.cycle_id, []
    paths: list[str] = []

    def tell(message: FilesFound) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            ref.tell(message)

    try:
        tree = read_state(run.plan.target, run.plan.walk_options)
        for item in iter_walk(run.plan.target, run.plan.walk_options):
            if run.cancel.is_set():
                return
            if isinstance(item, SkippedFile):
                skipped.append(item)
                continue
            paths.append(item[0])
            if len(paths) >= size:
                tell(FilesFound(cycle_id, tuple(paths)))
                paths = []
    except Exception as exc:  # noqa: BLE001 - reported to the engine, which fails the cycle
        tell(FilesFound(cycle_id, done=True, error=repr(exc)))
        return
    tell(FilesFound(cycle_id, tuple(paths), tuple(skipped), done=True, tree=tree))


def run_phases(ref: pykka.ActorRef[Any], cycle: Cycle, cancel: threading.Event) -> None:
    """The cycle thread: phases 2-7 in order, each reported to the engine by message."""
    from gaia_actors.improve.commands import cancelled_by

    cycle_id = cycle.plan.cycle_id
    clock = time.monotonic()

    def tell(message: Any) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            ref.tell(message)

    try:
        target = str(cycle.plan.target)
        cycle.previous = history.previous_cycle(target, cycle_id)
        cycle.previous_ops = history.previous_ops(target, cycle_id)
        with cancelled_by(cancel):  # a cancelled cycle kills the command it is running
            for phase, step in cycle.steps():
                if cancel.is_set():
                    return
                tell(PhaseStarted(cycle_id, phase))
                started = time.monotonic()
                summary = step()
                tell(PhaseFinished(cycle_id, phase, time.monotonic() - started, _fields(summary)))
    except Exception as exc:  # noqa: BLE001 - the cycle's boundary: a failed cycle, not a lost thread
        tell(
            CycleEnded(cycle_id, "failed", time.monotonic() - clock, f"{type(exc).__name__}: {exc}")
        )
        return
    tell(CycleEnded(cycle_id, "succeeded", time.monotonic() - clock))


def _fields(summary: dict[str, Any]) -> Fields:
    return fields_of(**{k: v for k, v in summary.items() if v is not None})


class StoreRecorder:
    """The cycle thread's writes: rows told to the Store (batched there), updates asked."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def insert(self, table: str, **values: Any) -> None:
        outbox_for(self.registry).tell("store", Insert(table, fields_of(**values)))

    def update(self, table: str, row_id: int, **values: Any) -> None:
        self.registry.ask(
            "store", Update(table, row_id, fields_of(**values)), timeout=STORE_TIMEOUT
        )

    def flush(self) -> None:
        self.registry.ask("store", Flush(), timeout=STORE_TIMEOUT * 4)
