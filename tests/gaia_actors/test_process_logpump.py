"""The shared log pump: one process for every service of a state directory, output kept
whole and rotated, across a daemon that exits or is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gaia_actors import process
from gaia_actors.process import LogSink, SpawnError, adopt, read_log_tail, spawn
from tests.conftest import wait_until

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable

# One write per line, numbered, as fast as it can: a gap in the numbers is a lost line.
FAST = """
import sys
for i in range({count}):
    sys.stdout.write(f"line {{i:07d}} " + "x" * 60 + "\\n")
sys.stdout.flush()
"""

TICKER = """
import itertools, sys, time
for i in itertools.count():
    sys.stdout.write(f"tick {i}\\n")
    sys.stdout.flush()
    time.sleep(0.01)
"""


def pumps_of(pump_dir: Path) -> list[int]:
    """Pids of log pump processes serving ``pump_dir`` (by their socket's name)."""
    sink = LogSink(pump_dir / "x.log", pump=pump_dir)
    return _running_with(process.output._pump_name(sink))


def numbers(path: Path) -> list[int]:
    """The line numbers kept in the log and its rotated files, oldest first."""
    files = sorted(path.parent.glob(f"{path.name}.*"), key=lambda p: -int(p.suffix[1:]))
    lines = b"".join(p.read_bytes() for p in [*files, path]).splitlines()
    return [int(line.split()[1]) for line in lines]


def test_services_of_one_directory_share_one_pump(tmp_path: Path) -> None:
    children: list[process.Child] = []
    try:
        for name in ("a", "b", "c"):
            sink = LogSink(tmp_path / name / "app.log", pump=tmp_path)
            children.append(spawn([PY, "-c", TICKER], tmp_path, log=sink))
        for name in ("a", "b", "c"):
            wait_until(lambda name=name: read_log_tail(tmp_path / name / "app.log", 1))
        (pump,) = pumps_of(tmp_path)  # one process for the three, none per service
        assert pump in _children_of(os.getpid())
    finally:
        for child in children:
            child.kill()
            child.wait(10)


def _children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_bytes()
        except OSError:
            continue
        fields = raw[raw.rindex(b")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != b"Z":
            found.append(int(stat.parent.name))
    return found


def test_a_fast_writer_loses_nothing_and_is_rotated(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "app.log"
    count = 40_000  # ~3 MB as fast as Python writes it
    child = spawn(
        [PY, "-c", FAST.format(count=count)],
        tmp_path,
        log=LogSink(log, max_bytes=256 * 1024, backups=20),
    )
    assert child.wait(60)
    assert child.tail(1)[0].startswith(f"line {count - 1:07d}")  # drained before tail
    assert numbers(log) == list(range(count))
    rotated = sorted(log.parent.glob("app.log.*"))
    assert len(rotated) >= 10
    assert all(p.stat().st_size <= 256 * 1024 for p in [*rotated, log])


DAEMON = """
    import os, signal, sys
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from gaia_actors.process import LogSink, spawn, write_pidfile
    sink = LogSink(Path({log!r}), max_bytes=4_000, backups=2, pump=Path({pump!r}))
    child = spawn([sys.executable, {service!r}], {cwd!r}, log=sink)
    write_pidfile(Path({pidfile!r}), child.pid, child.start_time)
    os.kill(os.getpid(), signal.SIGKILL)  # the daemon is killed; its service must not be
"""


def test_output_is_kept_and_rotated_across_a_sigkilled_daemon(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "app.log"
    pidfile = tmp_path / "pid"
    service = tmp_path / "service.py"
    service.write_text(TICKER)
    daemon = DAEMON.format(
        repo=str(REPO),
        service=str(service),
        cwd=str(tmp_path),
        log=str(log),
        pump=str(tmp_path),
        pidfile=str(pidfile),
    )
    done = subprocess.run([PY, "-c", textwrap.dedent(daemon)], timeout=30, check=False)
    assert done.returncode == -signal.SIGKILL
    adopted = adopt(pidfile, LogSink(log))
    assert adopted is not None
    try:
        wait_until(lambda: adopted.tail(1))
        first = int(adopted.tail(1)[0].split()[1])
        # ~10 lines of ~8 bytes per 100 ms: 4 kB files rotate within a few seconds.
        wait_until((log.parent / "app.log.1").exists, timeout=30)
        wait_until(lambda: int(adopted.tail(1)[0].split()[1]) > first + 50, timeout=30)
        kept = numbers(log)
        assert kept == list(range(kept[0], kept[0] + len(kept)))  # no line lost
        assert not adopted.exited
        # The restarted daemon hands its new services to the pump the killed one started.
        (pump,) = pumps_of(tmp_path)
        other = spawn([PY, "-c", TICKER], tmp_path, log=LogSink(tmp_path / "b.log", pump=tmp_path))
        try:
            wait_until(lambda: read_log_tail(tmp_path / "b.log", 1))
            assert pumps_of(tmp_path) == [pump]
        finally:
            other.kill()
            other.wait(10)
    finally:
        adopted.stop(grace=5)


def test_a_log_that_cannot_be_opened_fails_the_spawn_and_kills_the_service(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "logs"
    blocker.mkdir()
    (blocker / "app.log").mkdir()  # a directory where the file should be
    marker = tmp_path / "started"
    with pytest.raises(SpawnError, match=r"app\.log"):
        spawn(
            [PY, "-c", f"import pathlib, time; pathlib.Path({str(marker)!r}).touch(); "
             "time.sleep(60)"],
            tmp_path,
            log=LogSink(blocker / "app.log"),
        )  # fmt: skip
    assert not _running_with(str(marker))  # killed and reaped before the error


def _running_with(word: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if word.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def test_a_pump_started_ahead_serves_the_spawns_after_it(tmp_path: Path) -> None:
    sink = LogSink(tmp_path / "a" / "app.log", pump=tmp_path)
    process.start_log_pump(sink)
    (pump,) = wait_until(lambda: pumps_of(tmp_path))  # started with no service yet
    process.start_log_pump(sink)  # one listens: nothing more is started
    child = spawn([PY, "-c", TICKER], tmp_path, log=sink)
    try:
        wait_until(lambda: read_log_tail(sink.path, 1))
        assert pumps_of(tmp_path) == [pump]
    finally:
        child.kill()
        child.wait(10)
