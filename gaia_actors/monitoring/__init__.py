"""Monitoring: HTTP health probes and their classification (issue 8).

`probes` checks many health URLs at once; `classify` turns each environment's stream of probe
results into healthy / degraded / down with thresholds. The actors that schedule them
(HealthMonitor and friends) build on these two and hold no HTTP or threshold logic of their own.
"""

from __future__ import annotations

from gaia_actors.monitoring.classify import (
    Assessment,
    Classifier,
    HealthStatus,
    Observation,
    Thresholds,
    Verdict,
    assess,
)
from gaia_actors.monitoring.probes import (
    DEFAULT_EXPECTED_STATUS,
    ProbeErrorKind,
    Prober,
    ProbeResult,
    ProbeTarget,
)

__all__ = [
    "DEFAULT_EXPECTED_STATUS",
    "Assessment",
    "Classifier",
    "HealthStatus",
    "Observation",
    "ProbeErrorKind",
    "ProbeResult",
    "ProbeTarget",
    "Prober",
    "Thresholds",
    "Verdict",
    "assess",
]
