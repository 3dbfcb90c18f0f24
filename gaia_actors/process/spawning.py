"""Starting a child in its own session and process group, its output in memory, captured or
through the shared log pump."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from gaia_actors.process.errors import ProcessError, SpawnError
from gaia_actors.process.handles import Child, signal_group
from gaia_actors.process.output import (
    DEFAULT_TAIL_CHARS,
    CapturedOutput,
    LogSink,
    MemoryOutput,
    hand_to_log_pump,
)


def _popen(
    argv: Sequence[str],
    cwd: Path | str,
    env: Mapping[str, str] | None,
    output_fd: int,
    error_fd: int | None = None,
    *,
    input_fd: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv``; stderr goes to ``error_fd``, or with stdout to ``output_fd``; stdin
    reads ``input_fd`` (else /dev/null)."""
    if not argv:
        raise SpawnError(argv, Path(cwd), "empty argv")
    try:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL if input_fd is None else input_fd,
            stdout=output_fd,
            stderr=output_fd if error_fd is None else error_fd,
            start_new_session=True,  # own session and group: signal the group, not just the pid
            close_fds=True,
        )
    except OSError as exc:
        raise SpawnError(argv, Path(cwd), str(exc)) from exc


def spawn_to_memory(
    argv: Sequence[str],
    cwd: Path | str,
    env: Mapping[str, str] | None,
    limit: int,
    on_line: Callable[[str], None] | None,
    *,
    input_fd: int | None = None,
) -> Child:
    read_fd, write_fd = os.pipe()
    try:
        popen = _popen(argv, cwd, env, write_fd, input_fd=input_fd)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return Child(popen, MemoryOutput(read_fd, limit, on_line))


def spawn_captured(
    argv: Sequence[str], cwd: Path | str, env: Mapping[str, str] | None, input_fd: int | None
) -> Child:
    (out_read, out_write), (err_read, err_write) = os.pipe(), os.pipe()
    try:
        popen = _popen(argv, cwd, env, out_write, err_write, input_fd=input_fd)
    except BaseException:
        os.close(out_read)
        os.close(err_read)
        raise
    finally:
        os.close(out_write)
        os.close(err_write)
    return Child(popen, CapturedOutput(out_read, err_read))


def _spawn_to_log(
    argv: Sequence[str], cwd: Path | str, env: Mapping[str, str] | None, log: LogSink
) -> Child:
    read_fd, write_fd = os.pipe()
    try:
        popen = _popen(argv, cwd, env, write_fd)
        try:
            output = hand_to_log_pump(log, read_fd)
        except BaseException as exc:
            signal_group(popen.pid, signal.SIGKILL)
            popen.wait()
            if isinstance(exc, (OSError, ProcessError)):
                raise SpawnError(argv, Path(cwd), f"no log pump: {exc}") from exc
            raise
    finally:
        os.close(read_fd)
        os.close(write_fd)
    return Child(popen, output)


def spawn(
    argv: Sequence[str],
    cwd: Path | str,
    env: Mapping[str, str] | None = None,
    log: LogSink | None = None,
    *,
    tail_limit: int = DEFAULT_TAIL_CHARS,
) -> Child:
    """Start ``argv`` (no shell) in ``cwd`` in its own session and process group.

    stdout and stderr go, merged, to ``log`` through the shared log pump process (rotated by
    size; it survives a daemon restart), or without a ``log`` into an in-memory tail of
    ``tail_limit`` characters. ``env`` None inherits ours. The exit watcher reaps it at once, so
    :meth:`Child.watch` callbacks fire within milliseconds of the exit.
    """
    if log is None:
        return spawn_to_memory(argv, cwd, env, tail_limit, None)
    return _spawn_to_log(argv, cwd, env, log)
