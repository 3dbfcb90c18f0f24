"""Configuration: every error names the file, the key and what was expected."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from gaia_actors import settings as settings_module
from gaia_actors.errors import ConfigError, TemplateError
from gaia_actors.layout import Layout
from gaia_actors.settings import (
    DEFAULT_CONFIG,
    ENV_PLACEHOLDERS,
    RANGE,
    EnvironmentSettings,
    ReceiverSettings,
    Settings,
    StageSettings,
    backup_interval,
    expand,
    load,
)

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
    assert "from 1 to" in str(error)


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
        ("[monitor]\ninterval = nan\n", "monitor.interval: expected a number from 0.02"),
        ('[environments.a]\nport = 9001\ncommand = ["{pyhton}"]\n', "{python}, {port}"),
        ('[improve]\ntests = "command"\n', "improve.test_command: tests = 'command' needs"),
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


# --- placeholders -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "known"),
    [
        ('command = ["{python}", "{pyhton}"]', "environments.dev.command[1]", "{python}"),
        ('env = { HOME_DIR = "{home}" }', "environments.dev.env.HOME_DIR", "{data_dir}"),
        ('build = ["{python}", "{port}"]', "environments.dev.build[1]", "{python}"),
        ('command = ["sh", "-c", "echo ${HOME}"]', "environments.dev.command[2]", "{port}"),
    ],
)
def test_an_unknown_placeholder_names_the_key_and_the_known_ones(
    tmp_path: Path, text: str, key: str, known: str
) -> None:
    error = _error(_write(tmp_path, f"[environments.dev]\nport = 9001\n{text}\n"))
    assert error.key == key
    assert "unknown placeholder" in str(error)
    assert known in str(error)
    assert "{{" in str(error)  # how to write a literal brace


def test_a_stage_argument_with_an_unknown_placeholder_names_the_stage(tmp_path: Path) -> None:
    text = (
        "[environments.dev]\nport = 9001\n[environments.staging]\nport = 9002\n"
        "[[pipeline.dev_to_staging]]\nkind = 'command'\ncommand = ['true', '{pipeline}']\n"
        "[[pipeline.dev_to_staging]]\nkind = 'command'\nname = 'b'\ncommand = ['true']\n"
        "environ = { URL = '{url}/x', BAD = '{URL}' }\n"
    )
    error = _error(_write(tmp_path, text))
    assert error.key == "pipeline.dev_to_staging[0].command[1]"
    assert "{pipeline_id}" in str(error)
    error = _error(_write(tmp_path, text.replace("'{pipeline}'", "'{pipeline_id}'")))
    assert error.key == "pipeline.dev_to_staging[1].environ.BAD"


def test_a_lone_brace_is_refused(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, '[environments.dev]\nport = 9001\ncommand = ["x", "a}"]\n'))
    assert error.key == "environments.dev.command[1]"
    assert "lone '}'" in str(error)
    assert "'}}'" in str(error)


def test_doubled_braces_are_literal_when_the_command_runs(tmp_path: Path) -> None:
    text = (
        "[environments.dev]\nport = 9001\n"
        'command = ["sh", "-c", "echo ${{HOME}} {port}", \'{{"a": {{"b": 1}}}}\']\n'
        "env = { JSON = '{{\"port\": {port}}}' }\n"
    )
    settings = load(_write(tmp_path, text), environ={"GAIA_STATE_DIR": str(tmp_path / "s")})
    layout = Layout.of(settings, "dev")
    assert layout.argv("r1") == ["sh", "-c", "echo ${HOME} 9001", '{"a": {"b": 1}}']
    assert layout.process_env("r1")["JSON"] == '{"port": 9001}'


def test_expand_uses_the_same_rules_at_run_time() -> None:
    assert expand("{a}-{{a}}-}}", {"a": "1"}) == "1-{a}-}"
    with pytest.raises(TemplateError, match=r"unknown placeholder '\{b\}'; placeholders: \{a\}"):
        expand("{b}", {"a": "1"})
    with pytest.raises(TemplateError, match="lone"):
        expand("x{", {})


def test_the_environment_placeholders_are_those_the_layout_fills(tmp_path: Path) -> None:
    settings = load(_write(tmp_path, "[environments.dev]\nport = 9001\n"), environ={})
    assert set(Layout.of(settings, "dev").substitutions("r1")) == set(ENV_PLACEHOLDERS)


# --- numbers ------------------------------------------------------------------------------


def test_a_number_is_a_backup_schedule(tmp_path: Path) -> None:
    text = "[environments.a]\nport = 9001\nbackup_schedule = 3600\n"
    settings = load(_write(tmp_path, text), environ={})
    assert backup_interval(settings.environments["a"].backup_schedule) == 3600.0
    error = _error(_write(tmp_path, text.replace("3600", "0")))
    assert error.key == "environments.a.backup_schedule"
    assert "from 0.1 to" in str(error)


@pytest.mark.parametrize(
    "setting",
    [
        "monitor.interval = 0",
        "monitor.interval = nan",
        "monitor.interval = inf",
        "supervision.ping_interval = 0",
        "store.flush_interval = 0",
        "metrics.interval = 0",
        "monitor.failure_threshold = 0",
        "control.max_line_bytes = 0",
        "monitor.window = 9223372036854775807",
        "supervision.backoff_jitter = 1.5",
    ],
)
def test_values_that_would_burn_the_machine_are_refused(tmp_path: Path, setting: str) -> None:
    key, value = setting.split(" = ")
    section, name = key.split(".")
    error = _error(_write(tmp_path, f"[{section}]\n{name} = {value}\n"))
    assert error.key == key
    assert "from " in str(error)
    assert f"got {value}" in str(error)


def _numeric_fields() -> list[tuple[str, str]]:
    classes = [
        typing.get_type_hints(Settings)[f.name]
        for f in dataclasses.fields(Settings)
        if f.name not in ("config_path", "state_dir", "environments")
    ]
    found = []
    for cls in [*classes, EnvironmentSettings, StageSettings, ReceiverSettings]:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            members = typing.get_args(hints[f.name]) or (hints[f.name],)
            if int in members or float in members:
                found.append((cls.__name__, f.name))
    return found


@pytest.mark.parametrize(("section", "name"), _numeric_fields())
def test_every_number_in_the_settings_declares_its_range(section: str, name: str) -> None:
    cls = getattr(settings_module, section)
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    assert RANGE in field.metadata, f"{section}.{name}: declare it with bounded(default, lo, hi)"
    low, high = field.metadata[RANGE]
    assert 0 <= low <= high < math.inf


# --- settings that are well typed but cannot work ----------------------------------------

_PROMOTION = "[environments.dev]\nport = 9001\n[environments.staging]\nport = 9002\n"


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ('[improve]\ntests = "command"\n', "improve.test_command", "needs a non-empty argv"),
        (
            '[improve.targets.lib]\npath = "lib"\ntests = "command"\n',
            "improve.targets.lib.test_command",
            "needs a non-empty argv",
        ),
        (
            _PROMOTION + "[[pipeline.dev_to_staging]]\nkind = 'load'\npath = 'health'\n",
            "pipeline.dev_to_staging[0].path",
            "expected a path starting with /, got 'health'",
        ),
        (
            _PROMOTION + "[[pipeline.dev_to_staging]]\nkind = 'health'\npath = '/x'\n",
            "pipeline.dev_to_staging[0].path",
            "a key of a load stage, not of a health stage; its own keys: soak, interval",
        ),
        (
            _PROMOTION + "[[pipeline.dev_to_staging]]\nkind = 'deploy'\ncommand = ['true']\n",
            "pipeline.dev_to_staging[0].command",
            "a key of a command stage, not of a deploy stage",
        ),
        (
            _PROMOTION + "[[pipeline.dev_to_staging]]\nkind = 'command'\ncommand = ['true']\n"
            "soak = 5\n",
            "pipeline.dev_to_staging[0].soak",
            "its own keys: command, environ, junit",
        ),
        (
            _PROMOTION + "[[pipeline.dev_to_staging]]\nkind = 'health'\nsoak = 60\ntimeout = 30\n",
            "pipeline.dev_to_staging[0].soak",
            "a 60s soak does not fit in the stage's 30s timeout",
        ),
        ('[improve]\nexclude = ["build/", "\\\\"]\n', "improve.exclude", "Invalid git pattern"),
        ('[improve]\nfix_exclude = ["\\\\"]\n', "improve.fix_exclude", "Invalid git pattern"),
    ],
)
def test_a_setting_that_cannot_work_is_refused_when_loaded(
    tmp_path: Path, text: str, key: str, fragment: str
) -> None:
    path = _write(tmp_path, text)
    error = _error(path)
    assert error.key == key
    assert fragment in str(error)
    assert str(path) in str(error)
