"""The ``[alerts]`` section and its ``[[alerts.receivers]]``: where alerts go and how they are
grouped, repeated and retried."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import field
from typing import Literal

from gaia_actors.settings.fields import bounded
from supervisors.records import record

RECEIVER_KINDS = ("webhook", "slack", "discord", "smtp", "command")


# The keys each kind of receiver takes beside the common ones (name, kind and the filters).
RECEIVER_FIELDS: dict[str, tuple[str, ...]] = {
    "webhook": ("url", "headers"),
    "slack": ("url", "headers"),
    "discord": ("url", "headers"),
    "smtp": ("host", "port", "security", "username", "password", "sender", "to"),
    "command": ("command",),
}


RECEIVER_REQUIRED: dict[str, tuple[str, ...]] = {
    "webhook": ("url",),
    "slack": ("url",),
    "discord": ("url",),
    "smtp": ("host", "sender", "to"),
    "command": ("command",),
}


# Keys whose values may hold ``${NAME}``, replaced at load by the daemon's environment variable.
SECRET_FIELDS = ("url", "headers", "username", "password")
SECRET = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


SMTP_PORTS = {"starttls": 587, "tls": 465, "none": 25}


@record
class ReceiverSettings:
    """One place alerts are delivered to (``[[alerts.receivers]]``).

    The filters: ``events`` are globs of alert names, ``envs`` environment names (empty: all;
    the daemon's own alerts pass any), ``min_severity`` the least severe alert sent. ``url``,
    ``headers``, ``username`` and ``password`` have their ``${NAME}`` replaced at load from the
    environment; they are left out of ``repr`` and only ``endpoint`` is ever logged.
    """

    name: str
    kind: Literal["webhook", "slack", "discord", "smtp", "command"]
    events: tuple[str, ...] = ("*",)
    envs: tuple[str, ...] = ()
    min_severity: Literal["info", "warning", "critical"] = "warning"
    timeout: float = bounded(10.0, 0.1, 600)  # seconds one send may take
    rate_limit: int = bounded(20, 1, 100_000)  # notifications per minute
    send_resolved: bool = True
    # webhook, slack, discord
    url: str = field(default="", repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    # smtp; port 0 means the security's usual port (587, 465 or 25)
    host: str = ""
    port: int = bounded(0, 0, 65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    sender: str = ""
    to: tuple[str, ...] = ()
    # command: an argv, run without a shell, the notification as JSON on its stdin
    command: tuple[str, ...] = ()

    @property
    def smtp_port(self) -> int:
        return self.port or SMTP_PORTS[self.security]

    @property
    def endpoint(self) -> str:
        """Where the receiver sends, safe to log: a URL's host (its path and query may hold a
        token), the SMTP server, or the command's program."""
        if self.kind == "smtp":
            return f"{self.host}:{self.smtp_port}"
        if self.kind == "command":
            return self.command[0] if self.command else ""
        return urllib.parse.urlsplit(self.url).netloc.rpartition("@")[2]


@record
class AlertSettings:
    """How alerts are grouped, repeated, retried and kept, and where they go.

    Alerts with the same ``group_by`` values (any of name, env, severity; none: one group)
    that fire within ``group_wait`` go out as one notification per receiver; alerts joining a
    group already notified wait ``group_interval``; a group still firing is sent again after
    ``repeat_interval``. A failed send is retried from ``retry_initial`` seconds, doubling up
    to ``retry_max``, with ``retry_jitter`` of randomness, for at most ``retry_for`` seconds.
    """

    group_by: tuple[Literal["name", "env", "severity"], ...] = ("name",)
    group_wait: float = bounded(1.0, 0, 3600)
    group_interval: float = bounded(30.0, 0.01, 86400)
    repeat_interval: float = bounded(14_400.0, 1, 604_800)
    retry_initial: float = bounded(1.0, 0.01, 3600)
    retry_max: float = bounded(300.0, 0.01, 86400)
    retry_jitter: float = bounded(0.2, 0, 1)
    retry_for: float = bounded(86_400.0, 1, 2_592_000)
    # an environment degraded for this long raises environment_degraded
    degraded_after: float = bounded(300.0, 0.01, 604_800)
    # seconds the last alert before the daemon exits may take to deliver
    final_timeout: float = bounded(5.0, 0.1, 300)
    retention_days: float = bounded(30.0, 0.01, 36500)
    receivers: tuple[ReceiverSettings, ...] = ()
