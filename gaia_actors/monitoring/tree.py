"""The monitoring actors as children of the root supervisor.

In start order: ``monitor`` first (the others watch it or ask it), then ``metrics``,
``failover`` and ``balancer``. They do not need to restart together: a watcher renews its
``WatchHealth`` when it starts and when it sees a new monitor start, and the balancer asks
the monitor once at start and then follows ``health.changed`` events.
"""

from __future__ import annotations

from typing import Any

from gaia_actors.monitoring.balancer import LoadBalancer
from gaia_actors.monitoring.failover import FailoverAgent
from gaia_actors.monitoring.metrics import MetricsCollector
from gaia_actors.monitoring.monitor import HealthMonitor
from gaia_actors.settings import Settings
from supervisors import ChildSpec, Link, Registry

__all__ = ["child_specs"]


def child_specs(
    settings: Settings, registry: Registry, listener: Any, supervisor_config: Any
) -> list[ChildSpec]:
    """ChildSpecs of monitor, metrics, failover and balancer (the app's capability hook)."""

    def monitor(link: Link) -> Any:
        return HealthMonitor.start(link, settings)

    def metrics(link: Link) -> Any:
        return MetricsCollector.start(link, settings)

    def failover(link: Link) -> Any:
        return FailoverAgent.start(link, settings)

    def balancer(link: Link) -> Any:
        return LoadBalancer.start(link, settings)

    return [
        # A round in flight is cancelled on stop; closing the prober joins its loop thread.
        ChildSpec("monitor", monitor, shutdown_timeout=15.0),
        ChildSpec("metrics", metrics, shutdown_timeout=10.0),
        ChildSpec("failover", failover),
        ChildSpec("balancer", balancer),
    ]
