"""gaia_actors.process: real child processes, real pipes, real /proc."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gaia_actors import process
from gaia_actors.environments.logfiles import RotatingFile
from gaia_actors.process import (
    LogSink,
    PidFileError,
    SpawnError,
    adopt,
    is_same_process,
    proc_start_time,
    proc_stats,
    prune_logs,
    read_log_tail,
    read_pidfile,
    run,
    spawn,
    write_pidfile,
)
from gaia_actors.process.running import no_bytecode_in_tree
from tests.conftest import wait_until

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
SLEEPER = [PY, "-c", "import time; time.sleep(60)"]


class ExitRecorder:
    """A watch callback that records the exit code and when it arrived."""

    def __init__(self) -> None:
        self.calls: list[tuple[int | None, float]] = []
        self.called = threading.Event()

    def __call__(self, code: int | None) -> None:
        self.calls.append((code, time.monotonic()))
        self.called.set()


def gone(pid: int, start_time: int) -> bool:
    return not is_same_process(pid, start_time)


def script(code: str) -> list[str]:
    return [PY, "-u", "-c", textwrap.dedent(code)]


@pytest.fixture
def children() -> Iterator[list[process.Child]]:
    """Children a test started; killed at the end whatever happened."""
    started: list[process.Child] = []
    yield started
    for child in started:
        child.kill()
        child.wait(5)


# --------------------------------------------------------------------------- spawn / Child


def test_spawn_captures_stdout_and_stderr_in_memory(tmp_path: Path) -> None:
    child = spawn(script("import sys\nprint('out')\nprint('err', file=sys.stderr)"), tmp_path)
    assert child.wait(10)
    assert child.exit_code == 0
    assert child.tail(10) == ["out", "err"]
    assert child.tail(1) == ["err"]


def test_spawn_runs_in_its_own_process_group_and_session(
    tmp_path: Path, children: list[process.Child]
) -> None:
    child = spawn(SLEEPER, tmp_path)
    children.append(child)
    assert os.getpgid(child.pid) == child.pid
    assert os.getsid(child.pid) == child.pid
    assert child.start_time == proc_start_time(child.pid)


def test_spawn_passes_env_and_cwd(tmp_path: Path) -> None:
    code = "import os\nprint(os.getcwd())\nprint(os.environ['GAIA_TEST_VALUE'])"
    child = spawn(script(code), tmp_path, env={"GAIA_TEST_VALUE": "forty-two"})
    assert child.wait(10)
    assert child.tail(2) == [str(tmp_path), "forty-two"]


def test_spawn_of_a_missing_command_raises_spawn_error(tmp_path: Path) -> None:
    with pytest.raises(SpawnError, match="no-such-command-here"):
        spawn(["no-such-command-here"], tmp_path)


def test_watch_reports_the_exit_code_of_a_killed_child_at_once(
    tmp_path: Path, children: list[process.Child]
) -> None:
    child = spawn(SLEEPER, tmp_path)
    children.append(child)
    recorder = ExitRecorder()
    child.watch(recorder)
    killed_at = time.monotonic()
    os.kill(child.pid, signal.SIGKILL)
    assert recorder.called.wait(10)
    code, at = recorder.calls[0]
    assert code == -signal.SIGKILL
    assert at - killed_at < 0.5  # a blocked wait(), not a slow poll (measured ~2 ms)


def test_watch_after_exit_calls_back_immediately(tmp_path: Path) -> None:
    child = spawn(script("raise SystemExit(3)"), tmp_path)
    assert child.wait(10)
    seen: list[int] = []
    child.watch(seen.append)
    assert seen == [3]


def test_stop_returns_the_exit_code_of_a_graceful_exit(
    tmp_path: Path, children: list[process.Child]
) -> None:
    code = """
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))
        print('ready')
        time.sleep(60)
    """
    child = spawn(script(code), tmp_path)
    children.append(child)
    wait_until(lambda: child.tail(1) == ["ready"])
    assert child.stop(grace=10) == 7


def test_stop_kills_after_the_grace_period_when_sigterm_is_ignored(
    tmp_path: Path, children: list[process.Child]
) -> None:
    code = """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print('ready')
        time.sleep(60)
    """
    child = spawn(script(code), tmp_path)
    children.append(child)
    wait_until(lambda: child.tail(1) == ["ready"])
    began = time.monotonic()
    assert child.stop(grace=0.3) == -signal.SIGKILL
    assert time.monotonic() - began >= 0.3


GRANDPARENT = """
    import subprocess, sys, time
    grandchild = subprocess.Popen(['sleep', '60'])
    with open(f'/proc/{{grandchild.pid}}/stat') as stat:
        start = stat.read().rsplit(')', 1)[1].split()[19]
    print('grandchild', grandchild.pid, start)
    {then}
"""


def _grandchild_from(line: str) -> tuple[int, int]:
    """(pid, start time) from the line the grandparent prints."""
    _, pid, start = line.split()
    return int(pid), int(start)


def test_exit_of_the_leader_kills_the_rest_of_its_group(tmp_path: Path) -> None:
    child = spawn(script(GRANDPARENT.format(then="pass")), tmp_path)
    assert child.wait(10)
    grandchild = _grandchild_from(child.tail(1)[0])
    wait_until(lambda: gone(*grandchild))


def test_stop_signals_the_whole_group(tmp_path: Path) -> None:
    child = spawn(script(GRANDPARENT.format(then="time.sleep(60)")), tmp_path)
    wait_until(lambda: any(line.startswith("grandchild") for line in child.tail(5)))
    grandchild = _grandchild_from(child.tail(5)[-1])
    assert child.stop(grace=10) == -signal.SIGTERM
    wait_until(lambda: gone(*grandchild))


# --------------------------------------------------------------------------- log files


def test_spawn_with_a_log_sink_writes_rotated_files(tmp_path: Path) -> None:
    log = LogSink(tmp_path / "logs" / "app.log", max_bytes=1000, backups=2)
    child = spawn(script("for i in range(400): print('line', i)"), tmp_path, log=log)
    assert child.wait(10)
    assert child.tail(3) == ["line 397", "line 398", "line 399"]
    names = sorted(p.name for p in log.path.parent.iterdir())
    assert names == ["app.log", "app.log.1", "app.log.2"]
    for path in log.path.parent.iterdir():
        assert 0 < path.stat().st_size <= 1000
    assert read_log_tail(log.path, 400)[-1] == "line 399"


def test_rotating_file_keeps_lines_whole_and_drops_the_oldest(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    lines = [f"entry {i:04d}".encode() + b"\n" for i in range(500)]
    with RotatingFile(path, max_bytes=256, backups=3) as out:
        for start in range(0, 500, 7):  # chunks that do not align with the file size
            out.write(b"".join(lines[start : start + 7]))
    files = [path.with_name(f"app.log.{i}") for i in (3, 2, 1)] + [path]
    assert not path.with_name("app.log.4").exists()
    contents = [f.read_bytes() for f in files]
    assert all(0 < len(c) <= 256 and c.endswith(b"\n") for c in contents)
    kept = b"".join(contents)
    assert b"".join(lines).endswith(kept)


def test_rotating_file_splits_a_line_longer_than_a_file(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    with RotatingFile(path, max_bytes=100, backups=5) as out:
        out.write(b"x" * 250 + b"\n")
    sizes = sorted(p.stat().st_size for p in tmp_path.iterdir())
    assert sizes == [51, 100, 100]


def test_rotating_file_without_backups_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    with RotatingFile(path, max_bytes=10, backups=0) as out:
        out.write(b"aaaa\nbbbb\ncccc\n")
    assert [p.name for p in tmp_path.iterdir()] == ["app.log"]
    assert path.read_bytes() == b"cccc\n"


def test_read_log_tail_reaches_into_rotated_files(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.with_name("app.log.2").write_text("a\nb\n")
    path.with_name("app.log.1").write_text("c\nd\n")
    path.write_text("e\n")
    assert read_log_tail(path, 3) == ["c", "d", "e"]
    assert read_log_tail(path, 10) == ["a", "b", "c", "d", "e"]
    assert read_log_tail(path, 0) == []


def test_read_log_tail_of_a_large_file_reads_only_its_end(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("".join(f"{i}\n" for i in range(200_000)))
    assert read_log_tail(path, 2) == ["199998", "199999"]


def test_prune_logs_deletes_only_old_rotated_files(tmp_path: Path) -> None:
    now = datetime(2026, 11, 28, tzinfo=UTC)
    ages = {"app.log": 100, "app.log.1": 3, "app.log.2": 8, "app.log.3": 40, "notes.txt": 100}
    for name, days in ages.items():
        path = tmp_path / name
        path.write_text(name)
        stamp = (now - timedelta(days=days)).timestamp()
        os.utime(path, (stamp, stamp))
    removed = prune_logs(tmp_path, max_age_days=7, now=now)
    assert sorted(p.name for p in removed) == ["app.log.2", "app.log.3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.log", "app.log.1", "notes.txt"]


def test_default_log_retention_is_7_30_90_days() -> None:
    assert dict(process.DEFAULT_LOG_RETENTION_DAYS) == {"dev": 7, "staging": 30, "prod": 90}


# --------------------------------------------------------------------------- run


def test_run_returns_exit_code_output_and_pid(tmp_path: Path) -> None:
    result = run(script("print('one')\nprint('two')\nraise SystemExit(4)"), tmp_path, timeout=30)
    assert (result.exit_code, result.timed_out, result.cancelled) == (4, False, False)
    assert result.output_tail == "one\ntwo"
    assert result.pid > 0
    assert not result.ok


def test_run_delivers_lines_while_the_command_runs(tmp_path: Path) -> None:
    go = tmp_path / "go"
    code = f"""
        import os, time
        print('waiting')
        while not os.path.exists({str(go)!r}):
            time.sleep(0.005)
        print('done')
    """
    lines: list[str] = []

    def on_line(line: str) -> None:
        lines.append(line)
        if line == "waiting":  # only reachable if lines arrive before the exit
            go.touch()

    result = run(script(code), tmp_path, timeout=30, on_line=on_line)
    assert result.ok
    assert lines == ["waiting", "done"]


def test_run_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    seen: list[str] = []
    code = GRANDPARENT.format(then="time.sleep(60)")
    result = run(script(code), tmp_path, timeout=1.0, on_line=seen.append)
    assert result.timed_out
    assert result.exit_code == -signal.SIGKILL
    assert 1.0 <= result.duration < 10
    grandchild = _grandchild_from(seen[0])
    wait_until(lambda: gone(*grandchild))


def test_run_cancel_kills_the_whole_group(tmp_path: Path) -> None:
    cancel = threading.Event()
    grandchildren: list[tuple[int, int]] = []

    def on_line(line: str) -> None:
        if line.startswith("grandchild"):
            grandchildren.append(_grandchild_from(line))
            cancel.set()

    code = GRANDPARENT.format(then="time.sleep(60)")
    result = run(script(code), tmp_path, timeout=30, cancel=cancel, on_line=on_line)
    assert result.cancelled
    assert not result.timed_out
    assert result.exit_code == -signal.SIGKILL
    wait_until(lambda: gone(*grandchildren[0]))


def test_run_keeps_only_the_last_output_limit_characters(tmp_path: Path) -> None:
    result = run(script("for i in range(1000): print(f'{i:05d}')"), tmp_path, output_limit=60)
    assert result.output_tail.endswith("00998\n00999")
    assert len(result.output_tail) <= 60


def test_run_capture_keeps_stdout_and_stderr_whole_and_apart(tmp_path: Path) -> None:
    code = """
        import sys
        sys.stdout.write('[' + 'x' * 100000 + ']\\r\\n{}')  # one line longer than a pipe chunk
        sys.stderr.write('warning: careful\\n')
        raise SystemExit(3)
    """
    result = run(script(code), tmp_path, timeout=30, capture=True)
    assert result.exit_code == 3
    assert result.stdout == "[" + "x" * 100000 + "]\r\n{}"
    assert result.stderr == "warning: careful\n"
    assert result.output_tail == ""


def test_run_gives_input_on_stdin_even_to_a_command_that_never_reads_it(tmp_path: Path) -> None:
    data = b"{" + b"x" * 200_000 + b"}"  # past a pipe's buffer: a pipe writer would block
    echo = run(script("import sys; print(len(sys.stdin.buffer.read()))"), tmp_path, input=data)
    assert echo.output_tail == str(len(data))
    ignored = run(script("print('no read')"), tmp_path, timeout=30, input=data)
    assert (ignored.ok, ignored.output_tail) == (True, "no read")
    captured = run(
        script("import sys; print(sys.stdin.read())"), tmp_path, capture=True, input=b"hi"
    )
    assert captured.stdout == "hi\n"


def test_run_with_grace_sends_sigterm_before_sigkill(tmp_path: Path) -> None:
    code = """
        import signal, sys, time
        def bye(signum, frame):
            print('terminated', flush=True)
            raise SystemExit(5)
        signal.signal(signal.SIGTERM, bye)
        print('ready', flush=True)
        time.sleep(60)
    """
    result = run(script(code), tmp_path, timeout=1.0, capture=True, grace=10.0)
    assert result.timed_out
    assert (result.exit_code, result.stdout) == (5, "ready\nterminated\n")
    assert result.duration < 10


def test_run_reraises_an_error_of_the_line_callback(tmp_path: Path) -> None:
    calls: list[str] = []

    def on_line(line: str) -> None:
        calls.append(line)
        raise RuntimeError("callback broke")

    with pytest.raises(RuntimeError, match="callback broke"):
        run(script("print(1)\nprint(2)"), tmp_path, timeout=30, on_line=on_line)
    assert calls == ["1"]


# --------------------------------------------------------------------------- /proc


@pytest.mark.parametrize("prefixed", [False, True], ids=["plain", "pycache-prefix"])
def test_a_child_kept_from_writing_into_its_tree_writes_bytecode_only_to_a_given_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefixed: bool
) -> None:
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    tree, prefix = tmp_path / "tree", tmp_path / "prefix"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    given = {"PYTHONPYCACHEPREFIX": str(prefix)} if prefixed else {}
    result = run(
        [PY, "-c", "import pkg"], tree, {**os.environ, **given, **no_bytecode_in_tree(given)}
    )
    assert result.ok, result.output_tail
    assert list(tree.rglob("*.pyc")) == []
    # With a prefix the next run reads what this one compiled; without, nothing is kept.
    assert len(list(prefix.rglob("pkg/__init__.*.pyc"))) == (1 if prefixed else 0)


def test_proc_start_time_and_identity_of_a_live_process() -> None:
    start = proc_start_time(os.getpid())
    assert start is not None
    assert is_same_process(os.getpid(), start)
    assert not is_same_process(os.getpid(), start + 1)


def test_proc_start_time_of_a_missing_pid_is_none(tmp_path: Path) -> None:
    child = subprocess.Popen(SLEEPER)
    pid = child.pid
    child.kill()
    child.wait()
    assert proc_start_time(pid) is None


def test_a_zombie_is_not_the_same_process(tmp_path: Path) -> None:
    child = subprocess.Popen(SLEEPER)
    start = proc_start_time(child.pid)
    assert start is not None
    child.kill()
    wait_until(lambda: not is_same_process(child.pid, start))
    assert proc_start_time(child.pid) == start  # still a zombie: not reaped yet
    child.wait()


def test_proc_stats_measures_cpu_over_the_interval(
    tmp_path: Path, children: list[process.Child]
) -> None:
    ready = tmp_path / "ready"
    sleeper = f"import pathlib, time; pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"
    busy = spawn([PY, "-c", "while True: pass"], tmp_path)
    idle = spawn([PY, "-c", sleeper], tmp_path)
    children += [busy, idle]
    wait_until(ready.exists, timeout=30)  # the idle one's interpreter start-up is over
    started = time.monotonic()
    first_busy, first_idle = proc_stats(busy.pid), proc_stats(idle.pid)
    first_done = time.monotonic()
    assert first_busy is not None
    assert first_idle is not None
    wait_until(lambda: _cpu(busy.pid) - first_busy.cpu_seconds >= 0.4, timeout=30)
    last_started = time.monotonic()
    busy_now = proc_stats(busy.pid, since=first_busy)
    idle_now = proc_stats(idle.pid, since=first_idle)
    ended = time.monotonic()
    assert busy_now is not None
    assert idle_now is not None
    # The percent is the CPU time each process got between its two samples over the time
    # between them, which lies between the shortest and longest interval the clock readings
    # around the samples allow; how much CPU a loaded machine left the busy one does not matter.
    shortest, longest = last_started - first_done, ended - started
    for now, first in ((busy_now, first_busy), (idle_now, first_idle)):
        used = 100 * (now.cpu_seconds - first.cpu_seconds)
        assert used / longest - 1e-6 <= now.cpu_percent <= used / shortest + 1e-6
    assert busy_now.cpu_seconds - first_busy.cpu_seconds >= 0.4
    # Asleep all along: at most the clock tick it was in when it went to sleep.
    assert idle_now.cpu_seconds - first_idle.cpu_seconds <= 1 / os.sysconf("SC_CLK_TCK")
    assert busy_now.rss_bytes > 1_000_000
    assert busy_now.threads == 1
    assert proc_stats(2**22 + 1) is None  # above pid_max: never a process


def _cpu(pid: int) -> float:
    stats = proc_stats(pid)
    assert stats is not None
    return stats.cpu_seconds


# --------------------------------------------------------------------------- pid files, adoption


def test_pidfile_round_trip_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "pid"
    write_pidfile(path, 1234, 98765)
    write_pidfile(path, 1235, 98766)
    record = read_pidfile(path)
    assert record is not None
    assert (record.pid, record.start_time) == (1235, 98766)
    assert [p.name for p in tmp_path.iterdir()] == ["pid"]


def test_read_pidfile_missing_is_none_and_garbage_is_an_error(tmp_path: Path) -> None:
    assert read_pidfile(tmp_path / "pid") is None
    (tmp_path / "pid").write_text("12 13")
    with pytest.raises(PidFileError, match="pid"):
        read_pidfile(tmp_path / "pid")
    assert adopt(tmp_path / "absent") is None


def adopt_a_sleeper(
    tmp_path: Path, children: list[process.Child], pidfd: bool
) -> tuple[process.Child, process.AdoptedProcess]:
    """A sleeping child of ours, adopted through its pid file as a new daemon would."""
    child = spawn(SLEEPER, tmp_path)
    children.append(child)
    write_pidfile(tmp_path / "pid", child.pid, child.start_time)
    adopted = adopt(tmp_path / "pid", pidfd=pidfd)
    assert adopted is not None
    return child, adopted


@pytest.mark.parametrize("pidfd", [True, False])
def test_adopt_watches_and_stops_a_live_process(
    tmp_path: Path, children: list[process.Child], pidfd: bool
) -> None:
    child, adopted = adopt_a_sleeper(tmp_path, children, pidfd)
    assert (adopted.pid, adopted.pgid, adopted.uses_pidfd) == (child.pid, child.pid, pidfd)
    recorder = ExitRecorder()
    adopted.watch(recorder)
    assert not recorder.called.is_set()
    assert adopted.stop(grace=10) is None  # not our child: no exit code to know
    assert recorder.called.wait(10)
    assert recorder.calls[0][0] is None
    assert child.wait(10)
    assert child.exit_code == -signal.SIGTERM


@pytest.mark.parametrize("pidfd", [True, False])
def test_adopted_exit_is_seen_promptly(
    tmp_path: Path, children: list[process.Child], pidfd: bool
) -> None:
    child, adopted = adopt_a_sleeper(tmp_path, children, pidfd)
    recorder = ExitRecorder()
    adopted.watch(recorder)
    killed_at = time.monotonic()
    os.kill(child.pid, signal.SIGKILL)
    assert recorder.called.wait(10)
    code, at = recorder.calls[0]
    assert code is None
    assert at - killed_at < 0.5  # pidfd ~1 ms; polling every 50 ms


def pidfds_of(pid: int) -> set[str]:
    """This process's descriptors that are pidfds of ``pid`` (other tests' threads may open and
    close descriptors of their own meanwhile, so a count of all of them would race)."""
    found = set()
    for fd in os.listdir("/proc/self/fdinfo"):
        try:
            info = Path(f"/proc/self/fdinfo/{fd}").read_text()
        except OSError:  # closed meanwhile
            continue
        if re.search(rf"^Pid:\s*{pid}$", info, re.MULTILINE):
            found.add(fd)
    return found


def adopted_threads(pid: int) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"adopted-{pid}"]


@pytest.mark.parametrize("pidfd", [True, False])
def test_detach_ends_the_watch_and_leaves_the_process_running(
    tmp_path: Path, children: list[process.Child], pidfd: bool
) -> None:
    """An environment actor's restart detaches its handle: the next generation adopts the
    process anew, so the old watch (the shared watcher's pidfd, or the polling thread) and its
    descriptors must go."""
    child = spawn(SLEEPER, tmp_path)
    children.append(child)
    write_pidfile(tmp_path / "pid", child.pid, child.start_time)
    before = pidfds_of(child.pid)
    adopted = adopt(tmp_path / "pid", pidfd=pidfd)
    assert adopted is not None
    recorder = ExitRecorder()
    adopted.watch(recorder)
    # A pidfd is watched by the shared exit watcher: no thread of its own.
    assert len(adopted_threads(child.pid)) == (0 if pidfd else 1)
    assert len(pidfds_of(child.pid)) == len(before) + (1 if pidfd else 0)
    adopted.detach()
    adopted.detach()  # twice is harmless
    wait_until(lambda: not adopted_threads(child.pid))
    wait_until(lambda: pidfds_of(child.pid) == before)
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(10)
    assert not recorder.called.wait(0.3)  # detached: its exit is the next generation's news
    assert not adopted.exited


def test_adopt_refuses_a_live_pid_with_another_start_time(
    tmp_path: Path, children: list[process.Child]
) -> None:
    child = spawn(SLEEPER, tmp_path)
    children.append(child)
    write_pidfile(tmp_path / "pid", child.pid, child.start_time - 1)  # the pid was reused
    assert adopt(tmp_path / "pid") is None
    assert adopt(tmp_path / "pid", pidfd=False) is None
    assert not child.exited


def test_adopt_of_an_exited_process_is_none(tmp_path: Path) -> None:
    child = spawn(script("pass"), tmp_path)
    assert child.wait(10)
    write_pidfile(tmp_path / "pid", child.pid, child.start_time)
    assert adopt(tmp_path / "pid") is None


# One write per line: print() writes its pieces separately, and a reader may catch half.
SERVICE = """
import itertools, sys, time
for i in itertools.count():
    sys.stdout.write(f"tick {i}\\n")
    time.sleep(0.01)
"""

DAEMON = """
    import os, sys
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from gaia_actors.process import LogSink, spawn, write_pidfile
    child = spawn([sys.executable, '-u', {service!r}], {cwd!r},
                  log=LogSink(Path({log!r}), max_bytes=20_000, backups=1))
    write_pidfile(Path({pidfile!r}), child.pid, child.start_time)
    os._exit(0)  # the daemon dies; its service must not
"""


def test_adopted_service_keeps_logging_after_its_daemon_exited(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "app.log"
    pidfile = tmp_path / "pid"
    service = tmp_path / "service.py"
    service.write_text(SERVICE)
    daemon = DAEMON.format(
        repo=str(REPO), service=str(service), cwd=str(tmp_path), log=str(log), pidfile=str(pidfile)
    )
    subprocess.run(script(daemon), check=True, timeout=30)
    adopted = adopt(pidfile, LogSink(log))
    assert adopted is not None
    try:
        wait_until(lambda: adopted.tail(1))
        first = int(adopted.tail(1)[0].split()[1])
        wait_until(lambda: int(adopted.tail(1)[0].split()[1]) > first + 5)
        assert not adopted.exited
    finally:
        adopted.stop(grace=5)
