"""Monitoring: health checks, metrics, failover and load balancing.

`probes` checks many health URLs at once (`checks`: a target and its result; `http11`: the
HTTP/1.1 exchange); `classify` turns each environment's stream of probe results into healthy /
degraded / down with thresholds. The actors build on these two and hold no HTTP or threshold
logic of their own: `monitor` (HealthMonitor, over a round's I/O in `healthround` and each
environment's state in `envstate`), `metrics` (MetricsCollector, over `scrape`, the Prometheus
text parser `exposition` and the daemon's own `exporter`), `failover` (FailoverAgent, keeping
`incidents` on record) and `balancer` (LoadBalancer), started by `tree.child_specs` in that
order; `commands` holds the operator commands (read as text by `views`, from the store by
`stored`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from supervisors.lazy import lazy_names

if TYPE_CHECKING:
    from gaia_actors.health import DEFAULT_EXPECTED_STATUS
    from gaia_actors.monitoring.balancer import LoadBalancer, NoEnvironmentAvailable
    from gaia_actors.monitoring.checks import ProbeResult, ProbeTarget
    from gaia_actors.monitoring.classify import (
        Assessment,
        Classifier,
        HealthStatus,
        Observation,
        Thresholds,
        Verdict,
        assess,
    )
    from gaia_actors.monitoring.failover import FailoverAgent
    from gaia_actors.monitoring.http11 import ProbeErrorKind
    from gaia_actors.monitoring.metrics import MetricsCollector
    from gaia_actors.monitoring.monitor import HealthMonitor
    from gaia_actors.monitoring.probes import Prober
    from gaia_actors.monitoring.tree import child_specs

# Each public name and the module that defines it, imported on first use (PEP 562): a
# command line that needs only the operator commands' module does not import every actor
# here and their HTTP and metrics libraries.
_HOMES: dict[str, str] = {
    "Assessment": "gaia_actors.monitoring.classify",
    "Classifier": "gaia_actors.monitoring.classify",
    "DEFAULT_EXPECTED_STATUS": "gaia_actors.health",
    "FailoverAgent": "gaia_actors.monitoring.failover",
    "HealthMonitor": "gaia_actors.monitoring.monitor",
    "HealthStatus": "gaia_actors.monitoring.classify",
    "LoadBalancer": "gaia_actors.monitoring.balancer",
    "MetricsCollector": "gaia_actors.monitoring.metrics",
    "NoEnvironmentAvailable": "gaia_actors.monitoring.balancer",
    "Observation": "gaia_actors.monitoring.classify",
    "ProbeErrorKind": "gaia_actors.monitoring.http11",
    "ProbeResult": "gaia_actors.monitoring.checks",
    "ProbeTarget": "gaia_actors.monitoring.checks",
    "Prober": "gaia_actors.monitoring.probes",
    "Thresholds": "gaia_actors.monitoring.classify",
    "Verdict": "gaia_actors.monitoring.classify",
    "assess": "gaia_actors.monitoring.classify",
    "child_specs": "gaia_actors.monitoring.tree",
}

# Imported with the metrics actor, not with this package: the daemon checks at start that it
# can be found.
NEEDS = ("prometheus_client",)


__getattr__, __dir__ = lazy_names(__name__, globals(), _HOMES)


__all__ = [
    "DEFAULT_EXPECTED_STATUS",
    "Assessment",
    "Classifier",
    "FailoverAgent",
    "HealthMonitor",
    "HealthStatus",
    "LoadBalancer",
    "MetricsCollector",
    "NoEnvironmentAvailable",
    "Observation",
    "ProbeErrorKind",
    "ProbeResult",
    "ProbeTarget",
    "Prober",
    "Thresholds",
    "Verdict",
    "assess",
    "child_specs",
]
