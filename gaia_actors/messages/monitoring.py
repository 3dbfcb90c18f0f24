"""The monitoring actors' messages (``monitor``, ``metrics``, ``failover``, ``balancer``)."""

from __future__ import annotations

from gaia_actors.messages.base import EnvName, message


@message
class GetHealth:
    """Query: health snapshots (one environment, or all when ``env`` is empty)."""

    env: EnvName = ""


@message
class CheckNow:
    """Command: run a health round now instead of waiting for the schedule."""


@message
class ScrapeNow:
    """Command: scrape every environment's /metrics now."""


@message
class GetIncidents:
    """Query: recent incidents with time to detect and time to recover."""

    env: EnvName = ""
    limit: int = 20


@message
class Route:
    """Query: pick the environment that should serve the next request of ``pool``."""

    pool: tuple[str, ...] = ()


@message
class RouteDone:
    """Command: a request routed to ``env`` finished (lowers its in-flight load)."""

    env: str


@message
class WatchHealth:
    """Command: after every health round, tell actor ``subscriber`` a HealthRound."""

    subscriber: str


@message
class HealthReport:
    """One environment after one check (part of a HealthRound)."""

    env: str
    status: str  # healthy | degraded | down | unknown
    previous: str
    observation: str  # pass | warn | fail: the check on its own, before thresholds
    consecutive_failures: int
    failing_since: float | None  # checked_at of the first failed check of the current run
    latency_s: float
    http_status: int | None
    checked_at: float
    reason: str = ""
    pid: int | None = None
    alive: bool | None = None  # None: no pid file, so nobody knows
    uptime_s: float | None = None  # of the process, from /proc
    verified: bool = False  # the process passed its environment's start-up health check


@message
class HealthRound:
    """Event: one health round's reports, told to the monitor's watchers (not the bus): one
    per check, in the order the checks started (an environment re-checked has several)."""

    reports: tuple[HealthReport, ...]
    started: float
    duration: float


@message
class ServiceCounters:
    """Command: an environment's own request and error totals, from its last scrape."""

    env: str
    requests: float | None
    errors: float | None
