"""The SMTP receiver against a real SMTP server on 127.0.0.1 (aiosmtpd): STARTTLS, implicit
TLS and plain connections, a login, the message as received, and the server's refusals."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gaia_actors.alerts.receivers import DeliveryFailed, SmtpReceiver, build_receiver
from gaia_actors.settings import ReceiverSettings
from tests.gaia_actors.alerts.loopback import (
    Authenticator,
    MailServer,
    client_context,
    closed_port,
    mail_server,
    self_signed,
    server_context,
)
from tests.gaia_actors.alerts.notifications import alert, notification

MARGIN = 1.0
PASSWORD = "smtp-pa55word-secret"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def plain() -> Iterator[MailServer]:
    with mail_server() as server:
        yield server


def _receiver(port: int, **options: object) -> SmtpReceiver:
    settings: dict[str, object] = {
        "port": port,
        "security": "none",
        "sender": "gaia@example.com",
        "to": ("ops@example.com", "oncall@example.com"),
        "timeout": 5.0,
    }
    return SmtpReceiver("mail", "127.0.0.1", **(settings | options))  # type: ignore[arg-type]


def _starttls_login(server: MailServer, cert: tuple[Path, Path]) -> SmtpReceiver:
    return _receiver(
        server.port,
        security="starttls",
        username="ops",
        password=PASSWORD,
        ssl_context=client_context(cert[0]),
    )


def test_starttls_with_a_login_delivers_the_facts_in_plain_text(cert: tuple[Path, Path]) -> None:
    auth = Authenticator("ops", PASSWORD)
    with mail_server(tls=server_context(*cert), auth=auth) as server:
        delivery = _starttls_login(server, cert).send(notification())
        mail = server.next()
    assert delivery.answer == "250 2.0.0 Ok: queued"
    assert (mail.secure, mail.login) == (True, "ops")
    assert (mail.sender, mail.recipients) == (
        "gaia@example.com",
        ["ops@example.com", "oncall@example.com"],
    )
    message = mail.message
    summary = "prod failed: restart budget spent, data verified, nothing to roll back"
    assert message["Subject"] == f"[CRITICAL] [prod] {summary}"
    assert message["Message-ID"] == "<gaia.n-0001@example.com>"
    assert message["X-Gaia-Notification-Id"] == "n-0001"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["To"] == "ops@example.com, oncall@example.com"
    assert message.get_content_type() == "text/plain"
    body = message.get_content()
    for line in (
        f"== {summary}",
        "Environment: prod",
        "Severity:    critical",
        "Status:      firing",
        "Incident:    42",
        "Started:     2026-12-07T16:00:00+00:00",
        "  reason: exit 1",
        "  restarts: 5",
        "-- gaia notification n-0001 · group env=prod · 2026-12-07T16:00:01+00:00",
    ):
        assert line in body.splitlines()


def test_implicit_tls_delivers(cert: tuple[Path, Path]) -> None:
    with mail_server(tls=server_context(*cert), implicit_tls=True) as server:
        receiver = _receiver(server.port, security="tls", ssl_context=client_context(cert[0]))
        resolved = alert(status="resolved", ended=1_796_659_500.0)
        receiver.send(notification(resolved, status="resolved"))
        mail = server.next()
    assert mail.secure
    assert mail.message["Subject"].startswith("[RESOLVED] [prod]")
    assert "Ended:       2026-12-07T16:05:00+00:00" in mail.message.get_content()


def test_a_certificate_the_receiver_does_not_trust_fails_the_send(cert: tuple[Path, Path]) -> None:
    with mail_server(tls=server_context(*cert), implicit_tls=True) as server:
        receiver = _receiver(server.port, security="tls", ssl_context=ssl.create_default_context())
        with pytest.raises(DeliveryFailed) as failed:
            receiver.send(notification())
    assert "CERTIFICATE_VERIFY_FAILED" in failed.value.reason
    assert server.handler.mails.empty()


def test_starttls_refuses_a_server_that_does_not_offer_it(plain: MailServer) -> None:
    with pytest.raises(DeliveryFailed) as failed:
        _receiver(plain.port, security="starttls").send(notification())
    assert "does not offer STARTTLS" in failed.value.reason
    assert plain.handler.mails.empty()


def test_a_refused_login_fails_with_the_reply_code_and_no_password(
    cert: tuple[Path, Path],
) -> None:
    auth = Authenticator("ops", "the-right-one")
    with mail_server(tls=server_context(*cert), auth=auth) as server:
        receiver = _starttls_login(server, cert)
        with pytest.raises(DeliveryFailed) as failed:
            receiver.send(notification())
    assert failed.value.reason.startswith("535 ")
    assert failed.value.permanent
    assert PASSWORD not in str(failed.value)
    assert PASSWORD not in repr(receiver)


def test_a_refused_message_fails_with_the_servers_reply(plain: MailServer) -> None:
    plain.handler.refuse = "451 4.3.0 mailbox busy, try later"
    with pytest.raises(DeliveryFailed) as failed:
        _receiver(plain.port).send(notification())
    assert failed.value.reason == "451 4.3.0 mailbox busy, try later"
    assert not failed.value.permanent
    plain.handler.refuse = ""
    _receiver(plain.port).send(notification())  # the resend carries the same Message-ID
    assert plain.next().message["Message-ID"] == "<gaia.n-0001@example.com>"


def test_a_refused_recipient_is_named_in_the_answer_and_the_others_get_the_mail(
    plain: MailServer,
) -> None:
    plain.handler.unknown = {"oncall@example.com"}
    delivery = _receiver(plain.port).send(notification())
    assert delivery.answer == "250 2.0.0 Ok: queued (1 of 2 recipients refused)"
    assert plain.next().recipients == ["ops@example.com"]


def test_every_recipient_refused_fails_permanently_naming_them(plain: MailServer) -> None:
    plain.handler.unknown = {"ops@example.com", "oncall@example.com"}
    with pytest.raises(DeliveryFailed) as failed:
        _receiver(plain.port).send(notification())
    assert failed.value.reason == (
        "every recipient refused: ops@example.com: 550 5.1.1 no such user; "
        "oncall@example.com: 550 5.1.1 no such user"
    )
    assert failed.value.permanent
    assert plain.handler.mails.empty()


def test_an_smtp_server_that_is_down_fails_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(DeliveryFailed) as failed:
        _receiver(closed_port()).send(notification())
    assert time.monotonic() - started < 2
    assert failed.value.reason.startswith("connection refused by 127.0.0.1:")


def test_a_slow_smtp_server_fails_within_the_timeout(plain: MailServer) -> None:
    plain.handler.delay = 30
    started = time.monotonic()
    with pytest.raises(DeliveryFailed) as failed:
        _receiver(plain.port, timeout=0.5).send(notification())
    assert time.monotonic() - started < 0.5 + MARGIN
    assert "within 0.5 s" in failed.value.reason


def test_the_factory_builds_an_smtp_receiver(plain: MailServer) -> None:
    settings = ReceiverSettings(
        name="mail",
        kind="smtp",
        host="127.0.0.1",
        port=plain.port,
        security="none",
        sender="gaia@example.com",
        to=("ops@example.com",),
        timeout=5,
    )
    receiver = build_receiver(settings)
    assert receiver.target == f"127.0.0.1:{plain.port}"
    receiver.send(notification())
    assert plain.next().recipients == ["ops@example.com"]
