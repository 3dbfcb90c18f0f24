"""Liveness: a running child is hung when it makes no progress, not when its mailbox is long.

On every tick the supervisor pings each running child that has no ping outstanding. A child
with an empty mailbox answers at once. A busy one answers late, its ping queued behind its
backlog, but it finishes messages meanwhile: its ``Progress`` count (written by its own
thread, read here without a message) moves. A child is declared hung only when a ping has
waited and its count has not moved for ``ping_timeout``: it is stuck inside one message.
So a backlog of any depth is worked through, never replaced (and its queued messages never
lost), while a handler that never returns is still caught within ``ping_timeout`` plus at
most two ping intervals (the count is sampled once a tick). Nothing here waits on a child.
"""

from __future__ import annotations

import contextlib

import pykka

from supervisors.children import Child, ChildBook, Waiting
from supervisors.events import SupervisorEvent
from supervisors.messages import Tick
from supervisors.supervised import Ping


class Liveness(ChildBook):
    """Pings running children on every tick and fails those that stop making progress."""

    def _tick(self) -> bool:
        """Send a Tick; False (no more ticks) once this actor is gone."""
        return self._tell_quietly(Tick(self.clock.now()))

    def _check_liveness(self, sent_at: float) -> None:
        for child in self.children:
            if child.state != "running" or not child.spec.ping or child.ref is None:
                continue
            if child.ping is None:
                child.ping = Waiting(next(self.ping_seq), child.progress.handled, self.clock.now())
                with contextlib.suppress(pykka.ActorDeadError):  # its ChildDown is on the way
                    child.ref.tell(Ping(child.ping.seq))
            elif self._stalled(child, child.ping, sent_at):
                timeout = self.config.ping_timeout
                child.last_error = (
                    f"no answer to a liveness ping within {timeout:g}s, "
                    f"and no message handled meanwhile"
                )
                child.state = "hung"
                self._emit(SupervisorEvent.CHILD_HUNG, child, level="warning")
                self._after_failure(child)

    def _stalled(self, child: Child, ping: Waiting, sent_at: float) -> bool:
        """Whether ``child`` has finished no message for ``ping_timeout`` with ``ping`` waiting.

        Progress seen now is dated now (it happened at most a tick ago): that errs towards
        patience, so a child finishing a message at least once per timeout is never hung.
        Overdue is judged at the tick's send time: a Pong that reached this mailbox before the
        tick is handled before it, so a supervisor that was itself busy for a while does not
        mistake its own backlog for a hung child.
        """
        handled = child.progress.handled
        if handled != ping.handled:
            ping.handled, ping.since = handled, self.clock.now()
            return False
        return sent_at - ping.since > self.config.ping_timeout

    def _on_pong(self, name: str, generation: int, seq: int) -> None:
        child = self._find(name)
        if (
            child is not None
            and child.state == "running"
            and child.generation == generation
            and child.ping
            and child.ping.seq == seq
        ):
            child.ping = None
