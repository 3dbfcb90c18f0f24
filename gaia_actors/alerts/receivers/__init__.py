"""Where alerts go: one module per kind of receiver, and the factory that builds one from
its settings.

A receiver's ``send(notification)`` delivers one notification within its timeout and
returns what the other side answered (`Delivery`), or raises `DeliveryFailed` saying what
failed. It keeps no queue and never retries: storing, retrying, grouping and rate limits
belong to the router, which calls each receiver from a thread of its own.
"""

from __future__ import annotations

from gaia_actors.alerts.receivers.base import Delivery, DeliveryFailed, Receiver
from gaia_actors.alerts.receivers.command import CommandReceiver
from gaia_actors.alerts.receivers.discord import DiscordReceiver
from gaia_actors.alerts.receivers.factory import build_receiver
from gaia_actors.alerts.receivers.slack import SlackReceiver
from gaia_actors.alerts.receivers.smtp import SmtpReceiver
from gaia_actors.alerts.receivers.webhook import WebhookReceiver

__all__ = [
    "CommandReceiver",
    "Delivery",
    "DeliveryFailed",
    "DiscordReceiver",
    "Receiver",
    "SlackReceiver",
    "SmtpReceiver",
    "WebhookReceiver",
    "build_receiver",
]
