"""The ``improve`` command: ``improve [--apply] [--target PATH] [--history]``.

With a daemon it asks the ``improve`` actor for a cycle and follows it: phase starts and ends
and a progress bar over the analysis stream to the client, then the readable report (``--json``
gives the same result as JSON). Leaving (Ctrl-C) detaches; the cycle goes on in the daemon.
Without a daemon it starts the same actors in this process (store, bus, the ``improvement``
subtree) for the one cycle, so both ways run the same code and store the same rows.

``--history`` reads the store: the cycles of the target, each against the one before it (new
and fixed findings by identity), and the latest two compared in full.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gaia_actors.control.commands import (
    CommandContext,
    Option,
    command,
    follow_updates,
    update_relay,
)
from gaia_actors.events import CycleProgress
from gaia_actors.improve.errors import ImproveError
from gaia_actors.improve.progress import Progress
from gaia_actors.improve.report import render_improve
from gaia_actors.improve.status import NAME, CycleRunning, CycleStatus
from gaia_actors.messages import GetCycleStatus, RunCycle
from gaia_actors.settings import Settings
from supervisors import AskTimeout, NotRunning

if TYPE_CHECKING:
    from supervisors import Registry

# The handlers import the stored cycles (``history``) and the cycle's machinery when they run
# (in the daemon, or offline): a command line that sends ``improve`` to the daemon and prints
# its answer imports neither.

ALIVE_CHECK = 2.0  # seconds between checks that the followed cycle still runs
START_TIMEOUT = 30.0


@command(
    "improve",
    help="run a self-improvement cycle: analyse the target (default: the configured one), "
    "detect issues, run its tests under coverage, rank tasks, try mechanical fixes in a "
    "scratch copy, benchmark, store it all; --history shows the trend across cycles",
    options=(
        Option("apply", bool, False, help="write the cycle's verified patch to the target"),
        Option(
            "target",
            str,
            None,
            help="the tree to improve (absolute, or relative to where the command runs)",
        ),
        Option("history", bool, False, help="show the stored cycles and how they compare"),
        Option("n", int, 0, help="cycles --history lists; 0: improve.history_limit"),
    ),
    offline=True,
    render=render_improve,
)
def improve(
    ctx: CommandContext,
    apply: bool = False,
    target: str | None = None,
    history: bool = False,
    n: int = 0,
) -> dict[str, Any]:
    if history:
        return show_history(ctx.settings, target, n)
    path = str(Path(target).expanduser().resolve()) if target else ""
    if ctx.registry is not None:
        return follow_cycle(ctx, ctx.registry, path, apply)
    return run_offline(ctx, path, apply)


def show_history(settings: Settings, target: str | None, limit: int) -> dict[str, Any]:
    path = (
        Path(target).expanduser().resolve() if target else settings.resolve(settings.improve.target)
    )
    from gaia_actors.improve import history

    improve = settings.improve
    return history.trend(str(path), limit or improve.history_limit, improve.regression_threshold)


# --- following a cycle --------------------------------------------------------------------


def follow_cycle(
    ctx: CommandContext, registry: Registry, target: str, apply: bool
) -> dict[str, Any]:
    """Start a cycle on the engine and stream its progress until it ends (or the client
    leaves); the result is the stored cycle."""
    from gaia_actors.improve import history

    with update_relay(registry) as updates:
        request = RunCycle(target, apply, updates.name)
        started = registry.ask(NAME, request, timeout=START_TIMEOUT)
        cycle_id = int(started["cycle_id"])
        ended = follow_updates(
            ctx,
            updates,
            final=CycleProgress.CYCLE_ENDED,
            show=Progress(ctx.progress).update,
            still_running=lambda: _running(registry, cycle_id),
            ended=lambda: _ended_from_store(cycle_id),
            alive_check=ALIVE_CHECK,
            job=f"improvement cycle #{cycle_id}",
        )
    if ended is None:
        return {
            "cycle_id": cycle_id,
            "detached": True,
            "note": "still running in the daemon: `ask improve GetCycleStatus` follows it",
        }
    result = history.show(cycle_id)
    if ended["status"] != "succeeded":
        raise ImproveError(
            f"improvement cycle #{cycle_id} {ended['status']}: {ended.get('error') or '-'}"
        )
    return result


def _running(registry: Registry, cycle_id: int) -> bool:
    """Is the engine still on ``cycle_id``? (It may have been restarted meanwhile.)"""
    try:
        status: CycleStatus = registry.ask(NAME, GetCycleStatus(), timeout=10.0)
    except (NotRunning, AskTimeout):
        return False
    return isinstance(status, CycleRunning) and status.cycle_id == cycle_id


def _ended_from_store(cycle_id: int) -> dict[str, Any]:
    from gaia_actors.improve import history

    row = history.get(cycle_id)
    status = "interrupted" if row.status == "running" else row.status
    return {"event": CycleProgress.CYCLE_ENDED, "status": status, "error": row.error}


# --- without a daemon -----------------------------------------------------------------------


def run_offline(ctx: CommandContext, target: str, apply: bool) -> dict[str, Any]:
    """One cycle on actors started here: store, bus and the improvement subtree."""
    import structlog

    from gaia_actors import logs
    from gaia_actors.improve import tree
    from gaia_actors.improve.schedule import without_schedules
    from supervisors import Registry

    if ctx.start_tree is None:
        raise ImproveError("improve without a daemon needs the app to start its actors")
    settings = without_schedules(ctx.settings)  # one cycle here; schedules are the daemon's
    if not structlog.is_configured():  # the CLI's own process: events to the log file only
        quiet = dataclasses.replace(settings.logging, console="off")
        logs.configure(quiet, settings.log_path)
    registry = Registry()
    root = ctx.start_tree(settings, registry, (tree,))
    try:
        return follow_cycle(ctx, registry, target, apply)
    finally:
        root.stop(block=True, timeout=settings.daemon.shutdown_timeout)
