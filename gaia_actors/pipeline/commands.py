"""Operator commands for promotions.

``promote dev|staging|all`` (the CLI's ``promote-dev``, ``promote-staging`` and
``promote-all`` aliases) starts a promotion and follows it:
each stage is shown as it starts and ends, with its duration, and with ``--output`` the
running stage's own output lines too. Leaving (Ctrl-C) detaches; the promotion goes on in
the daemon (``pipeline-status`` follows it, ``cancel ID`` stops it). A promotion that does
not succeed is an error (exit code 1) whose message says which stage, why, and what was
rolled back.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from gaia_actors.control.commands import (
    Arg,
    CommandContext,
    Option,
    command,
    follow_updates,
    update_relay,
)
from gaia_actors.errors import ControlError, PipelineError
from gaia_actors.events import PipelineEvent, RunProgress, StageEvent, matches
from gaia_actors.formatting import scalar, table
from gaia_actors.messages import CancelPipeline, GetPipelineStatus, Promote
from gaia_actors.pipeline.status import NAME, PipelineStatus
from supervisors import AskTimeout, NotRunning

if TYPE_CHECKING:
    from gaia_actors.pipeline.history import PromotionRecord
    from supervisors import Registry

# The handlers import the store's queries (``history``) and the registry's asks when they run
# (in the daemon, or offline): a command line that sends a command to the daemon and prints
# its answer imports neither.

OUTPUT = Option("output", bool, False, help="also show the running stage's output lines")
ALIVE_CHECK = 2.0  # seconds between checks that a followed promotion still runs
CANCEL_WAIT = 120.0  # seconds `cancel` waits for the promotion to wind down


# --------------------------------------------------------------------------- rendering


def render_promotions(result: Any) -> str:
    """A promotion (or both legs of promote-all) stage by stage."""
    if isinstance(result, dict) and result.get("detached"):
        return f"promotion #{result['pipeline_id']} {result['note']}"
    if not isinstance(result, dict) or "promotions" not in result:
        return scalar(result)
    parts = [render_promotion(p) for p in result["promotions"]]
    return "\n\n".join(parts) or f"promotion #{result.get('pipeline_id')}: {result.get('status')}"


def render_promotion(p: dict[str, Any]) -> str:
    head = (
        f"promotion #{p['id']} {p['kind']} ({p['source']} -> {p['target']}): {p['status']}"
        f"{_seconds(p.get('duration'))}, release {p.get('release') or '-'}"
    )
    lines = [head]
    if p.get("error"):
        lines.append(f"  error: {p['error']}")
    if p.get("rollback"):
        lines.append(f"  rollback: {p['rollback']}")
    if p.get("recovery"):
        lines.append(f"  recovery: {p['recovery']}")
    rows = [
        {
            "#": s["position"],
            "stage": s["name"],
            "kind": s["kind"],
            "env": s["env"],
            "status": s["status"],
            "seconds": s["duration"],
            "result": s["error"] or s["summary"],
        }
        for s in p.get("stages", [])
    ]
    if rows:
        lines.append(table(rows, "  "))
    for stage in p.get("stages", []):
        lines.extend(_failure_detail(stage))
    return "\n".join(lines)


def _failure_detail(stage: dict[str, Any]) -> list[str]:
    if stage["status"] in ("passed", "skipped", "running"):
        return []
    lines = []
    tests = stage.get("tests") or {}
    for case in tests.get("cases", []):
        if case["status"] in ("failed", "error"):
            lines.append(
                f"    {stage['name']}: {case['status']} {case['classname']}.{case['name']}"
            )
    tail = (stage.get("output_tail") or "").strip().splitlines()[-10:]
    if tail:
        lines.append(f"  last output of {stage['name']}:")
        lines.extend(f"    | {line}" for line in tail)
    return lines


def render_history(result: Any) -> str:
    if isinstance(result, dict) and "stages" in result:
        return render_promotion(result)
    if isinstance(result, list):
        return table(result) if result else "(no promotions yet)"
    return scalar(result)


def render_status(result: Any) -> str:
    if not isinstance(result, dict):
        return scalar(result)
    running = result.get("running", [])
    if not running:
        return "no promotion is running"
    lines = []
    for run in running:
        stage = f"stage {run['stage']}" if run.get("stage") else "between stages"
        if isinstance(run.get("stage_elapsed"), int | float):
            stage += f" for {run['stage_elapsed']:.1f}s"
        lines.append(
            f"promotion #{run['pipeline_id']} {run['kind']} ({run['what']}): {stage}, "
            f"{run['elapsed']:.1f}s in total" + (" - cancelling" if run.get("cancelling") else "")
        )
        lines.extend(f"  | {line}" for line in run.get("output", []))
    return "\n".join(lines)


def _seconds(value: Any) -> str:
    return f" in {value:.2f}s" if isinstance(value, int | float) else ""


# --------------------------------------------------------------------------- progress


def progress_of(update: dict[str, Any]) -> dict[str, Any]:
    """One watcher update as a progress line for people (and its event for scripts)."""
    event = str(update.get("event", ""))
    pid = update.get("pipeline_id")
    if event == StageEvent.OUTPUT:
        return {"message": f"    {update.get('name')} | {update.get('line')}"}
    if matches(event, PipelineEvent.ALL):
        return {"message": _pipeline_line(event, update), "event": event}
    where = f"#{pid} [{update.get('position')}] {update.get('name')}"
    if event == StageEvent.STARTED:
        text = f"{where} ({update.get('kind')} on {update.get('env')}) started"
    elif event == StageEvent.SKIPPED:
        text = f"{where} skipped"
    else:
        said = update.get("error") or update.get("summary") or ""
        text = f"{where} {update.get('status')} in {update.get('duration', 0):.2f}s: {said}"
    return {"message": text.rstrip(": "), "event": event}


def _pipeline_line(event: str, update: dict[str, Any]) -> str:
    pid, kind = update.get("pipeline_id"), update.get("kind")
    if event == PipelineEvent.STARTED:
        release = update.get("release") or "a new build"
        return f"#{pid} {kind}: {release} from {update.get('source')} to {update.get('target')}"
    text = f"#{pid} {kind} {update.get('status')} in {update.get('duration', 0):.2f}s"
    if update.get("error"):
        text += f": {update['error']}"
    if update.get("rollback"):
        text += f" (rollback: {update['rollback']})"
    return text


# --------------------------------------------------------------------------- commands


def _daemon(ctx: CommandContext, name: str) -> Registry:
    if ctx.registry is None:
        raise ControlError(f"{name} needs a running daemon")
    return ctx.registry


def promote(ctx: CommandContext, what: str, output: bool) -> dict[str, Any]:
    """Start promotion ``what`` and follow it to its end (or until the client leaves)."""
    from gaia_actors.pipeline import history

    registry = _daemon(ctx, f"promote-{what}")
    with update_relay(registry) as updates:
        watcher = updates.name
        request = Promote(what, f"promote-{what}", watcher=watcher, output=output)  # type: ignore[arg-type]
        started = registry.ask(NAME, request, timeout=30.0)
        run_id = int(started["pipeline_id"])
        ended = follow_updates(
            ctx,
            updates,
            final=RunProgress.RUN_ENDED,
            show=lambda update: ctx.progress(progress_of(update)),
            still_running=lambda: _running(registry, run_id),
            ended=lambda: _ended_from_history(run_id),
            alive_check=ALIVE_CHECK,
            job=f"promotion #{run_id}",
        )
    if ended is None:
        return {
            "pipeline_id": run_id,
            "detached": True,
            "note": f"still running: see pipeline-status; stop it with: cancel {run_id}",
        }
    promotions = [history.show(pid) for pid in ended["pipeline_ids"]]
    if ended["status"] != "succeeded":
        raise PipelineError(_failure_message(promotions))
    return {"pipeline_id": run_id, "status": ended["status"], "promotions": promotions}


def _running(registry: Registry, run_id: int) -> bool:
    from gaia_actors.replies import ask_reply

    try:
        status = ask_reply(registry, NAME, GetPipelineStatus(), PipelineStatus, 10.0)
    except (NotRunning, AskTimeout):
        return False
    return any(run.run == run_id for run in status.running)


def _ended_from_history(run_id: int) -> dict[str, Any]:
    from gaia_actors.pipeline import history

    ids = history.chain(run_id)
    status = history.get(ids[-1]).status if ids else "interrupted"
    return {"event": RunProgress.RUN_ENDED, "status": status, "pipeline_ids": ids}


def _failure_message(promotions: list[PromotionRecord]) -> str:
    failed = next((p for p in promotions if p.status != "succeeded"), promotions[-1])
    text = f"promotion #{failed.id} ({failed.kind}) {failed.status}: {failed.error}"
    if failed.rollback:
        text += f"; rollback: {failed.rollback}"
    return text + f" (details: history {failed.id})"


@command(
    "promote",
    help="promote a release: dev (dev -> staging), staging (staging -> prod) or all (both, "
    "stopping at the first failure); shows each stage as it starts and ends; Ctrl-C detaches "
    "(cancel ID stops it). The CLI's promote-dev, promote-staging and promote-all are this.",
    args=(Arg("what", help="dev, staging or all", choices=("dev", "staging", "all")),),
    options=(OUTPUT,),
    render=render_promotions,
)
def promote_command(ctx: CommandContext, what: str, output: bool = False) -> dict[str, Any]:
    return promote(ctx, what, output)


@command(
    "cancel",
    help="cancel running promotion ID: its stage's processes are killed, and a target it "
    "already deployed to is rolled back",
    args=(Arg("id", int, help="promotion id (see pipeline-status or history)"),),
    render=render_promotions,
)
def cancel(ctx: CommandContext, id: int) -> dict[str, Any]:
    from gaia_actors.pipeline import history

    registry = _daemon(ctx, "cancel")
    answer = registry.ask(NAME, CancelPipeline(id), timeout=10.0)
    ctx.progress({"message": f"cancelling promotion #{id} (stage {answer['stage'] or '-'})"})
    deadline = time.monotonic() + CANCEL_WAIT
    while _running_pipeline(registry, id) and time.monotonic() < deadline:
        if ctx.cancel.wait(0.1):  # an operator's wait on the daemon, not a synchronisation
            break
    run_ids = history.chain(history.get(id).chain_id or id)
    return {"pipeline_id": id, "promotions": [history.show(pid) for pid in run_ids]}


def _running_pipeline(registry: Registry, pipeline_id: int) -> bool:
    from gaia_actors.replies import ask_reply

    try:
        status = ask_reply(registry, NAME, GetPipelineStatus(), PipelineStatus, 10.0)
    except (NotRunning, AskTimeout):
        return False
    return any(pipeline_id in run.pipeline_ids for run in status.running)


@command(
    "history",
    help="recent promotions, or promotion ID stage by stage (status, duration, exit code, "
    "tests, output tail, error)",
    args=(Arg("id", int, required=False, help="promotion id"),),
    options=(Option("n", int, 0, help="how many promotions to list"),),
    offline=True,
    render=render_history,
)
def show_history(ctx: CommandContext, id: int | None = None, n: int = 0) -> Any:
    from gaia_actors.pipeline import history

    if id is not None:
        return history.show(id)
    return history.recent(n or ctx.settings.pipeline.history_limit)


@command(
    "pipeline-status",
    help="the running promotions with their current stage; --output shows its last lines",
    options=(OUTPUT, Option("n", int, 20, help="output lines with --output")),
    render=render_status,
)
def pipeline_status(ctx: CommandContext, output: bool = False, n: int = 20) -> PipelineStatus:
    from gaia_actors.replies import ask_reply

    registry = _daemon(ctx, "pipeline-status")
    return ask_reply(registry, NAME, GetPipelineStatus(n if output else 0), PipelineStatus, 10.0)
