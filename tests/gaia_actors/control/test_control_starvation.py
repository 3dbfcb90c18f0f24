"""The control socket cannot be starved (real daemon): idle connections time out, idle peers
holding every place give one up to a new client, and one client's tells are rate limited."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gaia_actors.console.client import connect_socket
from gaia_actors.control.connection import EVICT_AFTER, MAX_CLIENTS, TELL_BURST
from tests.conftest import wait_until
from tests.gaia_actors.control.test_control import CONFIG, DaemonProcess, read_frames

IDLE_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    config = CONFIG.replace("[control]\n", f"[control]\nidle_timeout = {IDLE_TIMEOUT}\n")
    process = DaemonProcess(tmp_path_factory.mktemp("starve"), config).start()
    yield process
    assert process.stop() == 0, process.output()


def connect(daemon: DaemonProcess) -> socket.socket:
    sock = connect_socket(daemon.socket)
    sock.settimeout(10)
    return sock


def test_an_idle_connection_is_closed_saying_why(daemon: DaemonProcess) -> None:
    sock = connect(daemon)
    started = time.monotonic()
    with sock:
        farewell = read_frames(sock, 1)[0]
        assert sock.recv(100) == b""  # then the daemon hangs up
    waited = time.monotonic() - started
    assert IDLE_TIMEOUT - 0.1 <= waited < IDLE_TIMEOUT + 3
    assert farewell["ok"] is False
    assert farewell["error"]["code"] == "cancelled"
    assert "idle for 1.5 s" in farewell["error"]["message"]


def test_a_connection_that_keeps_asking_is_not_idle(daemon: DaemonProcess) -> None:
    with connect(daemon) as sock:
        deadline = time.monotonic() + IDLE_TIMEOUT + 0.5
        count = 0
        while time.monotonic() < deadline:
            count += 1
            sock.sendall(json.dumps({"id": count, "op": "ping"}).encode() + b"\n")
            assert read_frames(sock, 1)[0]["ok"] is True
            time.sleep(IDLE_TIMEOUT / 4)  # the pace of the client under test, not a wait


def test_the_cli_is_answered_while_idle_peers_hold_every_place(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path).start()  # the default idle timeout: the peers stay
    peers = [connect(daemon) for _ in range(MAX_CLIENTS + 8)]
    try:
        opened = time.monotonic()
        # Those beyond the limit are refused at once (the others are still too fresh to go).
        refused = read_frames(peers[-1], 1)[0]
        assert refused["error"]["code"] == "too_many_clients"
        wait_until(lambda: time.monotonic() - opened > EVICT_AFTER, timeout=5)

        result = daemon.cli("actors", timeout=30)

        assert result.returncode == 0, result.stderr
        assert "control" in result.stdout
        evicted = read_frames(peers[0], 1)[0]  # the one idle the longest gave its place up
        assert "a new one came" in evicted["error"]["message"]
    finally:
        for peer in peers:
            with contextlib.suppress(OSError):
                peer.close()
        assert daemon.stop() == 0, daemon.output()


def test_tells_beyond_the_rate_limit_are_refused(daemon: DaemonProcess) -> None:
    frame = {"op": "tell", "actor": "bus", "message": "GetState"}
    count = TELL_BURST + 200
    with connect(daemon) as sock:
        sock.sendall(
            b"".join(json.dumps({**frame, "id": i}).encode() + b"\n" for i in range(count))
        )
        replies = read_frames(sock, count)
    refused = [r for r in replies if not r["ok"]]
    assert TELL_BURST <= count - len(refused) < count
    assert {r["error"]["code"] for r in refused} == {"busy"}
    assert "tells per second" in refused[0]["error"]["message"]
