"""Liveness: periodic pings a running child must answer within the ping timeout."""

from __future__ import annotations

import contextlib

import pykka

from supervisors.children import ChildBook
from supervisors.events import SupervisorEvent
from supervisors.messages import Tick
from supervisors.supervised import Ping


class Liveness(ChildBook):
    """Pings running children on every tick and fails those that do not answer in time."""

    def _tick(self) -> bool:
        """Send a Tick; False (no more ticks) once this actor is gone."""
        return self._tell_quietly(Tick(self.clock.now()))

    def _check_liveness(self, sent_at: float) -> None:
        # Overdue is judged at the tick's send time: a Pong that reached this mailbox before
        # the tick is handled before it, so a supervisor that was itself busy for a while does
        # not mistake its own backlog for a hung child.
        for child in self.children:
            if child.state != "running" or not child.spec.ping or child.ref is None:
                continue
            if child.ping is None:
                seq = next(self.ping_seq)
                child.ping = (seq, self.clock.now())
                with contextlib.suppress(pykka.ActorDeadError):  # its ChildDown is on the way
                    child.ref.tell(Ping(seq))
            elif sent_at - child.ping[1] > self.config.ping_timeout:
                timeout = self.config.ping_timeout
                child.last_error = f"no answer to a liveness ping within {timeout:g}s"
                child.state = "hung"
                self._emit(SupervisorEvent.CHILD_HUNG, child, level="warning")
                self._after_failure(child)

    def _on_pong(self, name: str, generation: int, seq: int) -> None:
        child = self._find(name)
        if (
            child is not None
            and child.state == "running"
            and child.generation == generation
            and child.ping
            and child.ping[0] == seq
        ):
            child.ping = None
