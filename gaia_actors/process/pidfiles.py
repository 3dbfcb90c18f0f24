"""Pid files (the pid and the process's start time) and the atomic, durable writes they use."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from gaia_actors.process.errors import PidFileError
from supervisors.records import record


@record
class PidRecord:
    """What a pid file holds."""

    pid: int
    start_time: int


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new entry in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never a
    partial one (temp file in the same directory, fsync, ``os.replace``)."""
    payload = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_pidfile(path: Path, pid: int, start_time: int) -> None:
    """Record ``pid`` and its start time, atomically."""
    write_atomic(path, json.dumps({"pid": pid, "start_time": start_time}) + "\n")


def read_pidfile(path: Path) -> PidRecord | None:
    """The record in ``path``; None when there is no pid file. Raises PidFileError when the
    file exists but is not one of ours (it is written atomically, so never half-written)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        raw = json.loads(text)
        return PidRecord(pid=int(raw["pid"]), start_time=int(raw["start_time"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise PidFileError(path, f"{type(exc).__name__}: {exc}") from exc


def remove_pidfile(path: Path) -> None:
    """Forget the recorded process (after it was stopped)."""
    path.unlink(missing_ok=True)
