"""Fixtures for environment tests: demo sources, configs on free ports, a live tree, HTTP.

Every test that uses ``env_tree`` gets a real root supervisor with the store, the bus and the
``environments`` supervisor built from a config written to ``tmp_path`` (tiny supervision
settings, short timeouts), real demo processes on 127.0.0.1, and an event log fed by a bus
sink so tests wait on events instead of sleeping.
"""

from __future__ import annotations

import contextlib
import fnmatch
import http.client
import json
import os
import shutil
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pykka
import pytest

from gaia_actors.app import build_children, start_root
from gaia_actors.environments import tree as environment_tree
from gaia_actors.environments.tree import actor_name
from gaia_actors.layout import Layout
from gaia_actors.messages import Event, GetEnvStatus, Subscribe
from gaia_actors.replies import EnvStatus
from gaia_actors.settings import Settings, load
from supervisors import Registry
from tests.conftest import wait_until
from tests.gaia_actors.listener import Listener

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "demo"
CAPABILITY = environment_tree

SUPERVISION = {
    "backoff_initial": 0.05,
    "backoff_max": 0.2,
    "max_restarts": 2,
    "max_seconds": 30,
    "stable_after": 10,
    "ping_interval": 0.2,
    "ping_timeout": 5.0,
}
ENV_DEFAULTS: dict[str, Any] = {
    "command": ["{python}", "server.py"],
    "build": [],  # no compileall: the demo runs from source, and tests stay fast
    "startsecs": 0.5,
    "stop_grace": 2.0,
    "deploy_timeout": 5.0,
    "build_timeout": 30.0,
}
PROCESS_ENV = (
    '{ PORT = "{port}", DATA_DIR = "{data_dir}", RELEASE_ID = "{release_id}", '
    'ENV_NAME = "{name}", LOG_LEVEL = "info" }'
)


# --------------------------------------------------------------------------- sources, ports


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def demo_source(dest: Path, fault: str = "", marker: str = "") -> Path:
    """A copy of demo/ (without its tests); ``fault`` goes into a FAULT file, ``marker``
    into a file that makes the content (and so the release id) differ."""
    shutil.copytree(
        DEMO,
        dest,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "tests", "tools"),
    )
    if fault:
        (dest / "FAULT").write_text(fault + "\n")
    if marker:
        (dest / "MARKER").write_text(marker + "\n")
    return dest


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def write_config(
    tmp_path: Path,
    envs: dict[str, dict[str, Any]],
    supervision: dict[str, Any] | None = None,
    extra: str = "",
) -> Path:
    """A config file with ``envs`` (name -> keys; ``port`` and ``source`` required)."""
    lines = ["[store]", "flush_interval = 0.05", "[logging]", 'console = "json"']
    lines += ["[supervision]"]
    lines += [f"{k} = {_toml(v)}" for k, v in {**SUPERVISION, **(supervision or {})}.items()]
    for name, keys in envs.items():
        lines.append(f"[environments.{name}]")
        lines.append(f"env = {PROCESS_ENV}")
        lines += [f"{k} = {_toml(v)}" for k, v in {**ENV_DEFAULTS, **keys}.items()]
    path = tmp_path / "gaia.toml"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def load_settings(tmp_path: Path, config: Path) -> Settings:
    return load(config, environ={"GAIA_STATE_DIR": str(tmp_path / "state")})


# --------------------------------------------------------------------------- HTTP, processes


def http_json(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        payload = None if body is None else json.dumps(body)
        headers = {} if body is None else {"Content-Type": "application/json"}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    return response.status, (json.loads(raw) if raw else None)


def health(port: int) -> tuple[int, Any] | None:
    """(status, body) of GET /health, or None when nothing answers."""
    try:
        return http_json(port, "GET", "/health")
    except (OSError, http.client.HTTPException):
        return None


def serving(port: int, release: str | None = None) -> bool:
    answer = health(port)
    if answer is None or answer[0] != 200:
        return False
    return release is None or answer[1].get("release") == release


def pids_with_data_dir(data_dir: Path) -> list[int]:
    """Live (non-zombie) processes whose environment says DATA_DIR=``data_dir``: the
    environment's service processes, however many there are."""
    wanted = f"DATA_DIR={data_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if wanted not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue  # gone, or not ours
        if state not in (b"Z", b"X"):
            found.append(int(entry.name))
    return sorted(found)


def kill_services(data_dirs: list[Path]) -> None:
    """Last-resort cleanup: SIGKILL whatever still runs with one of these data dirs."""
    for data_dir in data_dirs:
        for pid in pids_with_data_dir(data_dir):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


# --------------------------------------------------------------------------- events


class EventLog:
    """Every event the bus publishes after subscription, in order; waits with a Condition."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = threading.Condition()
        self.listener: Listener | None = None

    def listen(self, registry: Registry) -> str:
        """The name of the actor that hears the bus for this log (subscribe it)."""
        self.listener = Listener(registry, self.sink, "test.events")
        return self.listener.name

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()

    def sink(self, event: Event) -> None:  # runs in the listener's thread
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def matching(self, pattern: str, env: str | None = None) -> list[Event]:
        with self._changed:
            return [
                e
                for e in self.events
                if fnmatch.fnmatchcase(e.name, pattern) and (env is None or e.env == env)
            ]

    def names(self, pattern: str = "*") -> list[str]:
        return [e.name for e in self.matching(pattern)]

    def wait_for(
        self,
        pattern: str,
        where: Callable[[Event], bool] = lambda _e: True,
        timeout: float = 10.0,
        after: int = 0,
    ) -> Event:
        """The first event from index ``after`` on whose name matches and ``where`` holds."""

        def find() -> Event | None:
            return next(
                (
                    e
                    for e in self.events[after:]
                    if fnmatch.fnmatchcase(e.name, pattern) and where(e)
                ),
                None,
            )

        with self._changed:
            if not self._changed.wait_for(lambda: find() is not None, timeout=timeout):
                recent = [e.name for e in self.events[-30:]]
                raise AssertionError(f"no event {pattern!r} within {timeout}s; last: {recent}")
            found = find()
        assert found is not None
        return found

    def mark(self) -> int:
        with self._changed:
            return len(self.events)


# --------------------------------------------------------------------------- the tree


@dataclass
class EnvTree:
    """A running root supervisor with the environments capability."""

    settings: Settings
    registry: Registry
    root: Any
    events: EventLog = field(default_factory=EventLog)

    def layout(self, env: str) -> Layout:
        return Layout.of(self.settings, env)

    def port(self, env: str) -> int:
        return self.settings.environments[env].port

    def ask(self, env: str, message: Any, timeout: float = 30.0) -> Any:
        return self.registry.ask(actor_name(env), message, timeout=timeout)

    def status(self, env: str) -> EnvStatus:
        result: EnvStatus = self.ask(env, GetEnvStatus(), timeout=5)
        return result

    def node_state(self, env: str) -> str | None:
        node = self.registry.node(actor_name(env))
        return None if node is None else node.state

    def wait_healthy(
        self, env: str, timeout: float = 15.0, pid_not: int | None = None
    ) -> EnvStatus:
        """Wait until the actor runs a healthy process (not ``pid_not``) that answers 200."""

        def check() -> EnvStatus | None:
            if not self.registry.is_running(actor_name(env)):
                return None
            try:
                status = self.status(env)
            except Exception:  # restarting between the check and the ask
                return None
            if not status.healthy or status.pid in (None, pid_not):
                return None
            return status if serving(self.port(env), status.release) else None

        result = wait_until(check, timeout=timeout, interval=0.02)
        assert isinstance(result, EnvStatus)
        return result

    def stop(self) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self.root.stop(block=True, timeout=30)
        self.events.close()


def start_traced_root(
    settings: Settings, capabilities: list[ModuleType], events: EventLog
) -> tuple[Registry, Any]:
    """Start the daemon's tree with ``capabilities``; ``events`` hears the bus from its first
    message on (its listener is subscribed before any capability starts, the bus starting
    first, and again by every new bus)."""
    registry = Registry()
    children = build_children(settings, registry, capabilities=capabilities)
    bus_spec = children[1]
    listener = events.listen(registry)

    def bus_factory(link: Any) -> Any:
        ref = bus_spec.factory(link)
        ref.tell(Subscribe(listener, ("*",)))
        return ref

    fields = {name: getattr(bus_spec, name) for name in bus_spec.__dataclass_fields__}
    children[1] = type(bus_spec)(**{**fields, "factory": bus_factory})
    root = start_root(settings, registry, children=children)
    return registry, root


def start_tree(settings: Settings) -> EnvTree:
    events = EventLog()
    registry, root = start_traced_root(settings, [CAPABILITY], events)
    return EnvTree(settings, registry, root, events)


@pytest.fixture
def env_tree(tmp_path: Path) -> Iterator[Callable[..., EnvTree]]:
    """A factory: ``env_tree(envs, supervision=None, adjust=...)`` starts a tree (``adjust``
    changes the loaded settings, for what a config file cannot say); all are stopped after."""
    trees: list[EnvTree] = []
    data_dirs: list[Path] = []

    def start(
        envs: dict[str, dict[str, Any]],
        supervision: dict[str, Any] | None = None,
        adjust: Callable[[Settings], Settings] = lambda settings: settings,
    ) -> EnvTree:
        settings = adjust(load_settings(tmp_path, write_config(tmp_path, envs, supervision)))
        data_dirs.extend(Layout.of(settings, env).data for env in settings.environments)
        tree = start_tree(settings)
        trees.append(tree)
        return tree

    try:
        yield start
    finally:
        for tree in reversed(trees):
            tree.stop()
        kill_services(data_dirs)
