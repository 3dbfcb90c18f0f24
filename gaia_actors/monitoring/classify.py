"""Health classification: one environment's probe results → healthy / degraded / down.

In the spirit of Kubernetes probes (`failureThreshold` 3) and Gatus (`failure-threshold` 3,
`success-threshold` 2): a single blip never changes the state; a run of them does.

Step 1 — each result is *assessed* on its own (`assess`), first rule that matches:

==========  ==================================================================================
``fail``    no connection (refused, connect timeout, DNS, ...); no complete answer (read
            timeout, reset, closed, not HTTP, internal error); a status that is neither expected
            nor in `degraded_statuses` (5xx, 404, an unexpected 3xx)
``warn``    an unexpected status in `degraded_statuses` (default: 4xx except 404 — the service
            answers but refuses: 429 rate limit, 401/403 auth); an expected status with a body
            that is `too_large` or `bad_body`; a health JSON whose `status` field is not one of
            `healthy_body_statuses`; an expected status slower than `latency_degraded_s`
``pass``    everything else: expected status, clean body, fast enough
==========  ==================================================================================

Step 2 — the state machine (`Classifier.observe`), starting at ``unknown``:

- **down** after `failure_threshold` consecutive ``fail`` checks, from any state. Always: a
  refused connection is not a fast path, because a dead process is already seen by the
  environment actor that owns it, and a restarting service refuses for a moment.
- **unknown** stays until the first answer (``pass`` → healthy, ``warn`` → degraded) or until
  it goes down; there is nothing to debounce against yet.
- **healthy → degraded** when `failure_threshold` consecutive checks are not ``pass`` (some
  ``warn``, or ``fail`` runs broken by ``warn``), or when the error rate is too high. One or two
  bad checks are tolerated and reported in `Verdict.reason`, but the state stays healthy.
- **degraded → healthy** after `success_threshold` consecutive ``pass`` checks, if the error
  rate is not too high.
- **down → up** after `success_threshold` consecutive answering checks (``pass`` or ``warn``);
  healthy if those were all ``pass``, else degraded.

Error rate: an error is any result that is not `ProbeResult.ok` (no connection, unexpected
status, or any error — slow answers are not errors). The rate is the errors among the last
`window` checks divided by `window` — checks not yet made count as successes, so a fresh window
cannot trip on one blip — and "too high" is strictly above `error_rate_degraded`. It catches
intermittent failures that never form a consecutive run (fail, pass, fail, pass, ...). The
window counts only checks made while the environment is up: it is cleared on going down, so an
outage already reported as down does not keep the environment degraded once it recovers.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from gaia_actors.monitoring.probes import ProbeErrorKind, ProbeResult

__all__ = [
    "DEFAULT_DEGRADED_STATUSES",
    "DEFAULT_HEALTHY_BODY_STATUSES",
    "Assessment",
    "Classifier",
    "HealthStatus",
    "Observation",
    "Thresholds",
    "Verdict",
    "assess",
]

DEFAULT_DEGRADED_STATUSES = frozenset(range(400, 500)) - {404}
DEFAULT_HEALTHY_BODY_STATUSES = frozenset({"ok", "healthy", "up", "pass", "passing"})

# Errors after which the answer is incomplete or absent: the check failed whatever the status.
_FATAL_ERRORS = frozenset(
    {
        ProbeErrorKind.TIMEOUT,
        ProbeErrorKind.RESET,
        ProbeErrorKind.CLOSED,
        ProbeErrorKind.BAD_RESPONSE,
        ProbeErrorKind.INTERNAL,
    }
)


class HealthStatus(StrEnum):
    """An environment's health as the monitor reports it."""

    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"


class Observation(StrEnum):
    """What one check says on its own, before thresholds."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Classification settings; invalid values raise ValueError naming the field."""

    latency_degraded_s: float = 1.0
    error_rate_degraded: float = 0.3
    window: int = 10
    failure_threshold: int = 3
    success_threshold: int = 2
    degraded_statuses: frozenset[int] = DEFAULT_DEGRADED_STATUSES
    body_status_key: str | None = "status"  # None: ignore the health JSON's own verdict
    healthy_body_statuses: frozenset[str] = DEFAULT_HEALTHY_BODY_STATUSES

    def __post_init__(self) -> None:
        if not self.latency_degraded_s > 0:
            raise ValueError("thresholds: latency_degraded_s must be > 0 seconds")
        if not 0.0 <= self.error_rate_degraded <= 1.0:
            raise ValueError("thresholds: error_rate_degraded must be within 0..1")
        for key in ("window", "failure_threshold", "success_threshold"):
            if getattr(self, key) < 1:
                raise ValueError(f"thresholds: {key} must be >= 1")
        # Configuration may hand over sets or lists; keep the dataclass hashable.
        object.__setattr__(self, "degraded_statuses", frozenset(self.degraded_statuses))
        healthy = frozenset(s.lower() for s in self.healthy_body_statuses)
        object.__setattr__(self, "healthy_body_statuses", healthy)


@dataclass(frozen=True, slots=True)
class Assessment:
    """One result judged alone: its observation and the reason for it."""

    observation: Observation
    reason: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """The state after one check. `consecutive_successes` counts ``pass`` checks."""

    name: str
    status: HealthStatus
    previous: HealthStatus
    changed: bool
    reason: str
    observation: Observation
    consecutive_failures: int
    consecutive_successes: int
    error_rate: float
    checks: int
    errors: int
    latency_s: float
    checked_at: float


def assess(result: ProbeResult, thresholds: Thresholds) -> Assessment:
    """Judge one result on its own (step 1 of the module docstring)."""
    failure = _connection_failure(result) or _status_failure(result, thresholds)
    if failure is not None:
        return failure
    return _answer_warning(result, thresholds) or Assessment(Observation.PASS, "ok")


def _connection_failure(result: ProbeResult) -> Assessment | None:
    if not result.ok_connect or result.error in _FATAL_ERRORS:
        kind = result.error or "no connection"
        return Assessment(Observation.FAIL, f"{kind}: {result.detail}")
    if result.status is None:
        return Assessment(Observation.FAIL, f"no status: {result.detail}")
    return None


def _status_failure(result: ProbeResult, thresholds: Thresholds) -> Assessment | None:
    if result.status_expected:
        return None
    if result.status in thresholds.degraded_statuses:
        return Assessment(Observation.WARN, f"status {result.status} (non-fatal)")
    return Assessment(Observation.FAIL, f"status {result.status}")


def _answer_warning(result: ProbeResult, thresholds: Thresholds) -> Assessment | None:
    if result.error is not None:
        return Assessment(Observation.WARN, f"{result.error}: {result.detail}")
    body_status = _body_status(result, thresholds)
    if body_status is not None and body_status not in thresholds.healthy_body_statuses:
        return Assessment(Observation.WARN, f"health body reports {body_status!r}")
    if result.latency_s > thresholds.latency_degraded_s:
        return Assessment(
            Observation.WARN,
            f"latency {result.latency_s:.3f} s > {thresholds.latency_degraded_s} s",
        )
    return None


def _body_status(result: ProbeResult, thresholds: Thresholds) -> str | None:
    if thresholds.body_status_key is None or result.body_json is None:
        return None
    value = result.body_json.get(thresholds.body_status_key)
    return value.lower() if isinstance(value, str) else None


class Classifier:
    """One environment's health state machine (step 2 of the module docstring).

    Not thread-safe: one owner (the HealthMonitor actor) feeds it results in order.
    """

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        self._t = thresholds or Thresholds()
        self._status = HealthStatus.UNKNOWN
        self._fail_run = 0  # consecutive fail
        self._not_pass_run = 0  # consecutive warn or fail
        self._pass_run = 0  # consecutive pass
        self._answer_run = 0  # consecutive pass or warn
        self._window: deque[bool] = deque(maxlen=self._t.window)  # True = error
        self._checks = 0
        self._errors = 0

    @property
    def status(self) -> HealthStatus:
        return self._status

    @property
    def thresholds(self) -> Thresholds:
        return self._t

    def observe(self, result: ProbeResult) -> Verdict:
        """Feed one result; the verdict says the state, whether it changed and why."""
        assessment = assess(result, self._t)
        self._count(assessment.observation, error=not result.ok)
        previous = self._status
        status, reason = self._decide(assessment)
        if status is HealthStatus.DOWN:
            self._window.clear()
        self._status = status
        return Verdict(
            name=result.name,
            status=status,
            previous=previous,
            changed=status is not previous,
            reason=reason,
            observation=assessment.observation,
            consecutive_failures=self._fail_run,
            consecutive_successes=self._pass_run,
            error_rate=self._error_rate(),
            checks=self._checks,
            errors=self._errors,
            latency_s=result.latency_s,
            checked_at=result.checked_at,
        )

    def _count(self, observation: Observation, *, error: bool) -> None:
        failed = observation is Observation.FAIL
        passed = observation is Observation.PASS
        self._fail_run = self._fail_run + 1 if failed else 0
        self._not_pass_run = 0 if passed else self._not_pass_run + 1
        self._pass_run = self._pass_run + 1 if passed else 0
        self._answer_run = 0 if failed else self._answer_run + 1
        self._window.append(error)
        self._checks += 1
        self._errors += error

    def _error_rate(self) -> float:
        return sum(self._window) / self._t.window

    def _rate_too_high(self) -> bool:
        return self._error_rate() > self._t.error_rate_degraded

    def _decide(self, assessment: Assessment) -> tuple[HealthStatus, str]:
        if self._fail_run >= self._t.failure_threshold:
            return HealthStatus.DOWN, (
                f"{self._fail_run} consecutive failures, last: {assessment.reason}"
            )
        match self._status:
            case HealthStatus.UNKNOWN:
                return self._from_unknown(assessment)
            case HealthStatus.DOWN:
                return self._from_down(assessment)
            case HealthStatus.HEALTHY:
                return self._from_healthy(assessment)
            case HealthStatus.DEGRADED:
                return self._from_degraded(assessment)

    def _from_unknown(self, assessment: Assessment) -> tuple[HealthStatus, str]:
        if assessment.observation is Observation.FAIL:
            return HealthStatus.UNKNOWN, self._failing(assessment)
        if assessment.observation is Observation.WARN:
            return HealthStatus.DEGRADED, assessment.reason
        if self._rate_too_high():
            return HealthStatus.DEGRADED, self._rate_reason()
        return HealthStatus.HEALTHY, assessment.reason

    def _from_down(self, assessment: Assessment) -> tuple[HealthStatus, str]:
        needed = self._t.success_threshold
        if assessment.observation is Observation.FAIL:
            return HealthStatus.DOWN, self._failing(assessment)
        if self._answer_run < needed:
            return HealthStatus.DOWN, (
                f"answering {self._answer_run}/{needed} before up: {assessment.reason}"
            )
        if self._pass_run >= needed:
            return HealthStatus.HEALTHY, f"{self._pass_run} consecutive passing checks"
        return HealthStatus.DEGRADED, f"answering again, not yet passing: {assessment.reason}"

    def _from_healthy(self, assessment: Assessment) -> tuple[HealthStatus, str]:
        if self._rate_too_high():
            return HealthStatus.DEGRADED, self._rate_reason()
        run, needed = self._not_pass_run, self._t.failure_threshold
        if run >= needed:
            return HealthStatus.DEGRADED, (
                f"{run} consecutive checks not passing, last: {assessment.reason}"
            )
        if run:
            return HealthStatus.HEALTHY, f"tolerated {run}/{needed}: {assessment.reason}"
        return HealthStatus.HEALTHY, assessment.reason

    def _from_degraded(self, assessment: Assessment) -> tuple[HealthStatus, str]:
        if assessment.observation is not Observation.PASS:
            return HealthStatus.DEGRADED, self._failing(assessment)
        if self._rate_too_high():
            return HealthStatus.DEGRADED, self._rate_reason()
        run, needed = self._pass_run, self._t.success_threshold
        if run >= needed:
            return HealthStatus.HEALTHY, f"{run} consecutive passing checks"
        return HealthStatus.DEGRADED, f"passing {run}/{needed} before healthy"

    def _failing(self, assessment: Assessment) -> str:
        if assessment.observation is not Observation.FAIL:
            return assessment.reason
        return (
            f"{self._fail_run}/{self._t.failure_threshold} consecutive failures before down, "
            f"last: {assessment.reason}"
        )

    def _rate_reason(self) -> str:
        return (
            f"error rate {self._error_rate():.0%} over the last {self._t.window} checks "
            f"exceeds {self._t.error_rate_degraded:.0%}"
        )
