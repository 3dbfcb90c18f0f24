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
