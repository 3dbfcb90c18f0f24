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

from gaia_actors.errors import Rejected, UnknownMessage
from gaia_actors.messages import Crash, Event, GetState, Hang, Insert, fields_of
from gaia_actors.models import close_thread_connections
from supervisors import AskExpired, Link, NotRunning, Supervised
from supervisors.registry import DEFAULT_ASK_TIMEOUT

MAX_HANG_SECONDS = 300.0


class InjectedCrash(RuntimeError):
    """Raised by ``Crash``: a crash asked for by an operator (fault injection)."""


class GaiaActor(Supervised):
    """Base of every gaia actor (DESIGN.md, Actors and messages)."""

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
        try:
            return self.receive(message)
        except Rejected as exc:
            self.log.warning("actor.rejected", message=type(message).__name__, error=str(exc))
            return exc

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
        self.stop_timers()
        try:
            self.on_terminate()
        finally:
            close_thread_connections()  # this generation's thread ends here

    def on_failure(self, *exc_info: Any) -> None:
        self.stop_timers()
        try:
            self.on_terminate()
        finally:
            close_thread_connections()
            super().on_failure(*exc_info)

    def on_terminate(self) -> None:
        """Free what this generation holds (connections, threads, ports), however it ends:
        Pykka calls ``on_stop`` after a stop and only ``on_failure`` after a crash (OTP's
        ``terminate``). Override to close what ``on_start`` opened; runs in the actor's
        thread, so keep it short."""

    # Sending by name

    def tell(self, name: str, message: Any) -> bool:
        """Tell ``name``; a target that is down is logged, not raised (a tell has no reply)."""
        try:
            self.registry.tell(name, message)
        except NotRunning as exc:
            self.log.debug(
                "actor.send_failed", to=name, message=type(message).__name__, error=str(exc)
            )
            return False
        return True

    def ask(self, name: str, message: Any, timeout: float = DEFAULT_ASK_TIMEOUT) -> Any:
        """Ask ``name``. Never ask an actor that may ask you back (deadlock, REFERENCE.md)."""
        return self.registry.ask(name, message, timeout=timeout)

    def publish(self, event: str, level: str = "info", env: str = "", **data: Any) -> None:
        """Publish an event on the bus (which logs and stores it)."""
        self.tell(
            "bus", Event(event, level=level, actor=self.name, env=env, data=fields_of(**data))
        )

    def record(self, table: str, **values: Any) -> None:
        """Queue a row for the store (batched)."""
        self.tell("store", Insert(table, fields_of(**values)))

    # Timers: they send messages; nothing sleeps in a mailbox

    def every(self, interval: float, message: Any, first: float | None = None) -> threading.Event:
        """Tell self ``message`` every ``interval`` seconds until the actor stops."""
        stop = threading.Event()
        self._tickers.add(stop)
        ref = self.actor_ref

        def loop() -> None:
            delay = interval if first is None else first
            while not stop.wait(delay):
                delay = interval
                try:
                    ref.tell(message)
                except pykka.ActorDeadError:
                    return

        threading.Thread(target=loop, name=f"{self.name}-every", daemon=True).start()
        return stop

    def after(self, delay: float, message: Any) -> threading.Event:
        """Tell self ``message`` once after ``delay`` seconds; set the returned event to cancel."""
        stop = threading.Event()
        self._tickers.add(stop)
        ref = self.actor_ref

        def fire() -> None:
            if not stop.wait(delay):
                with contextlib.suppress(pykka.ActorDeadError):
                    ref.tell(message)

        threading.Thread(target=fire, name=f"{self.name}-after", daemon=True).start()
        return stop

    def stop_timers(self) -> None:
        for stop in list(self._tickers):
            stop.set()
        self._tickers.clear()

    def _hang(self, seconds: float) -> None:
        seconds = max(0.0, min(float(seconds), MAX_HANG_SECONDS))
        self.log.warning("actor.hang", seconds=seconds)
        time.sleep(seconds)  # the point of Hang is to block this mailbox; bounded above
