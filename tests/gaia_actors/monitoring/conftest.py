"""Fixtures for the monitoring actors: settings for environments on given ports, a running tree
of store + bus + the monitoring actors (and any extra children), and an event recorder."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pykka
import pytest

from gaia_actors import process
from gaia_actors.actor import GaiaActor
from gaia_actors.app import build_children, make_listener, supervisor_config
from gaia_actors.environments.tree import child_specs as environment_specs
from gaia_actors.messages import Event, GetState, Subscribe
from gaia_actors.monitoring import child_specs
from gaia_actors.settings import Settings, load
from supervisors import ChildSpec, Link, Registry, Strategy, Supervisor
from tests.conftest import wait_until

# Short intervals and timeouts keep every test well under a second or two.
FAST: dict[str, dict[str, Any]] = {
    "store": {"flush_interval": 0.02},
    "supervision": {"backoff_initial": 0.05, "backoff_max": 0.2, "ping_timeout": 5.0},
    "monitor": {
        "interval": 0.05,
        "connect_timeout": 0.3,
        "read_timeout": 0.3,
        "latency_degraded": 0.15,
        "failure_threshold": 2,
        "success_threshold": 1,
    },
    "metrics": {"interval": 0.1, "listen": "", "read_timeout": 0.5},
    "failover": {"down_checks": 2, "start_grace": 0.0},
}


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


def toml(sections: Mapping[str, Mapping[str, Any]]) -> str:
    lines = []
    for name, table in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


def make_settings(
    tmp_path: Path,
    ports: Mapping[str, int],
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Settings with one environment per ``ports`` entry and FAST, then ``overrides``, applied."""
    sections: dict[str, dict[str, Any]] = {k: dict(v) for k, v in FAST.items()}
    for name, table in (overrides or {}).items():
        sections.setdefault(name, {}).update(table)
    for env, port in ports.items():
        sections[f"environments.{env}"] = {"port": port, **sections.pop(f"env.{env}", {})}
    config = tmp_path / "gaia.toml"
    config.write_text(toml(sections), encoding="utf-8")
    return load(config, environ={"GAIA_STATE_DIR": str(tmp_path / "state")})


class Tree:
    """A running root supervisor: store, bus, an event recorder, then under ``services``
    (one_for_one) the extra children, the ``environments`` supervisor if asked for, and the
    monitoring actors named (in their own order)."""

    def __init__(
        self,
        settings: Settings,
        actors: Sequence[str] = ("monitor", "metrics", "failover", "balancer"),
        extra: Sequence[ChildSpec] = (),
        environments: bool = False,
    ) -> None:
        self.settings = settings
        self.registry = Registry()
        self.events = EventLog()
        listener = make_listener(self.registry)
        specs = [
            s
            for s in child_specs(settings, self.registry, listener, supervisor_config)
            if s.name in actors
        ]
        if environments:  # the real environments supervisor, as the app builds it
            extra = [
                *extra,
                *environment_specs(settings, self.registry, listener, supervisor_config),
            ]
        recorder = ChildSpec("recorder", lambda link: Recorder.start(link, self.events))
        children = [
            *build_children(settings, self.registry, capabilities=()),
            recorder,  # before anything that publishes
        ]
        if [*extra, *specs]:
            # As the app runs capabilities: side by side under a one_for_one supervisor.
            services = Supervisor.child_spec(
                "services",
                [*extra, *specs],
                config=supervisor_config(settings, Strategy.ONE_FOR_ONE),
                listener=listener,
            )
            children.append(services)
        self.root = Supervisor.start_root(
            "root",
            children,
            self.registry,
            config=supervisor_config(settings, Strategy.REST_FOR_ONE),
            listener=listener,
        )

    def ask(self, name: str, message: Any, timeout: float = 5.0) -> Any:
        return self.registry.ask(name, message, timeout=timeout)

    def state(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.ask(name, GetState())
        return result

    def wait_rounds(self, count: int, name: str = "monitor", timeout: float = 5.0) -> None:
        """Wait until ``name`` has completed ``count`` more rounds than now."""
        target = self.state(name)["rounds"] + count
        wait_until(lambda: self.state(name)["rounds"] >= target, timeout)

    def stop(self) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self.root.stop(block=True, timeout=15)


class EventLog:
    """Every bus event, in order (filled by the Recorder actor)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Event] = []

    def append(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    def named(self, name: str, env: str | None = None) -> list[Event]:
        with self._lock:
            events = list(self._events)
        return [e for e in events if e.name == name and (env is None or e.env == env)]

    def wait_for(
        self, name: str, env: str | None = None, where: Callable[[Event], bool] = lambda e: True
    ) -> Event:
        found = wait_until(lambda: [e for e in self.named(name, env) if where(e)], 10.0)
        assert isinstance(found, list)
        return found[0]


class Recorder(GaiaActor):
    """Subscribes to every event at start and hands each to an EventLog."""

    def __init__(self, link: Link, log: EventLog) -> None:
        super().__init__(link)
        self.events = log

    def on_start(self) -> None:
        self.tell("bus", Subscribe(self.name, ("*",)))

    def receive(self, message: Any) -> Any:
        if isinstance(message, Event):
            self.events.append(message)
            return None
        return self.unhandled(message)


@pytest.fixture
def start_tree() -> Iterator[Callable[..., Tree]]:
    """``start_tree(settings, actors=..., extra=...)``; every tree is stopped afterwards."""
    trees: list[Tree] = []

    def start(settings: Settings, **kwargs: Any) -> Tree:
        tree = Tree(settings, **kwargs)
        trees.append(tree)
        return tree

    yield start
    for tree in reversed(trees):
        tree.stop()


def write_own_pidfile(settings: Settings, env: str) -> int:
    """Record this test process as ``env``'s process: alive, and old enough for any grace."""
    pid = os.getpid()
    start_time = process.proc_start_time(pid)
    assert start_time is not None
    path = settings.env_dir(env) / "pid"
    path.parent.mkdir(parents=True, exist_ok=True)
    process.write_pidfile(path, pid, start_time)
    return pid


# Prometheus text bodies: a clean one, and a hostile one (malformed lines, NaN, huge labels).
GOOD = b"""# HELP app_requests_total Requests.
# TYPE app_requests_total counter
app_requests_total{path="/a"} 3
app_requests_total{path="/b"} 4
# TYPE app_request_errors_total counter
app_request_errors_total{path="/a"} 1
app_up 1
"""
HUGE_LABELS = "app_labels{" + ",".join(f'l{i}="{"v" * 20}"' for i in range(200)) + "} 1\n"
HOSTILE = (
    "app_requests_total 10\n"
    "this is not a metric line\n"
    'broken{label="unterminated 3\n'
    "app_nan NaN\n"
    "app_inf +Inf\n" + HUGE_LABELS + "app_after_garbage 7\n"
).encode()
