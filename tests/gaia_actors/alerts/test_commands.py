"""The operator's alert commands against real actors and a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from gaia_actors.alerts import commands
from gaia_actors.alerts.messages import ROUTER
from gaia_actors.control.commands import CommandContext
from gaia_actors.errors import UsageError
from gaia_actors.messages import Event, GetState, fields_of
from gaia_actors.settings import Settings, load
from gaia_actors.store.models import NotificationRow
from tests.conftest import wait_until
from tests.gaia_actors.alerts.hooks import alerts_tree
from tests.gaia_actors.alerts.loopback import hook_server

ENVS = "[environments.prod]\nport = 9180\n[environments.dev]\nport = 9181\n"


def _settings(tmp_path: Path, url: str, extra: str = "") -> Settings:
    path = tmp_path / "gaia.toml"
    path.write_text(
        ENVS + "[store]\nflush_interval = 0.02\n[alerts]\ngroup_wait = 0.05\n" + extra
        + f"[[alerts.receivers]]\nname = 'ops'\nkind = 'webhook'\nurl = '{url}'\ntimeout = 5\n",
        encoding="utf-8",
    )  # fmt: skip
    return load(path, environ={"GAIA_STATE_DIR": str(tmp_path / "state")})


def test_silence_silences_and_unsilence(tmp_path: Path) -> None:
    with hook_server() as hook:
        settings = _settings(tmp_path, hook.url())
        with alerts_tree(settings) as registry:
            ctx = CommandContext(settings, registry)
            made = commands.silence(ctx, "prod", "30m", reason="deploy")
            assert (made["env"], made["alert"], made["reason"]) == ("prod", "*", "deploy")
            assert 1799 < made["expires"] - made["created"] <= 1800
            by_name = commands.silence(ctx, "promotion_*", "1h")
            assert (by_name["env"], by_name["alert"]) == ("*", "promotion_*")
            listed = commands.silences(ctx)
            assert [s["id"] for s in listed] == [made["id"], by_name["id"]]
            assert listed[0]["state"].endswith("left")
            lifted = commands.unsilence(ctx, made["id"])
            assert lifted["state"] == "lifted"
            assert [s["id"] for s in commands.silences(ctx)] == [by_name["id"]]
            assert [s["state"] for s in commands.silences(ctx, all=True)][-1] == "lifted"
            assert registry.ask(ROUTER, GetState(), timeout=5)["silences"] == [by_name["id"]]


@pytest.mark.parametrize(
    ("target", "duration", "param"),
    [("prdo", "30m", "target"), ("prod", "30x", "DURATION"), ("prod", "0", "DURATION")],
)
def test_a_bad_silence_names_its_argument(
    tmp_path: Path, target: str, duration: str, param: str
) -> None:
    settings = _settings(tmp_path, "http://127.0.0.1:9/")
    with pytest.raises(UsageError) as info:
        commands.silence(CommandContext(settings, None), target, duration)
    assert info.value.param == param
    assert info.value.exit_code == 2


def test_unsilence_of_an_unknown_id_is_a_usage_error(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "http://127.0.0.1:9/")
    with alerts_tree(settings) as registry, pytest.raises(UsageError, match="no silence #42"):
        commands.unsilence(CommandContext(settings, registry), 42)


def test_alerts_test_without_a_receiver_asks_for_one(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "http://127.0.0.1:9/")
    with pytest.raises(UsageError) as info:
        commands.alerts(CommandContext(settings, None), action="test")
    assert str(info.value) == "alerts test receiver: give one: alerts test RECEIVER; receivers: ops"
    assert info.value.param == "receiver"
    assert info.value.exit_code == 2


def test_alerts_lists_firing_and_recent_with_each_receivers_delivery(tmp_path: Path) -> None:
    with hook_server() as hook:
        settings = _settings(tmp_path, hook.url())
        with alerts_tree(settings) as registry:
            registry.tell("bus", Event("environment.failed", "critical", env="prod",
                                       data=fields_of(reason="port held")))  # fmt: skip
            registry.tell("bus", Event("alert.data_loss", "critical", env="dev",
                                       data=fields_of(lost=["app.db deleted"])))  # fmt: skip
            wait_until(lambda: NotificationRow.select().where(
                NotificationRow.state == "delivered").count() == 2)  # fmt: skip
            result = commands.alerts(CommandContext(settings, registry))
        (firing,) = result["firing"]
        assert (firing["alert"], firing["env"], firing["severity"]) == (
            "environment_failed", "prod", "critical"
        )  # fmt: skip
        assert firing["delivery"] == "ops: firing delivered (HTTP 200)"
        assert {r["alert"]: r["status"] for r in result["recent"]} == {
            "environment_failed": "firing",
            "data_loss": "once",
        }
        assert result["receivers"] == [
            {"receiver": "ops", "kind": "webhook", "to": hook.url().split("/")[2],
             "delivered": 2, "pending": 0, "abandoned": 0}
        ]  # fmt: skip
        text = commands.render_alerts(result)
        assert "firing (1):" in text
        assert "prod is FAILED and parked: port held" in text
