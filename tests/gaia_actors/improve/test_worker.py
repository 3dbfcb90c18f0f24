"""An analysis worker and its process: an answer the worker cannot read fails its batch."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gaia_actors.improve import analysis
from gaia_actors.improve.worker import AnalysisWorker
from gaia_actors.messages import AnalyseBatch, BatchResult, GetState
from supervisors import ChildSpec, Link, Registry, Supervisor
from tests.gaia_actors.improve.support import write_files
from tests.gaia_actors.listener import Listener

WORKER = "improve.worker.0"


@pytest.fixture
def worker() -> Iterator[tuple[Registry, queue.Queue[Any]]]:
    """A real worker (batch timeout 300 s) whose answers go to a queue, as the engine's."""
    registry = Registry()
    answers: queue.Queue[Any] = queue.Queue()
    with Listener(registry, answers.put, name="test.engine") as engine:

        def factory(link: Link) -> Any:
            return AnalysisWorker.start(link, engine=engine.name, batch_timeout=300.0)

        root = Supervisor.start_root("root", [ChildSpec(WORKER, factory)], registry)
        try:
            yield registry, answers
        finally:
            root.stop(block=True, timeout=20)


def _result(answers: queue.Queue[Any], timeout: float) -> BatchResult:
    while True:
        answer = answers.get(timeout=timeout)
        if isinstance(answer, BatchResult):
            return answer


def test_an_answer_that_does_not_unpickle_fails_the_batch_at_once_and_replaces_the_process(
    tmp_path: Path, worker: tuple[Registry, queue.Queue[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, answers = worker
    paths = tuple(write_files(tmp_path, 2, "x = 1  # TODO: one\n"))
    registry.tell(WORKER, AnalyseBatch(1, 1, str(tmp_path), paths))
    assert _result(answers, 60).error == ""  # the forkserver may start first: seconds
    first = registry.ask(WORKER, GetState(), timeout=5)["process"]

    # The process (forked from a server that imported the analysis before this) pickles its
    # FileResults; here they no longer unpickle.
    monkeypatch.delattr(analysis, "FileResult")
    started = time.monotonic()
    registry.tell(WORKER, AnalyseBatch(1, 2, str(tmp_path), paths))
    failed = _result(answers, 20)
    assert time.monotonic() - started < 20  # not the 300 s batch timeout
    assert failed.batch_id == 2
    assert failed.results == ()
    assert "unreadable answer from the analysis process" in failed.error
    assert "Can't get attribute 'FileResult'" in failed.error

    monkeypatch.undo()
    registry.tell(WORKER, AnalyseBatch(1, 3, str(tmp_path), paths))
    third = _result(answers, 20)
    assert (third.batch_id, third.error, len(third.results)) == (3, "", 2)
    state = registry.ask(WORKER, GetState(), timeout=5)
    assert state["process"] not in (None, first)  # the broken process was replaced
    assert state["generation"] == 1  # by the worker itself, not by a restart
