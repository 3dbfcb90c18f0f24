"""Fixtures for the supervision tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from supervisors import Registry
from tests.supervisors.support import Events, Journal, Script, Tree, wait_until


@pytest.fixture
def tree() -> Iterator[Tree]:
    before = set(pykka.ActorRegistry.get_all())  # other modules' actors are not ours to judge
    built = Tree(Registry(), Journal(), Script(), Events())
    try:
        yield built
    finally:
        built.close()

    # Nothing a test started may outlive it: a leak here is a supervision bug.
    def leftover() -> set[pykka.ActorRef[Any]]:
        return set(pykka.ActorRegistry.get_all()) - before

    try:
        wait_until(lambda: not leftover(), 5.0)
    except AssertionError:
        raise AssertionError(f"actors left running: {leftover()}") from None
