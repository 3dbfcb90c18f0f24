"""``build_receiver``: the receiver a ``[[alerts.receivers]]`` entry describes."""

from __future__ import annotations

from gaia_actors.alerts.receivers.base import Receiver
from gaia_actors.alerts.receivers.command import CommandReceiver
from gaia_actors.alerts.receivers.discord import DiscordReceiver
from gaia_actors.alerts.receivers.slack import SlackReceiver
from gaia_actors.alerts.receivers.smtp import SmtpReceiver
from gaia_actors.alerts.receivers.webhook import WebhookReceiver
from gaia_actors.settings import ReceiverSettings

WEBHOOKS: dict[str, type[WebhookReceiver]] = {
    "webhook": WebhookReceiver,
    "slack": SlackReceiver,
    "discord": DiscordReceiver,
}


def build_receiver(settings: ReceiverSettings) -> Receiver:
    """The receiver of one validated entry (its ``${NAME}`` secrets already resolved)."""
    if settings.kind in WEBHOOKS:
        return WEBHOOKS[settings.kind](
            settings.name, settings.url, headers=settings.headers, timeout=settings.timeout
        )
    if settings.kind == "smtp":
        return SmtpReceiver(
            settings.name,
            settings.host,
            port=settings.smtp_port,
            security=settings.security,
            username=settings.username,
            password=settings.password,
            sender=settings.sender,
            to=settings.to,
            timeout=settings.timeout,
        )
    return CommandReceiver(settings.name, settings.command, timeout=settings.timeout)
