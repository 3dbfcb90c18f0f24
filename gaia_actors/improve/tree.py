"""The improvement engine's part of the supervision tree::

    improvement (rest_for_one)
    ├── improve                      the engine: cycle state, the batch queue
    └── improve.workers (one_for_one)
        ├── improve.worker.0 ... improve.worker.N-1

Why not one_for_all over the engine and the workers: a worker's crash would restart the engine
too and throw away the running cycle, where a worker crash mid-batch must lose no file. So the
engine, which owns the state, comes first under rest_for_one (its crash restarts the workers
after it: their batches belong to a cycle that is gone), and the workers sit under their own
one_for_one supervisor: a crashed worker restarts alone, announces itself, and the engine
re-queues the batch it held. Too many worker crashes spend that supervisor's budget, and
``improvement`` restarts the pool as a whole, still without touching the engine. (The supervisor
cannot itself be named ``improve``: that is the engine's registered name.)
"""

from __future__ import annotations

from typing import Any

from gaia_actors.improve.engine import SelfImproveEngine
from gaia_actors.improve.status import NAME
from gaia_actors.improve.worker import KILL_WAIT, AnalysisWorker, worker_name
from gaia_actors.settings import Settings
from supervisors import ChildSpec, Link, Registry, Strategy, Supervisor

SUPERVISOR = "improvement"
POOL = "improve.workers"
ENGINE_SHUTDOWN = 40.0  # the engine may be asking the store to record an interrupted cycle
# Imported when a cycle runs (the walk's gitignore matching, the analysis's byte search), not
# at start: the daemon checks at start that they can be found.
NEEDS = ("pathspec", "ahocorasick_rs")

__all__ = ["POOL", "SUPERVISOR", "child_specs"]


def child_specs(
    settings: Settings, registry: Registry, listener: Any, supervisor_config: Any
) -> list[ChildSpec]:
    """The ``improvement`` supervisor with the engine and the worker pool."""

    def engine(link: Link) -> Any:
        return SelfImproveEngine.start(link, settings)

    workers = [_worker_spec(settings, i) for i in range(max(1, settings.improve.workers))]
    pool = Supervisor.child_spec(
        POOL,
        workers,
        config=supervisor_config(settings, Strategy.ONE_FOR_ONE),
        listener=listener,
        shutdown_timeout=sum(w.shutdown_timeout for w in workers) + 5,
    )
    children = [ChildSpec(NAME, engine, shutdown_timeout=ENGINE_SHUTDOWN), pool]
    return [
        Supervisor.child_spec(
            SUPERVISOR,
            children,
            config=supervisor_config(settings, Strategy.REST_FOR_ONE),
            listener=listener,
            shutdown_timeout=ENGINE_SHUTDOWN + pool.shutdown_timeout + 5,
        )
    ]


def _worker_spec(settings: Settings, index: int) -> ChildSpec:
    timeout = settings.improve.batch_timeout

    def factory(link: Link) -> Any:
        return AnalysisWorker.start(link, engine=NAME, batch_timeout=timeout)

    # Stopping a worker kills its process and waits for it and its reader thread.
    return ChildSpec(worker_name(index), factory, shutdown_timeout=2 * KILL_WAIT + 5)
