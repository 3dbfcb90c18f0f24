"""Fixtures for the supervision tests."""

from __future__ import annotations

from collections.abc import Iterator

import pykka
import pytest

from supervisors import Registry
from tests.supervisors.support import Events, Journal, Script, Tree, wait_until


@pytest.fixture
def tree() -> Iterator[Tree]:
    built = Tree(Registry(), Journal(), Script(), Events())
    try:
        yield built
    finally:
        built.close()
    # Nothing a test started may outlive it: a leak here is a supervision bug.
    wait_until(
        lambda: not pykka.ActorRegistry.get_all(),
        5.0,
        what=f"every actor stopped, left: {pykka.ActorRegistry.get_all()}",
    )
