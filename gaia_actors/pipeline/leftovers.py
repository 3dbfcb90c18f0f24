"""Leftovers of a SIGKILLed daemon: the processes of a stage its predecessor left running.

A stage command carries a token in its environment (``STAGE_TOKEN``), so a restarted daemon
can find and kill them.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from gaia_actors.pipeline.stages import STAGE_TOKEN


def stage_token(state_dir: Path, pipeline_id: int, position: int) -> str:
    return f"{state_dir}:{pipeline_id}:{position}"


def kill_leftover_stages(tokens: set[str]) -> list[int]:
    """SIGKILL the process groups of stage commands carrying one of ``tokens`` in their
    environment (a daemon killed mid-stage could not kill them). Answers the pids found."""
    if not tokens:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        if _token_of(environ) in tokens:
            pid = int(entry.name)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                group = os.getpgid(pid)
                if group != os.getpgrp():  # never our own group
                    os.killpg(group, signal.SIGKILL)
            found.append(pid)
    return found


def _token_of(environ: bytes) -> str | None:
    prefix = f"{STAGE_TOKEN}=".encode()
    for item in environ.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix) :].decode(errors="replace")
    return None
