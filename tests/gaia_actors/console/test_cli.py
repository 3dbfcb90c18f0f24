"""gaia-env: every command's exit code with and without a daemon, and the generic mapping."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gaia_actors.console import cli, commandline
from gaia_actors.console.client import RemoteError
from gaia_actors.control import commands
from gaia_actors.control.commands import Arg, CommandContext, command
from gaia_actors.errors import ControlError, EnvironmentFailure
from gaia_actors.settings import load
from tests.conftest import wait_until
from tests.gaia_actors.control.test_control import CONFIG, REPO, DaemonProcess
from tests.gaia_actors.environments.conftest import DEMO, PROCESS_ENV, free_port


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    process = DaemonProcess(tmp_path_factory.mktemp("cli")).start()
    yield process
    assert process.stop() == 0, process.output()


@pytest.fixture
def online(daemon: DaemonProcess, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``main()`` arguments that reach the module's daemon."""
    monkeypatch.setenv("GAIA_STATE_DIR", str(daemon.state_dir))
    return ["--config", str(daemon.config)]


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``main()`` arguments for a state directory no daemon runs on."""
    config = tmp_path / "gaia.toml"
    config.write_text('[logging]\nconsole = "off"\n', encoding="utf-8")
    monkeypatch.setenv("GAIA_STATE_DIR", str(tmp_path / "state"))
    return ["--config", str(config)]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- with a daemon ----------------------------------------------------------------------------


def test_actors_prints_the_tree(online: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *online, "actors")
    assert code == cli.EXIT_OK
    assert out.startswith("root\n")
    assert "control  running" in out


@pytest.mark.parametrize("where", ["before", "after"])
def test_json_flag_works_before_or_after_the_command(
    online: list[str], capsys: pytest.CaptureFixture[str], where: str
) -> None:
    argv = ["--json", "actors"] if where == "before" else ["actors", "--json"]
    code, out, _ = run(capsys, *online, *argv)
    assert code == cli.EXIT_OK
    assert {"store", "bus", "control"} <= {n["name"] for n in json.loads(out)}


def test_resources_reports_the_daemon_process_and_its_threads_by_name(
    online: list[str], daemon: DaemonProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, *online, "resources", "--json")
    assert code == cli.EXIT_OK
    report = json.loads(out)
    assert report["pid"] == daemon.process.pid
    assert 5 < report["rss_mib"] < 500
    assert report["open_files"] > 3
    by_name = report["threads_by_name"]
    assert by_name["ControlServer"] == 1  # an actor's thread, its URN stripped
    assert sum(by_name.values()) <= report["threads"]  # the OS also counts non-Python threads


def test_messages_lists_types_with_fields(
    online: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, *online, "messages")
    assert code == cli.EXIT_OK
    assert "Hang(seconds: float?)" in out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["send", "bus", "GetState"], cli.EXIT_OK),
        (["ask", "bus", "GetState"], cli.EXIT_OK),
        (["ask", "store", "GetState", "--timeout", "2"], cli.EXIT_OK),
        (["ask", "nobody", "GetState"], cli.EXIT_USAGE),
        (["ask", "bus", "Nope"], cli.EXIT_USAGE),
        (["ask", "bus", "Hang", "seconds=abc"], cli.EXIT_USAGE),
        (["send", "bus", "GetState", "no-equals-sign"], cli.EXIT_USAGE),
        (["ask", "bus", "Flush"], cli.EXIT_FAILED),  # the bus refuses it: the operation failed
        (["crash", "nobody"], cli.EXIT_USAGE),
        (["crash", "root"], cli.EXIT_USAGE),
        (["hang", "bus", "0"], cli.EXIT_USAGE),
        (["hang", "bus", "soon"], cli.EXIT_USAGE),
        (["hang"], cli.EXIT_USAGE),
        (["nosuch"], cli.EXIT_USAGE),
    ],
)
def test_exit_codes_with_a_daemon(
    online: list[str], capsys: pytest.CaptureFixture[str], argv: list[str], expected: int
) -> None:
    code, _, err = run(capsys, *online, *argv)
    assert code == expected, err
    if expected != cli.EXIT_OK:
        assert err.strip()


def test_ask_prints_the_reply(online: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *online, "--json", "ask", "bus", "GetState")
    assert code == cli.EXIT_OK
    assert json.loads(out)["actor"] == "bus"


def test_conversion_error_names_field_and_type(
    online: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, err = run(capsys, *online, "ask", "bus", "Hang", "seconds=abc")
    assert "Hang.seconds" in err
    assert "expected float" in err


def test_crash_restarts_the_actor(
    online: list[str], capsys: pytest.CaptureFixture[str], daemon: DaemonProcess
) -> None:
    def generation() -> int:
        try:
            with daemon.client() as client:
                return next(n["generation"] for n in client.actors() if n["name"] == "bus")
        except ControlError:
            return -1  # the control server restarts with the bus (rest_for_one)

    before = generation()
    code, _, err = run(capsys, *online, "crash", "bus")
    assert code == cli.EXIT_OK, err
    wait_until(lambda: generation() > before, timeout=10)


def test_tail_is_wired_to_the_log(daemon: DaemonProcess) -> None:
    result = daemon.cli("tail", "-n", "1", "--json")  # a process: tail binds stdout at import
    assert result.returncode == cli.EXIT_OK, result.stderr
    assert "event" in json.loads(result.stdout.splitlines()[-1])


def test_monitor_shows_status_or_says_it_is_missing(
    online: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *online, "monitor", "--count", "1", "--interval", "0.01")
    if commands.get("status") is None:
        assert code == cli.EXIT_USAGE
        assert "status" in err
    else:
        assert code == cli.EXIT_OK, err
        assert out.strip()


def test_real_exit_codes_through_run_py(daemon: DaemonProcess, tmp_path: Path) -> None:
    assert daemon.cli("actors").returncode == cli.EXIT_OK
    assert daemon.cli("nosuch").returncode == cli.EXIT_USAGE
    bad = tmp_path / "bad.toml"
    bad.write_text("[nosection]\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "run.py", "--config", str(bad), "actors"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**daemon.env, "GAIA_STATE_DIR": str(tmp_path / "state")},
    )
    assert result.returncode == cli.EXIT_USAGE
    assert "nosection" in result.stderr


# --- without a daemon ---------------------------------------------------------------------------


def test_command_needing_the_daemon_says_how_to_start_it(
    offline: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, *offline, "actors")
    assert code == cli.EXIT_UNREACHABLE
    assert "python run.py" in err


def test_every_registered_online_command_exits_3_without_a_daemon(
    offline: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    config = Path(offline[1])  # with an environment "x", so that every sample line is right
    config.write_text(config.read_text(encoding="utf-8") + environments_toml(("x",)), "utf-8")
    checked = []
    for name, cmd in sorted(commands.commands().items()):
        if cmd.offline or name in cli.BUILTINS:
            continue
        code, _, err = run(capsys, *offline, name, *(_sample(arg) for arg in cmd.args))
        assert code == cli.EXIT_UNREACHABLE, (name, err)
        checked.append(name)
    assert {"actors", "crash", "hang"} <= set(checked)


def _sample(arg: Arg) -> str:
    """A value argparse accepts for ``arg`` (nothing runs: there is no daemon)."""
    if arg.choices:
        return arg.choices[0]
    return {int: "1", float: "1", bool: "true"}.get(arg.type, "x")


def test_offline_command_runs_without_a_daemon(
    offline: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, *offline, "--json", "messages")
    assert code == cli.EXIT_OK
    assert "Crash" in {m["name"] for m in json.loads(out)}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["help"], cli.EXIT_OK),
        (["help", "actors"], cli.EXIT_OK),
        (["help", "nosuch"], cli.EXIT_USAGE),
        (["--help"], cli.EXIT_OK),
        (["actors", "--help"], cli.EXIT_OK),
        (["nosuch"], cli.EXIT_USAGE),
        (["send"], cli.EXIT_USAGE),
        (["repl"], cli.EXIT_UNREACHABLE),
        (["watch"], cli.EXIT_UNREACHABLE),
        (["send", "bus", "GetState"], cli.EXIT_UNREACHABLE),
    ],
)
def test_exit_codes_without_a_daemon(
    offline: list[str], capsys: pytest.CaptureFixture[str], argv: list[str], expected: int
) -> None:
    code, _, err = run(capsys, *offline, *argv)
    assert code == expected, err


def test_help_on_a_message_shows_its_fields(
    offline: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "help", "Hang")
    assert code == cli.EXIT_OK
    assert "seconds: float  (default 10.0)" in out


def test_expected_command_nobody_registered_is_reported_as_not_available(
    offline: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commandline, "EXPECTED", commandline.EXPECTED | {"frobnicate"})
    code, _, err = run(capsys, *offline, "frobnicate")
    assert code == cli.EXIT_USAGE
    assert "frobnicate is not available" in err


@pytest.mark.parametrize("problem", ["missing", "invalid"])
def test_configuration_error_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], problem: str
) -> None:
    config = tmp_path / "gaia.toml"
    if problem == "invalid":
        config.write_text("[store]\nbatch_size = 'many'\n", encoding="utf-8")
    code, _, err = run(capsys, "--config", str(config), "actors")
    assert code == cli.EXIT_USAGE
    assert "gaia.toml" in err


def test_an_empty_config_path_is_refused_rather_than_replaced_by_the_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--config "$UNSET"`` must not quietly run on the shipped config/gaia.toml."""
    code, _, err = run(capsys, "--config", "", "actors")
    assert code == cli.EXIT_USAGE
    assert "--config: " in err
    assert "empty" in err
    assert "config/gaia.toml" not in err


# --- the generic mapping from the registry ------------------------------------------------------


@pytest.fixture
def fake_commands(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Commands as another capability would register them, and aliases onto one of them.

    Every capability's commands are loaded first and the registry is restored afterwards,
    so the fakes neither get overwritten nor hide a real command from later tests.
    """
    saved = commands.commands()
    aliases = {f"fake-promote-{t}": ("fake-promote", (t,)) for t in ("dev", "staging", "all")}
    monkeypatch.setattr(commandline, "ALIASES", {**commandline.ALIASES, **aliases})

    @command(
        "fake-promote",
        help="test: promote",
        args=(Arg("target", choices=("dev", "staging", "all")),),
        options=("output",),
        offline=True,
    )
    def promote(ctx: CommandContext, target: str, *, output: bool = False) -> Any:
        return {"promoted": target, "output": output}

    @command(
        "fake-opts",
        help="test: options",
        args=("where", "id"),
        options=("n", "apply", "label"),
        offline=True,
    )
    def fake_opts(
        ctx: CommandContext,
        where: str,
        id: int | None = None,
        *,
        n: int = 50,
        apply: bool = False,
        label: str = "",
    ) -> Any:
        return {"where": where, "id": id, "n": n, "apply": apply, "label": label}

    @command("fake-fail", help="test: fails", offline=True)
    def fake_fail(ctx: CommandContext) -> Any:
        raise EnvironmentFailure("prod", "the release did not start")

    yield
    commands._COMMANDS.clear()
    commands._COMMANDS.update(saved)


def test_original_promote_names_exist_when_promote_is_registered(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out, _ = run(capsys, "--help")
    for alias, (target, _words) in cli.ALIASES.items():
        assert (alias in out) == (
            commands.get(target) is not None or commands.get(alias) is not None
        )


def test_registered_command_appears_in_help(
    offline: list[str], capsys: pytest.CaptureFixture[str], fake_commands: None
) -> None:
    _, out, _ = run(capsys, "--help")
    assert "fake-opts" in out
    assert "fake-promote-dev" in out
    _, out, _ = run(capsys, "fake-opts", "--help")
    assert "-n N" in out
    assert "--apply" in out
    assert "[ID]" in out


@pytest.mark.parametrize(
    ("alias", "target"),
    [("fake-promote-dev", "dev"), ("fake-promote-staging", "staging"), ("fake-promote-all", "all")],
)
def test_aliases_map_onto_a_command_with_its_argument(
    offline: list[str],
    capsys: pytest.CaptureFixture[str],
    fake_commands: None,
    alias: str,
    target: str,
) -> None:
    code, out, _ = run(capsys, *offline, "--json", alias)
    assert code == cli.EXIT_OK
    assert json.loads(out) == {"promoted": target, "output": False}
    code, out, _ = run(capsys, *offline, alias, "--output", "--json")  # the target's options
    assert code == cli.EXIT_OK
    assert json.loads(out) == {"promoted": target, "output": True}


def test_positionals_options_and_flags_are_typed(
    offline: list[str], capsys: pytest.CaptureFixture[str], fake_commands: None
) -> None:
    code, out, _ = run(
        capsys, *offline, "fake-opts", "prod", "7", "-n", "5", "--apply", "--label", "x", "--json"
    )
    assert code == cli.EXIT_OK
    assert json.loads(out) == {"where": "prod", "id": 7, "n": 5, "apply": True, "label": "x"}
    code, out, _ = run(capsys, *offline, "--json", "fake-opts", "dev")
    assert json.loads(out) == {"where": "dev", "id": None, "n": 50, "apply": False, "label": ""}


@pytest.mark.parametrize(
    "argv",
    [
        ["fake-opts"],
        ["fake-opts", "prod", "-n", "many"],
        ["fake-opts", "prod", "x"],
        ["fake-promote", "qa"],
    ],
)
def test_bad_arguments_exit_2(
    offline: list[str], capsys: pytest.CaptureFixture[str], fake_commands: None, argv: list[str]
) -> None:
    code, _, err = run(capsys, *offline, *argv)
    assert code == cli.EXIT_USAGE
    assert "usage:" in err


def test_failing_command_exits_1_with_its_message(
    offline: list[str], capsys: pytest.CaptureFixture[str], fake_commands: None
) -> None:
    code, _, err = run(capsys, *offline, "fake-fail")
    assert code == cli.EXIT_FAILED
    assert "environment 'prod': the release did not start" in err


# --- errors and exit codes that agree, against a daemon with environments ---------------------

NOPE = "no environment 'nope'; environments: dev, staging"


def environments_config(started: Path, names: tuple[str, ...] = ("dev", "staging")) -> str:
    """Demo environments and a dev -> staging promotion whose one stage touches ``started``
    and then runs for a minute (and with prod, a staging -> prod one)."""
    stages = (
        '[[pipeline.dev_to_staging]]\nkind = "command"\nname = "slow"\n'
        f'command = ["sh", "-c", "touch {started} && sleep 60"]\n'
    )
    if "prod" in names:
        stages += '[[pipeline.staging_to_prod]]\nkind = "health"\n'
    return CONFIG + environments_toml(names) + stages


def environments_toml(names: tuple[str, ...]) -> str:
    return "".join(
        f'[environments.{name}]\nport = {free_port()}\nsource = "{DEMO}"\nbuild = []\n'
        f"env = {PROCESS_ENV}\n"
        for name in names
    )


@pytest.fixture(scope="module")
def env_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    root = tmp_path_factory.mktemp("envs")
    process = DaemonProcess(root, environments_config(root / "started")).start()
    yield process
    assert process.stop() == 0, process.output()


@pytest.fixture
def with_envs(env_daemon: DaemonProcess, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("GAIA_STATE_DIR", str(env_daemon.state_dir))
    return ["--config", str(env_daemon.config)]


@pytest.mark.parametrize(
    "argv",
    [
        ["deploy", "nope", "r1"],
        ["rollback", "nope"],
        ["restore", "nope"],
        ["build", "nope"],
        ["kill", "nope"],
        ["reset", "nope"],
        ["backup", "nope"],
        ["health", "nope"],
        ["logs", "nope"],
        ["incidents", "nope"],
        ["ask", "monitor", "GetHealth", "env=nope"],
        ["send", "monitor", "GetHealth", "env=nope"],
    ],
)
def test_an_unknown_environment_is_one_usage_error_everywhere(
    with_envs: list[str], capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, _, err = run(capsys, *with_envs, *argv)
    assert code == cli.EXIT_USAGE, err
    assert NOPE in err
    assert "internal" not in err


def test_an_unknown_environment_offline_is_the_same_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "gaia.toml"
    config.write_text(environments_config(tmp_path / "started"), encoding="utf-8")
    monkeypatch.setenv("GAIA_STATE_DIR", str(tmp_path / "state"))
    offline_ones = [[name, "nope"] for name in ("health", "logs", "backups", "incidents")]
    # Those that need a daemon say first what is wrong with the line itself, as with one.
    daemon_ones = [[name, "nope"] for name in ("rollback", "restore", "build", "kill", "reset")]
    for argv in [*offline_ones, *daemon_ones, ["backup", "nope"], ["deploy", "nope", "r1"]]:
        code, _, err = run(capsys, "--config", str(config), *argv)
        assert code == cli.EXIT_USAGE, (argv, err)
        assert NOPE in err


@pytest.mark.parametrize("where", ["online", "offline"])
def test_a_huge_number_is_a_usage_error(
    request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    argv = request.getfixturevalue(where)
    code, _, err = run(capsys, *argv, "history", str(10**40))
    assert code == cli.EXIT_USAGE, err
    assert "out of range" in err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["history", "-n", "-1"], "-n: history n: expected a number >= 0, got '-1'"),
        (["logs", "dev", "-n", "-5"], "-n: logs n: expected a number >= 0, got '-5'"),
        (["hang", "monitor", "-1"], "hang seconds: expected a number >= 0, got '-1'"),
        (["hang", "monitor", "nan"], "hang seconds: expected float, got 'nan' (not a finite"),
        (["monitor", "--count", "0"], "--count: expected a number > 0, got '0'"),
        (["monitor", "--interval", "-1"], "--interval: expected a number > 0, got '-1'"),
        (["monitor", "--interval", "nan"], "--interval: expected a number > 0, got 'nan'"),
        (["ask", "monitor", "GetHealth", "--timeout", "nan"], "--timeout: expected a number > 0"),
    ],
)
def test_a_negative_or_not_finite_number_is_a_usage_error_naming_it(
    with_envs: list[str], capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    code, _, err = run(capsys, *with_envs, *argv)
    assert code == cli.EXIT_USAGE, err
    assert named in err


def test_the_socket_refuses_huge_numbers_and_deep_nesting_as_usage_errors(
    daemon: DaemonProcess,
) -> None:
    deep = "[" * 1900 + "]" * 1900  # past the recursion limit, within the line limit
    with daemon.client() as client:
        with pytest.raises(RemoteError) as huge:
            client.command("history", {"id": 10**40})
        with pytest.raises(RemoteError) as negative:
            client.command("history", {"n": -1})
        with pytest.raises(RemoteError) as nested:
            client.ask("bus", "Subscribe", {"subscriber": "x", "patterns": deep})
        assert client.ping()["pong"]  # the connection and the daemon carry on
    assert huge.value.usage
    assert "out of range" in str(huge.value)
    assert negative.value.usage
    assert "expected a number >= 0, got -1" in str(negative.value)
    assert nested.value.usage
    assert "nested too deeply" in str(nested.value)


def test_promote_with_a_bad_target_lists_the_choices(
    offline: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, *offline, "promote", "foo")
    assert code == cli.EXIT_USAGE
    assert "expected one of dev, staging, all, got 'foo'" in err


def test_a_reader_that_leaves_early_ends_the_command_quietly(daemon: DaemonProcess) -> None:
    proc = subprocess.Popen(
        [sys.executable, "run.py", "--config", str(daemon.config), "actors", "--json"],
        cwd=REPO,
        env=daemon.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the command writes a byte
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == cli.EXIT_BROKEN_PIPE, stderr
    assert stderr == ""


def test_promote_all_fails_when_the_daemon_stops_mid_promotion(tmp_path: Path) -> None:
    started = tmp_path / "started"
    config = environments_config(started, ("dev", "staging", "prod"))
    daemon = DaemonProcess(tmp_path, config).start()
    try:
        promote = subprocess.Popen(
            [sys.executable, "run.py", "--config", str(daemon.config), "promote-all"],
            cwd=REPO,
            env=daemon.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(started.exists, timeout=60)
    finally:
        daemon.stop()
    out, err = promote.communicate(timeout=60)
    assert promote.returncode == cli.EXIT_FAILED, (out, err)
    assert "the daemon stopped before promotion #1 ended" in err
    assert "still running" not in out + err
    assert "#1 [1] slow (command on dev) started\n" in err  # progress without event= noise


# --- output that reads well ---------------------------------------------------------------------


def test_help_groups_the_commands_and_lists_each_once(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == cli.EXIT_OK
    titles = [title for title, _ in commands.grouped()]
    positions = [out.index(f"\n{title}:\n") for title in titles]
    assert positions == sorted(positions)
    for name, cmd in commands.commands().items():
        assert out.count(f"\n  {cmd.usage()}") == 1, name
    assert "`" not in out


def test_no_help_says_default_none(capsys: pytest.CaptureFixture[str]) -> None:
    for name in commands.commands():
        if name in cli.BUILTINS:
            continue
        code, out, _ = run(capsys, name, "--help")
        assert code == cli.EXIT_OK
        assert "None" not in out, name
        code, out, _ = run(capsys, "help", name)
        assert "None" not in out, name


def _log_events(daemon: DaemonProcess, name: str) -> list[dict[str, Any]]:
    path = daemon.state_dir / "logs" / "gaia.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if name in line]
    return [r for r in records if r.get("event") == name]


def test_health_logs_and_a_degraded_alert_read_well(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One slow environment under a fast monitor: ``alert.degraded`` is logged once, and
    ``health``/``logs`` show ages, ISO times, MiB and readable lines."""
    fast = "[monitor]\ninterval = 0.2\nlatency_degraded = 0.1\nsuccess_threshold = 1\n"
    daemon = DaemonProcess(tmp_path, CONFIG + fast + environments_toml(("dev",))).start()
    try:
        settings = load(daemon.config, environ=daemon.env)
        port = settings.environments["dev"].port
        with daemon.client() as client:

            def checks(status: str) -> int:
                result = client.command("health", {"env": "dev", "n": 10})
                return sum(c["status"] == status for c in result["recent_checks"])

            # Each look is a command to the daemon: a few per monitor round are plenty.
            wait_until(lambda: checks("healthy"), timeout=30, interval=0.05)
            fault = urllib.request.Request(
                f"http://127.0.0.1:{port}/admin/fault", data=b'{"slow": 0.3}', method="POST"
            )
            urllib.request.urlopen(fault, timeout=5).close()
            # Rounds after the change.
            wait_until(lambda: checks("degraded") >= 4, timeout=30, interval=0.05)
        assert len(_log_events(daemon, "alert.degraded")) == 1
        monkeypatch.setenv("GAIA_STATE_DIR", str(daemon.state_dir))
        argv = ("--config", str(daemon.config))
        _, rounds, _ = run(capsys, *argv, "health", "dev", "-n", "3")
        code, logs, _ = run(capsys, *argv, "logs", "dev", "-n", "5")
        _, raw, _ = run(capsys, *argv, "logs", "dev", "-n", "5", "--json")
    finally:
        daemon.stop()
    assert re.search(r"last check\s+\d+(\.\d)?s ago \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", rounds)
    assert re.search(r"memory \d+\.\d MiB", rounds)
    assert "WHEN" in rounds
    assert "ERROR  " not in rounds  # no always-empty column
    assert code == cli.EXIT_OK
    assert logs.splitlines()[0].startswith("release=")  # shared fields said once
    assert re.search(r"^\d\d:\d\d:\d\d\.\d{3} info +http.request duration_ms=", logs, re.M)
    assert all(json.loads(line)["env"] == "dev" for line in json.loads(raw))


def test_watch_and_tail_refuse_an_unknown_environment_too(
    with_envs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["watch", "--env", "nope"], ["tail", "--env", "nope"]):
        code, _, err = run(capsys, *with_envs, *argv)
        assert code == cli.EXIT_USAGE, (argv, err)
        assert NOPE in err


def test_message_help_is_plain_and_says_optional(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "help", "Rollback")
    assert code == cli.EXIT_OK
    assert "switch back to release (default: the previous one)" in out
    assert "pipeline_id: int | none  (optional)" in out
    assert "None" not in out
