"""Discord-compatible incoming webhooks: the same facts as embeds.

``content`` is the title (Discord shows it in notifications); each alert is an embed with
its summary as the title, its details as the description, its facts as inline fields, a
colour by severity (green once resolved), its start as the timestamp and the notification's
id in the footer. ``allowed_mentions`` is empty, so an alert's text that holds
``@everyone`` pings nobody.

Discord's documented limits, kept by cutting with a marker: 2000 characters of content, 10
embeds a message, 256 of an embed title, 4096 of a description, 25 fields with names of 256
and values of 1024, 2048 of a footer, and 6000 characters across all the embeds of a
message. The descriptions share what the 6000 leave, so every alert shown keeps some of its
details; alerts past ten (or past the budget) are counted in the content.
"""

from __future__ import annotations

from typing import Any

from gaia_actors.alerts.model import Alert, Notification
from gaia_actors.alerts.receivers.base import clip
from gaia_actors.alerts.receivers.text import detail_lines, facts, footer
from gaia_actors.alerts.receivers.webhook import WebhookReceiver
from gaia_actors.formatting import utc_iso

CONTENT_CHARS = 2000
MAX_EMBEDS = 10
TITLE_CHARS = 256
DESCRIPTION_CHARS = 4096
FIELD_NAME_CHARS = 256
FIELD_VALUE_CHARS = 1024
FOOTER_CHARS = 2048
EMBEDS_BUDGET = 6000
COLOURS = {"critical": 0xD62828, "warning": 0xF77F00, "info": 0x1D70B8, "resolved": 0x2A9D8F}


class DiscordReceiver(WebhookReceiver):
    """A webhook whose body is a Discord message."""

    kind = "discord"

    def body(self, notification: Notification) -> dict[str, Any]:
        return message(notification)


def message(notification: Notification) -> dict[str, Any]:
    """The Discord execute-webhook body for ``notification``."""
    embeds = _fit([_embed(alert, notification) for alert in notification.alerts[:MAX_EMBEDS]])
    details = [detail_lines(alert) for alert in notification.alerts[: len(embeds)]]
    share = (EMBEDS_BUDGET - sum(map(_chars, embeds))) // max(1, len(embeds))
    for embed, lines in zip(embeds, details, strict=True):
        if lines and share > 0:
            embed["description"] = clip("\n".join(lines), min(share, DESCRIPTION_CHARS))
    content = notification.title
    hidden = len(notification.alerts) - len(embeds)
    if hidden:
        content += f"\n{hidden} more alert{'s' if hidden != 1 else ''} not shown"
    return {
        "content": clip(content, CONTENT_CHARS),
        "embeds": embeds,
        "allowed_mentions": {"parse": []},
    }


def _embed(alert: Alert, notification: Notification) -> dict[str, Any]:
    """An alert's embed without its description (added once the budget is shared out)."""
    state = "resolved" if alert.status == "resolved" else alert.severity
    fields = [
        {
            "name": clip(label, FIELD_NAME_CHARS),
            "value": clip(value, FIELD_VALUE_CHARS),
            "inline": True,
        }
        for label, value in facts(alert)
    ]
    return {
        "title": clip(alert.summary, TITLE_CHARS),
        "color": COLOURS[state],
        "fields": fields,
        "footer": {"text": clip(footer(notification), FOOTER_CHARS)},
        "timestamp": utc_iso(alert.started),
    }


def _fit(embeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first embeds whose text fits the message's budget."""
    kept: list[dict[str, Any]] = []
    used = 0
    for embed in embeds:
        if used + _chars(embed) > EMBEDS_BUDGET:
            break
        kept.append(embed)
        used += _chars(embed)
    return kept


def _chars(embed: dict[str, Any]) -> int:
    """The characters Discord counts against the 6000: title, description, field names and
    values, footer text and author name."""
    texts = [embed.get("title", ""), embed.get("description", ""), embed["footer"]["text"]]
    texts += [part for field in embed["fields"] for part in (field["name"], field["value"])]
    return sum(map(len, texts))
