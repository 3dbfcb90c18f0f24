"""The daemon as a subprocess: clean stop on SIGTERM/SIGINT, one daemon per state directory."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_until

REPO = Path(__file__).resolve().parents[2]


def _spawn(
    tmp_path: Path, config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    environ = {**os.environ, "GAIA_STATE_DIR": str(tmp_path / "state"), **(env or {})}
    return subprocess.Popen(
        [sys.executable, str(REPO / "run.py"), "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
        cwd=tmp_path,
    )


def _log_events(tmp_path: Path) -> list[str]:
    path = tmp_path / "state" / "logs" / "gaia.jsonl"
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line)["event"])
        except (ValueError, KeyError):
            continue
    return events


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gaia.toml"
    path.write_text('[logging]\nconsole = "json"\n', encoding="utf-8")
    return path


@pytest.fixture
def daemon(tmp_path: Path, config: Path) -> Iterator[subprocess.Popen[str]]:
    proc = _spawn(tmp_path, config)
    try:
        wait_until(
            lambda: "daemon.started" in _log_events(tmp_path) or proc.poll() is not None, timeout=20
        )
        assert proc.poll() is None, proc.communicate()
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_daemon_stops_cleanly_on_signal(
    tmp_path: Path, daemon: subprocess.Popen[str], signum: int
) -> None:
    daemon.send_signal(signum)
    assert daemon.wait(timeout=20) == 0
    events = _log_events(tmp_path)
    assert events[-1] == "daemon.stopped"
    assert (tmp_path / "state" / "gaia.db").exists()
    assert oct((tmp_path / "state").stat().st_mode & 0o777) == "0o700"


def test_second_daemon_on_the_same_state_dir_is_refused(
    tmp_path: Path, daemon: subprocess.Popen[str], config: Path
) -> None:
    second = _spawn(tmp_path, config)
    _, err = second.communicate(timeout=20)
    assert second.returncode == 2
    assert "already runs on state directory" in err
    assert str(daemon.pid) in err
    assert daemon.poll() is None  # the first one is untouched


def test_root_escalation_exits_non_zero_naming_the_child(tmp_path: Path, config: Path) -> None:
    config.write_text(
        '[logging]\nconsole = "json"\n[supervision]\nmax_restarts = 1\nmax_seconds = 30\n'
        "backoff_initial = 0.01\nbackoff_max = 0.02\n",
        encoding="utf-8",
    )
    # A capability whose actor always fails to start: the root spends its budget and escalates.
    script = (
        "import sys; from gaia_actors import app; from gaia_actors.console.cli import main;"
        "from tests.gaia_actors import failing_capability;"
        "app.CAPABILITIES.append(failing_capability);"
        "sys.exit(main(sys.argv[1:]))"
    )
    environ = {**os.environ, "GAIA_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", script, "--config", str(config), "run"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    escalation = [
        json.loads(line) for line in proc.stderr.splitlines() if '"daemon.escalation"' in line
    ]
    assert escalation, proc.stderr[-2000:]
    # The capability lives under `services`, which gives up first; the root's line names it
    # and carries the whole chain down to the child that could not start, and why.
    assert escalation[0]["child"] == "services"
    assert "'broken'" in escalation[0]["reason"]
    assert "cannot start" in escalation[0]["reason"]
    assert _log_events(tmp_path)[-1] == "daemon.stopped"


def test_help_lists_the_commands() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "run.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0
    for name in ("run", "tail", "help"):
        assert name in result.stdout


def test_malloc_arenas_are_capped_unless_the_operator_chose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gaia_actors.app import limit_malloc_arenas

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):  # not glibc
        glibc = None
    assert limit_malloc_arenas(2) is bool(glibc)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas(2) is False


@pytest.mark.parametrize("module", ["pathspec", "ahocorasick_rs"])
def test_a_module_a_capability_imports_at_first_use_is_checked_at_start(
    tmp_path: Path, config: Path, module: str
) -> None:
    # The daemon imports neither at start; a sitecustomize makes the module unfindable (as a
    # None in sys.modules does for import and importlib.util.find_spec alike).
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        f"import sys\nsys.modules[{module!r}] = None\n", encoding="utf-8"
    )
    path = os.pathsep.join([str(hide), str(REPO), os.environ.get("PYTHONPATH", "")])
    proc = _spawn(tmp_path, config, env={"PYTHONPATH": path})
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:  # it started: stopped, and the test fails on the timeout
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err[-2000:]  # a start failure, as documented
    assert f"the improve capability needs the module {module!r}" in err
    assert "cannot be found" in err
    assert not (tmp_path / "state").exists()  # refused before anything was touched


def _third_party_imports(package: Path) -> set[str]:
    """The top-level modules outside the standard library and this project that the modules
    of ``package`` import, at their top or in a function."""
    found: set[str] = set()
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"__future__", "gaia_actors", "supervisors"}


def test_every_module_a_capability_imports_after_the_start_is_in_its_needs() -> None:
    # What importing the daemon does not import, a capability imports at first use: the
    # daemon can check at start only what the capability declares.
    script = "import sys, gaia_actors.app; print(' '.join(sys.modules))"
    environ = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environ, check=True
    ).stdout
    at_start = {name.split(".")[0] for name in out.split()}
    from gaia_actors import app

    for capability in app.CAPABILITIES:
        package = REPO.joinpath(*capability.__name__.split(".")[:2])
        later = _third_party_imports(package) - at_start
        assert later <= set(getattr(capability, "NEEDS", ())), (capability.__name__, later)
