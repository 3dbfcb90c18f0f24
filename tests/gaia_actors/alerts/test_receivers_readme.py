"""The README's Alerts section is true: its configuration examples load and build the
receivers they describe, and its payload is what a webhook is sent."""

from __future__ import annotations

import json
import re
from pathlib import Path

from gaia_actors.alerts.receivers import build_receiver
from gaia_actors.settings import load
from tests.gaia_actors.alerts.notifications import notification

README = Path(__file__).resolve().parents[3] / "README.md"
SECRETS = {
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/tok",
    "SMTP_PASSWORD": "pw",
    "PAGER_TOKEN": "tok",
}


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Alerts\n")
    return text[start : text.index("\n## ", start + 1)]


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", _section(), re.DOTALL)


def test_the_readme_receivers_load_and_build(tmp_path: Path) -> None:
    config = tmp_path / "gaia.toml"
    envs = "[environments.prod]\nport = 9080\n[environments.staging]\nport = 9081\n"
    config.write_text(envs + "\n".join(_blocks("toml")), encoding="utf-8")
    settings = load(config, environ=SECRETS)
    built = {r.name: build_receiver(r) for r in settings.alerts.receivers}
    assert {name: (r.kind, r.target) for name, r in built.items()} == {
        "ops-chat": ("slack", "hooks.slack.com"),
        "oncall-mail": ("smtp", "smtp.example.com:587"),
        "pager": ("webhook", "events.example.com"),
        "script": ("command", "/usr/local/bin/notify-alert"),
    }


def test_the_readme_payload_is_the_payload_a_webhook_is_sent() -> None:
    (documented,) = _blocks("json")
    assert json.loads(documented) == notification(receiver="pager").payload()
