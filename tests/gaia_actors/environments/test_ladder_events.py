"""The recovery ladder's events go through the registry's outbox, as every other event does:
a step taken while the bus restarts is told once the bus is back, not lost."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pykka

from gaia_actors.environments import builds, releases
from gaia_actors.environments import tree as environment_tree
from gaia_actors.events import EnvironmentEvent
from gaia_actors.layout import Layout
from gaia_actors.messages import Event
from gaia_actors.outbox import outbox_for
from supervisors import Registry
from tests.gaia_actors.environments.conftest import (
    demo_source,
    free_port,
    load_settings,
    write_config,
)

T0 = datetime(2026, 11, 28, 7, 55, 1, tzinfo=UTC)


class Bus(pykka.ThreadingActor):
    """Stands in for the bus: keeps what it is told."""

    def __init__(self, got: list[Any], arrived: threading.Event) -> None:
        super().__init__()
        self.got, self.arrived = got, arrived

    def on_receive(self, message: Any) -> None:
        self.got.append(message)
        self.arrived.set()


def test_a_ladder_rollback_taken_while_the_bus_is_down_is_published_once_it_is_back(
    tmp_path: Path,
) -> None:
    source = demo_source(tmp_path / "src")
    config = write_config(tmp_path, {"prod": {"port": free_port(), "source": str(source)}})
    settings = load_settings(tmp_path, config)
    layout = Layout.of(settings, "prod")
    layout.make_dirs()
    healthy = builds.build_release(source, layout.releases, now=T0)
    (source / "MARKER").write_text("v2\n")
    newer = builds.build_release(source, layout.releases, now=T0 + timedelta(seconds=1))
    releases.switch_current(layout.root, healthy.id)
    releases.mark_healthy(layout.root, healthy.id)
    releases.switch_current(layout.root, newer.id)
    registry = Registry()  # no bus registered: it is restarting
    steps = dict(environment_tree.ladder(settings, "prod", registry))

    steps["rollback"]()

    assert layout.current_release() == healthy.id
    assert outbox_for(registry).held("bus") == 1
    got: list[Any] = []
    arrived = threading.Event()
    bus = Bus.start(got, arrived)
    try:
        registry.register("bus", bus)
        assert outbox_for(registry).flush("bus") == 0
        assert arrived.wait(5)
    finally:
        bus.stop()
    [event] = got
    assert isinstance(event, Event)
    assert event.name == EnvironmentEvent.ROLLED_BACK
    assert event.env == "prod"
    assert event.get("reason") == "recovery ladder"
    assert event.get("release") == healthy.id
    assert event.get("previous") == newer.id
