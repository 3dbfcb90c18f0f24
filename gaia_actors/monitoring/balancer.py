"""LoadBalancer (``balancer``): which environment of a pool serves the next request.

``Route(pool)`` answers the healthiest environment of the pool (default: ``[balancer] pool``,
or every environment) with the lowest load, round-robin among equals:

1. healthy environments first; degraded ones only when no healthy one is left, and then the
   answer says so (``fallback: true`` and the reason); down, unknown (never seen answering)
   and stopped environments never;
2. among those, the fewest requests in flight, then the fewest routed within the last
   ``[balancer] window`` seconds (a request in flight for longer than the window counts as
   done; callers that can tell send ``RouteDone(env)``);
3. among equals, the next one after the last pick, in pool order.

No candidate at all is a ``NoEnvironmentAvailable`` (a ``Rejected``): the asker gets it, the
balancer carries on.

Health comes from ``health.changed`` events plus one ``GetHealth`` asked at start from a
thread (the monitor never asks the balancer anything, so this cannot deadlock); a process
exit (``environment.exited``/``failed``/``stopped``) takes an environment out at once, until
``environment.started``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pykka

from gaia_actors.actor import GaiaActor
from gaia_actors.errors import InvalidMessage, Rejected
from gaia_actors.events import EnvironmentEvent, HealthEvent
from gaia_actors.messages import Event, GetHealth, Route, RouteDone, Subscribe, Unsubscribe
from gaia_actors.monitoring.snapshot import HealthSnapshot
from gaia_actors.settings import Settings
from supervisors import Link, SupervisionError
from supervisors.records import record

__all__ = ["LoadBalancer", "NoEnvironmentAvailable", "RouteAnswer"]

EVENT_PATTERNS = (HealthEvent.CHANGED, EnvironmentEvent.ALL)
PREFERENCE = ("healthy", "degraded")  # routable statuses, best first
_PROCESS_DOWN = (EnvironmentEvent.EXITED, EnvironmentEvent.FAILED, EnvironmentEvent.STOPPED)
_INITIAL_ASK_TIMEOUT = 2.0


class NoEnvironmentAvailable(Rejected):
    """No environment of the pool is healthy or degraded."""

    def __init__(self, pool: tuple[str, ...], statuses: dict[str, str]) -> None:
        self.pool = pool
        self.statuses = statuses
        seen = ", ".join(f"{env} {status}" for env, status in statuses.items()) or "empty pool"
        super().__init__(f"no environment of pool [{', '.join(pool)}] can take a request: {seen}")


@record
class _InitialHealth:
    """The monitor's snapshots, asked for at start (from a thread)."""

    snapshots: tuple[tuple[str, str, float], ...]  # env, status, since


@dataclass
class _Backend:
    url: str
    status: str = "unknown"
    since: float = 0.0  # time of the status we hold; older news is ignored
    process_up: bool = True
    in_flight: deque[float] = field(default_factory=deque)  # monotonic start times
    routed: deque[float] = field(default_factory=deque)  # monotonic times, within the window

    def effective_status(self) -> str:
        return self.status if self.process_up else "stopped"

    def load(self, now: float, window: float) -> tuple[int, int]:
        for times in (self.in_flight, self.routed):
            while times and now - times[0] > window:
                times.popleft()
        return len(self.in_flight), len(self.routed)


@record
class RouteAnswer:
    """The balancer's answer to ``Route``: where the next request goes, and why."""

    env: str
    url: str
    status: str  # healthy, or degraded when nothing healthy is left
    fallback: bool  # no healthy environment was left
    in_flight: int
    recent: int  # requests routed to it within the load window
    rule: str  # which rule decided, in words that do not change per request
    reason: str
    candidates: Mapping[str, str]  # every environment of the pool -> its status


class LoadBalancer(GaiaActor):
    """Routes requests to the healthiest, least-loaded environment."""

    def __init__(self, link: Link, settings: Settings) -> None:
        super().__init__(link)
        self.window = settings.balancer.window
        self.backends = {
            env: _Backend(f"http://{e.host}:{e.port}") for env, e in settings.environments.items()
        }
        self.pool = settings.balancer.pool or tuple(self.backends)
        unknown = [env for env in self.pool if env not in self.backends]
        if unknown:
            raise ValueError(
                f"[balancer] pool names {', '.join(unknown)}, which is not an environment; "
                f"environments: {', '.join(self.backends) or 'none'}"
            )
        self.last: str | None = None
        self.routes = 0

    def on_start(self) -> None:
        self.tell("bus", Subscribe(self.name, EVENT_PATTERNS))
        threading.Thread(
            target=self._ask_initial_health, name=f"{self.name}-init", daemon=True
        ).start()

    def on_stop(self) -> None:
        super().on_stop()
        self.tell("bus", Unsubscribe(self.name))

    def receive(self, message: Any) -> Any:
        match message:
            case Route(pool=pool):
                return self._route(pool)
            case RouteDone(env=env):
                backend = self.backends.get(env)
                if backend is not None and backend.in_flight:
                    backend.in_flight.popleft()
            case Event():
                self._on_event(message)
            case _InitialHealth(snapshots=snapshots):
                for env, status, since in snapshots:
                    self._set_status(env, status, since)
            case _:
                return self.unhandled(message)
        return None

    def state(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            **super().state(),
            "routes": self.routes,
            "pool": list(self.pool),
            "backends": {
                env: {"status": b.effective_status(), "load": b.load(now, self.window)}
                for env, b in self.backends.items()
            },
        }

    # Health

    def _ask_initial_health(self) -> None:
        try:
            snapshots: list[HealthSnapshot] = self.registry.ask(
                "monitor", GetHealth(), timeout=_INITIAL_ASK_TIMEOUT
            )
        except (SupervisionError, Rejected) as exc:
            self.log.info("balancer.no_initial_health", error=str(exc))  # events will come
            return
        rows = tuple((s.env, s.status, s.since) for s in snapshots)
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(_InitialHealth(rows))

    def _on_event(self, event: Event) -> None:
        backend = self.backends.get(event.env)
        if backend is None:
            return
        if event.name == HealthEvent.CHANGED:
            self._set_status(event.env, str(event.get("new", "unknown")), event.ts)
        elif event.name in _PROCESS_DOWN:
            backend.process_up = False
        elif event.name == EnvironmentEvent.STARTED:
            backend.process_up = True

    def _set_status(self, env: str, status: str, since: float) -> None:
        backend = self.backends.get(env)
        if backend is not None and since >= backend.since:
            backend.status, backend.since = status, since

    # Routing

    def _route(self, pool: tuple[str, ...]) -> RouteAnswer:
        names = self._pool(pool)
        statuses = {env: self.backends[env].effective_status() for env in names}
        for wanted in PREFERENCE:
            candidates = [env for env in names if statuses[env] == wanted]
            if candidates:
                break
        else:
            raise NoEnvironmentAvailable(names, statuses)
        now = time.monotonic()
        loads = {env: self.backends[env].load(now, self.window) for env in candidates}
        least = min(loads.values())
        ties = [env for env in candidates if loads[env] == least]
        pick = self._next_after_last(names, ties)
        backend = self.backends[pick]
        backend.in_flight.append(now)
        backend.routed.append(now)
        self.last = pick
        self.routes += 1
        return RouteAnswer(
            env=pick,
            url=backend.url,
            status=statuses[pick],
            fallback=wanted != PREFERENCE[0],
            in_flight=least[0],
            recent=least[1],
            rule=_rule(wanted, ties),
            reason=_reason(pick, wanted, least, ties, statuses),
            candidates=MappingProxyType(statuses),
        )

    def _pool(self, pool: tuple[str, ...]) -> tuple[str, ...]:
        names = pool or self.pool
        unknown = [env for env in names if env not in self.backends]
        if unknown:
            known = ", ".join(self.backends) or "none"
            raise InvalidMessage("Route", f"no environment {unknown[0]!r}; known: {known}", "pool")
        return tuple(dict.fromkeys(names))

    def _next_after_last(self, names: tuple[str, ...], ties: list[str]) -> str:
        if self.last not in names:
            return ties[0]
        start = names.index(self.last)
        for env in names[start + 1 :] + names[: start + 1]:
            if env in ties:
                return env
        return ties[0]


def _rule(status: str, ties: list[str]) -> str:
    """Which rule decided, in words that do not change from one request to the next."""
    first = "healthy" if status == PREFERENCE[0] else f"no healthy one left, {status}"
    then = "round-robin among equals" if len(ties) > 1 else "least loaded"
    return f"{first}, {then}"


def _reason(
    pick: str, status: str, load: tuple[int, int], ties: list[str], statuses: dict[str, str]
) -> str:
    loaded = f"{load[0]} in flight, {load[1]} routed recently"
    if status != PREFERENCE[0]:
        others = ", ".join(f"{env} {s}" for env, s in statuses.items() if env != pick)
        why = f"no healthy environment left ({others or 'no other'}); {pick} is {status}"
    else:
        why = f"{pick} is healthy"
    why += f" with the lowest load ({loaded})"
    if len(ties) > 1:
        why += f"; round-robin among {', '.join(ties)}"
    return why
