"""One daemon per state directory, on real daemon processes: the guarantee holds when
``daemon.lock`` or the control socket is deleted, and the state directory keeps its mode."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gaia_actors.console.client import daemon_pid
from tests.conftest import wait_until
from tests.gaia_actors.control.test_control import CONFIG, DaemonProcess


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """One daemon for the module: each test leaves the lock and the socket restored."""
    process = DaemonProcess(tmp_path_factory.mktemp("single")).start()
    yield process
    assert process.stop() == 0, process.output()


def restored(daemon: DaemonProcess) -> bool:
    return daemon.socket.exists() and daemon_pid(daemon.state_dir) == daemon.process.pid  # type: ignore[union-attr]


def test_deleting_the_lock_file_does_not_let_a_second_daemon_run(daemon: DaemonProcess) -> None:
    assert daemon.process is not None
    lock = daemon.state_dir / "daemon.lock"
    lock.unlink()

    second = daemon.cli("run", timeout=30)

    assert second.returncode == 2, second.stderr
    assert "already runs on state directory" in second.stderr
    assert daemon.process.poll() is None
    # The first daemon writes its lock file again, so clients find its pid there.
    wait_until(lambda: restored(daemon), timeout=10)
    assert daemon.answers()


def test_deleting_lock_and_socket_still_refuses_a_second_daemon(daemon: DaemonProcess) -> None:
    (daemon.state_dir / "daemon.lock").unlink()
    daemon.socket.unlink()

    second = daemon.cli("run", timeout=30)

    assert second.returncode == 2, second.stderr
    assert "already runs on state directory" in second.stderr
    wait_until(lambda: restored(daemon), timeout=10)
    assert daemon.answers()


def test_a_deleted_control_socket_is_recreated(daemon: DaemonProcess) -> None:
    before = daemon.socket.stat().st_ino
    daemon.socket.unlink()

    # Answering, not merely there: the file exists from bind(), its mode is set before listen().
    wait_until(daemon.answers, timeout=10)

    assert daemon.socket.stat().st_ino != before
    assert stat.S_IMODE(daemon.socket.stat().st_mode) == 0o600
    status = daemon.cli("actors")
    assert status.returncode == 0, status.stderr
    assert "control.socket_restored" in (daemon.state_dir / "logs" / "gaia.jsonl").read_text()


def test_an_existing_state_directory_keeps_its_mode(tmp_path: Path) -> None:
    process = DaemonProcess(tmp_path, CONFIG)
    process.state_dir.mkdir()
    os.chmod(process.state_dir, 0o1777)  # like /tmp: world-writable with the sticky bit
    process.start()
    try:
        assert stat.S_IMODE(process.state_dir.stat().st_mode) == 0o1777
        assert stat.S_IMODE(process.socket.stat().st_mode) == 0o600
        assert stat.S_IMODE((process.state_dir / "gaia.db").stat().st_mode) == 0o600
    finally:
        assert process.stop() == 0, process.output()


def test_a_new_state_directory_is_private(daemon: DaemonProcess) -> None:
    assert stat.S_IMODE(daemon.state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((daemon.state_dir / "gaia.db").stat().st_mode) == 0o600


def test_an_offline_command_makes_the_state_directory_private_too(tmp_path: Path) -> None:
    process = DaemonProcess(tmp_path, CONFIG)  # not started: the command runs offline

    result = process.cli("status")

    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(process.state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((process.state_dir / "gaia.db").stat().st_mode) == 0o600
