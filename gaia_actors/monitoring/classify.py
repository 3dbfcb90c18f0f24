"""Health classification: one environment's probe results → healthy / degraded / down.

In the spirit of Kubernetes probes (`failureThreshold` 3) and Gatus (`failure-threshold` 3,
`success-threshold` 2): a single blip never changes the state; a run of them does.

Step 1 — each result is *assessed* on its own (`assess`) by the project's one health verdict
(`gaia_actors.health.judge`, with the environment's `BodyRule`), the same that deploys, the
pipeline's health stage and rollbacks use:

==========  ==================================================================================
``fail``    unhealthy: no connection (refused, connect timeout, DNS, ...); no complete answer
            (read timeout, reset, closed, not HTTP, internal error); an error status (5xx,
            404); a health body whose field reports a down value
``warn``    degraded: a non-fatal 4xx (429, 401, ...); a body that is `too_large` or declares
            JSON and is not an object; a health body reporting a degraded value; and, for the
            monitor only, a healthy answer slower than `latency_degraded_s`
``pass``    healthy, and fast enough
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

A process that has just started refuses connections until it listens. While the monitor knows
an environment to be starting (`observe(..., starting=True)`), a refused connection is
reported but counts nowhere: no threshold, no error rate, no change of state.
"""

from __future__ import annotations

from collections import deque
from enum import StrEnum

from gaia_actors.health import BodyRule, Health, Judgement, judge
from gaia_actors.monitoring.checks import ProbeResult
from gaia_actors.monitoring.http11 import ProbeErrorKind
from supervisors.records import record

__all__ = [
    "Assessment",
    "Classifier",
    "HealthStatus",
    "Observation",
    "Thresholds",
    "Verdict",
    "assess",
    "judge_result",
]


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


@record
class Thresholds:
    """Classification settings; invalid values raise ValueError naming the field."""

    latency_degraded_s: float = 1.0
    error_rate_degraded: float = 0.3
    window: int = 10
    failure_threshold: int = 3
    success_threshold: int = 2

    def __post_init__(self) -> None:
        if not self.latency_degraded_s > 0:
            raise ValueError("thresholds: latency_degraded_s must be > 0 seconds")
        if not 0.0 <= self.error_rate_degraded <= 1.0:
            raise ValueError("thresholds: error_rate_degraded must be within 0..1")
        for key in ("window", "failure_threshold", "success_threshold"):
            if getattr(self, key) < 1:
                raise ValueError(f"thresholds: {key} must be >= 1")


@record
class Assessment:
    """One result judged alone: its observation and the reason for it."""

    observation: Observation
    reason: str


@record
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


_OBSERVATIONS = {
    Health.HEALTHY: Observation.PASS,
    Health.DEGRADED: Observation.WARN,
    Health.UNHEALTHY: Observation.FAIL,
}
_BODY_ERRORS = frozenset({ProbeErrorKind.BAD_BODY, ProbeErrorKind.TOO_LARGE})


def judge_result(result: ProbeResult, rule: BodyRule) -> Judgement | None:
    """The project's health verdict on a probe's answer; None when there was no answer."""
    if not result.ok_connect or result.status is None:
        return None
    if result.error is not None and result.error not in _BODY_ERRORS:
        return None
    problem = f"{result.error}: {result.detail}" if result.error is not None else None
    return judge(result.status, result.body_json, rule, body_problem=problem)


def assess(result: ProbeResult, thresholds: Thresholds, rule: BodyRule | None = None) -> Assessment:
    """Judge one result on its own (step 1 of the module docstring)."""
    judgement = judge_result(result, rule or BodyRule())
    if judgement is None:
        kind = result.error or ("no connection" if not result.ok_connect else "no status")
        return Assessment(Observation.FAIL, f"{kind}: {result.detail}")
    observation = _OBSERVATIONS[judgement.health]
    if observation is Observation.PASS and result.latency_s > thresholds.latency_degraded_s:
        return Assessment(
            Observation.WARN,
            f"latency {result.latency_s:.3f} s > {thresholds.latency_degraded_s} s",
        )
    return Assessment(observation, judgement.reason)


class Classifier:
    """One environment's health state machine (step 2 of the module docstring).

    Not thread-safe: one owner (the HealthMonitor actor) feeds it results in order.
    """

    def __init__(self, thresholds: Thresholds | None = None, rule: BodyRule | None = None) -> None:
        self._t = thresholds or Thresholds()
        self._rule = rule or BodyRule()
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

    def observe(self, result: ProbeResult, *, starting: bool = False) -> Verdict:
        """Feed one result; the verdict says the state, whether it changed and why.

        ``starting``: the environment's process has just been started and has not answered
        yet. A refused connection then is no service error: nothing listens *yet*. It is
        reported (observation ``fail``) but counts towards no threshold and no error rate,
        and leaves the state as it was.
        """
        assessment = assess(result, self._t, self._rule)
        previous = self._status
        if starting and result.error is ProbeErrorKind.REFUSED:
            status, reason = previous, f"starting: {assessment.reason}"
        else:
            self._count(assessment.observation, error=not result.ok)
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
