"""The daemon's last alert, sent by the daemon itself once every actor has stopped."""

from __future__ import annotations

import time
from pathlib import Path

from gaia_actors.alerts.final import send_last_alert
from gaia_actors.alerts.receivers import build_receiver
from gaia_actors.settings import Settings, load
from gaia_actors.store.models import NotificationRow
from tests.conftest import wait_until
from tests.gaia_actors.alerts.hooks import alerts_tree
from tests.gaia_actors.alerts.loopback import hook_server


def _settings(tmp_path: Path, url: str, extra: str = "") -> Settings:
    path = tmp_path / "gaia.toml"
    path.write_text(
        "[alerts]\n" + extra
        + f"[[alerts.receivers]]\nname = 'ops'\nkind = 'webhook'\nurl = '{url}'\ntimeout = 5\n",
        encoding="utf-8",
    )  # fmt: skip
    return load(path, environ={"GAIA_STATE_DIR": str(tmp_path / "state")})


def test_the_last_alert_is_sent_within_its_bound_or_left_pending_for_the_next_start(
    tmp_path: Path,
) -> None:
    with hook_server() as hook:
        hook.release.clear()  # the receiver hangs
        settings = _settings(tmp_path, hook.url(), "final_timeout = 0.3\n")
        started = time.monotonic()
        sent = send_last_alert(settings, build_receiver, "services", "broken kept failing")
        assert sent == 0
        assert time.monotonic() - started < 3
        row = NotificationRow.get()
        assert row.state == "pending"
        hook.release.set()
        wait_until(lambda: hook.received, what="the hung request completing")
        assert hook.received[0]["alerts"][0]["name"] == "daemon_escalated"
        hook.received.clear()
        with alerts_tree(settings):
            wait_until(lambda: hook.received, what="the pending one resent at start")
        assert hook.ids() == [row.uid]


def test_the_last_alert_reaches_a_receiver_that_answers(tmp_path: Path) -> None:
    with hook_server() as hook:
        settings = _settings(tmp_path, hook.url())
        assert send_last_alert(settings, build_receiver, "services", "broken kept failing") == 1
        (body,) = hook.received
        (alert,) = body["alerts"]
        assert alert["severity"] == "critical"
        assert "the daemon is exiting: services" in alert["summary"]
        assert NotificationRow.get().state == "delivered"
