"""A command: an argv run without a shell, the notification's payload (the webhook's JSON)
on its stdin and its main facts in environment variables.

The variables, added to the daemon's environment:

=========================  ==================================================================
``GAIA_ALERT_ID``          the notification's id (the same when it is sent again)
``GAIA_ALERT_STATUS``      ``firing`` or ``resolved``
``GAIA_ALERT_SEVERITY``    the highest severity of its alerts: info, warning or critical
``GAIA_ALERT_TITLE``       the one-line title (an e-mail's subject)
``GAIA_ALERT_SUMMARY``     the first alert's summary
``GAIA_ALERT_NAME``        the first alert's name (``environment_failed``)
``GAIA_ALERT_ENV``         the environments concerned, comma-separated ('' for the daemon)
``GAIA_ALERT_INCIDENT_ID`` the first alert's incident id, or ''
``GAIA_ALERT_COUNT``       how many alerts the notification groups
``GAIA_ALERT_RECEIVER``    the receiver's name
``GAIA_ALERT_GROUP``       the group the alerts were gathered under (``env=prod``)
``GAIA_ALERT_TEST``        ``1`` for a test notification (``alerts test``), else ``0``
``GAIA_ALERT_VERSION``     the payload's version
=========================  ==================================================================

Exit status 0 is a delivery. The command runs in its own process group; at its ``timeout``
the whole group is SIGKILLed (through `gaia_actors.process.run`), so whatever it started
dies with it. A failure's reason gives the exit status and the end of what the command
printed (stdout and stderr together, bounded).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

from gaia_actors import process
from gaia_actors.alerts.model import PAYLOAD_VERSION, Notification
from gaia_actors.alerts.receivers.base import EXCERPT_CHARS, Delivery, DeliveryFailed, excerpt

OUTPUT_CHARS = 2000  # of the command's output kept, the end of which a failure quotes


class CommandReceiver:
    """Runs ``argv`` once per notification, in ``cwd``, for at most ``timeout`` seconds."""

    kind = "command"

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        timeout: float = 10.0,
        cwd: Path | str = ".",
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if not argv:
            raise ValueError(f"receiver {name!r}: the command needs an argv")
        self.name = name
        self.timeout = timeout
        self._argv = tuple(argv)
        self._cwd = cwd
        self._environ = environ  # None: the daemon's, read at each send

    @property
    def target(self) -> str:
        return self._argv[0]

    def __repr__(self) -> str:
        return f"CommandReceiver(name={self.name!r}, target={self.target!r})"

    def send(self, notification: Notification) -> Delivery:
        payload = json.dumps(notification.payload(), ensure_ascii=False).encode()
        env = {**(os.environ if self._environ is None else self._environ)}
        env.update(variables(notification))
        try:
            result = process.run(
                self._argv,
                self._cwd,
                env,
                timeout=self.timeout,
                input=payload,
                output_limit=OUTPUT_CHARS,
            )
        except process.ProcessError as exc:
            raise DeliveryFailed(self.name, f"cannot run {self.target}: {exc}") from None
        if result.ok:
            return Delivery("exit 0", result.duration)
        raise DeliveryFailed(self.name, _why(result, self.timeout))

    def close(self) -> None:
        """Nothing is kept between sends."""


def variables(notification: Notification) -> dict[str, str]:
    """The ``GAIA_ALERT_*`` environment of a command receiver."""
    first = notification.alerts[0] if notification.alerts else None
    envs = sorted({alert.env for alert in notification.alerts if alert.env})
    incident = "" if first is None or first.incident_id is None else str(first.incident_id)
    return {
        "GAIA_ALERT_ID": notification.id,
        "GAIA_ALERT_STATUS": notification.status,
        "GAIA_ALERT_SEVERITY": notification.severity,
        "GAIA_ALERT_TITLE": notification.title,
        "GAIA_ALERT_SUMMARY": "" if first is None else first.summary,
        "GAIA_ALERT_NAME": "" if first is None else first.name,
        "GAIA_ALERT_ENV": ",".join(envs),
        "GAIA_ALERT_INCIDENT_ID": incident,
        "GAIA_ALERT_COUNT": str(len(notification.alerts)),
        "GAIA_ALERT_RECEIVER": notification.receiver,
        "GAIA_ALERT_GROUP": notification.group,
        "GAIA_ALERT_TEST": "1" if notification.test else "0",
        "GAIA_ALERT_VERSION": PAYLOAD_VERSION,
    }


def _why(result: process.RunResult, timeout: float) -> str:
    if result.timed_out:
        why = f"killed after its timeout of {timeout:g} s (its process group SIGKILLed)"
    elif result.exit_code < 0:
        why = f"killed by {_signal_name(-result.exit_code)}"
    else:
        why = f"exit {result.exit_code}"
    tail = result.output_tail
    said = ("…" if len(tail) > EXCERPT_CHARS else "") + excerpt(tail[-EXCERPT_CHARS:])
    return f"{why}: {said}" if said else why


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
