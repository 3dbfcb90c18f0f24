"""Commands about the daemon itself: the supervision tree, message types, its resources,
fault injection."""

from __future__ import annotations

import dataclasses
import os
import re
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

from gaia_actors.control.commands import CommandContext, UsageError, command
from gaia_actors.errors import ControlError
from gaia_actors.messages import Crash, Hang, describe, message_types
from gaia_actors.messages.common import MAX_HANG_SECONDS

if TYPE_CHECKING:
    from supervisors import Registry


@command("actors", help="the supervision tree: every actor with its state, restarts and generation")
def actors(ctx: CommandContext) -> list[dict[str, Any]]:
    registry = _daemon(ctx, "actors")
    # In the order supervisors first reported them: start order within each supervisor.
    return [dataclasses.asdict(node) for node in registry.snapshot()]


@command(
    "resources",
    help="the daemon process: RSS, CPU, open files and its threads by name (a leak shows "
    "here); with the daemon started under PYTHONTRACEMALLOC=1, also where its memory went",
)
def resources(ctx: CommandContext) -> dict[str, Any]:
    _daemon(ctx, "resources")
    return {**_own_process(), **_traced_memory()}


def _own_process() -> dict[str, Any]:
    from gaia_actors.process import proc_stats

    stats = proc_stats(os.getpid())
    assert stats is not None  # our own process
    kinds = Counter(fd_kind(fd) for fd in os.listdir("/proc/self/fd"))
    names = Counter(thread_kind(t.name) for t in threading.enumerate())
    return {
        "pid": stats.pid,
        "rss_mib": round(stats.rss_bytes / 2**20, 1),
        "cpu_seconds": round(stats.cpu_seconds, 2),
        "cpu_percent": round(stats.cpu_percent, 1),  # over the daemon's whole life
        "open_files": sum(kinds.values()),
        "open_files_by_kind": dict(kinds.most_common()),
        "threads": stats.threads,
        "threads_by_name": dict(names.most_common()),
    }


def _traced_memory(top: int = 10) -> dict[str, Any]:
    """Python allocations by source file, when tracemalloc traces (it slows the daemon, so
    only when asked for: PYTHONTRACEMALLOC=1)."""
    import tracemalloc

    if not tracemalloc.is_tracing():
        return {}
    current, peak = tracemalloc.get_traced_memory()
    statistics = tracemalloc.take_snapshot().statistics("filename")[:top]
    return {
        "traced_mib": round(current / 2**20, 1),
        "traced_peak_mib": round(peak / 2**20, 1),
        "traced_by_file_kib": {
            str(s.traceback[0].filename): round(s.size / 1024) for s in statistics
        },
    }


def fd_kind(fd: str) -> str:
    """What a descriptor of this process is: socket, pipe, pidfd, ..., or the file's suffix
    (``.db``, ``.jsonl``) or name."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "closed"  # the one listdir itself used, or one closed since
    kind = re.match(r"(?:anon_inode:\[?)?([a-z_]+)(?=[:\]\[])", target)
    if kind is not None:
        return kind.group(1)
    name = target.rsplit("/", 1)[-1]
    suffix = name.rpartition(".")[2] if "." in name else ""
    return f".{suffix}" if suffix and not suffix.isdigit() else name


def thread_kind(name: str) -> str:
    """A thread's name without what differs between instances: Pykka's actor URN, a numeric
    suffix (``pipeline-run-3``, ``Thread-12``)."""
    name = re.sub(r"\s*\(urn:uuid:[0-9a-f-]+\)", "", name)
    return re.sub(r"-\d+(?=\s|$)", "", name)


@command("messages", help="every message type with its fields", offline=True)
def messages(ctx: CommandContext) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "doc": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
            "fields": [dataclasses.asdict(f) for f in describe(cls)],
        }
        for name, cls in sorted(message_types().items())
    ]


@command(
    "crash",
    help="fault injection: make ACTOR raise, so its supervisor restarts it",
    args=("actor",),
    options=("reason",),
)
def crash(ctx: CommandContext, actor: str, reason: str = "injected by an operator") -> Any:
    registry = _worker_actor(ctx, "crash", actor)
    registry.tell(actor, Crash(reason))
    return {"actor": actor, "crashed": True, "reason": reason}


@command(
    "hang",
    help=f"fault injection: block ACTOR's mailbox for SECONDS (default 10, at most "
    f"{MAX_HANG_SECONDS:g}); its supervisor's liveness ping notices",
    args=("actor", "seconds"),
)
def hang(ctx: CommandContext, actor: str, seconds: float = 10.0) -> Any:
    if not 0 < seconds <= MAX_HANG_SECONDS:
        raise UsageError("hang", f"expected 0 < seconds <= {MAX_HANG_SECONDS:g}", "seconds")
    registry = _worker_actor(ctx, "hang", actor)
    registry.tell(actor, Hang(seconds))
    return {"actor": actor, "hung_for": seconds}


def _daemon(ctx: CommandContext, name: str) -> Registry:
    if ctx.registry is None:
        raise ControlError(f"{name} needs a running daemon")
    return ctx.registry


def _worker_actor(ctx: CommandContext, name: str, actor: str) -> Registry:
    """The registry, after checking ``actor`` names a running actor that is not a supervisor."""
    registry = _daemon(ctx, name)
    node = registry.node(actor)
    if node is None and actor not in registry.names():
        known = ", ".join(registry.names())
        raise UsageError(name, f"no actor named {actor!r}; actors: {known}", "actor")
    if actor == "root" or (node is not None and node.supervisor):
        raise UsageError(
            name, f"{actor!r} is a supervisor; fault injection targets a worker actor", "actor"
        )
    return registry
