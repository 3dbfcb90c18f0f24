"""The causes an environment cannot fix by itself, read from /proc and the configuration."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gaia_actors import process
from gaia_actors.environments import evidence
from gaia_actors.layout import Layout
from tests.gaia_actors.environments.conftest import free_port, load_settings, write_config

LISTEN = """
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    config = write_config(tmp_path, {"prod": {"port": free_port(), "source": str(tmp_path)}})
    return Layout.of(load_settings(tmp_path, config), "prod")


@pytest.fixture
def listener(layout: Layout) -> Iterator[subprocess.Popen[str]]:
    """A program in a session of its own, outside the releases, listening on prod's port."""
    proc = subprocess.Popen(
        [sys.executable, "-c", LISTEN, str(layout.config.port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd="/",
        start_new_session=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    yield proc
    proc.kill()
    proc.wait(5)


def test_a_port_held_by_another_program_names_its_pid_and_name(
    layout: Layout, listener: subprocess.Popen[str]
) -> None:
    reason = evidence.blocked_reason(layout)
    assert reason == (
        f"port {layout.config.port} on 127.0.0.1 is held by pid {listener.pid} (python), "
        "not by this environment"
    )


def test_a_port_held_in_the_session_of_its_own_process_is_not_a_block(
    layout: Layout, listener: subprocess.Popen[str]
) -> None:
    start_time = process.proc_start_time(listener.pid)
    assert start_time is not None
    layout.root.mkdir(parents=True, exist_ok=True)
    process.write_pidfile(layout.pidfile, listener.pid, start_time)

    assert evidence.port_reason(layout) is None


def test_a_free_port_and_an_installed_command_are_no_block(layout: Layout) -> None:
    assert evidence.blocked_reason(layout) is None


def test_unknown_placeholders_and_missing_programs_are_named(layout: Layout) -> None:
    typo = dataclasses.replace(layout.config, env={"URL": "http://{hots}:{port}/"})
    reason = evidence.blocked_reason(dataclasses.replace(layout, config=typo))
    assert reason is not None
    assert reason.startswith("environments.prod.env.URL: unknown placeholder '{hots}'")
    missing = dataclasses.replace(layout.config, command=("/nonexistent/bin/server",))
    assert evidence.blocked_reason(dataclasses.replace(layout, config=missing)) == (
        "command '/nonexistent/bin/server' is not installed or not executable"
    )
    relative = dataclasses.replace(layout.config, command=("./server",))  # the release's own
    assert evidence.blocked_reason(dataclasses.replace(layout, config=relative)) is None
