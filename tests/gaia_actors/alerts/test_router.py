"""The alert router with real actors, a real store and webhook receivers on loopback."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gaia_actors.alerts.delivery import receiver_name
from gaia_actors.alerts.messages import ROUTER, AddSilence, EndSilence
from gaia_actors.messages import Crash, Event, GetState, fields_of
from gaia_actors.settings import Settings, load
from gaia_actors.store.models import AlertRow, NotificationRow
from supervisors import Registry
from tests.conftest import wait_until
from tests.gaia_actors.alerts.hooks import alerts_tree
from tests.gaia_actors.alerts.loopback import HookServer, hook_server

PORTS = (("dev", 9181), ("staging", 9182), ("prod", 9180))
ENVS = "".join(f"[environments.{env}]\nport = {port}\n" for env, port in PORTS)


def _settings(tmp_path: Path, alerts: str, receivers: list[tuple[str, str]]) -> Settings:
    text = ENVS + "[store]\nflush_interval = 0.02\n[alerts]\n" + alerts
    for name, url in receivers:
        text += (
            f"[[alerts.receivers]]\nname = '{name}'\nkind = 'webhook'\nurl = '{url}'\ntimeout = 5\n"
        )
    path = tmp_path / "gaia.toml"
    path.write_text(text, encoding="utf-8")
    return load(path, environ={"GAIA_STATE_DIR": str(tmp_path / "state")})


@pytest.fixture
def hook() -> Iterator[HookServer]:
    with hook_server() as server:
        yield server


def _failed(registry: Registry, env: str, reason: str = "port 9180 held") -> None:
    event = Event("environment.failed", "critical", env=env, data=fields_of(reason=reason))
    registry.tell("bus", event)


def _healthy(registry: Registry, env: str) -> None:
    event = Event("health.changed", env=env, data=fields_of(old="down", new="healthy"))
    registry.tell("bus", event)


def _state(registry: Registry, name: str) -> dict[str, Any]:
    state: dict[str, Any] = registry.ask(name, GetState(), timeout=5)
    return state


FAST = "group_wait = 0.1\ngroup_interval = 0.05\nretry_initial = 0.01\nretry_max = 0.05\n"


def test_alerts_that_fire_together_go_out_as_one_notification(
    tmp_path: Path, hook: HookServer
) -> None:
    settings = _settings(tmp_path, FAST, [("ops", hook.url())])
    with alerts_tree(settings) as registry:
        for env in ("dev", "staging", "prod"):
            _failed(registry, env)
        wait_until(lambda: hook.received, what="a notification")
        (body,) = hook.received
        assert body["status"] == "firing"
        assert body["severity"] == "critical"
        assert body["group"] == "name=environment_failed"
        assert sorted(a["env"] for a in body["alerts"]) == ["dev", "prod", "staging"]
        assert body["title"] == "[CRITICAL] [dev, prod, staging] 3 alerts"
        row = NotificationRow.get(NotificationRow.uid == body["id"])
        wait_until(lambda: NotificationRow.get_by_id(row.id).state == "delivered")
        assert NotificationRow.get_by_id(row.id).answer == "HTTP 200"


def test_an_alert_firing_again_is_sent_once_and_resolved_once(
    tmp_path: Path, hook: HookServer
) -> None:
    settings = _settings(tmp_path, FAST, [("ops", hook.url())])
    with alerts_tree(settings) as registry:
        _failed(registry, "prod")
        _failed(registry, "prod", "again")
        wait_until(lambda: hook.received)
        _failed(registry, "prod", "and again")
        _healthy(registry, "prod")
        wait_until(lambda: len(hook.received) == 2, what="the resolved notification")
        firing, resolved = hook.received
        assert [a["summary"] for a in firing["alerts"]] == [
            "prod is FAILED and parked: port 9180 held"
        ]
        assert resolved["status"] == "resolved"
        assert resolved["alerts"][0]["key"] == firing["alerts"][0]["key"]
        assert resolved["alerts"][0]["ends_at"] is not None
        assert firing["id"] != resolved["id"]
        assert AlertRow.select().count() == 1
        wait_until(lambda: AlertRow.get().status == "resolved")
        assert _state(registry, ROUTER)["firing"] == []


def test_a_group_still_firing_is_sent_again_after_the_repeat_interval(
    tmp_path: Path, hook: HookServer
) -> None:
    settings = _settings(tmp_path, FAST + "repeat_interval = 1\n", [("ops", hook.url())])
    with alerts_tree(settings) as registry:
        _failed(registry, "prod")
        wait_until(lambda: len(hook.received) == 2, timeout=5, what="the repeat")
        first, second = hook.received
        assert first["alerts"] == second["alerts"]
        assert first["id"] != second["id"]


def test_the_rate_limit_delays_notifications_beyond_it(tmp_path: Path, hook: HookServer) -> None:
    alerts = FAST + "group_by = ['name', 'env']\n"
    settings = _settings(tmp_path, alerts, [("ops", hook.url())])
    settings = _with_receiver(settings, rate_limit=2)
    with alerts_tree(settings) as registry:
        for env in ("dev", "staging", "prod"):
            _failed(registry, env)
        name = receiver_name("ops")
        state = wait_until(
            lambda: (s := _state(registry, name))["delivered"] == 2 and s["pending"] == 1 and s,
            what="two sent, one held",
        )
        assert state["in_flight"] is None
        assert len(hook.received) == 2
        held = NotificationRow.get(NotificationRow.state == "pending")
        assert held.attempts == 0


def _with_receiver(settings: Settings, **changes: Any) -> Settings:
    receivers = tuple(dataclasses.replace(r, **changes) for r in settings.alerts.receivers)
    alerts = dataclasses.replace(settings.alerts, receivers=receivers)
    return dataclasses.replace(settings, alerts=alerts)


def test_a_silenced_alert_is_stored_not_sent_and_goes_out_when_the_silence_ends(
    tmp_path: Path, hook: HookServer
) -> None:
    settings = _settings(tmp_path, FAST + "group_by = ['env']\n", [("ops", hook.url())])
    with alerts_tree(settings) as registry:
        silence = registry.ask(ROUTER, AddSilence("prod", "*", 600, "deploy"), timeout=5)
        _failed(registry, "prod")
        _failed(registry, "dev")
        wait_until(lambda: hook.received)
        assert [a["env"] for a in hook.received[0]["alerts"]] == ["dev"]
        prod = AlertRow.get(AlertRow.env == "prod")
        assert prod.silenced_by == silence["id"]
        registry.ask(ROUTER, EndSilence(silence["id"]), timeout=5)
        wait_until(lambda: len(hook.received) == 2, what="the held alert")
        assert [a["env"] for a in hook.received[1]["alerts"]] == ["prod"]


def test_a_silence_by_alert_name_holds_only_that_alert(tmp_path: Path, hook: HookServer) -> None:
    settings = _settings(tmp_path, FAST + "group_by = []\n", [("ops", hook.url())])
    with alerts_tree(settings) as registry:
        registry.ask(ROUTER, AddSilence("*", "environment_f*", 600, ""), timeout=5)
        _failed(registry, "prod")
        registry.tell("bus", Event("alert.data_loss", "critical", env="prod",
                                   data=fields_of(lost=["app.db deleted"])))  # fmt: skip
        wait_until(lambda: hook.received)
        assert [a["name"] for a in hook.received[0]["alerts"]] == ["data_loss"]


def test_a_failed_send_is_retried_with_the_same_id(tmp_path: Path, hook: HookServer) -> None:
    hook.answer(500, 503)
    settings = _settings(tmp_path, FAST, [("ops", hook.url())])
    with alerts_tree(settings) as registry:
        _failed(registry, "prod")
        wait_until(lambda: hook.received, what="the third attempt")
        row = NotificationRow.get()
        wait_until(lambda: NotificationRow.get_by_id(row.id).state == "delivered")
        row = NotificationRow.get_by_id(row.id)
        assert (row.uid, row.attempts) == (hook.received[0]["id"], 3)
        assert _state(registry, receiver_name("ops"))["failures"] == 2


def test_a_receiver_that_hangs_does_not_hold_up_another(tmp_path: Path) -> None:
    with hook_server() as slow, hook_server() as fast:
        slow.release.clear()
        settings = _settings(tmp_path, FAST, [("slow", slow.url()), ("fast", fast.url())])
        with alerts_tree(settings) as registry:
            _failed(registry, "prod")
            wait_until(lambda: _state(registry, receiver_name("slow"))["in_flight"])
            wait_until(lambda: fast.received, what="the fast receiver's notification")
            _failed(registry, "dev")  # the router still routes
            wait_until(lambda: len(_state(registry, ROUTER)["firing"]) == 2)
            wait_until(lambda: len(fast.received) == 2, what="the fast receiver's second")
            slow.release.set()
            wait_until(lambda: slow.received)


def test_pending_notifications_are_resent_after_a_restart_with_their_id(
    tmp_path: Path, hook: HookServer
) -> None:
    hook.answer(*[503] * 1000)
    alerts = "group_wait = 0.1\ngroup_interval = 0.05\nretry_initial = 5\nretry_max = 5\n"
    settings = _settings(tmp_path, alerts, [("ops", hook.url())])
    with alerts_tree(settings) as registry:
        _failed(registry, "prod")
        wait_until(lambda: NotificationRow.select().where(NotificationRow.attempts >= 1).count())
        uid = NotificationRow.get().uid
    hook.answer()
    with alerts_tree(settings) as registry:
        wait_until(lambda: hook.received, what="the resent notification")
        assert hook.ids() == [uid]
        wait_until(lambda: NotificationRow.get().state == "delivered")
        assert _state(registry, ROUTER)["groups"] == {
            "ops|name=environment_failed": ["environment_failed:prod"]
        }  # due to repeat, not to be sent now
        _failed(registry, "prod")  # still firing after the restart: not again
        _healthy(registry, "prod")
        wait_until(lambda: len(hook.received) == 2)
        assert hook.received[1]["status"] == "resolved"


def test_an_environment_degraded_past_degraded_after_raises_an_alert_until_healthy(
    tmp_path: Path, hook: HookServer
) -> None:
    settings = _settings(tmp_path, FAST + "degraded_after = 0.2\n", [("ops", hook.url())])
    settings = _with_receiver(settings, min_severity="warning")
    with alerts_tree(settings) as registry:
        for env in ("dev", "prod"):
            registry.tell("bus", Event("health.changed", env=env,
                                       data=fields_of(old="healthy", new="degraded")))  # fmt: skip
        registry.tell("bus", Event("health.changed", env="dev",
                                   data=fields_of(old="degraded", new="healthy")))  # fmt: skip
        wait_until(lambda: hook.received, what="the degraded alert")
        (alert,) = hook.received[0]["alerts"]
        assert (alert["name"], alert["env"]) == ("environment_degraded", "prod")
        _healthy(registry, "prod")
        wait_until(lambda: len(hook.received) == 2, what="its resolution")
        assert hook.received[1]["status"] == "resolved"


def test_alerts_raised_just_before_a_stop_are_sent_after_the_next_start(
    tmp_path: Path, hook: HookServer
) -> None:
    settings = _settings(tmp_path, "group_wait = 600\ngroup_by = []\n", [("ops", hook.url())])
    with alerts_tree(settings) as registry:
        _failed(registry, "prod")
        registry.tell("bus", Event("alert.data_loss", "critical", env="dev",
                                   data=fields_of(lost=["app.db deleted"])))  # fmt: skip
        wait_until(lambda: AlertRow.select().count() == 2, what="both alerts stored")
    assert hook.received == []  # stopped within group_wait: nothing sent
    settings = _settings(tmp_path, "group_wait = 0.05\ngroup_by = []\n", [("ops", hook.url())])
    with alerts_tree(settings):
        wait_until(lambda: hook.received, what="the alerts taken up at start")
        (body,) = hook.received
        assert sorted(a["name"] for a in body["alerts"]) == ["data_loss", "environment_failed"]


def test_a_one_off_alert_sent_before_a_restart_is_not_sent_again(
    tmp_path: Path, hook: HookServer
) -> None:
    settings = _settings(tmp_path, FAST, [("ops", hook.url())])
    loss = Event("alert.data_loss", "critical", env="dev", data=fields_of(lost=["x"]))
    with alerts_tree(settings) as registry:
        registry.tell("bus", loss)
        wait_until(lambda: hook.received)
        wait_until(lambda: NotificationRow.get().state == "delivered")
    with alerts_tree(settings) as registry:
        assert _state(registry, ROUTER)["groups"] == {}
        _failed(registry, "prod")
        wait_until(lambda: len(hook.received) == 2)
        assert [a["name"] for a in hook.received[1]["alerts"]] == ["environment_failed"]


def test_an_answer_that_would_not_change_is_not_retried(tmp_path: Path, hook: HookServer) -> None:
    hook.answer(404)
    settings = _settings(tmp_path, FAST, [("ops", hook.url())])
    with alerts_tree(settings) as registry:
        _failed(registry, "prod")
        wait_until(lambda: NotificationRow.select().where(
            NotificationRow.state == "abandoned").count())  # fmt: skip
        row = NotificationRow.get()
        assert row.attempts == 1
        assert row.error.startswith("HTTP 404 from 127.0.0.1:")
        assert _state(registry, receiver_name("ops"))["pending"] == 0
        assert hook.received == []


def test_an_event_published_while_the_router_restarts_is_alerted_once(
    tmp_path: Path, hook: HookServer
) -> None:
    settings = _settings(tmp_path, FAST + "group_by = ['env']\n", [("ops", hook.url())])
    supervision = dataclasses.replace(settings.supervision, backoff_initial=1.0)
    settings = dataclasses.replace(settings, supervision=supervision)
    with alerts_tree(settings) as registry:
        _failed(registry, "dev")
        wait_until(lambda: hook.received, what="the alert before the crash")
        first = registry.registered(ROUTER)
        registry.tell(ROUTER, Crash("test"))
        wait_until(lambda: registry.registered(ROUTER) not in (None, first)
                   and registry.is_running(ROUTER), what="the first restart")  # fmt: skip
        registry.tell(ROUTER, Crash("again"))  # a second crash in a row waits out a backoff
        wait_until(lambda: not registry.is_running(ROUTER), what="the router down")
        _failed(registry, "prod")
        assert ROUTER not in _state(registry, "bus")["subscribers"]  # dropped, not delivered
        wait_until(lambda: len(hook.received) == 2, what="the alert published while down")
        assert [a["env"] for a in hook.received[1]["alerts"]] == ["prod"]
        _failed(registry, "staging")  # live again, and nothing taken in twice
        wait_until(lambda: len(hook.received) == 3, what="an alert after the restart")
        assert [a["env"] for b in hook.received for a in b["alerts"]] == ["dev", "prod", "staging"]
        assert AlertRow.select().count() == 3


def test_one_off_alerts_after_a_send_wait_for_the_group_interval(
    tmp_path: Path, hook: HookServer
) -> None:
    alerts = "group_wait = 0.05\ngroup_interval = 1.0\nretry_initial = 0.01\n"
    settings = _settings(tmp_path, alerts, [("ops", hook.url())])

    def loss(env: str) -> None:
        registry.tell("bus", Event("alert.data_loss", "critical", env=env,
                                   data=fields_of(lost=[f"{env}.db"])))  # fmt: skip

    with alerts_tree(settings) as registry:
        loss("dev")
        wait_until(lambda: hook.received, what="the first one-off")
        loss("staging")
        loss("prod")
        wait_until(lambda: len(hook.received) == 2, what="the follow-ups")
        assert [a["env"] for a in hook.received[1]["alerts"]] == ["staging", "prod"]
        first, second = NotificationRow.select().order_by(NotificationRow.id)
        assert second.created - first.created >= 1.0 - 0.01  # group_interval, not group_wait


def test_a_resolution_still_waiting_at_a_stop_is_sent_after_the_next_start(
    tmp_path: Path, hook: HookServer
) -> None:
    slow = "group_wait = 0.05\ngroup_interval = 600\n"
    with alerts_tree(_settings(tmp_path, slow, [("ops", hook.url())])) as registry:
        _failed(registry, "prod")
        # Recorded as delivered, not only received: one still pending at the stop is sent
        # again after the start, ahead of the resolution this test looks for.
        wait_until(lambda: NotificationRow.get_or_none(NotificationRow.state == "delivered"),
                   what="the firing notification delivered")  # fmt: skip
        _healthy(registry, "prod")  # its resolution waits for group_interval
        wait_until(lambda: AlertRow.get().status == "resolved")
    assert len(hook.received) == 1
    with alerts_tree(_settings(tmp_path, FAST, [("ops", hook.url())])) as registry:
        wait_until(lambda: len(hook.received) == 2, what="the resolution after the start")
        resolved = hook.received[1]
        assert resolved["status"] == "resolved"
        assert resolved["alerts"][0]["key"] == hook.received[0]["alerts"][0]["key"]
        assert _state(registry, ROUTER)["firing"] == []
    with alerts_tree(_settings(tmp_path, slow, [("ops", hook.url())])) as registry:
        assert _state(registry, ROUTER)["groups"] == {}  # a third start owes nothing


def test_alerts_taken_up_at_start_resolve_when_the_environment_is_healthy_again(
    tmp_path: Path, hook: HookServer
) -> None:
    settings = _settings(tmp_path, FAST + "group_by = ['env']\n", [("ops", hook.url())])
    with alerts_tree(settings) as registry:
        _failed(registry, "prod")
        registry.tell("bus", Event("environment.blocked", "critical", env="dev",
                                   data=fields_of(reason="crash loop")))  # fmt: skip
        # Both recorded as delivered, not only received: one still pending at the stop is
        # sent again after the start (with its id), which this test does not look at.
        delivered = NotificationRow.select().where(NotificationRow.state == "delivered")
        wait_until(lambda: delivered.count() == 2, what="both firing delivered")
        assert len(hook.received) == 2
    with alerts_tree(settings) as registry:  # what the environments say once started again
        for env in ("prod", "dev"):
            registry.tell("bus", Event("environment.healthy", env=env))

        def resolved() -> list[str]:
            return sorted(a["name"] for b in hook.received[2:] for a in b["alerts"])

        wait_until(lambda: len(resolved()) == 2, what="both resolved")
        assert resolved() == ["environment_blocked", "environment_failed"]
        assert {b["status"] for b in hook.received[2:]} == {"resolved"}
        assert _state(registry, ROUTER)["firing"] == []
