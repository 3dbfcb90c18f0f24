"""The alert actors under test: the store, the bus and the alerts supervisor, each receiver
the real one of its kind (the tests point webhooks at ``loopback.HookServer``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pykka

from gaia_actors.alerts import tree
from gaia_actors.app import build_children, start_root
from gaia_actors.settings import Settings
from supervisors import Registry


@contextlib.contextmanager
def alerts_tree(settings: Settings) -> Iterator[Registry]:
    """The store, the bus and the alerts supervisor."""
    registry = Registry()
    children = build_children(settings, registry, capabilities=(tree,))  # type: ignore[arg-type]
    root = start_root(settings, registry, children=children)
    try:
        yield registry
    finally:
        with contextlib.suppress(pykka.ActorDeadError):
            root.stop(block=True, timeout=15)
