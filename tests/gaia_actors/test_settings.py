"""Configuration: every error names the file, the key and what was expected."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gaia_actors.errors import ConfigError
from gaia_actors.settings import DEFAULT_CONFIG, load

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gaia.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path, environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(path, environ=environ or {})
    return info.value


def test_shipped_config_loads_with_three_environments() -> None:
    settings = load(DEFAULT_CONFIG, environ={})
    assert sorted(settings.environments) == ["dev", "prod", "staging"]
    assert settings.environments["prod"].port == 8080
    assert settings.environments["dev"].reset_on_error is True
    assert settings.state_dir == REPO / "var"


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    error = _error(tmp_path / "nope.toml")
    assert "nope.toml" in str(error)
    assert "not found" in str(error)


def test_bad_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "[monitor\ninterval = 3\n"))
    assert str(tmp_path / "gaia.toml") in str(error)
    assert "not valid TOML" in str(error)
    assert "line 1" in str(error)


def test_wrong_type_names_the_key_and_the_expected_type(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, '[monitor]\ninterval = "soon"\n'))
    assert error.key == "monitor.interval"
    assert "expected a number" in str(error)
    assert "'soon'" in str(error)


def test_unknown_key_lists_the_known_keys(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "[monitor]\nintervall = 3\n"))
    assert error.key == "monitor.intervall"
    assert "unknown key" in str(error)
    assert "interval" in str(error)


def test_unknown_section_is_refused(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "[monitr]\ninterval = 3\n"))
    assert error.key == "monitr"
    assert "unknown section" in str(error)


def test_missing_required_environment_port(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, '[environments.dev]\nsource = "demo"\n'))
    assert error.key == "environments.dev.port"
    assert "required" in str(error)


def test_duplicate_ports_name_both_environments(tmp_path: Path) -> None:
    text = "[environments.a]\nport = 9001\n[environments.b]\nport = 9001\n"
    error = _error(_write(tmp_path, text))
    assert error.key == "environments.b.port"
    assert "'a'" in str(error)


def test_keeping_no_promotion_is_refused(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "[pipeline]\nkeep = 0\n"))
    assert error.key == "pipeline.keep"
    assert "at least 1" in str(error)


def test_bad_literal_lists_the_choices(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, '[logging]\nlevel = "loud"\n'))
    assert error.key == "logging.level"
    assert "'debug'" in str(error)


def test_bad_backup_schedule(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, '[environments.a]\nport = 9001\nbackup_schedule = "weekly"\n'))
    assert error.key == "environments.a.backup_schedule"


def test_environment_overrides_single_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, "[environments.prod]\nport = 9001\n[monitor]\ninterval = 30\n")
    environ = {
        "GAIA_MONITOR__INTERVAL": "2.5",
        "GAIA_ENVIRONMENTS__PROD__PORT": "9100",
        "GAIA_STATE_DIR": str(tmp_path / "s"),
        "GAIA_DATABASE_URL": "sqlite:////tmp/x.db",
    }
    settings = load(path, environ=environ)
    assert settings.monitor.interval == 2.5
    assert settings.environments["prod"].port == 9100
    assert settings.state_dir == tmp_path / "s"
    assert settings.database_url == "sqlite:////tmp/x.db"


def test_override_with_a_bad_value_names_the_key(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, ""), {"GAIA_MONITOR__INTERVAL": "fast"})
    assert error.key == "monitor.interval"


def test_state_dir_defaults_beside_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    path = tmp_path / "config" / "gaia.toml"
    path.write_text("", encoding="utf-8")
    assert load(path, environ={}).state_dir == tmp_path / "var"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[monitor\n", "not valid TOML"),
        ('[monitor]\ninterval = "x"\n', "monitor.interval"),
        ("[nope]\n", "unknown section"),
    ],
)
def test_cli_exits_2_with_the_message(tmp_path: Path, text: str, fragment: str) -> None:
    path = _write(tmp_path, text)
    result = subprocess.run(
        [sys.executable, str(REPO / "run.py"), "--config", str(path), "run"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "GAIA_STATE_DIR": str(tmp_path / "state")},
        check=False,
    )
    assert result.returncode == 2
    assert fragment in result.stderr
    assert str(path) in result.stderr
    assert not (tmp_path / "state").exists()  # nothing touched
