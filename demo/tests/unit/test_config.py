from __future__ import annotations

from pathlib import Path

import pytest
from demosvc.config import ConfigError, load_settings


def test_defaults_apply_when_only_required_variables_are_set(tmp_path: Path) -> None:
    settings = load_settings({"PORT": "8081", "DATA_DIR": str(tmp_path)})
    assert settings.port == 8081
    assert settings.host == "127.0.0.1"
    assert settings.release_id == "dev"
    assert settings.log_level == "info"
    assert settings.env_name is None
    assert settings.db_path == tmp_path / "app.db"


def test_every_variable_is_read(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "PORT": "9000",
            "DATA_DIR": str(tmp_path),
            "HOST": "::1",
            "RELEASE_ID": "r42",
            "LOG_LEVEL": "WARNING",
            "ENV_NAME": "staging",
        }
    )
    assert (settings.host, settings.release_id, settings.log_level, settings.env_name) == (
        "::1",
        "r42",
        "warning",
        "staging",
    )


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"DATA_DIR": "/tmp"}, "PORT"),
        ({"PORT": "", "DATA_DIR": "/tmp"}, "PORT"),
        ({"PORT": "http", "DATA_DIR": "/tmp"}, "PORT"),
        ({"PORT": "70000", "DATA_DIR": "/tmp"}, "PORT"),
        ({"PORT": "-1", "DATA_DIR": "/tmp"}, "PORT"),
        ({"PORT": "8080"}, "DATA_DIR"),
        ({"PORT": "8080", "DATA_DIR": "/tmp", "LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"PORT": "8080", "DATA_DIR": "/tmp", "HOST": " "}, "HOST"),
        ({"PORT": "8080", "DATA_DIR": "/tmp", "RELEASE_ID": ""}, "RELEASE_ID"),
    ],
)
def test_bad_or_missing_variable_is_named(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")


def test_missing_data_dir_is_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    load_settings({"PORT": "1", "DATA_DIR": str(target)})
    assert target.is_dir()


def test_data_dir_that_is_a_file_is_rejected(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="not a directory") as caught:
        load_settings({"PORT": "1", "DATA_DIR": str(a_file)})
    assert caught.value.variable == "DATA_DIR"
