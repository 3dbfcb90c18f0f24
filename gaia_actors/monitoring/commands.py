"""Operator commands for monitoring: status, health, load-balance, incidents.

``status`` and ``health`` ask the monitor when a daemon runs and read the newest
``health_checks`` rows when none does (or when the monitor does not answer), saying which.
``incidents`` reads the store either way. ``load-balance`` needs the daemon's balancer. The
CLI's live ``monitor`` view is ``status`` refreshed.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from gaia_actors import formatting
from gaia_actors.control.commands import Arg, CommandContext, Option, UsageError, command
from gaia_actors.control.protocol import to_json
from gaia_actors.errors import ControlError
from gaia_actors.messages import GetHealth, GetState, Route, RouteDone, unknown_environment
from gaia_actors.monitoring.snapshot import HealthSnapshot
from gaia_actors.monitoring.views import render_health, render_status
from supervisors import SupervisionError

if TYPE_CHECKING:
    from supervisors import Registry

# The handlers import the actors' modules and the store's models they read when they run (in
# the daemon, or offline): a command line that only sends a command to the daemon and prints
# its answer imports neither.

ASK_TIMEOUT = 5.0
MAX_ROUTES = 100_000


# -- status ------------------------------------------------------------------------------------


@command(
    "status",
    help="every environment (status, release, pid, uptime, response time, error rate, CPU, "
    "memory, restarts) and every actor's state",
    offline=True,
    render=render_status,
)
def status(ctx: CommandContext) -> dict[str, Any]:
    from gaia_actors.datanotes import data_notes
    from gaia_actors.layout import actor_name
    from gaia_actors.monitoring.stored import firing_alerts, last_known, stored_snapshots

    registry = ctx.registry
    if registry is None:
        return {
            "source": "store (no daemon running)",
            "daemon": False,
            "environments": [last_known(ctx, s) for s in stored_snapshots(ctx)],
            "actors": [],
            "alerts": firing_alerts(),
        }
    snapshots, source = _live_snapshots(ctx, registry)
    restarts = {node.name: node.restarts for node in registry.snapshot()}
    for snap in snapshots:
        snap["restarts"] = restarts.get(actor_name(snap["env"]), 0)
        snap.update(data_notes(registry, snap["env"]))
    return {
        "source": source,
        "environments": snapshots,
        "store": _store_state(registry),
        "alerts": firing_alerts(),
        "actors": _actors(registry),
    }


def _store_state(registry: Registry) -> dict[str, Any]:
    """Whether the store writes, and what it holds or lost when it cannot."""
    try:
        state = registry.ask("store", GetState(), timeout=ASK_TIMEOUT)
    except SupervisionError as exc:
        return {"status": "unreachable", "error": str(exc)}
    keys = ("fault", "faulty_since", "held", "lost", "set_aside")
    return {"status": "degraded" if state.get("fault") else "ok"} | {
        key: state.get(key) for key in keys
    }


def _live_snapshots(ctx: CommandContext, registry: Registry) -> tuple[list[dict[str, Any]], str]:
    from gaia_actors.monitoring.stored import stored_snapshots

    try:
        snapshots: list[HealthSnapshot] = registry.ask("monitor", GetHealth(), timeout=ASK_TIMEOUT)
    except SupervisionError as exc:
        return stored_snapshots(ctx), f"store (monitor: {exc})"
    return [to_json(snapshot) for snapshot in snapshots], "monitor"


def _actors(registry: Registry) -> list[dict[str, Any]]:
    return [
        {
            "actor": node.name,
            "parent": node.parent or "",
            "state": node.state,
            "restarts": node.restarts,
            "generation": node.generation,
            "for": formatting.duration(time.time() - node.since if node.since else None),
            "last error": node.last_error,
        }
        for node in registry.snapshot()
    ]


# -- health ENV ----------------------------------------------------------------------------------


@command(
    "health",
    help="one environment in detail, with its recent checks",
    args=(Arg("env", help="environment name"),),
    options=(Option("n", int, 10, help="how many recent checks to show"),),
    offline=True,
    render=render_health,
)
def health(ctx: CommandContext, env: str, n: int = 10) -> dict[str, Any]:
    from gaia_actors.monitoring.stored import last_known, recent_checks, stored_snapshot
    from gaia_actors.replies import ask_reply

    snapshot: dict[str, Any] | None = None
    source = "store (no daemon running)"
    if ctx.registry is not None:
        try:
            live = ask_reply(ctx.registry, "monitor", GetHealth(env), HealthSnapshot, ASK_TIMEOUT)
            snapshot, source = to_json(live), "monitor"
        except SupervisionError as exc:
            source = f"store (monitor: {exc})"
    if snapshot is None:
        stored = stored_snapshot(env)
        snapshot = stored if ctx.registry is not None else last_known(ctx, stored)
    return {**snapshot, "source": source, "recent_checks": recent_checks(env, max(1, n))}


# -- load-balance ------------------------------------------------------------------------------


@command(
    "load-balance",
    help="route N requests through the balancer and show where they went and why",
    options=(
        Option("n", int, 10, help="how many requests to route"),
        Option("pool", str, "", help="comma-separated environments (default: the configured pool)"),
    ),
)
def load_balance(ctx: CommandContext, n: int = 10, pool: str = "") -> dict[str, Any]:
    from gaia_actors.monitoring.balancer import NoEnvironmentAvailable, RouteAnswer
    from gaia_actors.replies import ask_reply

    if not 1 <= n <= MAX_ROUTES:
        raise UsageError("load-balance", f"expected 1 <= n <= {MAX_ROUTES}, got {n}", "n")
    registry = _daemon(ctx, "load-balance")
    names = tuple(name.strip() for name in pool.split(",") if name.strip())
    _check_pool(ctx, names)
    counts: Counter[str] = Counter()
    statuses: dict[str, str] = {}
    rules: dict[str, dict[str, Any]] = {}  # rule -> how often it decided, and one example
    fallback = rejected = 0
    for i in range(n):
        if ctx.cancel.is_set():
            break
        try:
            answer = ask_reply(registry, "balancer", Route(names), RouteAnswer, ASK_TIMEOUT)
        except NoEnvironmentAvailable as exc:
            if not counts:
                raise  # nothing to show: the reason is the answer
            rejected += 1
            _count_rule(rules, "none available", str(exc))
            continue
        env = answer.env
        registry.tell("balancer", RouteDone(env))  # the simulated request is done at once
        counts[env] += 1
        statuses[env] = answer.status
        fallback += answer.fallback
        _count_rule(rules, answer.rule, answer.reason)
        if (i + 1) % 1000 == 0:
            ctx.progress({"message": "routing", "routed": i + 1, "of": n})
    result = _distribution(n, names, counts, statuses)
    return {
        **result,
        "why": list(rules.values()),
        "fallback_routes": fallback,
        "rejected": rejected,
    }


def _count_rule(rules: dict[str, dict[str, Any]], rule: str, example: str) -> None:
    entry = rules.setdefault(rule, {"rule": rule, "routes": 0, "example": example})
    entry["routes"] += 1


def _distribution(
    n: int, pool: tuple[str, ...], counts: Counter[str], statuses: dict[str, str]
) -> dict[str, Any]:
    routed = sum(counts.values())
    return {
        "requests": n,
        "routed": routed,
        "pool": ", ".join(pool) or "(configured)",
        "distribution": [
            {
                "env": env,
                "status": statuses[env],
                "routed": count,
                "share": f"{count / routed:.1%}" if routed else "-",
            }
            for env, count in sorted(counts.items())
        ],
    }


# -- incidents -----------------------------------------------------------------------------------


@command(
    "incidents",
    help="recent incidents (hung or exited environments) with time to detect and to recover",
    args=(Arg("env", required=False, default="", help="only this environment"),),
    options=(Option("n", int, 20, help="how many"),),
    offline=True,
)
def incidents(ctx: CommandContext, env: str = "", n: int = 20) -> list[dict[str, Any]]:
    from gaia_actors.monitoring.incidents import incident_rows

    rows = incident_rows(env, max(1, n))
    for row in rows:
        for key in ("started", "detected", "recovered"):
            if row.get(key) is not None:
                row[key] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row[key]))
    return rows


# -- helpers -------------------------------------------------------------------------------------


def _check_pool(ctx: CommandContext, names: tuple[str, ...]) -> None:
    """The generic check covers an ``env`` argument; a pool names several environments."""
    for name in names:
        problem = unknown_environment(name, ctx.settings.environments)
        if problem is not None:
            raise UsageError("load-balance", problem, "pool")


def _daemon(ctx: CommandContext, name: str) -> Registry:
    if ctx.registry is None:
        raise ControlError(f"{name} needs a running daemon (the balancer lives in it)")
    return ctx.registry


__all__ = ["health", "incidents", "load_balance", "status"]
