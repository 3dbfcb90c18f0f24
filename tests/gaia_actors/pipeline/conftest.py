"""Fixtures for pipeline tests: demo sources with tests, configs with stages, a live tree.

``pipe_tree(...)`` starts a real root supervisor with the store, the bus, the environments
(real demo processes on free ports) and the ``pipeline`` coordinator, built from a config in
``tmp_path``. Promotions are followed through the ``Promote`` watcher: a test waits on the
run's ``run.ended`` update (an Event), never on a sleep.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pykka
import pytest

from gaia_actors import pipeline
from gaia_actors.environments import tree as environment_tree
from gaia_actors.environments.tree import actor_name
from gaia_actors.layout import Layout
from gaia_actors.messages import Event, GetEnvStatus, Progress, Promote
from gaia_actors.pipeline import history
from gaia_actors.settings import Settings
from supervisors import Registry
from tests.conftest import wait_until
from tests.gaia_actors.environments.conftest import (
    DEMO,
    EventLog,
    free_port,
    health,
    kill_services,
    load_settings,
    start_traced_root,
    write_config,
)
from tests.gaia_actors.environments.conftest import _toml as toml_value
from tests.gaia_actors.listener import Listener

CAPABILITIES = [environment_tree, pipeline]
GATE_TEST = "tests/unit/test_gate.py"
PASSING_GATE = """
def test_addition():
    assert 1 + 1 == 2


def test_strings():
    assert "ab" * 2 == "abab"
"""
FAILING_GATE = (
    PASSING_GATE
    + """

def test_the_release_is_broken():
    assert 2 + 2 == 5, "the new release is broken"
"""
)
# The unit tests a release runs: a small file of its own (the demo's full suite takes
# seconds), with JUnit XML results.
UNIT = {
    "kind": "command",
    "name": "unit-tests",
    "command": [
        "{python}", "-m", "pytest", GATE_TEST, "-q", "-p", "no:cacheprovider",
        "--junitxml={junit}",
    ],
    "timeout": 60,
}  # fmt: skip
# The demo's live-API integration tests against the source environment's URL (the Nagle
# latency check is left out: it measures the machine more than the release).
INTEGRATION = {
    "kind": "command",
    "name": "integration-tests",
    "command": [
        "{python}", "-m", "pytest", "tests/integration/test_live_api.py", "-q",
        "-p", "no:cacheprovider", "-k", "not nagle", "--junitxml={junit}",
    ],
    "environ": {"DEMO_URL": "{url}"},
    "timeout": 60,
}  # fmt: skip
ENV_KEYS: dict[str, Any] = {"deploy_timeout": 3.0, "stop_grace": 2.0}


def release_source(
    dest: Path, *, failing_test: bool = False, break_data: bool = False, marker: str = ""
) -> Path:
    """A copy of demo/ with its tests and a small unit test file of its own.

    ``failing_test`` makes that file fail; ``break_data`` adds the migration that drops the
    items table (a data-breaking release); ``marker`` changes the content (a new release id).
    """
    shutil.copytree(
        DEMO, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "tools")
    )
    (dest / GATE_TEST).write_text(FAILING_GATE if failing_test else PASSING_GATE)
    if break_data:
        (dest / "migrations" / "999_break.sql").write_text("DROP TABLE items;\n")
    if marker:
        (dest / "MARKER").write_text(marker + "\n")
    return dest


def _toml(value: Any) -> str:
    if isinstance(value, dict):  # an inline table (a command stage's environ)
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return toml_value(value)


def pipeline_toml(promotions: dict[str, list[dict[str, Any]]]) -> str:
    lines = []
    for kind, stages in promotions.items():
        for stage in stages:
            lines.append(f"[[pipeline.{kind}]]")
            lines += [f"{key} = {_toml(value)}" for key, value in stage.items()]
    return "\n".join(lines) + "\n"


def write_pipeline_config(
    tmp_path: Path,
    source: Path,
    promotions: dict[str, list[dict[str, Any]]],
    *,
    envs: tuple[str, ...] = ("dev", "staging", "prod"),
    env_keys: dict[str, Any] | None = None,
    extra: str = "",
) -> Path:
    keys = {**ENV_KEYS, **(env_keys or {})}
    environments = {env: {"port": free_port(), "source": str(source), **keys} for env in envs}
    text = pipeline_toml(promotions) + "[pipeline]\nrollback_timeout = 60\n" + extra
    return write_config(tmp_path, environments, extra=text)


@dataclass
class Run:
    """A promotion followed through its watcher; tests wait on its updates (a Condition)."""

    pipeline_id: int
    updates: list[dict[str, Any]] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def watcher(self, update: dict[str, Any]) -> None:
        with self._changed:
            self.updates.append(update)
            self._changed.notify_all()

    def wait_for(
        self, event: str, name: str | None = None, timeout: float = 60.0
    ) -> dict[str, Any]:
        """The first update ``event`` (of stage ``name``), waiting up to ``timeout``."""

        def find() -> dict[str, Any] | None:
            return next(
                (
                    u
                    for u in self.updates
                    if u["event"] == event and (name is None or u.get("name") == name)
                ),
                None,
            )

        with self._changed:
            if not self._changed.wait_for(lambda: find() is not None, timeout=timeout):
                seen = [(u["event"], u.get("name")) for u in self.updates]
                raise AssertionError(f"no {event} {name or ''} within {timeout}s; seen {seen}")
            found = find()
        assert found is not None
        return found

    def wait(self, timeout: float = 60.0) -> dict[str, Any]:
        """The run's ``run.ended`` update."""
        return self.wait_for("run.ended", timeout=timeout)

    def stage_events(self) -> list[tuple[str, str]]:
        with self._changed:
            return [(u["event"], u["name"]) for u in self.updates if "name" in u]


@dataclass
class PipeTree:
    settings: Settings
    registry: Registry
    root: Any
    events: EventLog
    listeners: list[Listener] = field(default_factory=list)

    def promote(self, what: str, *, output: bool = False) -> Run:
        holder: list[Run] = []
        early: list[dict[str, Any]] = []
        lock = threading.Lock()

        def watcher(progress: Progress) -> None:
            update = dict(progress.update)
            # The runner may report before Promote's answer names the run here.
            with lock:
                if holder:
                    holder[0].watcher(update)
                else:
                    early.append(update)

        listener = Listener(self.registry, watcher)
        self.listeners.append(listener)
        answer = self.registry.ask(
            "pipeline",
            Promote(what, "test", listener.name, output),  # type: ignore[arg-type]
            timeout=30,
        )
        run = Run(answer["pipeline_id"])
        with lock:
            for update in early:
                run.watcher(update)
            holder.append(run)
        return run

    def ask(self, message: Any, timeout: float = 10.0) -> Any:
        return self.registry.ask("pipeline", message, timeout=timeout)

    def history(self, pipeline_id: int) -> history.PromotionRecord:
        return history.show(pipeline_id)

    def stages(self, pipeline_id: int) -> dict[str, history.StageRecord]:
        return {s.name: s for s in history.show(pipeline_id).stages}

    def layout(self, env: str) -> Layout:
        return Layout.of(self.settings, env)

    def port(self, env: str) -> int:
        return self.settings.environments[env].port

    def current(self, env: str) -> str | None:
        return self.layout(env).current_release()

    def served_release(self, env: str) -> str | None:
        answer = health(self.port(env))
        return None if answer is None or answer[0] != 200 else answer[1].get("release")

    def wait_healthy(self, env: str, timeout: float = 20.0) -> str:
        """The release ``env`` serves, once its actor runs and it answers 200."""

        def check() -> str | None:
            try:
                status = self.registry.ask(actor_name(env), GetEnvStatus(), timeout=5)
            except Exception:  # restarting between the check and the ask
                return None
            served = self.served_release(env)
            return served if status.healthy and served == status.release else None

        result = wait_until(check, timeout=timeout, interval=0.02)
        assert isinstance(result, str)
        return result

    def stop(self) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self.root.stop(block=True, timeout=60)
        for listener in self.listeners:
            listener.close()
        self.events.close()


def start_pipe_tree(settings: Settings) -> PipeTree:
    events = EventLog()
    registry, root = start_traced_root(settings, CAPABILITIES, events)
    return PipeTree(settings, registry, root, events)


StartPipe = Callable[..., PipeTree]


@pytest.fixture
def pipe_tree(tmp_path: Path) -> Iterator[StartPipe]:
    """``pipe_tree(promotions, source=..., envs=..., env_keys=...)`` starts a tree and waits
    until every environment serves; all are stopped after the test."""
    trees: list[PipeTree] = []
    data_dirs: list[Path] = []

    def start(
        promotions: dict[str, list[dict[str, Any]]],
        *,
        source: Path | None = None,
        envs: tuple[str, ...] = ("dev", "staging", "prod"),
        env_keys: dict[str, Any] | None = None,
        config: Path | None = None,
    ) -> PipeTree:
        if config is None:
            source = source or release_source(tmp_path / "source")
            config = write_pipeline_config(
                tmp_path, source, promotions, envs=envs, env_keys=env_keys
            )
        settings = load_settings(tmp_path, config)
        data_dirs.extend(Layout.of(settings, env).data for env in settings.environments)
        tree = start_pipe_tree(settings)
        trees.append(tree)
        for env in settings.environments:
            tree.wait_healthy(env)
        return tree

    try:
        yield start
    finally:
        for tree in reversed(trees):
            tree.stop()
        kill_services(data_dirs)


def events_of(log: EventLog, pattern: str, pipeline_id: int) -> list[Event]:
    return [e for e in log.matching(pattern) if e.get("pipeline_id") == pipeline_id]


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in (b"Z", b"X")


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None
