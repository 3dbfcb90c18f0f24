"""The base actor: typed dispatch, name-based sends, events, timers and fault injection.

Subclasses implement ``receive(message)`` with ``match`` and end it with
``case _: return self.unhandled(message)``. A refused message (``Rejected``: unknown type,
bad field, busy) is logged and returned to an asker as its error; the actor keeps running.
Any other exception from a told message crashes the actor, and its supervisor restarts it.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from typing import Any

import pykka
import structlog

from gaia_actors.errors import GaiaError, Rejected, Superseded, UnknownMessage
from gaia_actors.messages import Crash, Event, GetState, Hang, Insert, fields_of
from gaia_actors.messages.common import MAX_HANG_SECONDS
from gaia_actors.outbox import outbox_for
from gaia_actors.store.models import close_thread_connections
from gaia_actors.timers import TIMERS
from supervisors import AskExpired, Link, NotRunning, Supervised
from supervisors.registry import DEFAULT_ASK_TIMEOUT
from supervisors.supervised import Ping


class InjectedCrash(GaiaError):
    """Raised by ``Crash``: a crash asked for by an operator (fault injection)."""


class GaiaActor(Supervised):
    """Base of every gaia actor."""

    def __init__(self, link: Link) -> None:
        super().__init__(link)
        self.log = structlog.get_logger(f"gaia.{link.name}").bind(actor=link.name)
        self._tickers: weakref.WeakSet[threading.Event] = weakref.WeakSet()

    # Dispatch

    def handle(self, message: Any) -> Any:
        match message:
            case Crash(reason=reason):
                raise InjectedCrash(f"{self.name}: {reason}")
            case Hang(seconds=seconds):
                self._hang(seconds)
                return None
            case GetState():
                return self.state()
        if self._superseded():
            return self._leftover(message)
        try:
            return self.receive(message)
        except Rejected as exc:
            self.log.warning("actor.rejected", message=type(message).__name__, error=str(exc))
            return exc

    def _superseded(self) -> bool:
        """Whether the supervisor already runs a newer generation under this name (this one
        hung, was replaced, and has woken up)."""
        current = self.registry.registered(self.name)  # a dict read, as every send does
        return current is not None and current.actor_urn != self.actor_urn

    def _leftover(self, message: Any) -> Any:
        """A message a replaced generation got: salvaged as a dead one's inbox is (the store
        writes its rows, the bus passes events on), never acted on; an asker gets the error."""
        error = Superseded(self.name, self.link.generation, type(message).__name__)
        if getattr(message, "reply_by", None) is None:  # an asked write's asker gets the error
            self.salvage(message)
        self.log.warning("actor.superseded", message=type(message).__name__)
        return error

    def on_expired(self, error: AskExpired) -> AskExpired:
        self.log.warning("actor.ask_expired", error=str(error), late=round(error.late, 3))
        return error

    def receive(self, message: Any) -> Any:
        """Handle a message; override with ``match``."""
        return self.unhandled(message)

    def unhandled(self, message: Any) -> Any:
        raise UnknownMessage(self.name, type(message).__name__)

    def state(self) -> dict[str, Any]:
        """A JSON-friendly view of this actor's state; override to add detail."""
        return {"actor": self.name, "generation": self.link.generation}

    def on_stop(self) -> None:
        self._end()

    def on_failure(self, *exc_info: Any) -> None:
        try:
            self._end()
        finally:
            super().on_failure(*exc_info)

    def _end(self) -> None:
        self.stop_timers()
        try:
            self._salvage_inbox()
            self.on_terminate()
        finally:
            close_thread_connections()  # this generation's thread ends here

    def _salvage_inbox(self) -> None:
        """Told messages still queued when this generation ended (behind the one that
        crashed it, or racing with its stop): Pykka would drop them; ``salvage`` gets each.
        Asks go back to the inbox, and Pykka answers them ActorDeadError (their askers
        retry or report)."""
        if type(self).salvage is GaiaActor.salvage:
            return  # nothing to salvage: leave them to Pykka
        left = []
        with self.registry.delivery(self.name):  # a tell still on its way is queued first
            while not self.actor_inbox.empty():  # this thread is the only reader
                left.append(self.actor_inbox.get())
        asks = []
        for envelope in left:
            if envelope.reply_to is not None or isinstance(envelope.message, Ping):
                asks.append(envelope)
                continue
            try:
                self.salvage(envelope.message)
            except Exception as exc:  # noqa: BLE001 - one bad message must not cost the rest
                self.log.error("actor.salvage_failed", message=type(envelope.message).__name__,
                               error=repr(exc))  # fmt: skip
        for envelope in asks:
            self.actor_inbox.put(envelope)

    def salvage(self, message: Any) -> None:
        """A told message this generation will not handle (see ``_salvage_inbox``); override
        to keep what must not be lost (the store writes its rows, the bus passes its events
        on to its next generation)."""

    def on_terminate(self) -> None:
        """Free what this generation holds (connections, threads, ports), however it ends:
        Pykka calls ``on_stop`` after a stop and only ``on_failure`` after a crash (OTP's
        ``terminate``). Override to close what ``on_start`` opened; runs in the actor's
        thread, so keep it short."""

    # Sending by name

    def tell(self, name: str, message: Any) -> bool:
        """Tell ``name``; a target that is down is logged, not raised (a tell has no reply).

        A replaced generation tells nothing: it shares its name with its successor, so what
        it says on its way out (an ``Unsubscribe`` from the bus, above all) would undo what
        its successor set up in that name."""
        if self._superseded():
            self.log.warning("actor.superseded_tell", to=name, message=type(message).__name__)
            return False
        try:
            self.registry.tell(name, message)
        except NotRunning as exc:
            self.log.debug(
                "actor.send_failed", to=name, message=type(message).__name__, error=str(exc)
            )
            return False
        return True

    def ask(self, name: str, message: Any, timeout: float = DEFAULT_ASK_TIMEOUT) -> Any:
        """Ask ``name``. Never ask an actor that may ask you back (a deadlock)."""
        return self.registry.ask(name, message, timeout=timeout)

    def publish(self, event: str, level: str = "info", env: str = "", **data: Any) -> None:
        """Publish the event named ``event`` (a constant of ``gaia_actors.events``) on the bus,
        which logs and stores it; while the bus restarts the event waits in the registry's
        outbox and goes out, in order, once it is back."""
        message = Event(event, level=level, actor=self.name, env=env, data=fields_of(**data))
        outbox_for(self.registry).tell("bus", message)

    def record(self, table: str, **values: Any) -> None:
        """Queue a row for the store (batched); held in the outbox while the store restarts."""
        outbox_for(self.registry).tell("store", Insert(table, fields_of(**values)))

    # Timers: they send messages; nothing sleeps in a mailbox

    def every(self, interval: float, message: Any, first: float | None = None) -> threading.Event:
        """Tell self ``message`` every ``interval`` seconds until the actor stops."""
        ref = self.actor_ref

        def tick() -> bool:
            try:
                ref.tell(message)
            except pykka.ActorDeadError:
                return False
            return True

        stop = TIMERS.add(interval if first is None else first, tick, interval)
        self._tickers.add(stop)
        return stop

    def after(self, delay: float, message: Any) -> threading.Event:
        """Tell self ``message`` once after ``delay`` seconds; set the returned event to cancel."""
        ref = self.actor_ref

        def fire() -> bool:
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(message)
            return False

        stop = TIMERS.add(delay, fire)
        self._tickers.add(stop)
        return stop

    def stop_timers(self) -> None:
        for stop in list(self._tickers):
            stop.set()
        self._tickers.clear()

    def _hang(self, seconds: float) -> None:
        seconds = max(0.0, min(float(seconds), MAX_HANG_SECONDS))
        self.log.warning("actor.hang", seconds=seconds)
        time.sleep(seconds)  # the point of Hang is to block this mailbox; bounded above
