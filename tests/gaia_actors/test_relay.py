"""The relay: a named actor whose messages one thread outside the actor system reads."""

from __future__ import annotations

import queue
import threading

import pytest

from gaia_actors.messages import Event, Progress
from gaia_actors.relay import Relay
from supervisors import NotRunning, Registry


def test_messages_told_by_name_are_read_in_order() -> None:
    registry = Registry()
    with Relay(registry, "test.relay", 100) as relay:
        for i in range(50):
            registry.tell(relay.name, Progress.of(event="step", i=i))
        got = [dict(relay.get(timeout=5).update)["i"] for _ in range(50)]
    assert got == list(range(50))


def test_a_reader_that_falls_behind_loses_messages_and_never_blocks_the_sender() -> None:
    registry = Registry()
    with Relay(registry, "test.relay", 3) as relay:
        sent = threading.Event()

        def send() -> None:
            for i in range(10):
                registry.tell(relay.name, Event("test.flood", data=(("i", i),)))
            registry.tell(relay.name, Event("test.last"))
            sent.set()

        threading.Thread(target=send, daemon=True).start()
        assert sent.wait(5)  # nobody reads, yet every tell returned
        kept = [relay.get(timeout=5) for _ in range(3)]
        with pytest.raises(queue.Empty):
            relay.get(timeout=0.2)
    assert [e.get("i") for e in kept] == [0, 1, 2]  # the oldest kept, in order
    assert relay.dropped == 8


def test_only_accepted_messages_take_room() -> None:
    registry = Registry()
    with Relay(registry, "test.relay", 1, lambda m: isinstance(m, Progress)) as relay:
        registry.tell(relay.name, Event("test.ignored"))
        registry.tell(relay.name, Progress.of(event="kept"))
        assert dict(relay.get(timeout=5).update) == {"event": "kept"}
        assert relay.dropped == 0


def test_wake_ends_a_waiting_get() -> None:
    registry = Registry()
    with Relay(registry, "test.relay", 10) as relay:
        threading.Timer(0.05, relay.wake).start()
        assert relay.get(timeout=5) is None


def test_a_closed_relay_gives_its_name_up() -> None:
    registry = Registry()
    relay = Relay(registry, "test.relay", 10)
    other = Relay(registry, "test.relay", 10)
    assert relay.name != other.name
    relay.close()
    with pytest.raises(NotRunning):
        registry.tell(relay.name, Progress.of(event="late"))
    other.close()
