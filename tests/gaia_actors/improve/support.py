"""Helpers for the engine tests: a live tree with the improvement actors, and cycles run on it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pykka

from gaia_actors.app import build_children, start_root
from gaia_actors.improve import tree
from gaia_actors.messages import Flush, GetState, Progress, RunCycle
from gaia_actors.settings import Settings, load
from gaia_actors.store.models import EventRow
from supervisors import Registry
from tests.gaia_actors.listener import Listener

# Inner pytest runs of the small projects need no plugins (hypothesis alone costs ~1.3 s).
BASE_CONFIG = """\
[store]
flush_interval = 0.05

[improve]
target = "{target}"
test_env = {{ PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1" }}
"""


def config(tmp_path: Path, target: Path, extra: str = "") -> Settings:
    path = tmp_path / "gaia.toml"
    path.write_text(BASE_CONFIG.format(target=target) + extra, encoding="utf-8")
    return load(path, environ={"GAIA_STATE_DIR": str(tmp_path / "state")})


@dataclass
class Watch:
    """Every watcher update of one cycle, and an event set when it ends."""

    updates: list[dict[str, Any]] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)

    def __call__(self, progress: Progress) -> None:  # in its listener's thread
        update = dict(progress.update)
        self.updates.append(update)
        if update["event"] == "cycle.ended":
            self.ended.set()

    def last(self) -> dict[str, Any]:
        return self.updates[-1]

    def of(self, event: str) -> list[dict[str, Any]]:
        return [u for u in self.updates if u["event"] == event]


@dataclass
class ImproveTree:
    registry: Registry
    root: Any
    settings: Settings
    listeners: list[Listener] = field(default_factory=list)

    def start_cycle(self, target: str = "", apply: bool = False) -> tuple[int, Watch]:
        watch = Watch()
        listener = Listener(self.registry, watch)
        self.listeners.append(listener)
        answer = self.registry.ask("improve", RunCycle(target, apply, listener.name), timeout=10)
        return int(answer["cycle_id"]), watch

    def cycle(self, target: str = "", apply: bool = False, timeout: float = 60.0) -> int:
        """Run one cycle to its end; fail unless it succeeded."""
        cycle_id, watch = self.start_cycle(target, apply)
        assert watch.ended.wait(timeout), f"cycle {cycle_id} did not end: {watch.updates[-3:]}"
        assert watch.last()["status"] == "succeeded", watch.last()
        return cycle_id

    def flush(self) -> None:
        self.registry.ask("store", Flush(), timeout=10)

    def events(self, name: str) -> list[Any]:
        # The bus answers after handing the store every event published before this ask.
        self.registry.ask("bus", GetState(), timeout=10)
        self.flush()
        return list(EventRow.select().where(EventRow.name == name).order_by(EventRow.id))


@contextlib.contextmanager
def improve_tree(settings: Settings) -> Iterator[ImproveTree]:
    """Store, bus and the improvement subtree, stopped afterwards."""
    registry = Registry()
    children = build_children(settings, registry, capabilities=(tree,))
    root = start_root(settings, registry, children=children)
    improve = ImproveTree(registry, root, settings)
    try:
        yield improve
    finally:
        with contextlib.suppress(pykka.ActorDeadError):
            root.stop(block=True, timeout=30)
        for listener in improve.listeners:
            listener.close()


def write_files(root: Path, count: int, text: str) -> list[str]:
    """``count`` Python files named m000.py ... holding ``text``; their relative paths."""
    root.mkdir(parents=True, exist_ok=True)
    names = [f"m{i:03d}.py" for i in range(count)]
    for name in names:
        (root / name).write_text(text, encoding="utf-8")
    return names


def slow_module(functions: int = 60) -> str:
    """A module with a TODO comment (so the reference tokenizer runs: ~10 ms per file here)."""
    body = "\n".join(
        f"def f{i}(x):\n    y = x + {i}  # note {i}\n    return y * 2\n" for i in range(functions)
    )
    return f"# TODO: file marker\n{body}\n"
