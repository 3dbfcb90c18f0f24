"""Slack-compatible incoming webhooks: the same facts as a Block Kit message.

``text`` carries the title and one line per alert: Slack shows it in notifications (and, with
blocks present, nowhere else); servers that read only ``text`` (Mattermost, Rocket.Chat)
show it as the message. ``blocks``: a header with the title, a section per alert (its summary
and details, its facts as fields), and a context line naming the notification.

Slack's documented limits, kept by cutting with a marker: 50 blocks a message, 150
characters of header text, 3000 of a section's text, 10 fields of 2000 each. Slack also
refuses a message whose blocks hold much more than ~12,000 characters in all
(``msg_blocks_too_long``) although no single block is too long; alerts past that budget are
left out and counted in the context line. ``&``, ``<`` and ``>`` are escaped, so an alert's
text cannot mention ``<!channel>`` or forge a link.
"""

from __future__ import annotations

from typing import Any

from gaia_actors.alerts.model import Alert, Notification
from gaia_actors.alerts.receivers.base import clip
from gaia_actors.alerts.receivers.text import DAEMON, detail_lines, facts, footer
from gaia_actors.alerts.receivers.webhook import WebhookReceiver

MAX_BLOCKS = 50
HEADER_CHARS = 150
SECTION_CHARS = 3000
FIELD_CHARS = 2000
TEXT_CHARS = 3000  # of the top-level text: a notification line, not the message
BLOCKS_BUDGET = 12_000
ICONS = {
    "critical": ":red_circle:",
    "warning": ":large_orange_circle:",
    "info": ":large_blue_circle:",
    "resolved": ":large_green_circle:",
}


class SlackReceiver(WebhookReceiver):
    """A webhook whose body is a Slack message."""

    kind = "slack"

    def body(self, notification: Notification) -> dict[str, Any]:
        return message(notification)


def message(notification: Notification) -> dict[str, Any]:
    """The Slack incoming-webhook body for ``notification``."""
    blocks: list[dict[str, Any]] = [_header(notification)]
    budget = BLOCKS_BUDGET - _chars(blocks[0])
    for alert in notification.alerts:
        section = _section(alert)
        if len(blocks) >= MAX_BLOCKS - 1 or _chars(section) > budget:
            break
        blocks.append(section)
        budget -= _chars(section)
    hidden = len(notification.alerts) - (len(blocks) - 1)
    blocks.append(_context(notification, hidden))
    return {"text": _text(notification), "blocks": blocks}


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: ``&``, ``<`` and ``>`` are markup there."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _icon(alert: Alert | Notification) -> str:
    return ICONS["resolved" if alert.status == "resolved" else alert.severity]


def _text(notification: Notification) -> str:
    lines = [f"{_icon(notification)} {escape(notification.title)}"]
    for alert in notification.alerts:
        where = alert.env or DAEMON
        lines.append(f"• {escape(f'{where}: {alert.summary} ({alert.status})')}")
    return clip("\n".join(lines), TEXT_CHARS)


def _header(notification: Notification) -> dict[str, Any]:
    text = clip(notification.title, HEADER_CHARS)
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


def _section(alert: Alert) -> dict[str, Any]:
    lines = [f"{_icon(alert)} *{escape(alert.summary)}*", *map(escape, detail_lines(alert))]
    fields = [
        {"type": "mrkdwn", "text": clip(f"*{label}*\n{escape(value)}", FIELD_CHARS)}
        for label, value in facts(alert)
    ]
    text = {"type": "mrkdwn", "text": clip("\n".join(lines), SECTION_CHARS)}
    return {"type": "section", "text": text, "fields": fields}


def _context(notification: Notification, hidden: int) -> dict[str, Any]:
    text = footer(notification)
    if hidden:
        text += f" · {hidden} more alert{'s' if hidden != 1 else ''} not shown"
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(text)}]}


def _chars(block: dict[str, Any]) -> int:
    """The characters of text a block holds."""
    texts = [block["text"]["text"]] if "text" in block else []
    texts += [field["text"] for field in block.get("fields", ())]
    return sum(map(len, texts))
