"""The supervision tree and the daemon that runs it.

    root (rest_for_one)
    ├── store
    ├── bus
    └── services (one_for_one)
        ├── alerts (one_for_one): alerts.router, alerts.receiver.<name> for each receiver
        ├── environments (one_for_one; each child with the recovery ladder)
        ├── monitor · metrics · failover · balancer · pipeline
        ├── improvement (rest_for_one): improve, improve.workers (one_for_one)
        └── control

The root is not a flat rest_for_one over every actor, nor the improve group one_for_all, so
that one crash does not take down what does not depend on it (see ``build_children`` and
``gaia_actors/improve/tree.py``).
"""

from __future__ import annotations

import ctypes
import dataclasses
import importlib.util
import os
import signal
import threading
import time
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pykka
import pykka.debug
import structlog

from gaia_actors import logs, monitoring, pipeline
from gaia_actors.alerts import tree as alerts_tree
from gaia_actors.alerts.final import send_last_alert
from gaia_actors.alerts.receivers import build_receiver
from gaia_actors.bus import EventBus
from gaia_actors.control import catalog
from gaia_actors.control import server as control
from gaia_actors.environments import tree as environment_tree
from gaia_actors.errors import DaemonError
from gaia_actors.events import SupervisorEvent
from gaia_actors.improve import tree as improve_tree
from gaia_actors.lock import StateLock
from gaia_actors.messages import Event, Insert, fields_of
from gaia_actors.outbox import outbox_for
from gaia_actors.settings import Settings
from gaia_actors.store.actor import Store
from supervisors import (
    Backoff,
    ChildSpec,
    Escalation,
    Intensity,
    Link,
    Registry,
    Strategy,
    Supervisor,
)
from supervisors.spec import SupervisorConfig

log = structlog.get_logger("gaia.daemon")

EXIT_OK = 0
EXIT_ESCALATED = 1
LOCK_CHECK_INTERVAL = 1.0  # seconds between checks that daemon.lock is still this daemon's
# glibc gives each thread that allocates an arena of its own (up to 8 per core); a daemon
# that starts a thread per actor generation, control request and timer then grows its RSS
# with every restart although its Python objects do not (tracemalloc: +1.7 MiB traced for
# +28 MiB RSS over a crash storm). Two arenas halved that growth (3 rounds of 8 actor
# crashes: +5.4 MiB -> +2.6 MiB); allocation is not this daemon's bottleneck.
MALLOC_ARENAS = 2
M_ARENA_MAX = -8  # glibc's mallopt parameter number


def limit_malloc_arenas(count: int) -> bool:
    """Cap glibc's malloc arenas (``MALLOC_ARENA_MAX`` for this process, set before the
    actors' threads start); False where the C library is not glibc. Set ``MALLOC_ARENA_MAX``
    in the environment to choose another value."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False  # the operator chose; glibc read it at start
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, count))
    except (OSError, AttributeError):
        return False


def supervisor_config(settings: Settings, strategy: Strategy) -> SupervisorConfig:
    s = settings.supervision
    return SupervisorConfig(
        strategy=strategy,
        intensity=Intensity(s.max_restarts, s.max_seconds),
        backoff=Backoff(s.backoff_initial, s.backoff_max, s.backoff_jitter, s.stable_after),
        ping_interval=s.ping_interval,
        ping_timeout=s.ping_timeout,
    )


def make_listener(registry: Registry) -> Any:
    """Supervision events go to the bus (so they are logged, stored and streamed). While the
    bus or the store restarts they are held in the registry's outbox and sent once it is
    back; one held for the bus is logged here at once, and marked so the bus does not log it
    twice."""
    outbox = outbox_for(registry)

    def listener(event: str, data: Mapping[str, Any]) -> None:
        fields = dict(data)
        level = str(fields.pop("level", "info"))
        message = Event(
            event, level=level, actor=str(fields.get("supervisor", "")), data=fields_of(**fields)
        )
        if not outbox.tell("bus", message, held=lambda e: dataclasses.replace(e, logged=True)):
            getattr(log, level)(event, **fields)
        if event in RESTART_EVENTS:
            outbox.tell("store", Insert("actor_restarts", _restart_row(event, fields)))

    return listener


RESTART_EVENTS = frozenset(
    {
        SupervisorEvent.RESTART,
        SupervisorEvent.CHILD_HUNG,
        SupervisorEvent.LADDER_STEP,
        SupervisorEvent.ESCALATE,
        SupervisorEvent.CHILD_PARKED,
    }
)


def _restart_row(event: str, fields: Mapping[str, Any]) -> Any:
    return fields_of(
        ts=time.time(),
        supervisor=str(fields.get("supervisor", "")),
        child=str(fields.get("child", "")),
        generation=int(fields.get("generation", 0)),
        event=event,
        reason=str(fields.get("error", "")),
        delay=float(fields.get("delay", 0.0)),
    )


def build_children(
    settings: Settings,
    registry: Registry,
    capabilities: Sequence[types.ModuleType] | None = None,
) -> list[ChildSpec]:
    """The root's children in start order: store, bus, then ``services`` with each capability.

    The root is rest_for_one because everything depends on the store and the bus (a new bus
    has no subscriptions, so its dependants restart and subscribe again). The capabilities
    do not depend on each other: under ``services`` (one_for_one) a crash of the monitor
    restarts the monitor alone, not a running promotion or the control socket.
    """
    listener = make_listener(registry)
    children = [
        ChildSpec("store", lambda link: Store.start(link, settings), shutdown_timeout=15.0),
        ChildSpec("bus", EventBus.start),
    ]
    modules = CAPABILITIES if capabilities is None else capabilities
    services = _capabilities(modules, settings, registry, listener)
    if services:
        children.append(
            Supervisor.child_spec(
                "services",
                services,
                config=supervisor_config(settings, Strategy.ONE_FOR_ONE),
                listener=listener,
                shutdown_timeout=sum(s.shutdown_timeout for s in services) + 5,
            )
        )
    return children


def start_root(
    settings: Settings,
    registry: Registry,
    *,
    capabilities: Sequence[types.ModuleType] | None = None,
    children: Sequence[ChildSpec] | None = None,
    on_escalate: Callable[[Escalation], None] | None = None,
) -> pykka.ActorRef[Supervisor]:
    """The root supervisor (rest_for_one, supervision events to the bus) over ``children``,
    by default ``build_children(settings, registry, capabilities)``: the daemon's tree, or a
    part of it for an offline command, a benchmark or a test."""
    if children is None:
        children = build_children(settings, registry, capabilities)
    return Supervisor.start_root(
        "root",
        children,
        registry,
        config=supervisor_config(settings, Strategy.REST_FOR_ONE),
        listener=make_listener(registry),
        on_escalate=on_escalate,
    )


def start_capabilities(
    settings: Settings, registry: Registry, capabilities: Sequence[types.ModuleType]
) -> pykka.ActorRef[Supervisor]:
    """The store, the bus and ``capabilities`` under a root: a part of the tree for an
    offline command (``CommandContext.start_tree``)."""
    return start_root(settings, registry, capabilities=capabilities)


def _capabilities(
    modules: Sequence[types.ModuleType], settings: Settings, registry: Registry, listener: Any
) -> list[ChildSpec]:
    # Each capability module exposes child_specs(settings, registry, listener, config).
    specs: list[ChildSpec] = []
    for module in modules:
        specs.extend(module.child_specs(settings, registry, listener, supervisor_config))
    return specs


CAPABILITIES: list[types.ModuleType] = [
    alerts_tree,  # first: its router subscribes before anything it alerts on is published
    environment_tree,
    monitoring,
    pipeline,
    improve_tree,
    control,
]  # control stays last

# The daemon serves every operator command: importing their modules registers them.
catalog.load_all()


def check_needs(capabilities: Sequence[types.ModuleType]) -> None:
    """Refuse to start when a module a capability imports only at first use (its ``NEEDS``)
    cannot be found: said at start, not as an ImportError at the first use hours later.
    Found, not imported: the start stays as cheap as the lazy imports made it."""
    for capability in capabilities:
        for name in getattr(capability, "NEEDS", ()):
            if importlib.util.find_spec(name) is None:
                label = capability.__name__.split(".")[1]
                raise DaemonError(
                    f"cannot start: the {label} capability needs the module {name!r}, "
                    "which cannot be found (is it installed?)"
                )


class Daemon:
    """``python run.py``: the foreground daemon on one state directory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = Registry()
        self.stop_requested = threading.Event()
        self.exit_code = EXIT_OK
        self.root: pykka.ActorRef[Any] | None = None
        self._lock: StateLock | None = None
        self.escalation: Escalation | None = None

    def run(self) -> int:
        check_needs(CAPABILITIES)
        self.acquire_lock()
        logs.configure(self.settings.logging, self.settings.log_path)
        self._install_signals()
        limit_malloc_arenas(MALLOC_ARENAS)
        log.info(
            "daemon.starting",
            state_dir=str(self.settings.state_dir),
            config=str(self.settings.config_path),
            pid=os.getpid(),
        )
        try:
            self.start()
            if self.stop_requested.is_set():
                # A stop came during the start: what started is stopped again, not announced.
                log.info("daemon.start_interrupted", actors=self.registry.names())
            else:
                log.info("daemon.started", actors=self.registry.names())
            while not self.stop_requested.wait(LOCK_CHECK_INTERVAL):
                self.check_lock()
        finally:
            self.stop()
            self.last_alert()
            log.info("daemon.stopped", exit_code=self.exit_code)
            logs.shutdown()
            self.release_lock()
        return self.exit_code

    def start(self) -> None:
        self.root = start_root(self.settings, self.registry, on_escalate=self._on_escalate)

    def stop(self) -> None:
        root, self.root = self.root, None
        if root is None:
            return
        try:
            root.stop(block=True, timeout=self.settings.daemon.shutdown_timeout)
        except pykka.Timeout:
            log.error("daemon.shutdown_timeout", seconds=self.settings.daemon.shutdown_timeout)
            self.exit_code = self.exit_code or EXIT_ESCALATED

    def request_stop(self, *_: Any) -> None:
        # The tree hears it at once, not only once the root stops (after its start): a start
        # still under way (a slow first build) is cancelled and nothing more is started.
        self.registry.stopping.set()
        self.stop_requested.set()

    def _on_escalate(self, escalation: Escalation) -> None:
        log.critical(
            "daemon.escalation",
            child=escalation.child,
            supervisor=escalation.supervisor,
            reason=escalation.reason,
        )
        self.exit_code = EXIT_ESCALATED
        self.escalation = escalation
        self.stop_requested.set()

    def last_alert(self) -> None:
        """The root's escalation to the alert receivers, the last thing the daemon sends
        (bounded by ``[alerts] final_timeout``)."""
        if self.escalation is None or not self.settings.alerts.receivers:
            return
        try:
            sent = send_last_alert(
                self.settings,
                build_receiver,
                self.escalation.child,
                self.escalation.reason,
            )
        except Exception as exc:  # noqa: BLE001 - the daemon exits all the same; it is logged
            log.error("daemon.last_alert_failed", error=str(exc))
            return
        log.info("daemon.last_alert", receivers=sent)

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGUSR1, pykka.debug.log_thread_tracebacks)

    # The state directory lock: one daemon per state directory (gaia_actors/lock.py)

    def acquire_lock(self) -> None:
        self._lock = StateLock(self.settings.state_dir, self.settings.socket_path)
        self._lock.acquire()

    def check_lock(self) -> None:
        """Put ``daemon.lock`` back if it was deleted or replaced (clients read the pid)."""
        if self._lock is None:
            return
        try:
            if self._lock.check():
                log.warning("daemon.lock_file_restored", path=str(self._lock.path))
        except (OSError, DaemonError) as exc:
            log.error("daemon.lock_file_unwritable", path=str(self._lock.path), error=str(exc))

    def release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


__all__ = [
    "CAPABILITIES",
    "Daemon",
    "Link",
    "build_children",
    "start_capabilities",
    "supervisor_config",
]
