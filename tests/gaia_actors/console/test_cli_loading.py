"""A command line imports only the module of the command it runs, and reads as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gaia_actors.console import cli
from gaia_actors.control import catalog, commands
from tests.gaia_actors.control.test_control import REPO

# Runs the command line, then prints the project's modules it imported as the last line.
SCRIPT = """
import json, sys
from gaia_actors.console import cli
code = cli.main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.startswith(("gaia_actors", "supervisors")))
print(json.dumps({"code": code, "modules": loaded}))
"""
COMMAND_MODULES = frozenset(group.module for group in catalog.GROUPS)
CAPABILITIES = ("environments", "monitoring", "pipeline", "improve", "alerts")


def test_the_catalog_names_every_command_its_modules_register() -> None:
    catalog.load_all()
    registered: dict[str, set[str]] = {}
    for name, cmd in commands.commands().items():
        registered.setdefault(cmd.handler.__module__, set()).add(name)
    for group in catalog.GROUPS:
        assert set(group.names) == registered.get(group.module), group.module


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        ([], None),
        (["--json"], None),
        (["status"], "status"),
        (["--config", "status", "actors", "--json"], "actors"),
        (["--conf", "x.toml", "--json", "promote-dev"], "promote-dev"),
        (["--config=x.toml", "health", "prod"], "health"),
        (["--", "tail"], "tail"),
        (["--help", "status"], None),  # the help of every command
        (["--json", "-h", "actors"], None),
    ],
)
def test_the_command_word_skips_options_and_the_config_file(
    argv: list[str], word: str | None
) -> None:
    assert cli.command_word(argv) == word


def _run(tmp_path: Path, *argv: str) -> tuple[dict[str, Any], str]:
    config = tmp_path / "gaia.toml"
    config.write_text('[logging]\nconsole = "off"\n', encoding="utf-8")
    env = {**os.environ, "GAIA_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, "--config", str(config), *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1]), done.stderr


@pytest.mark.parametrize(
    ("argv", "code", "commands_of"),
    [
        (["actors"], cli.EXIT_UNREACHABLE, "gaia_actors.control.core_commands"),
        (["status", "--json"], cli.EXIT_OK, "gaia_actors.monitoring.commands"),
        (["promote-dev"], cli.EXIT_UNREACHABLE, "gaia_actors.pipeline.commands"),
        (["send", "bus", "GetState"], cli.EXIT_UNREACHABLE, None),
    ],
)
def test_a_command_imports_only_the_module_of_its_command(
    tmp_path: Path, argv: list[str], code: int, commands_of: str | None
) -> None:
    ran, err = _run(tmp_path, *argv)
    assert ran["code"] == code, err
    loaded = set(ran["modules"])
    assert loaded & COMMAND_MODULES == ({commands_of} if commands_of else set())
    assert "gaia_actors.app" not in loaded
    owner = commands_of.split(".")[1] if commands_of else None
    others = {f"gaia_actors.{c}" for c in CAPABILITIES if c != owner}
    assert not loaded & others


def test_help_and_an_unknown_command_see_every_command(tmp_path: Path) -> None:
    ran, _ = _run(tmp_path, "--help", "status")
    assert ran["code"] == cli.EXIT_OK
    assert set(ran["modules"]) >= COMMAND_MODULES
    ran, err = _run(tmp_path, "nosuch")
    assert ran["code"] == cli.EXIT_USAGE
    assert "invalid choice: 'nosuch'" in err
    assert "'status'" in err
    assert "'promote'" in err


def test_a_command_line_its_command_refuses_reads_as_with_every_command(tmp_path: Path) -> None:
    ran, err = _run(tmp_path, "actors", "--bogus")
    assert ran["code"] == cli.EXIT_USAGE
    assert "unrecognized arguments: --bogus" in err
    assert set(ran["modules"]) >= COMMAND_MODULES


@pytest.mark.parametrize(
    "argv",
    [
        ["actors", "--json"],
        ["--json", "status"],
        ["health", "prod", "-n", "3"],
        ["promote-dev"],
        ["promote", "all", "--output"],
        ["tail", "-f", "--env", "prod"],
        ["send", "bus", "GetState", "a=1"],
        ["monitor", "--count", "1"],
        ["run"],
        ["--json", "run"],
    ],
)
def test_a_line_reads_the_same_with_only_its_command_as_with_every_command(
    argv: list[str],
) -> None:
    catalog.load_all()
    _, partial = cli.parse(argv)
    assert vars(partial) == vars(cli.build_parser().parse_args(argv))


def test_only_a_tail_line_imports_the_log_reader_to_parse() -> None:
    code = """
import sys
from gaia_actors.console import cli
cli.parse(sys.argv[1:])
print("gaia_actors.console.tail" in sys.modules)
"""
    for argv, imported in (
        (["run"], "False"),
        (["send", "bus", "GetState"], "False"),
        (["tail"], "True"),
    ):
        done = subprocess.run(
            [sys.executable, "-c", code, *argv],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stdout.strip() == imported, argv


def test_imports_run_without_the_collector_which_resumes_after_them() -> None:
    # In a child: a pytest process's own collector state is not this test's to change.
    code = """
import gc
from gaia_actors.console.cli import importing
with importing():
    paused = not gc.isenabled()
print(paused, gc.isenabled(), gc.get_freeze_count() == 0)
with importing(frozen=True):
    import gaia_actors.app
print(gc.isenabled(), gc.get_freeze_count() > 10_000)
gc.disable()
with importing():
    pass
print(gc.isenabled())
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.split("\n") == ["True True True", "True True", "False", ""]
