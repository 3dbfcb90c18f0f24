"""Shared fixtures for the demo's unit and integration tests.

Test modules get helpers only through fixtures (pytest runs with --import-mode=importlib,
so test files cannot import each other). Nothing here writes into the demo/ tree: servers
get a DATA_DIR under tmp_path, and release variants are copies under tmp_path.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

DEMO_DIR = Path(__file__).resolve().parents[1]
if str(DEMO_DIR) not in sys.path:
    sys.path.insert(0, str(DEMO_DIR))  # the unit tests import the `demosvc` package

START_TIMEOUT_S = 10.0
COPY_IGNORE = shutil.ignore_patterns("__pycache__", ".pytest_cache", "tests", "*.pyc")


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.01) -> Any:
    """Re-check ``predicate`` until it returns something truthy; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s: {predicate}")
        time.sleep(interval)


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http_request(
    base_url: str, method: str, path: str, body: object = None, timeout: float = 5.0
) -> HttpResult:
    """One request on a fresh connection; ``body`` is sent as JSON (bytes as they are)."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        payload = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        return HttpResult(response.status, dict(response.getheaders()), response.read())
    finally:
        conn.close()


@dataclass
class ServerProcess:
    """A spawned ``server.py`` with its output files."""

    proc: subprocess.Popen[bytes]
    data_dir: Path
    stdout_path: Path
    stderr_path: Path
    port: int = 0
    spawned_at: float = field(default_factory=time.monotonic)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self, method: str, path: str, body: object = None, timeout: float = 5.0
    ) -> HttpResult:
        return http_request(self.url, method, path, body, timeout)

    def events(self) -> list[dict[str, Any]]:
        lines = self.stdout_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8")

    def wait_exit(self, timeout: float = START_TIMEOUT_S) -> int:
        return self.proc.wait(timeout=timeout)

    def terminate(self, timeout: float = 5.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5.0)

    def wait_listening(self) -> int:
        """The port from the ``service.listening`` log line; raises if the process exits."""

        def announced() -> int | None:
            for event in self.events():
                if event.get("event") == "service.listening":
                    return int(event["port"])
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited {self.proc.returncode} before listening: {self.stderr()}"
                )
            return None

        self.port = wait_until(announced, START_TIMEOUT_S, interval=0.005)
        return self.port

    def wait_health(self, status: int = 200) -> HttpResult:
        def answered() -> HttpResult | None:
            result = self.request("GET", "/health")
            return result if result.status == status else None

        return wait_until(answered, START_TIMEOUT_S)  # type: ignore[no-any-return]


SpawnFn = Callable[..., ServerProcess]


def _spawn(
    workdir: Path,
    cwd: Path,
    env: dict[str, str] | None,
    data_dir: Path | None,
    wait: str,
) -> ServerProcess:
    data_dir = data_dir or workdir / "data"
    workdir.mkdir(parents=True, exist_ok=True)
    environ = {k: v for k, v in os.environ.items() if k not in ("FAULT", "DEMO_URL")}
    environ.update({"PORT": "0", "DATA_DIR": str(data_dir), "RELEASE_ID": "test"})
    environ.update(env or {})
    stdout_path, stderr_path = workdir / "stdout.log", workdir / "stderr.log"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "server.py"], cwd=cwd, env=environ, stdout=out, stderr=err
        )
    server = ServerProcess(proc, data_dir, stdout_path, stderr_path)
    if wait in ("listening", "healthy"):
        server.wait_listening()
    if wait == "healthy":
        server.wait_health()
    return server


class Spawner:
    """Starts servers under one base directory and kills the leftovers at the end."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.started: list[ServerProcess] = []

    def __call__(
        self,
        env: dict[str, str] | None = None,
        cwd: Path = DEMO_DIR,
        data_dir: Path | None = None,
        wait: str = "healthy",
    ) -> ServerProcess:
        server = _spawn(self.base / f"server{len(self.started)}", cwd, env, data_dir, wait)
        self.started.append(server)
        return server

    def kill_all(self) -> None:
        for server in self.started:
            server.kill()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[SpawnFn]:
    """Start ``server.py`` (from demo/ or a release copy) on a free port with a tmp DATA_DIR.

    ``spawn(env={...}, cwd=release_dir, data_dir=..., wait="healthy"|"listening"|"none")``.
    Every process still running at teardown is killed.
    """
    spawner = Spawner(tmp_path)
    yield spawner
    spawner.kill_all()


@pytest.fixture(scope="module")
def module_spawn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpawnFn]:
    """``spawn`` for a server shared by the tests of one module."""
    spawner = Spawner(tmp_path_factory.mktemp("module_servers"))
    yield spawner
    spawner.kill_all()


@pytest.fixture
def make_release(tmp_path: Path) -> Callable[..., Path]:
    """Copy demo/ (without tests and caches) to a tmp release dir; add ``extra`` files.

    ``make_release({"migrations/999_break.sql": "DROP TABLE items;"})``.
    """

    def build(extra: dict[str, str] | None = None, name: str = "release") -> Path:
        release = tmp_path / name
        shutil.copytree(DEMO_DIR, release, ignore=COPY_IGNORE)
        for relative, text in (extra or {}).items():
            (release / relative).write_text(text, encoding="utf-8")
        return release

    return build


@pytest.fixture(scope="session")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``DEMO_URL`` when set (the pipeline's live environment), else a server of our own."""
    if os.environ.get("DEMO_URL"):
        yield os.environ["DEMO_URL"].rstrip("/")
        return
    server = _spawn(tmp_path_factory.mktemp("demo_url"), DEMO_DIR, None, None, "healthy")
    try:
        yield server.url
    finally:
        server.terminate()


@pytest.fixture(name="http")
def http_fixture() -> Callable[..., HttpResult]:
    """``http(base_url, method, path, body=None, timeout=5.0) -> HttpResult``."""
    return http_request


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., Any]:
    return wait_until
