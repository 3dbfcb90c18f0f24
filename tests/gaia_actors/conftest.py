"""Fixtures for gaia_actors tests: settings on a temp state dir, and a live store+bus tree."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from gaia_actors.app import start_root
from gaia_actors.settings import Settings, load
from supervisors import Registry


def write_config(tmp_path: Path, text: str = "") -> Path:
    path = tmp_path / "gaia.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    config = write_config(tmp_path, "[store]\nflush_interval = 0.05\n")
    return load(config, environ={"GAIA_STATE_DIR": str(tmp_path / "state")})


@pytest.fixture
def tree(settings: Settings) -> Iterator[tuple[Registry, Any]]:
    """A running root supervisor with the store and the bus (no capabilities)."""
    registry = Registry()
    root = start_root(settings, registry, capabilities=())
    yield registry, root
    with contextlib.suppress(pykka.ActorDeadError):
        root.stop(block=True, timeout=10)
