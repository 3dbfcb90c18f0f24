"""Operator commands for monitoring: status, health, load-balance, incidents.

``status`` and ``health`` ask the monitor when a daemon runs and read the newest
``health_checks`` rows when none does (or when the monitor does not answer), saying which.
``incidents`` reads the store either way. ``load-balance`` needs the daemon's balancer. The
CLI's live ``monitor`` view is ``status`` refreshed.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from gaia_actors import formatting
from gaia_actors.control.commands import Arg, CommandContext, Option, UsageError, command
from gaia_actors.datanotes import data_lines, data_notes
from gaia_actors.errors import ControlError
from gaia_actors.events import SupervisorEvent
from gaia_actors.layout import Layout
from gaia_actors.messages import GetHealth, GetState, Route, RouteDone
from gaia_actors.monitoring.balancer import NoEnvironmentAvailable
from gaia_actors.monitoring.failover import incident_rows
from gaia_actors.process import PidFileError, is_same_process, read_pidfile
from gaia_actors.store.models import ActorRestart, HealthCheck
from supervisors import Registry, SupervisionError

ASK_TIMEOUT = 5.0
MAX_ROUTES = 100_000
_ENV_PREFIX = "environment."


# -- status ------------------------------------------------------------------------------------


def render_status(result: Any) -> str:
    """Environments as a table with readable units, then the actors."""
    if not isinstance(result, dict) or "environments" not in result:
        return formatting.value(result)
    if result.get("daemon") is False:
        return _render_last_known(result["environments"])
    rows = [_readable(env) for env in result["environments"]]
    parts = [f"environments (from {result.get('source', '?')}):"]
    parts.append(formatting.table(rows, "  ") if rows else "  (none configured)")
    parts += data_lines(result["environments"])
    if result.get("store"):
        parts.append(_store_line(result["store"]))
    actors = result.get("actors") or []
    if actors:
        parts += ["", "actors:", formatting.table(actors, "  ")]
    return "\n".join(parts)


def _render_last_known(environments: list[dict[str, Any]]) -> str:
    rows = [
        {
            "env": env["env"],
            "last known": env.get("last_status", "unknown"),
            "as of": formatting.ago(env.get("last_check")),
            "release": env.get("release") or "-",
            "process now": f"{env['running_pid']} (running)" if env.get("running_pid") else "-",
        }
        for env in environments
    ]
    head = "no daemon running (start one with: python run.py): nobody watches the services."
    parts = [head, "Last known states, from the store:"]
    parts.append(formatting.table(rows, "  ") if rows else "  (none configured)")
    return "\n".join(parts)


def _store_line(store: dict[str, Any]) -> str:
    if store["status"] == "unreachable":
        return f"store: UNREACHABLE ({store.get('error')})"
    line = "store: ok"
    if store["status"] == "degraded":
        since = store.get("faulty_since")
        line = (
            f"store: DEGRADED for {_duration(time.time() - since if since else None)}, "
            f"retrying ({store.get('fault')}); {store.get('held', 0)} records held"
        )
    if store.get("lost"):
        line += f"; {store['lost']} records lost"
    for moved in store.get("set_aside") or ():
        line += f"; an unusable store was moved to {moved}"
    return line


def _uptime_now(env: dict[str, Any]) -> float | None:
    """The process's uptime now: the last check measured it, and the check has an age."""
    uptime, checked = env.get("uptime_s"), env.get("last_check")
    if not isinstance(uptime, int | float) or not isinstance(checked, int | float):
        return uptime if isinstance(uptime, int | float) else None
    return uptime + max(0.0, time.time() - checked)


def _readable(env: dict[str, Any]) -> dict[str, Any]:
    return {
        "env": env["env"],
        "status": env["status"],
        "release": env.get("release") or "-",
        "pid": env.get("pid"),
        "uptime": _duration(_uptime_now(env)),
        "response": _ms(env.get("response_ms")),
        "error rate": _percent(env.get("error_rate")),
        "cpu": _percent(env.get("cpu_percent"), scale=1.0),
        "memory": _bytes(env.get("rss_bytes")),
        "restarts": env.get("restarts", 0),
        "last check": _ago(env.get("last_check")),
    }


@command(
    "status",
    help="every environment (status, release, pid, uptime, response time, error rate, CPU, "
    "memory, restarts) and every actor's state",
    offline=True,
    render=render_status,
)
def status(ctx: CommandContext) -> dict[str, Any]:
    registry = ctx.registry
    if registry is None:
        return {
            "source": "store (no daemon running)",
            "daemon": False,
            "environments": [_last_known(ctx, s) for s in _stored_snapshots(ctx)],
            "actors": [],
        }
    snapshots, source = _live_snapshots(ctx, registry)
    restarts = {node.name: node.restarts for node in registry.snapshot()}
    for snap in snapshots:
        snap["restarts"] = restarts.get(_ENV_PREFIX + snap["env"], 0)
        snap.update(data_notes(registry, snap["env"]))
    return {
        "source": source,
        "environments": snapshots,
        "store": _store_state(registry),
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
    try:
        return list(registry.ask("monitor", GetHealth(), timeout=ASK_TIMEOUT)), "monitor"
    except SupervisionError as exc:
        return _stored_snapshots(ctx), f"store (monitor: {exc})"


def _actors(registry: Registry) -> list[dict[str, Any]]:
    return [
        {
            "actor": node.name,
            "parent": node.parent or "",
            "state": node.state,
            "restarts": node.restarts,
            "generation": node.generation,
            "for": _duration(time.time() - node.since if node.since else None),
            "last error": node.last_error,
        }
        for node in registry.snapshot()
    ]


def _stored_snapshots(ctx: CommandContext) -> list[dict[str, Any]]:
    """Each configured environment's newest stored check, as a snapshot."""
    return [_stored_snapshot(env) for env in ctx.settings.environments]


def _stored_snapshot(env: str) -> dict[str, Any]:
    query = HealthCheck.select().where(HealthCheck.env == env).order_by(HealthCheck.ts.desc())
    row = query.first()
    if row is None:
        return {"env": env, "status": "unknown", "reason": "never checked"}
    return {
        "env": env,
        "status": row.status,
        "reason": row.reason,
        "last_check": row.ts,
        "response_ms": row.latency_ms,
        "http_status": row.http_status,
        "error": row.error,
        "error_rate": row.error_rate,
        "requests": row.requests,
        "errors": row.errors,
        "uptime_s": row.uptime_s,
        "pid": row.pid,
        "cpu_percent": row.cpu_percent,
        "rss_bytes": row.rss_bytes,
        "db_bytes": row.db_bytes,
        "log_bytes": row.log_bytes,
        "release": row.release,
    }


def _with_restarts_from_store(snapshot: dict[str, Any]) -> dict[str, Any]:
    child = _ENV_PREFIX + snapshot["env"]
    query = ActorRestart.select().where(
        (ActorRestart.child == child) & (ActorRestart.event == SupervisorEvent.RESTART)
    )
    return {**snapshot, "restarts": query.count()}


def _last_known(ctx: CommandContext, snapshot: dict[str, Any]) -> dict[str, Any]:
    """A stored snapshot while no daemon runs: nobody watches the service, so its status is
    "unwatched"; what the monitor last saw is ``last_status``, ``age_s`` seconds ago, and
    ``running_pid`` is its process if that still runs (a daemon that was killed leaves it)."""
    last = _with_restarts_from_store(snapshot)
    checked = last.get("last_check")
    return {
        **last,
        "status": "unwatched",
        "last_status": snapshot["status"],
        "age_s": max(0.0, time.time() - checked) if isinstance(checked, int | float) else None,
        "running_pid": _running_pid(ctx, snapshot["env"]),
    }


def _running_pid(ctx: CommandContext, env: str) -> int | None:
    try:
        record = read_pidfile(Layout.of(ctx.settings, env).pidfile)
    except PidFileError:
        return None
    alive = record is not None and is_same_process(record.pid, record.start_time)
    return record.pid if alive and record is not None else None


# -- health ENV ----------------------------------------------------------------------------------


def render_health(result: Any) -> str:
    """One environment: its verdict, then what was measured, in readable units; fields
    that were not measured are left out."""
    if not isinstance(result, dict) or "env" not in result:
        return formatting.value(result)
    verdict = result["status"]
    if result.get("last_status"):
        when = formatting.ago(result.get("last_check"))
        verdict += f", last known {result['last_status']} {when}"
    head = f"{result['env']}: {verdict} ({result.get('reason') or '-'}), from {result['source']}"
    facts = {
        "last check": _when(result.get("last_check")),
        "response": _response(result),
        "error": result.get("error") or None,
        "error rate": _error_rate(result),
        "process": _process(result),
        "release": result.get("release"),
        "database": _size(result.get("db_bytes")),
        "logs": _size(result.get("log_bytes")),
    }
    parts = [head, formatting.mapping({k: v for k, v in facts.items() if v}, "  ")]
    checks = [
        {
            "when": formatting.ago(c.get("ts")),
            "status": c["status"],
            "http": c.get("http"),
            "ms": c.get("ms"),
            "reason": c.get("reason"),
            "error": c.get("error"),
        }
        for c in result.get("recent_checks") or []
    ]
    if checks:
        parts += ["", "recent checks:", formatting.table(checks, "  ")]
    return "\n".join(parts)


def _when(ts: Any) -> str | None:
    return None if ts is None else f"{formatting.ago(ts)} ({formatting.iso(ts)})"


def _size(size: Any) -> str | None:
    return None if size is None else formatting.mib(size)


def _response(result: dict[str, Any]) -> str | None:
    if result.get("response_ms") is None:
        return None
    http = result.get("http_status")
    return _ms(result["response_ms"]) + (f", HTTP {http}" if http else "")


def _error_rate(result: dict[str, Any]) -> str | None:
    if result.get("error_rate") is None:
        return None
    requests = result.get("requests")
    of = f" of {requests:g} requests" if isinstance(requests, int | float) else ""
    return _percent(result["error_rate"]) + of


def _process(result: dict[str, Any]) -> str | None:
    if result.get("pid") is None:
        return None
    now, uptime = "", _uptime_now(result)
    if "running_pid" in result:  # no daemon: what the last check saw, and whether it still runs
        now = " (still running)" if result["running_pid"] == result["pid"] else " (not running now)"
        uptime = result.get("uptime_s")
    return (
        f"pid {result['pid']}{now}, up {_duration(uptime)}, "
        f"CPU {_percent(result.get('cpu_percent'), scale=1.0)}, "
        f"memory {formatting.mib(result.get('rss_bytes'))}"
    )


@command(
    "health",
    help="one environment in detail, with its recent checks",
    args=(Arg("env", help="environment name"),),
    options=(Option("n", int, 10, help="how many recent checks to show"),),
    offline=True,
    render=render_health,
)
def health(ctx: CommandContext, env: str, n: int = 10) -> dict[str, Any]:
    _check_env(ctx, "health", env)
    snapshot: dict[str, Any] | None = None
    source = "store (no daemon running)"
    if ctx.registry is not None:
        try:
            snapshot = ctx.registry.ask("monitor", GetHealth(env), timeout=ASK_TIMEOUT)
            source = "monitor"
        except SupervisionError as exc:
            source = f"store (monitor: {exc})"
    if snapshot is None:
        stored = _stored_snapshot(env)
        snapshot = stored if ctx.registry is not None else _last_known(ctx, stored)
    return {**snapshot, "source": source, "recent_checks": recent_checks(env, max(1, n))}


def recent_checks(env: str, limit: int) -> list[dict[str, Any]]:
    """The newest stored checks of ``env``, newest first."""
    query = (
        HealthCheck.select()
        .where(HealthCheck.env == env)
        .order_by(HealthCheck.ts.desc())
        .limit(min(limit, 1000))
    )
    return [
        {
            "ts": row.ts,
            "status": row.status,
            "http": row.http_status,
            "ms": row.latency_ms,
            "error": row.error,
            "reason": row.reason,
        }
        for row in query
    ]


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
    if not 1 <= n <= MAX_ROUTES:
        raise UsageError("load-balance", f"expected 1 <= n <= {MAX_ROUTES}, got {n}", "n")
    registry = _daemon(ctx, "load-balance")
    names = tuple(name.strip() for name in pool.split(",") if name.strip())
    for name in names:
        _check_env(ctx, "load-balance", name)
    counts: Counter[str] = Counter()
    statuses: dict[str, str] = {}
    rules: dict[str, dict[str, Any]] = {}  # rule -> how often it decided, and one example
    fallback = rejected = 0
    for i in range(n):
        if ctx.cancel.is_set():
            break
        try:
            answer = registry.ask("balancer", Route(names), timeout=ASK_TIMEOUT)
        except NoEnvironmentAvailable as exc:
            if not counts:
                raise  # nothing to show: the reason is the answer
            rejected += 1
            _count_rule(rules, "none available", str(exc))
            continue
        env = answer["env"]
        registry.tell("balancer", RouteDone(env))  # the simulated request is done at once
        counts[env] += 1
        statuses[env] = answer["status"]
        fallback += bool(answer["fallback"])
        _count_rule(rules, answer["rule"], answer["reason"])
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
    if env:
        _check_env(ctx, "incidents", env)
    rows = incident_rows(env, max(1, n))
    for row in rows:
        for key in ("started", "detected", "recovered"):
            if row.get(key) is not None:
                row[key] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row[key]))
    return rows


# -- helpers -------------------------------------------------------------------------------------


def _check_env(ctx: CommandContext, name: str, env: str) -> None:
    if env not in ctx.settings.environments:
        known = ", ".join(ctx.settings.environments) or "none configured"
        raise UsageError(name, f"no environment {env!r}; environments: {known}", "env")


def _daemon(ctx: CommandContext, name: str) -> Registry:
    if ctx.registry is None:
        raise ControlError(f"{name} needs a running daemon (the balancer lives in it)")
    return ctx.registry


_duration = formatting.duration
_ago = formatting.ago


def _ms(value: Any) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.1f} ms"


def _percent(value: Any, scale: float = 100.0) -> str:
    return "-" if not isinstance(value, int | float) else f"{value * scale:.1f}%"


_bytes = formatting.mib


__all__ = [
    "health",
    "incidents",
    "load_balance",
    "recent_checks",
    "render_status",
    "status",
]
