"""What ``/proc`` tells of a process: its start time (which tells a reused pid apart) and its
CPU, memory, threads and open files."""

from __future__ import annotations

import os
import time
from pathlib import Path

from supervisors.records import record


@record
class ProcStats:
    """One sample of a process from /proc; pass it back as ``since`` for the next one."""

    pid: int
    start_time: int
    cpu_seconds: float
    cpu_percent: float  # since the previous sample, or over the whole life without one
    rss_bytes: int
    threads: int
    sampled_at: float  # time.monotonic()


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat; index ``n - 3`` is field ``n`` of proc(5)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may itself contain ") ".
    return raw[raw.rindex(b")") + 2 :].decode().split()


def _field(fields: list[str], number: int) -> str:
    return fields[number - 3]


def proc_start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot, or None when there is no such pid."""
    fields = _stat_fields(pid)
    return None if fields is None else int(_field(fields, 22))


def is_same_process(pid: int, start_time: int) -> bool:
    """True while ``pid`` is still the process that started at ``start_time`` and has not
    exited (a zombie counts as exited). Safe against pid reuse."""
    fields = _stat_fields(pid)
    if fields is None:
        return False
    return int(_field(fields, 22)) == start_time and _field(fields, 3) not in ("Z", "X")


def proc_stats(pid: int, since: ProcStats | None = None) -> ProcStats | None:
    """CPU, memory and threads of ``pid``; None when it is gone.

    ``cpu_percent`` covers the interval since ``since`` (the caller keeps the previous sample,
    so there is no shared state here); without one, or when the pid now names another
    process, it covers the process's whole life. 100 means one core busy.
    """
    fields = _stat_fields(pid)
    if fields is None:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    now = time.monotonic()
    start = int(_field(fields, 22))
    cpu = (int(_field(fields, 14)) + int(_field(fields, 15))) / ticks
    if (
        since is not None
        and (since.pid, since.start_time) == (pid, start)
        and now > since.sampled_at
    ):
        percent = 100.0 * (cpu - since.cpu_seconds) / (now - since.sampled_at)
    else:
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - start / ticks
        percent = 100.0 * cpu / age if age > 0 else 0.0
    return ProcStats(
        pid=pid,
        start_time=start,
        cpu_seconds=cpu,
        cpu_percent=percent,
        rss_bytes=int(_field(fields, 24)) * os.sysconf("SC_PAGE_SIZE"),
        threads=int(_field(fields, 20)),
        sampled_at=now,
    )
