"""The outbox: what could not reach a restarting store or bus is held and sent, in order,
once it is back; nothing an actor publishes while they restart is lost."""

from __future__ import annotations

import threading
from typing import Any

import pykka

from gaia_actors.messages import Crash, Event, Flush, fields_of
from gaia_actors.outbox import Outbox, outbox_for
from gaia_actors.store.models import EventRow
from supervisors import NotRunning, Registry
from tests.conftest import wait_until


class Inbox(pykka.ThreadingActor):
    def __init__(self, got: list[Any], done: threading.Event, expect: int) -> None:
        super().__init__()
        self.got, self.done, self.expect = got, done, expect

    def on_receive(self, message: Any) -> None:
        self.got.append(message)
        if len(self.got) == self.expect:
            self.done.set()


def test_held_messages_go_first_and_in_order_once_the_name_is_back() -> None:
    registry = Registry()
    box = Outbox(registry)
    assert box.tell("sink", 1) is False
    assert box.tell("sink", 2, held=lambda m: m * 10) is False  # what to send later instead
    assert box.held("sink") == 2
    assert box.flush("sink") == 2  # still nobody there
    got: list[Any] = []
    done = threading.Event()
    ref = Inbox.start(got, done, 3)
    try:
        registry.register("sink", ref)
        assert box.tell("sink", 3) is True
        assert done.wait(5)
        assert got == [1, 20, 3]
        assert box.held("sink") == 0
    finally:
        ref.stop()


def test_beyond_the_limit_the_oldest_are_dropped_and_counted() -> None:
    box = Outbox(Registry(), limit=3)
    for i in range(5):
        box.tell("sink", i)
    assert box.held("sink") == 3
    assert box.dropped == {"sink": 2}


def test_one_outbox_per_registry() -> None:
    registry = Registry()
    assert outbox_for(registry) is outbox_for(registry)
    assert outbox_for(Registry()) is not outbox_for(registry)


def test_events_published_while_the_store_and_bus_restart_are_all_stored(
    tree: tuple[Registry, Any],
) -> None:
    """The store crashes; the root restarts it and the bus (rest_for_one) while events keep
    coming. Each event is stored once, none lost."""
    registry, _ = tree
    box = outbox_for(registry)
    first_store = registry.lookup("store")
    count = 300
    for i in range(count):
        if i == 100:
            registry.tell("store", Crash("mid-stream"))
        box.tell("bus", Event("soak.tick", data=fields_of(i=i)))
    wait_until(lambda: registry.is_running("store") and registry.lookup("store") is not first_store)
    wait_until(lambda: registry.is_running("bus"))
    box.tell("bus", Event("soak.last"))  # sends what is still held first

    def stored() -> int:
        try:
            registry.ask("store", Flush(), timeout=5)
        except NotRunning:
            return -1
        return int(EventRow.select().where(EventRow.name == "soak.tick").count())

    wait_until(lambda: stored() == count, timeout=30)  # a restart under load can take ~15 s
    ticks = [row.data["i"] for row in EventRow.select().where(EventRow.name == "soak.tick")]
    assert sorted(ticks) == list(range(count))  # each once
