"""The [alerts] settings: receivers validated at load, secrets taken from the environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gaia_actors.errors import ConfigError
from gaia_actors.settings import DEFAULT_CONFIG, load, with_secrets

REPO = Path(__file__).resolve().parents[3]
ENVS = "[environments.prod]\nport = 9080\n"


def _load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> object:
    path = tmp_path / "gaia.toml"
    path.write_text(ENVS + text, encoding="utf-8")
    return load(path, environ=environ or {})


def _error(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text, environ)
    return info.value


def test_the_shipped_config_has_no_active_receiver() -> None:
    assert load(DEFAULT_CONFIG, environ={}).alerts.receivers == ()


def test_a_webhook_receiver_takes_its_secrets_from_the_environment(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        "[[alerts.receivers]]\nname = 'ops'\nkind = 'webhook'\n"
        "url = 'https://hooks.example.com/${HOOK_PATH}?t=1'\n"
        "headers = { Authorization = 'Bearer ${TOKEN}' }\n",
        {"TOKEN": "s3cret", "HOOK_PATH": "T000/B000"},
    )
    (receiver,) = settings.alerts.receivers  # type: ignore[attr-defined]
    assert receiver.headers == {"Authorization": "Bearer s3cret"}
    assert receiver.url == "https://hooks.example.com/T000/B000?t=1"
    assert receiver.endpoint == "hooks.example.com"
    assert "s3cret" not in repr(receiver)
    assert "T000" not in repr(receiver)
    assert (receiver.events, receiver.envs, receiver.min_severity) == (("*",), (), "warning")
    assert receiver.send_resolved is True


def test_an_smtp_receiver_defaults_its_port_from_its_security(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        "[[alerts.receivers]]\nname = 'mail'\nkind = 'smtp'\nhost = 'smtp.example.com'\n"
        "security = 'tls'\nusername = 'ops'\npassword = '${SMTP_PASSWORD}'\n"
        "sender = 'gaia@example.com'\nto = ['ops@example.com']\n",
        {"SMTP_PASSWORD": "pw"},
    )
    (receiver,) = settings.alerts.receivers  # type: ignore[attr-defined]
    assert (receiver.smtp_port, receiver.password, receiver.endpoint) == (
        465,
        "pw",
        "smtp.example.com:465",
    )


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        (
            "name = 'a'\nkind = 'webhook'\nurl = 'http://h/'\nhost = 'smtp'\n",
            "alerts.receivers[0].host",
            "not a key of a webhook receiver",
        ),
        ("name = 'a'\nkind = 'command'\nurl = 'http://h/'\n", "alerts.receivers[0].url", "command"),
        ("name = 'a'\nkind = 'slack'\n", "alerts.receivers[0].url", "needs it"),
        ("name = 'a'\nkind = 'smtp'\nhost = 'h'\nsender = 'a@b'\n", "alerts.receivers[0].to", ""),
        ("name = 'a'\nkind = 'pager'\n", "alerts.receivers[0].kind", "'webhook'"),
        ("name = 'a'\nkind = 'webhook'\nurl = 'ftp://h/'\n", "alerts.receivers[0].url", "http"),
        ("name = 'a b'\nkind = 'command'\ncommand = ['x']\n", "alerts.receivers[0].name", ""),
        (
            "name = 'a'\nkind = 'command'\ncommand = ['x']\nenvs = ['qa']\n",
            "alerts.receivers[0].envs",
            "'qa' is not a configured environment",
        ),
        (
            "name = 'a'\nkind = 'command'\ncommand = ['x']\nrate_limit = 0\n",
            "alerts.receivers[0].rate_limit",
            "from 1",
        ),
        (
            "name = 'a'\nkind = 'webhook'\nurl = 'http://h/${NOPE}'\n",
            "alerts.receivers[0].url",
            "environment variable NOPE is not set",
        ),
        (
            "name = 'a'\nkind = 'webhook'\nurl = 'http://h/'\nheaders = { X = '${NOPE}' }\n",
            "alerts.receivers[0].headers.X",
            "NOPE",
        ),
    ],
)
def test_a_bad_receiver_names_its_key(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    error = _error(tmp_path, "[[alerts.receivers]]\n" + text)
    assert error.key == key
    assert fragment in str(error)


def test_a_receiver_name_used_twice_is_refused(tmp_path: Path) -> None:
    one = "[[alerts.receivers]]\nname = 'ops'\nkind = 'command'\ncommand = ['true']\n"
    error = _error(tmp_path, one + one)
    assert error.key == "alerts.receivers[1].name"
    assert "named twice" in str(error)


def test_the_cli_exits_2_on_an_unset_variable_without_printing_secrets(tmp_path: Path) -> None:
    path = tmp_path / "gaia.toml"
    path.write_text(
        ENVS + "[[alerts.receivers]]\nname = 'ops'\nkind = 'webhook'\n"
        "url = 'https://h/${HOOK}'\nheaders = { A = '${TOKEN}' }\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, str(REPO / "run.py"), "--config", str(path), "run"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "GAIA_STATE_DIR": str(tmp_path / "state"), "HOOK": "x1y2"},
        check=False,
    )
    assert result.returncode == 2
    assert "alerts.receivers[0].headers.A" in result.stderr
    assert "TOKEN is not set" in result.stderr
    assert "x1y2" not in result.stderr + result.stdout
    assert not (tmp_path / "state").exists()


WHOLE_URL = "[[alerts.receivers]]\nname = 'chat'\nkind = 'slack'\nurl = '${SLACK_WEBHOOK_URL}'\n"


def test_a_url_that_is_all_secret_is_checked_once_replaced(tmp_path: Path) -> None:
    secret = "https://hooks.slack.com/services/T0/B0/s3cr3t"
    settings: Any = _load(tmp_path, WHOLE_URL, {"SLACK_WEBHOOK_URL": secret})
    (receiver,) = settings.alerts.receivers
    assert (receiver.url, receiver.endpoint) == (secret, "hooks.slack.com")
    error = _error(tmp_path, WHOLE_URL, {"SLACK_WEBHOOK_URL": "hooks.slack.com/s3cr3t"})
    assert error.key == "alerts.receivers[0].url"
    assert "expected an http:// or https:// URL" in str(error)
    assert "s3cr3t" not in str(error)


def test_without_secrets_an_unset_variable_is_left_as_written(tmp_path: Path) -> None:
    path = tmp_path / "gaia.toml"
    path.write_text(ENVS + WHOLE_URL, encoding="utf-8")
    settings = load(path, environ={}, secrets=False)
    assert settings.alerts.receivers[0].url == "${SLACK_WEBHOOK_URL}"
    with pytest.raises(ConfigError) as info:
        with_secrets(settings, environ={})
    assert (info.value.key, info.value.file) == ("alerts.receivers[0].url", str(path.resolve()))
    assert "environment variable SLACK_WEBHOOK_URL is not set" in str(info.value)


def _cli(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "gaia.toml"
    path.write_text(ENVS + WHOLE_URL, encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(REPO / "run.py"), "--config", str(path), *argv],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "GAIA_STATE_DIR": str(tmp_path / "state")},
        check=False,
    )


def test_a_command_that_sends_nothing_runs_with_a_secret_unset(tmp_path: Path) -> None:
    result = _cli(tmp_path, "alerts")
    assert result.returncode == 0, result.stderr
    assert "chat" in result.stdout


def test_alerts_test_refuses_a_secret_unset_naming_it(tmp_path: Path) -> None:
    result = _cli(tmp_path, "alerts", "test", "chat")
    assert result.returncode == 2
    assert "alerts.receivers[0].url" in result.stderr
    assert "SLACK_WEBHOOK_URL is not set" in result.stderr
