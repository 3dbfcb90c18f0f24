"""The alert actors' messages (between the router, the receivers and the commands)."""

from __future__ import annotations

from gaia_actors.alerts.model import Notification
from gaia_actors.messages import message

ROUTER = "alerts.router"  # the router's registered name: silences are asked of it


@message
class Deliver:
    """Command (router → receiver): send the stored notification ``row_id``."""

    row_id: int
    notification: Notification


@message
class Sent:
    """Command (a receiver's send thread → the receiver): how one attempt ended."""

    uid: str
    ok: bool
    answer: str = ""
    error: str = ""
    permanent: bool = False  # sending it again would get the same answer


@message
class Wake:
    """Command (timer): a receiver looks at what is due."""


@message
class FlushGroup:
    """Command (timer): a group of alerts may be due to go out."""

    group: str


@message
class StillDegraded:
    """Command (timer): ``env`` went degraded at ``since`` (wall clock); alert if it still is."""

    env: str
    since: float
    reason: str = ""


@message
class AddSilence:
    """Query: hold back alerts matching ``env`` and ``alert`` (globs) for ``seconds``;
    answers the stored silence as a dict."""

    env: str
    alert: str
    seconds: float
    reason: str = ""


@message
class EndSilence:
    """Query/command: lift silence ``silence_id`` now (an operator, or its expiry timer)."""

    silence_id: int
