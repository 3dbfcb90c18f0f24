"""What a failed start says about its cause, read before the recovery ladder touches anything.

``blocked_reason`` names a cause an environment cannot fix by restarting, rolling back or
restoring: its port held by a process that is not its own, a command that is not installed,
a placeholder in its command or environment that does not exist. The supervisor asks it
after every failure (so it must be quick: a bind probe, and /proc reads only when the port
is taken) and again while the environment waits, until the cause is gone.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from gaia_actors import process
from gaia_actors.errors import TemplateError
from gaia_actors.layout import Layout, port_in_use
from gaia_actors.settings import expand

_PROC_NET = ("/proc/net/tcp", "/proc/net/tcp6")
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's "st" column


def listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on ``port`` (any address), from /proc/net/tcp{,6}."""
    inodes: set[str] = set()
    for table in _PROC_NET:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if (
                len(fields) > 9
                and fields[3] == _LISTEN
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                inodes.add(fields[9])
    return inodes


def port_holders(port: int) -> list[int]:
    """Processes with a socket listening on ``port`` (those this user may look into)."""
    wanted = {f"socket:[{inode}]" for inode in listening_inodes(port)}
    holders: list[int] = []
    if not wanted:
        return holders
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry.name}/fd")
            if any(_readlink(f"/proc/{entry.name}/fd/{fd}") in wanted for fd in fds):
                holders.append(int(entry.name))
        except OSError:
            continue  # gone, or another user's
    return sorted(holders)


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() or "?"
    except OSError:
        return "?"


def own_pids(layout: Layout, candidates: list[int]) -> set[int]:
    """Which of ``candidates`` are the environment's own: running from one of its releases,
    or in the session of the process its pid file names (a worker the service forked that
    moved elsewhere still belongs to it, and goes when it does)."""
    own = set(layout.service_pids())
    try:
        record = process.read_pidfile(layout.pidfile)
    except process.PidFileError:
        record = None
    if record is not None:
        own |= {pid for pid in candidates if _session(pid) == record.pid}
    return own & set(candidates)


def _session(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[3])  # fields after the name: state ppid pgrp sid


def port_reason(layout: Layout) -> str | None:
    """Why the environment's port is not free for it, or None when it is (or only its own
    previous process still holds it, which stopping strays takes care of)."""
    host, port = layout.config.host, layout.config.port
    if not port_in_use(host, port):
        return None
    holders = port_holders(port)
    own = own_pids(layout, holders)
    foreign = [pid for pid in holders if pid not in own]
    if holders and not foreign:
        return None
    if not holders:
        return f"port {port} on {host} is held by a process this user cannot inspect"
    named = ", ".join(f"pid {pid} ({process_name(pid)})" for pid in foreign)
    return f"port {port} on {host} is held by {named}, not by this environment"


def placeholder_reason(layout: Layout) -> str | None:
    """An unknown ``{name}`` (or a lone brace) in the command or environment values, or None."""
    values = layout.substitutions("release")
    for where, template in _templates(layout):
        try:
            expand(template, values)
        except TemplateError as exc:
            return f"{where}: {exc}"
    return None


def _templates(layout: Layout) -> list[tuple[str, str]]:
    name = layout.name
    found = [(f"environments.{name}.command", part) for part in layout.config.command]
    found += [(f"environments.{name}.env.{key}", value) for key, value in layout.config.env.items()]
    return found


def command_reason(layout: Layout, release: str | None) -> str | None:
    """The command's program when it is not installed: a bare name not on PATH, or an
    absolute path that does not exist. A path relative to the release is the release's
    business (a rollback may bring it back), so it is not a reason here."""
    try:
        argv = layout.argv(release or "release")
        path = layout.process_env(release or "release").get("PATH")
    except TemplateError:
        return None  # placeholder_reason names it
    if not argv:
        return f"environments.{layout.name}.command is empty"
    program = argv[0]
    if os.path.isabs(program):
        missing = not os.access(program, os.X_OK)
    elif "/" in program:
        return None
    else:
        missing = shutil.which(program, path=path) is None
    return f"command {program!r} is not installed or not executable" if missing else None


def blocked_reason(layout: Layout) -> str | None:
    """A cause the environment cannot fix by itself, or None (see the module docstring)."""
    return (
        placeholder_reason(layout)
        or command_reason(layout, layout.current_release())
        or port_reason(layout)
    )
