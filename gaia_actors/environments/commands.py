"""Operator commands for environments: backup, restore, rollback, deploy, logs, reset, kill.

Commands that stop or replace something validate first, from the files on disk: an unknown
environment, release or backup is a usage error (exit 2) naming what exists, and the running
process is not touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gaia_actors import formatting
from gaia_actors.control.commands import Arg, CommandContext, Option, UsageError, command
from gaia_actors.errors import ControlError, EnvironmentFailure
from gaia_actors.layout import Layout, actor_name
from gaia_actors.messages import (
    BuildRelease,
    Deploy,
    GetLogs,
    KillProcess,
    ResetData,
    RestoreBackup,
    Rollback,
    TakeBackup,
)
from supervisors.messages import ResetChild

if TYPE_CHECKING:
    from supervisors import Registry

# The handlers import the environments' on-disk mechanisms when they run (in the daemon, or
# offline): a command line that sends a command to the daemon and prints its answer does not.
ENV = Arg("env", help="environment name")


def _ask(ctx: CommandContext, env: str, message: Any, timeout: float) -> Any:
    registry = _registry(ctx, env)
    return registry.ask(actor_name(env), message, timeout=timeout)


def _registry(ctx: CommandContext, env: str) -> Registry:
    _require_env(ctx, "env", env)
    if ctx.registry is None:
        raise ControlError("this command needs a running daemon")
    return ctx.registry


def _require_env(ctx: CommandContext, name: str, env: str) -> Layout:
    if env not in ctx.settings.environments:
        known = ", ".join(ctx.settings.environments) or "none configured"
        raise UsageError(name, f"no environment {env!r}; environments: {known}", "env")
    return Layout.of(ctx.settings, env)


def _release_ids(layout: Layout) -> str:
    from gaia_actors.environments import releases

    return ", ".join(r.id for r in releases.list_releases(layout.root)) or "none"


def _require_release(ctx: CommandContext, name: str, env: str, release: str) -> None:
    """``release`` is a complete release of ``env`` or, for deploy, a release directory."""
    from gaia_actors.environments import releases

    layout = _require_env(ctx, name, env)
    if name == "deploy" and "/" in release:
        try:
            releases.load_release(Path(release))
        except releases.ReleaseError as exc:
            problem = f"{release!r} is not a release directory: {exc}"
            raise UsageError(name, problem, "release") from None
        return
    if release not in {r.id for r in releases.list_releases(layout.root)}:
        raise UsageError(
            name,
            f"environment {env!r} has no release {release!r}; releases: {_release_ids(layout)}",
            "release",
        )


def _require_backup(ctx: CommandContext, env: str, backup: str) -> None:
    """A restore would find ``backup`` (or, without one, some backup) that verifies now."""
    from gaia_actors.environments import backups, restores

    layout = _require_env(ctx, "restore", env)
    known = [r.id for r in backups.list_backups(layout.backups)]
    listed = ", ".join(known) or "none"
    if backup and (
        backup in {"", ".", ".."} or "/" in backup or not (layout.backups / backup).is_dir()
    ):
        problem = f"environment {env!r} has no backup {backup!r}; backups: {listed}"
        raise UsageError("restore", problem, "backup")
    try:
        restores.choose(layout.backups, backup or None)
    except backups.NoVerifiedBackup as exc:
        problem = str(exc).removeprefix(f"{exc.path}: ")
        raise UsageError("restore", f"{problem}; backups of {env!r}: {listed}", "backup") from None


def _op_timeout(ctx: CommandContext, env: str) -> float:
    config = ctx.settings.environments[env]
    return 2 * config.deploy_timeout + 2 * config.stop_grace + 10


@command("backup", help="take a verified online backup of ENV's databases now", args=(ENV,))
def backup(ctx: CommandContext, env: str) -> Any:
    return _ask(ctx, env, TakeBackup("manual"), timeout=120)


@command(
    "restore",
    help="restore ENV's data from BACKUP (default: the newest that verifies), keeping a copy; "
    "--undo puts back the data the last restore or reset replaced",
    args=(ENV, Arg("backup", required=False, default="", help="backup id (see backups ENV)")),
    options=(Option("undo", bool, False, help="put back the data the last restore replaced"),),
)
def restore(ctx: CommandContext, env: str, backup: str = "", undo: bool = False) -> Any:
    from gaia_actors.environments import data

    layout = _require_env(ctx, "restore", env)
    if undo and backup:
        raise UsageError("restore", "give a backup or --undo, not both", "backup")
    if undo and not data.replaced_copies(layout.data):
        raise UsageError("restore", f"environment {env!r} has no replaced data to put back")
    if not undo:
        _require_backup(ctx, env, backup)
    return _ask(ctx, env, RestoreBackup(backup, undo=undo), timeout=_op_timeout(ctx, env))


@command(
    "rollback",
    help="switch ENV back to RELEASE (default: the previous one) and wait for healthy",
    args=(ENV, Arg("release", required=False, default="", help="release id")),
)
def rollback(ctx: CommandContext, env: str, release: str = "") -> Any:
    if release:
        _require_release(ctx, "rollback", env, release)
    return _ask(ctx, env, Rollback(release), timeout=_op_timeout(ctx, env))


@command(
    "deploy",
    help="deploy RELEASE (an id or a release directory) to ENV; switches back on failure",
    args=(ENV, Arg("release", help="release id or path")),
)
def deploy(ctx: CommandContext, env: str, release: str) -> Any:
    _require_release(ctx, "deploy", env, release)
    return _ask(ctx, env, Deploy(release), timeout=_op_timeout(ctx, env))


@command("build", help="build a new release of ENV from its source tree", args=(ENV,))
def build(ctx: CommandContext, env: str) -> Any:
    _require_env(ctx, "build", env)
    return _ask(ctx, env, BuildRelease(), timeout=ctx.settings.environments[env].build_timeout + 30)


@command(
    "logs",
    help="the last lines of ENV's process output (--json: the raw lines)",
    args=(ENV,),
    options=(Option("n", int, 50, help="number of lines"),),
    offline=True,
    render=formatting.log_lines,
)
def logs(ctx: CommandContext, env: str, n: int = 50) -> Any:
    if ctx.registry is None:  # the files are on disk: no daemon needed
        from gaia_actors import process

        if env not in ctx.settings.environments:
            raise UsageError("logs", f"no environment {env!r}", "env")
        return process.read_log_tail(Layout.of(ctx.settings, env).log_sink.path, n)
    return _ask(ctx, env, GetLogs(n), timeout=10)


@command(
    "backups",
    help="ENV's backups, newest first, each verified again now (sha256 and integrity_check)",
    args=(ENV,),
    offline=True,
)
def list_backups(ctx: CommandContext, env: str) -> Any:
    from gaia_actors.environments import backups

    layout = _require_env(ctx, "backups", env)
    rows = []
    for r in backups.list_backups(layout.backups):
        problem = backups.backup_problem(r)
        rows.append(
            {
                "backup": r.id,
                "created": r.created.isoformat(),
                "size": r.size,
                "databases": [c.name for c in r.databases],
                "verified": r.verified,  # when it was taken
                "verifies_now": problem is None,
                "problem": problem or "",
                "sha256": r.sha256[:16],
            }
        )
    return rows


@command("kill", help="fault injection: SIGKILL ENV's process and watch it recover", args=(ENV,))
def kill(ctx: CommandContext, env: str) -> Any:
    return _ask(ctx, env, KillProcess(), timeout=10)


@command(
    "reset",
    help="clear ENV's FAILED (or blocked) state and start it again; for reset_on_error "
    "environments (dev) also start over with empty data, keeping the old (restore --undo)",
    args=(ENV,),
)
def reset(ctx: CommandContext, env: str) -> Any:
    from gaia_actors.environments import alerts, recovery
    from gaia_actors.environments.tree import SUPERVISOR

    registry = _registry(ctx, env)
    config = ctx.settings.environments[env]
    node = registry.node(actor_name(env))
    if node is not None and node.state in ("failed", "blocked"):
        # A blocked environment's cause is outside its data: starting it now leaves the data.
        data_reset = config.reset_on_error and node.state == "failed"
        detail: dict[str, Any] = {}
        if data_reset:
            detail = recovery.reset_data(Layout.of(ctx.settings, env))
            why = "operator reset of a FAILED environment"
            alerts.data_replaced(registry, "control", env, kind="reset", why=why, detail=detail)
        registry.ask(SUPERVISOR, ResetChild(actor_name(env)), timeout=60)
        started = f"restarted from {node.state.upper()}"
        return {"env": env, "reset": started, "data_reset": data_reset, **detail}
    if not config.reset_on_error:
        raise EnvironmentFailure(
            env,
            "not FAILED, and reset_on_error = false: its data is never reset "
            "(use restore to go back to a backup)",
        )
    return registry.ask(actor_name(env), ResetData(), timeout=_op_timeout(ctx, env))
