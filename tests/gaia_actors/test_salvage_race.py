"""A tell that races with its actor's end: handled, salvaged by the ending generation, or refused
(``NotRunning``, so an outbox holds it for the next one), never dropped in between."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from gaia_actors.actor import GaiaActor
from supervisors import Link, NotRunning, Registry


class Keeper(GaiaActor):
    """Counts what it handles and what it salvages as it ends."""

    def __init__(self, link: Link, kept: list[int]) -> None:
        super().__init__(link)
        self.kept = kept

    def receive(self, message: Any) -> Any:
        self.kept.append(message)

    def salvage(self, message: Any) -> None:
        self.kept.append(message)


@pytest.fixture
def fast_switches() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the sender is preempted between its check and its put
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("fast_switches")
def test_a_tell_racing_with_the_stop_is_kept_or_refused_never_dropped() -> None:
    for _ in range(200):
        registry = Registry()
        kept: list[int] = []
        ref = Keeper.start(Link(None, registry, "keeper", 1), kept)
        registry.register("keeper", ref, 1)
        refused: list[int] = []
        sent = threading.Event()

        def send(
            refused: list[int] = refused, registry: Registry = registry, sent: Any = sent
        ) -> None:
            for i in range(300):
                if i == 20:
                    sent.set()
                try:
                    registry.tell("keeper", i)
                except NotRunning:
                    refused.append(i)

        sender = threading.Thread(target=send)
        sender.start()
        sent.wait(5)
        ref.stop(block=True, timeout=5)
        sender.join(5)
        missing = sorted(set(range(300)) - set(kept) - set(refused))
        assert (missing, len(kept) + len(refused)) == ([], 300)
