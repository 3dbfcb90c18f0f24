"""How ``status`` and ``health`` read as text: tables and lines in readable units."""

from __future__ import annotations

import time
from typing import Any

from gaia_actors import formatting
from gaia_actors.datanotes import data_lines


def render_status(result: Any) -> str:
    """Environments as a table with readable units, then the actors."""
    if not isinstance(result, dict) or "environments" not in result:
        return formatting.value(result)
    if result.get("daemon") is False:
        last_known = [_render_last_known(result["environments"])]
        return "\n".join(last_known + _alerts_lines(result.get("alerts")))
    rows = [_readable(env) for env in result["environments"]]
    parts = [f"environments (from {result.get('source', '?')}):"]
    parts.append(formatting.table(rows, "  ") if rows else "  (none configured)")
    parts += data_lines(result["environments"])
    if result.get("store"):
        parts.append(_store_line(result["store"]))
    parts += _alerts_lines(result.get("alerts"))
    actors = result.get("actors") or []
    if actors:
        parts += ["", "actors:", formatting.table(actors, "  ")]
    return "\n".join(parts)


def _alerts_lines(alerts: list[dict[str, Any]] | None) -> list[str]:
    if alerts is None:
        return []
    if not alerts:
        return ["alerts firing: none"]
    return [f"alerts firing ({len(alerts)}, see: alerts):", formatting.table(alerts, "  ")]


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


_duration = formatting.duration
_ago = formatting.ago


def _ms(value: Any) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.1f} ms"


def _percent(value: Any, scale: float = 100.0) -> str:
    return "-" if not isinstance(value, int | float) else f"{value * scale:.1f}%"


_bytes = formatting.mib
