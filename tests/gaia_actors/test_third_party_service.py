"""A real third-party server from PyPI (sqlite-web: Flask, a SQLite database named app.sqlite,
health on its table's page, no metrics endpoint) run as dev, staging and prod from the README's
"Running your own service" configuration alone, through the real daemon and its CLI: healthy,
a SIGKILL recovered with the data intact, backup and restore, no scrape noise, and a broken
release rolled back."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from gaia_actors.console.client import Client
from gaia_actors.layout import Layout
from gaia_actors.settings import Settings, load
from tests.conftest import wait_until
from tests.gaia_actors.environments.conftest import free_port
from tests.gaia_actors.environments.test_daemon_restart import REPO, Daemon
from tests.gaia_actors.externals import require

ENVS = ("dev", "staging", "prod")
SECTION = "## Running your own service"


def readme_block(language: str) -> str:
    """The first ``language`` code block of the README's section on running your own service."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    match = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert match is not None, f"no {language} block in the README's {SECTION!r}"
    return match.group(1)


class Notes:
    """The daemon on the README's config, and the notes service's environments over HTTP."""

    def __init__(self, tmp_path: Path) -> None:
        (tmp_path / "notes").mkdir()
        (tmp_path / "notes" / "hooks.py").write_text(readme_block("python"), encoding="utf-8")
        self.config = tmp_path / "notes.toml"
        self.config.write_text(readme_block("toml"), encoding="utf-8")
        overrides = {f"GAIA_ENVIRONMENTS__{env.upper()}__PORT": str(free_port()) for env in ENVS}
        overrides |= {"GAIA_MONITOR__INTERVAL": "0.5", "GAIA_LOGGING__CONSOLE": "json"}
        overrides["GAIA_METRICS__LISTEN"] = ""  # the daemon's own /metrics: a fixed port
        overrides["GAIA_STATE_DIR"] = str(tmp_path / "state")
        self.settings: Settings = load(self.config, environ=overrides)
        self.daemon = Daemon(tmp_path, self.config, self.settings)
        self.daemon.environ.update(overrides)

    def cli(self, *args: str, returncode: int = 0) -> Any:
        argv = [sys.executable, str(REPO / "run.py"), "--config", str(self.config), *args]
        done = subprocess.run(
            [*argv, "--json"],
            capture_output=True,
            text=True,
            env=self.daemon.environ,
            cwd=self.daemon.tmp_path,
            timeout=120,
            check=False,
        )
        assert done.returncode == returncode, (args, done.stdout[-1500:], done.stderr[-1500:])
        return json.loads(done.stdout) if done.stdout.strip() else done.stderr

    def status(self, env: str) -> dict[str, Any]:
        found: dict[str, Any] = self.daemon.status(env)
        return found

    def url(self, env: str, path: str) -> str:
        return f"http://127.0.0.1:{self.settings.environments[env].port}{path}"

    def add_note(self, env: str, body: str) -> None:
        answer = requests.post(self.url(env, "/notes/insert/"), data={"body": body}, timeout=5)
        assert answer.status_code == 200, answer.status_code  # the redirect after the insert

    def has_note(self, env: str, body: str) -> bool:
        """The service shows ``body`` (False while nothing listens: tests poll this)."""
        try:
            answer = requests.get(self.url(env, "/notes/content/"), timeout=5)
        except requests.ConnectionError:
            return False
        return answer.status_code == 200 and body in answer.text

    def healthy(self, env: str) -> bool:
        """The environment verified its process and the monitor's verdict is healthy."""
        status = self.daemon.status_or_none(env)
        return bool(status and status["healthy"]) and self.monitor_says(env) == "healthy"

    def monitor_says(self, env: str) -> str:
        with Client.connect(self.settings.socket_path) as client:
            snapshot: dict[str, Any] = client.ask("monitor", "GetHealth", {"env": env}, timeout=5)
        return str(snapshot["status"])

    def log_records(self) -> list[dict[str, Any]]:
        lines = self.settings.log_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def close(self) -> None:
        self.daemon.close()
        # Last resort: whatever still serves one of these databases (named on its command line).
        databases = [str(Layout.of(self.settings, env).data / "app.sqlite") for env in ENVS]
        for entry in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
                if entry.name.isdigit() and any(db in argv for db in databases):
                    os.kill(int(entry.name), signal.SIGKILL)


@pytest.fixture(scope="module")
def notes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Notes]:
    """One daemon for the module: each test works on environments the other leaves alone
    (prod; dev and staging), and a daemon with three services is most of a test's cost."""
    require(
        importlib.util.find_spec("sqlite_web") is not None,
        "sqlite-web is not installed (pip install -e '.[test]')",
    )
    service = Notes(tmp_path_factory.mktemp("notes"))
    try:
        service.daemon.start()
        yield service
    finally:
        service.close()


def test_the_notes_service_runs_as_three_environments_from_its_config_alone(
    notes: Notes,
) -> None:
    for env in ENVS:
        wait_until(lambda env=env: notes.healthy(env), timeout=30, interval=0.2)
    note = f"note-{uuid.uuid4().hex[:8]}"
    notes.add_note("prod", note)
    assert notes.has_note("prod", note)
    assert not notes.has_note("staging", note)  # each environment has its own app.sqlite
    assert (Layout.of(notes.settings, "prod").data / "app.sqlite").is_file()

    # SIGKILL: the supervisor replaces the process, and the data is still there.
    old_pid = notes.status("prod")["pid"]
    os.kill(old_pid, signal.SIGKILL)

    def replaced() -> bool:
        status = notes.daemon.status_or_none("prod")  # None while its actor restarts
        return status is not None and status["pid"] not in (None, old_pid)

    wait_until(replaced, timeout=20)
    wait_until(lambda: notes.has_note("prod", note), timeout=20, interval=0.1)
    wait_until(lambda: notes.healthy("prod"), timeout=20, interval=0.2)
    assert notes.status("prod")["restarts"] == 1

    # A backup of app.sqlite, a note written after it, a restore: that note is gone, the
    # earlier one is back.
    backup = notes.cli("backup", "prod")
    assert (backup["verified"], backup["integrity"]) == (True, "ok")
    assert (Path(backup["path"]) / "app.sqlite").is_file()
    later = f"later-{uuid.uuid4().hex[:8]}"
    notes.add_note("prod", later)
    restored = notes.cli("restore", "prod")
    assert (restored["outcome"], restored["backup"]) == ("succeeded", backup["backup"])
    wait_until(lambda: notes.has_note("prod", note), timeout=20, interval=0.1)
    assert not notes.has_note("prod", later)
    wait_until(lambda: notes.healthy("prod"), timeout=20, interval=0.2)

    # No metrics endpoint (metrics_path = ""): nothing scraped, so nothing said about scrapes.
    scrapes = [r for r in notes.log_records() if "metrics" in r["event"] and r.get("env")]
    assert scrapes == []
    assert all(e["requests"] is None for e in notes.cli("status")["environments"])


BROKEN_HOOK = 'def setup(db):\n    raise RuntimeError("this release cannot open its database")\n'


def test_a_broken_release_of_the_notes_service_is_rolled_back(notes: Notes) -> None:
    wait_until(lambda: notes.healthy("staging"), timeout=30, interval=0.2)
    before = notes.status("staging")["release"]
    note = f"kept-{uuid.uuid4().hex[:8]}"
    notes.add_note("staging", note)
    (notes.daemon.tmp_path / "notes" / "hooks.py").write_text(BROKEN_HOOK, encoding="utf-8")

    dev_before = notes.status("dev")["release"]
    said = notes.cli("promote-dev", returncode=1)  # it waits for the end: a failed promotion
    assert "process exited with code 1" in said

    [listed] = notes.cli("history")
    promotion = notes.cli("history", str(listed["id"]))
    assert promotion["status"] == "failed"
    build, deploy = promotion["stages"]
    assert build["status"] == "failed"
    assert f"back on {dev_before}" in build["error"]
    assert deploy["status"] == "skipped"  # the broken release never reached staging
    dev = notes.status("dev")
    assert promotion["release"] in dev["releases"]  # built, tried, and rolled back
    assert (dev["release"], dev["healthy"]) == (dev_before, True)
    assert notes.status("staging")["release"] == before
    assert notes.has_note("staging", note)
    wait_until(lambda: notes.healthy("dev"), timeout=20, interval=0.2)
