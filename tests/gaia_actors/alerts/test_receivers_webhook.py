"""The webhook, Slack and Discord receivers against a real HTTP server on 127.0.0.1: the exact
bodies and headers they POST, the chat services' size limits, and the faults (a receiver
down, slow past its timeout, answering 500 then 200), with secrets kept out of every error."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from gaia_actors.alerts.receivers import (
    Delivery,
    DeliveryFailed,
    DiscordReceiver,
    SlackReceiver,
    WebhookReceiver,
    build_receiver,
)
from gaia_actors.settings import ReceiverSettings
from tests.gaia_actors.alerts.loopback import HookServer, Reply, closed_port
from tests.gaia_actors.alerts.notifications import alert, notification

MARGIN = 1.0  # seconds a send may take past its timeout on a loaded machine


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    server = HookServer()
    yield server
    server.close()


def test_a_webhook_posts_the_versioned_payload_with_its_headers(hooks: HookServer) -> None:
    receiver = WebhookReceiver(
        "ops", hooks.url("/alerts?team=ops"), headers={"Authorization": "Bearer t0ken-value"}
    )
    sent = notification()
    delivery = receiver.send(sent)
    request = hooks.next()
    assert (request.method, request.path) == ("POST", "/alerts?team=ops")
    assert json.loads(request.body) == sent.payload()
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == "n-0001"
    assert request.headers["X-Gaia-Notification-Id"] == "n-0001"
    assert request.headers["Authorization"] == "Bearer t0ken-value"
    assert delivery.answer == "HTTP 200"
    assert 0 < delivery.elapsed < receiver.timeout


def test_the_payload_is_version_1_with_every_fact_of_each_alert(hooks: HookServer) -> None:
    WebhookReceiver("ops", hooks.url()).send(notification())
    assert json.loads(hooks.next().body) == {
        "version": "1",
        "id": "n-0001",
        "receiver": "ops",
        "group": "env=prod",
        "status": "firing",
        "severity": "critical",
        "title": "[CRITICAL] [prod] prod failed: restart budget spent, data verified, "
        "nothing to roll back",
        "test": False,
        "created_at": "2026-12-07T16:00:01+00:00",
        "alerts": [
            {
                "key": "environment_failed:prod:0",
                "name": "environment_failed",
                "severity": "critical",
                "status": "firing",
                "env": "prod",
                "summary": "prod failed: restart budget spent, data verified, nothing to roll back",
                "event": "environment.failed",
                "incident_id": 42,
                "starts_at": "2026-12-07T16:00:00+00:00",
                "ends_at": None,
                "details": {"reason": "exit 1", "restarts": 5},
            }
        ],
    }


def test_slack_gets_a_block_kit_message_with_the_same_facts(hooks: HookServer) -> None:
    resolved = alert(status="resolved", ended=1_796_659_500.0, details={"note": "a <b> & c"})
    SlackReceiver("chat", hooks.url("/services/T0/B0/x")).send(
        notification(resolved, status="resolved")
    )
    request = hooks.next()
    summary = "prod failed: restart budget spent, data verified, nothing to roll back"
    assert request.headers["Idempotency-Key"] == "n-0001"
    assert json.loads(request.body) == {
        "text": f":large_green_circle: [RESOLVED] [prod] {summary}\n• prod: {summary} (resolved)",
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": f"[RESOLVED] [prod] {summary}"},
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f":large_green_circle: *{summary}*\nnote: a &lt;b&gt; &amp; c",
                },
                "fields": [
                    {"type": "mrkdwn", "text": "*Environment*\nprod"},
                    {"type": "mrkdwn", "text": "*Severity*\ncritical"},
                    {"type": "mrkdwn", "text": "*Status*\nresolved"},
                    {"type": "mrkdwn", "text": "*Alert*\nenvironment_failed"},
                    {"type": "mrkdwn", "text": "*Incident*\n42"},
                    {"type": "mrkdwn", "text": "*Started*\n2026-12-07T16:00:00+00:00"},
                    {"type": "mrkdwn", "text": "*Ended*\n2026-12-07T16:05:00+00:00"},
                    {"type": "mrkdwn", "text": "*Event*\nenvironment.failed"},
                ],
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "gaia notification n-0001 · group env=prod · "
                        "2026-12-07T16:00:01+00:00",
                    }
                ],
            },
        ],
    }


def test_discord_gets_embeds_with_the_same_facts_and_pings_nobody(hooks: HookServer) -> None:
    DiscordReceiver("chat", hooks.url("/api/webhooks/1/x")).send(
        notification(alert(summary="@everyone prod is down", details={"reason": "exit 1"}))
    )
    assert json.loads(hooks.next().body) == {
        "content": "[CRITICAL] [prod] @everyone prod is down",
        "embeds": [
            {
                "title": "@everyone prod is down",
                "description": "reason: exit 1",
                "color": 0xD62828,
                "fields": [
                    {"name": "Environment", "value": "prod", "inline": True},
                    {"name": "Severity", "value": "critical", "inline": True},
                    {"name": "Status", "value": "firing", "inline": True},
                    {"name": "Alert", "value": "environment_failed", "inline": True},
                    {"name": "Incident", "value": "42", "inline": True},
                    {"name": "Started", "value": "2026-12-07T16:00:00+00:00", "inline": True},
                    {"name": "Ended", "value": "-", "inline": True},
                    {"name": "Event", "value": "environment.failed", "inline": True},
                ],
                "footer": {
                    "text": "gaia notification n-0001 · group env=prod · 2026-12-07T16:00:01+00:00"
                },
                "timestamp": "2026-12-07T16:00:00+00:00",
            }
        ],
        "allowed_mentions": {"parse": []},
    }


def _many(count: int) -> tuple:  # type: ignore[type-arg]
    long = "x" * 5000
    return tuple(
        alert(i, summary=f"alert {i} " + long, details={"log": long, "more": long})
        for i in range(count)
    )


def test_slack_messages_keep_to_slacks_limits_and_count_what_is_left_out(
    hooks: HookServer,
) -> None:
    SlackReceiver("chat", hooks.url()).send(notification(*_many(200)))
    body = json.loads(hooks.next().body)
    blocks = body["blocks"]
    header, sections, context = blocks[0], blocks[1:-1], blocks[-1]
    assert len(blocks) <= 50
    assert len(header["text"]["text"]) <= 150
    assert all(len(s["text"]["text"]) <= 3000 for s in sections)
    assert all(len(s["fields"]) <= 10 for s in sections)
    assert all(len(f["text"]) <= 2000 for s in sections for f in s["fields"])
    assert sections[0]["text"]["text"].endswith("…[truncated]")
    assert (
        sum(len(s["text"]["text"]) + sum(len(f["text"]) for f in s["fields"]) for s in sections)
        <= 12_000
    )
    assert context["elements"][0]["text"].endswith(f"{200 - len(sections)} more alerts not shown")
    assert len(body["text"]) <= 3000


def test_discord_messages_keep_to_discords_limits_and_count_what_is_left_out(
    hooks: HookServer,
) -> None:
    DiscordReceiver("chat", hooks.url()).send(notification(*_many(30)))
    body = json.loads(hooks.next().body)
    embeds = body["embeds"]
    assert len(embeds) <= 10
    assert len(body["content"]) <= 2000
    assert body["content"].endswith(f"{30 - len(embeds)} more alerts not shown")

    def chars(embed: dict) -> int:  # type: ignore[type-arg]
        texts = [embed["title"], embed.get("description", ""), embed["footer"]["text"]]
        return sum(map(len, texts)) + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])

    assert sum(map(chars, embeds)) <= 6000
    assert all(len(e["title"]) <= 256 for e in embeds)
    # What the budget leaves is shared: every alert shown keeps part of its details.
    assert all(e["description"].endswith("…[truncated]") for e in embeds)


def test_a_receiver_that_is_down_fails_at_once_saying_so() -> None:
    receiver = WebhookReceiver("ops", f"http://127.0.0.1:{closed_port()}/hook", timeout=5)
    started = time.monotonic()
    with pytest.raises(DeliveryFailed) as failed:
        receiver.send(notification())
    assert time.monotonic() - started < 2
    assert "connection refused" in failed.value.reason
    assert not failed.value.permanent


def test_a_slow_receiver_fails_within_its_timeout(hooks: HookServer) -> None:
    hooks.replies.put(Reply(delay=30))
    receiver = WebhookReceiver("ops", hooks.url(), timeout=0.5)
    started = time.monotonic()
    with pytest.raises(DeliveryFailed) as failed:
        receiver.send(notification())
    assert time.monotonic() - started < 0.5 + MARGIN
    assert "timeout" in failed.value.reason
    assert "0.5 s" in failed.value.reason


def test_a_500_fails_with_the_body_and_the_resend_is_the_same_notification(
    hooks: HookServer,
) -> None:
    hooks.replies.put(Reply(500, b"database is locked\n" + b"trace " * 200))
    receiver = WebhookReceiver("ops", hooks.url())
    with pytest.raises(DeliveryFailed) as failed:
        receiver.send(notification())
    assert failed.value.reason.startswith("HTTP 500 from 127.0.0.1:")
    assert "database is locked trace" in failed.value.reason
    assert len(failed.value.reason) < 300  # the body's start, not all of it
    assert not failed.value.permanent
    assert receiver.send(notification()) == Delivery("HTTP 200", pytest.approx(0, abs=5))
    first, second = hooks.next(), hooks.next()
    assert first.body == second.body
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"] == "n-0001"


@pytest.mark.parametrize(("status", "permanent"), [(404, True), (429, False), (503, False)])
def test_only_a_client_error_a_resend_cannot_change_is_permanent(
    hooks: HookServer, status: int, permanent: bool
) -> None:
    hooks.replies.put(Reply(status, b""))
    with pytest.raises(DeliveryFailed) as failed:
        WebhookReceiver("ops", hooks.url()).send(notification())
    assert failed.value.reason.startswith(f"HTTP {status} from")
    assert failed.value.permanent is permanent


SECRET_PATH = "/services/T0SECRET/B0SECRET/XyZsecretTokenValue"
SECRET_TOKEN = "s3cr3t-header-token-value"


def _assert_hidden(text: str) -> None:
    for secret in (SECRET_TOKEN, "XyZsecretTokenValue", "T0SECRET", "B0SECRET"):
        assert secret not in text


def test_secrets_of_the_url_and_headers_appear_in_no_error_even_when_echoed(
    hooks: HookServer,
) -> None:
    echo = f"bad token {SECRET_TOKEN} for {SECRET_PATH}".encode()
    hooks.replies.put(Reply(401, echo))
    receiver = SlackReceiver(
        "chat", hooks.url(SECRET_PATH), headers={"Authorization": f"Bearer {SECRET_TOKEN}"}
    )
    with capture_logs() as logs, pytest.raises(DeliveryFailed) as failed:
        receiver.send(notification())
    assert hooks.next().headers["Authorization"] == f"Bearer {SECRET_TOKEN}"  # it was sent
    assert failed.value.reason.startswith(f"HTTP 401 from 127.0.0.1:{hooks.port}: bad token ***")
    for text in (str(failed.value), repr(receiver), receiver.target, repr(logs)):
        _assert_hidden(text)


def test_a_secret_url_of_a_receiver_that_is_down_shows_only_its_host() -> None:
    url = f"http://127.0.0.1:{closed_port()}{SECRET_PATH}?token={SECRET_TOKEN}"
    with pytest.raises(DeliveryFailed) as failed:
        WebhookReceiver("ops", url).send(notification())
    assert "127.0.0.1" in failed.value.reason
    _assert_hidden(str(failed.value))


@pytest.mark.parametrize(
    ("kind", "cls"),
    [("webhook", WebhookReceiver), ("slack", SlackReceiver), ("discord", DiscordReceiver)],
)
def test_the_factory_builds_each_webhook_kind_from_its_settings(
    hooks: HookServer, kind: str, cls: type
) -> None:
    settings = ReceiverSettings(
        name="r",
        kind=kind,
        url=hooks.url(),
        headers={"X-Team": "ops"},
        timeout=3,  # type: ignore[arg-type]
    )
    receiver = build_receiver(settings)
    assert type(receiver) is cls
    assert (receiver.name, receiver.timeout, receiver.target) == ("r", 3, f"127.0.0.1:{hooks.port}")
    receiver.send(notification())
    assert hooks.next().headers["X-Team"] == "ops"
