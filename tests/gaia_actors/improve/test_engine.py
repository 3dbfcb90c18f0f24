"""The engine and its workers: batches, a worker crash mid-batch, responsiveness, busy."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from gaia_actors.errors import Busy, InvalidMessage
from gaia_actors.messages import Crash, GetCycleStatus, GetState, RunCycle
from gaia_actors.store.models import FindingRow, ImproveCycle
from tests.conftest import wait_until
from tests.gaia_actors.improve.support import (
    ImproveTree,
    config,
    improve_tree,
    slow_module,
    write_files,
)

QUIET = """
tests = "none"
linters = []
fixers = []
"""


def todo_files(cycle_id: int) -> Counter[str]:
    rows = FindingRow.select().where(
        (FindingRow.cycle_id == cycle_id) & (FindingRow.type == "todo")
    )
    return Counter(row.file for row in rows)


def test_files_go_to_the_workers_in_batches_and_each_is_analysed_once(tmp_path: Path) -> None:
    names = write_files(tmp_path / "src", 25, "def f():\n    pass  # TODO: one\n")
    extra = QUIET + "workers = 2\nbatch_size = 4\n"
    with improve_tree(config(tmp_path, tmp_path / "src", extra)) as tree:
        cycle_id = tree.cycle()
        tree.flush()
        states = [tree.registry.ask(f"improve.worker.{i}", GetState()) for i in range(2)]
        report = ImproveCycle.get_by_id(cycle_id).report

    assert report["analysis"]["files"] == 25
    assert report["analysis"]["batches"] == 7  # 6 of 4 files and one of 1
    assert todo_files(cycle_id) == dict.fromkeys(names, 1)
    done = [state["batches_done"] for state in states]
    assert sum(done) == 7
    assert min(done) >= 1  # both workers took part: the queue, not a fixed split, hands out work


def kill_process(tree: ImproveTree) -> None:
    """SIGKILL worker 0's analysis process, once it has one."""
    state = wait_until(lambda: tree.registry.ask("improve.worker.0", GetState())["process"])
    os.kill(int(str(state)), signal.SIGKILL)


def crash_actor(tree: ImproveTree) -> None:
    tree.registry.tell("improve.worker.0", Crash("test: crash while holding a batch"))


@pytest.mark.parametrize("fault", [crash_actor, kill_process], ids=["actor", "process"])
def test_a_worker_crashed_mid_batch_loses_no_file(
    tmp_path: Path, fault: Callable[[ImproveTree], None]
) -> None:
    # Batches of 60 files that take 0.5-1.2 s each in the worker's process: the fault (the
    # worker actor crashes, or its process is killed) lands while worker 0 holds one, and the
    # engine must give that batch to a worker again.
    names = write_files(tmp_path / "src", 240, slow_module(120))
    extra = QUIET + "workers = 2\nbatch_size = 60\n"
    with improve_tree(config(tmp_path, tmp_path / "src", extra)) as tree:
        cycle_id, watch = tree.start_cycle()

        def holding() -> object:
            status = tree.registry.ask("improve", GetCycleStatus(), timeout=5)
            return status.analysis.in_flight.get("improve.worker.0")

        batch_id = wait_until(holding, timeout=20)
        fault(tree)
        assert watch.ended.wait(60), watch.updates[-3:]
        requeued = tree.events("improve.batch.requeued")
        report = ImproveCycle.get_by_id(cycle_id).report

    assert watch.last()["status"] == "succeeded"
    assert [(e.data["batch_id"], e.data["worker"]) for e in requeued] == [
        (batch_id, "improve.worker.0")
    ]
    assert report["analysis"]["requeued"] == 1
    assert report["analysis"]["files"] == 240
    assert todo_files(cycle_id) == dict.fromkeys(names, 1)  # every file once, none twice


def test_the_engine_answers_while_a_long_phase_runs(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    waiter = (
        "import pathlib, time, sys\n"
        f"gate = pathlib.Path({str(gate)!r})\n"
        "deadline = time.monotonic() + 30\n"
        "while not gate.exists() and time.monotonic() < deadline:\n"
        "    time.sleep(0.02)\n"
        "sys.exit(0 if gate.exists() else 1)\n"
    )
    write_files(tmp_path / "src", 3, "x = 1\n")
    extra = (
        'tests = "command"\n'
        f"test_command = [{sys.executable!r}, '-c', {waiter!r}]\n"
        "linters = []\nfixers = []\nworkers = 1\n"
    )
    with improve_tree(config(tmp_path, tmp_path / "src", extra)) as tree:
        cycle_id, watch = tree.start_cycle()

        def in_test_phase() -> object:
            status = tree.registry.ask("improve", GetCycleStatus(), timeout=5)
            return status.phase == "test"

        wait_until(in_test_phase, timeout=20)
        started = time.monotonic()
        status = tree.registry.ask("improve", GetCycleStatus(), timeout=5)
        answered_in = time.monotonic() - started
        with pytest.raises(Busy, match=f"cycle #{cycle_id} is in phase test"):
            tree.registry.ask("improve", RunCycle(), timeout=5)
        gate.touch()
        assert watch.ended.wait(30)

    assert answered_in < 1.0
    assert status.running is True
    assert status.cycle_id == cycle_id
    assert set(status.phases) == {"analyse", "detect"}
    assert watch.last()["status"] == "succeeded"
    assert [u["phase"] for u in watch.of("phase.finished")] == [
        "analyse",
        "detect",
        "test",
        "generate_tasks",
        "execute_improvements",
        "verify",
        "persist",
    ]


def test_a_crashed_engine_kills_the_test_command_its_cycle_was_running(tmp_path: Path) -> None:
    """Not left running to its timeout: the interrupted cycle's command group is killed."""
    pid_file = tmp_path / "test.pid"
    sleeper = (
        "import os, pathlib, time\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))\n"
        "time.sleep(60)\n"
    )
    write_files(tmp_path / "src", 3, "x = 1\n")
    extra = (
        'tests = "command"\n'
        f"test_command = [{sys.executable!r}, '-c', {sleeper!r}]\n"
        "linters = []\nfixers = []\nworkers = 1\n"
    )
    with improve_tree(config(tmp_path, tmp_path / "src", extra)) as tree:
        tree.start_cycle()
        wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=30)
        pid = int(pid_file.read_text())
        assert alive(pid)
        tree.registry.tell("improve", Crash("the engine crashes mid-cycle"))
        wait_until(lambda: not alive(pid), timeout=10)  # within the kill grace, not 60 s
        wait_until(lambda: ImproveCycle.get_or_none(ImproveCycle.status == "interrupted"))


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_a_target_that_is_not_a_directory_is_refused(tmp_path: Path) -> None:
    write_files(tmp_path / "src", 1, "x = 1\n")
    with improve_tree(config(tmp_path, tmp_path / "src", QUIET)) as tree:
        with pytest.raises(InvalidMessage, match="is not a directory"):
            tree.registry.ask("improve", RunCycle(str(tmp_path / "missing")), timeout=5)
        status = tree.registry.ask("improve", GetCycleStatus(), timeout=5)
    assert status.running is False


def test_a_file_that_keeps_taking_its_worker_down_is_skipped_and_the_rest_analysed(
    tmp_path: Path,
) -> None:
    # ~24 MB with a marker: the reference tokenizer needs 12-24 s of CPU for it, and a process
    # never gets more CPU than wall time, so it runs past the 2 s batch timeout every time,
    # however fast or loaded the machine; each worker that holds it is restarted. Each of the
    # three attempts burns a core until the timeout, so the timeout is no longer than the
    # small files need: a batch of them takes milliseconds once the server that forks the
    # analysis processes has started (an interpreter start, seconds on a loaded machine), and
    # a first cycle over the small files alone starts it.
    names = write_files(tmp_path / "src", 5, "x = 1  # TODO: small\n")
    slow = "# TODO: big\n" + "value = 'abcdefgh'  # a comment\n" * 750_000
    extra = QUIET + "workers = 2\nbatch_size = 3\nbatch_timeout = 2.0\nmax_file_bytes = 30000000\n"
    extra += "[supervision]\nmax_restarts = 20\nbackoff_initial = 0.05\nbackoff_max = 0.1\n"
    with improve_tree(config(tmp_path, tmp_path / "src", extra)) as tree:
        tree.cycle(timeout=60)
        (tmp_path / "src" / "slow.py").write_text(slow, encoding="utf-8")
        cycle_id = tree.cycle(timeout=60)
        report = ImproveCycle.get_by_id(cycle_id).report

    analysis = report["analysis"]
    assert analysis["files"] == 5
    # The batch twice, then the file on its own once (more only if a machine is so loaded
    # that a batch of small files takes two seconds).
    assert analysis["requeued"] >= 3
    assert analysis["skipped"] == {"unreadable": 1}
    example = analysis["skipped_examples"][0]
    assert example["path"] == "slow.py"
    assert example["detail"].startswith("analysis took its worker down 2 times")
    assert todo_files(cycle_id) == dict.fromkeys(names, 1)
