"""Getting an environment's service process running: adopt the one that runs, or spawn one.

A restarted environment actor first adopts a process its pid file names (the service kept
serving while the actor was down), unless that process runs another release or was started
with another command or environment values than the configuration now gives: then it is
stopped and a new one spawned. Before a spawn, service processes of the environment that no
pid file names (left by a daemon killed between spawn and pid file) are stopped, so they do
not hold the port.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gaia_actors import process
from gaia_actors.environments import evidence
from gaia_actors.errors import EnvironmentFailure
from gaia_actors.events import EnvironmentEvent
from gaia_actors.layout import Layout, port_in_use

Handle = process.Child | process.AdoptedProcess
Publish = Callable[..., None]  # publish(event, level="info", **fields)


def start(layout: Layout, release: str, first_start: bool, publish: Publish) -> tuple[Handle, bool]:
    """The process that runs ``release`` and whether it was adopted. ``first_start``: the
    first start of this actor since the daemon started (strays are looked for then)."""
    adopted = _adoptable(layout, release, process.adopt(layout.pidfile, layout.log_sink), publish)
    if adopted is not None and _release_of(adopted.pid) not in (None, release):
        # The daemon died between switching `current` and restarting the process: the
        # survivor runs another release, so it is replaced rather than adopted.
        publish(
            EnvironmentEvent.STALE_PROCESS,
            level="warning",
            pid=adopted.pid,
            running=_release_of(adopted.pid),
            current=release,
        )
        adopted.stop(layout.config.stop_grace)
        adopted = None
    if adopted is not None:
        return adopted, True
    _stop_strays(layout, first_start, publish)
    return _spawn(layout, release), False


def _adoptable(
    layout: Layout, release: str, adopted: process.AdoptedProcess | None, publish: Publish
) -> process.AdoptedProcess | None:
    """``adopted``, unless it was started with another command or environment values
    than the configuration now gives: then it is stopped, to start under the new one."""
    if adopted is None:
        return None
    wanted = layout.command_record(release)
    was = _started_with(layout, adopted.pid)
    if was is None or was == wanted:
        return adopted
    publish(
        EnvironmentEvent.CONFIG_CHANGED,
        level="warning",
        pid=adopted.pid,
        was=json.dumps(was, sort_keys=True),
        now=json.dumps(wanted, sort_keys=True),
    )
    adopted.stop(layout.config.stop_grace)
    return None


def _stop_strays(layout: Layout, first_start: bool, publish: Publish) -> None:
    """Stop service processes of this environment that no pid file names.

    A daemon killed between spawning a process and writing its pid file leaves one
    behind, holding the port: the next daemon would find the port busy and park the
    environment. Looked for on a generation's first start (after a daemon or supervisor
    restart) and whenever the port is busy; the scan of /proc costs a few milliseconds.
    """
    config = layout.config
    if not first_start and not port_in_use(config.host, config.port):
        return
    for pid in layout.service_pids():
        start_time = process.proc_start_time(pid)
        if start_time is None:
            continue
        try:
            stray = process.AdoptedProcess(pid, start_time, None, None)
        except ProcessLookupError:
            continue  # exited meanwhile
        publish(EnvironmentEvent.STRAY_STOPPED, level="warning", pid=pid, running=_release_of(pid))
        stray.stop(config.stop_grace)


def _spawn(layout: Layout, release: str) -> process.Child:
    config = layout.config
    if port_in_use(config.host, config.port):
        held = evidence.port_reason(layout) or f"port {config.port} is in use"
        raise EnvironmentFailure(
            layout.name, f"{held}; stop it or change the port in the configuration"
        )
    child = process.spawn(
        layout.argv(release),
        cwd=layout.current,
        env=layout.process_env(release),
        log=layout.log_sink,
    )
    record = layout.command_record(release)
    process.write_atomic(layout.started_with, json.dumps(record) + "\n")
    process.write_pidfile(layout.pidfile, child.pid, child.start_time)
    return child


def stop(proc: Handle | None, grace: float) -> str | None:
    """Stop ``proc`` (if it still runs); what went wrong, or None."""
    if proc is None or proc.exited:
        return None
    try:
        proc.stop(grace)
    except process.ProcessError as exc:
        return str(exc)
    return None


def _started_with(layout: Layout, pid: int) -> dict[str, Any] | None:
    """What ``pid`` was started with: the record beside the pid file, else its argv from
    /proc (environment values unknown: taken as unchanged); None when neither is readable."""
    try:
        record = json.loads(layout.started_with.read_text())
        if isinstance(record, dict) and {"argv", "env"} <= record.keys():
            return record
    except (OSError, ValueError):
        pass
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    argv = [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]
    return {"argv": argv, "env": layout.configured_env(_release_of(pid) or "")}


def _release_of(pid: int) -> str | None:
    """The release a process runs from: the name of its working directory."""
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")).name
    except OSError:
        return None
