"""Operator commands for alerts: what fires and where it went, test sends, silences.

``alerts`` lists the firing alerts and the recent ones with each receiver's delivery
(delivered, pending with its attempts and last error, abandoned); ``alerts test RECEIVER``
sends a test notification and shows what the receiver answered. ``silence TARGET DURATION``
holds back alerts of an environment (``prod``) or of alert names (``'promotion_*'``);
``silences`` lists them, ``unsilence ID`` lifts one. Reading works without a daemon.
"""

from __future__ import annotations

import fnmatch
import time
import uuid
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from gaia_actors import formatting
from gaia_actors.alerts import rules
from gaia_actors.alerts.messages import ROUTER, AddSilence, EndSilence
from gaia_actors.alerts.model import Alert, Notification
from gaia_actors.control.commands import Arg, CommandContext, Option, UsageError, command
from gaia_actors.errors import ControlError
from gaia_actors.settings import ReceiverSettings, Settings, with_secrets

if TYPE_CHECKING:
    from supervisors import Registry

# The handlers import the store's models, the silences kept there and the receivers when they
# run (in the daemon, or offline): a command line that sends a command to the daemon and prints
# its answer imports none of them.

ASK_TIMEOUT = 10.0
NOTIFICATIONS_READ = 2000  # recent notifications looked at for the deliveries of alerts


# --------------------------------------------------------------------------- alerts


def render_alerts(result: Any) -> str:
    if not isinstance(result, dict) or "firing" not in result:
        return formatting.value(result)
    parts = [f"firing ({len(result['firing'])}):"]
    parts.append(formatting.table(result["firing"], "  ") if result["firing"] else "  (none)")
    parts += ["", f"recent ({len(result['recent'])}):"]
    parts.append(formatting.table(result["recent"], "  ") if result["recent"] else "  (none)")
    if result["receivers"]:
        parts += ["", "receivers:", formatting.table(result["receivers"], "  ")]
    else:
        parts += ["", "receivers: none configured ([[alerts.receivers]] in the config)"]
    return "\n".join(parts)


@command(
    "alerts",
    help="firing and recent alerts with their delivery to each receiver; "
    "'alerts test RECEIVER' sends a test notification",
    args=(
        Arg("action", help="test: send a test notification", required=False, choices=("test",)),
        Arg("receiver", help="the receiver to test", required=False),
    ),
    options=(Option("n", int, 20, help="recent alerts shown"),),
    offline=True,
    render=render_alerts,
)
def alerts(
    ctx: CommandContext, action: str | None = None, receiver: str | None = None, n: int = 20
) -> dict[str, Any]:
    if action == "test":
        return send_test(ctx, receiver)
    if receiver is not None:
        raise UsageError("alerts", "give 'test' before a receiver: alerts test RECEIVER")
    from gaia_actors.store.models import AlertRow

    firing = AlertRow.select().where(AlertRow.status == "firing", AlertRow.lasting == True)  # noqa: E712 - peewee's SQL comparison
    recent = AlertRow.select().order_by(AlertRow.started.desc()).limit(max(1, n))
    deliveries = _deliveries()
    return {
        "firing": [_alert_line(r, deliveries) for r in firing.order_by(AlertRow.started)],
        "recent": [_alert_line(r, deliveries) for r in recent],
        "receivers": [_receiver_line(r) for r in ctx.settings.alerts.receivers],
    }


def _deliveries() -> dict[str, list[str]]:
    """Each alert key's deliveries, newest notification first: ``ops: delivered (HTTP 200)``."""
    from gaia_actors.store.models import NotificationRow

    model: Any = NotificationRow
    rows = model.select().order_by(model.id.desc()).limit(NOTIFICATIONS_READ)
    found: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        for key in row.alert_ids or ():
            found[key].append(f"{row.receiver}: {_delivery(row)}")
    return found


def _delivery(row: Any) -> str:
    if row.state == "delivered":
        return f"{row.status} delivered ({row.answer})"
    if row.state == "abandoned":
        return f"{row.status} ABANDONED after {row.attempts} attempts ({row.error})"
    if row.attempts:
        return f"{row.status} pending, {row.attempts} failed ({row.error})"
    return f"{row.status} pending"


def _alert_line(row: Any, deliveries: dict[str, list[str]]) -> dict[str, Any]:
    sent = deliveries.get(row.key, [])
    if row.silenced_by is not None and row.status == "firing":
        sent = [f"silenced by #{row.silenced_by}", *sent]
    return {
        "id": row.id,
        "since": formatting.ago(row.started),
        "severity": row.severity,
        "status": row.status if row.lasting else "once",
        "alert": row.name,
        "env": row.env or "-",
        "summary": row.summary,
        "delivery": "; ".join(dict.fromkeys(sent)) or "no receiver takes it",
    }


def _receiver_line(receiver: ReceiverSettings) -> dict[str, Any]:
    from gaia_actors.store.models import NotificationRow

    counts = {
        state: NotificationRow.select()
        .where(NotificationRow.receiver == receiver.name, NotificationRow.state == state)
        .count()
        for state in ("delivered", "pending", "abandoned")
    }
    return {"receiver": receiver.name, "kind": receiver.kind, "to": receiver.endpoint, **counts}


# --------------------------------------------------------------------------- alerts test


def send_test(ctx: CommandContext, name: str | None) -> dict[str, Any]:
    """A test notification to receiver ``name``, sent from here (not queued): its answer."""
    from gaia_actors.alerts.receivers import DeliveryFailed, build_receiver

    receiver = _receiver(with_secrets(ctx.settings), name)  # sent from here: it needs them
    now = time.time()
    alert = Alert(
        key=f"{rules.TEST}:{uuid.uuid4().hex}",
        name=rules.TEST,
        severity="info",
        status="firing",
        env="",
        summary=f"a test notification to {receiver.name} from gaia_actors",
        event="",
        started=now,
    )
    notification = Notification(
        uuid.uuid4().hex, receiver.name, "test", "firing", (alert,), now, test=True
    )
    sink = build_receiver(receiver)
    try:
        delivery = sink.send(notification)
    except DeliveryFailed as exc:
        raise ControlError(f"{exc} (to {receiver.endpoint})") from exc
    finally:
        sink.close()
    return {
        "receiver": receiver.name,
        "kind": receiver.kind,
        "to": receiver.endpoint,
        "notification": notification.id,
        "answer": delivery.answer,
        "seconds": round(delivery.elapsed, 3),
    }


def _receiver(settings: Settings, name: str | None) -> ReceiverSettings:
    receivers = {r.name: r for r in settings.alerts.receivers}
    if name in receivers:
        return receivers[name]
    known = ", ".join(receivers) or "none configured"
    problem = "give one: alerts test RECEIVER" if name is None else f"no receiver {name!r}"
    raise UsageError("alerts test", f"{problem}; receivers: {known}", "receiver")


# --------------------------------------------------------------------------- silences


def render_silences(result: Any) -> str:
    if not isinstance(result, list):
        return formatting.value(result)
    return formatting.table(result) if result else "no silences in force"


def _silence_line(silence: dict[str, Any]) -> dict[str, Any]:
    now = time.time()
    ended = silence.get("ended")
    left = silence["expires"] - now
    return {
        "id": silence["id"],
        "env": silence["env"],
        "alert": silence["alert"],
        "until": formatting.iso(silence["expires"]),
        "state": f"{formatting.duration(left)} left"
        if ended is None and left > 0
        else ("lifted" if ended is not None and ended < silence["expires"] else "expired"),
        "reason": silence["reason"],
    }


@command(
    "silence",
    help="hold back alerts of an environment (prod) or of alert names ('promotion_*') "
    "for DURATION (30m, 2h, 1d)",
    args=(
        Arg("target", help="an environment, '*', or an alert name glob"),
        Arg("duration", help="30m, 2h, 1d or seconds"),
    ),
    options=(Option("reason", str, "", help="why (shown by silences)"),),
    render=lambda r: formatting.table([_silence_line(r)]),
)
def silence(ctx: CommandContext, target: str, duration: str, reason: str = "") -> dict[str, Any]:
    from gaia_actors.alerts.silences import parse_duration

    seconds = parse_duration(duration)
    env, alert = _silence_target(ctx, target)
    answer: dict[str, Any] = _router(ctx).ask(
        ROUTER, AddSilence(env, alert, seconds, reason), timeout=ASK_TIMEOUT
    )
    return answer


def _silence_target(ctx: CommandContext, target: str) -> tuple[str, str]:
    """(env glob, alert glob): an environment (or ``*``), else alert names that exist."""
    if target == "*" or target in ctx.settings.environments:
        return target, "*"
    if any(fnmatch.fnmatchcase(name, target) for name in rules.ALERT_NAMES):
        return "*", target
    raise UsageError(
        "silence",
        f"{target!r} is no environment ({', '.join(ctx.settings.environments) or 'none'}) "
        f"and matches no alert name ({', '.join(rules.ALERT_NAMES)})",
        "target",
    )


@command(
    "silences",
    help="silences in force (--all: with those ended)",
    options=(Option("all", bool, False, help="also the ended ones (newest 50)"),),
    offline=True,
    render=render_silences,
)
def silences(ctx: CommandContext, all: bool = False) -> list[dict[str, Any]]:
    from gaia_actors.alerts.silences import active_silences, from_row
    from gaia_actors.store.models import SilenceRow

    if not all:
        return [_silence_line(s.as_dict()) for s in active_silences()]
    model: Any = SilenceRow
    rows = model.select().order_by(model.id.desc()).limit(50)
    return [_silence_line(from_row(r).as_dict()) for r in rows]


@command(
    "unsilence",
    help="lift silence ID now",
    args=(Arg("id", int, help="the silence's id"),),
    render=lambda r: formatting.table([r]),
)
def unsilence(ctx: CommandContext, id: int) -> dict[str, Any]:
    ended = _router(ctx).ask(ROUTER, EndSilence(id), timeout=ASK_TIMEOUT)
    if ended is None:
        raise UsageError("unsilence", f"no silence #{id} in force (see: silences)", "id")
    line: dict[str, Any] = _silence_line(ended)
    return line


def _router(ctx: CommandContext) -> Registry:
    if ctx.registry is None:
        raise ControlError("silences are kept by the running daemon: start it first")
    return ctx.registry
