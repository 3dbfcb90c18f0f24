"""Health classification: per-check assessment and the thresholded state machine."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gaia_actors.health import BodyRule
from gaia_actors.monitoring.checks import ProbeResult
from gaia_actors.monitoring.classify import (
    Classifier,
    HealthStatus,
    Observation,
    Thresholds,
    Verdict,
    assess,
)
from gaia_actors.monitoring.http11 import ProbeErrorKind

HEALTHY, DEGRADED, DOWN, UNKNOWN = (
    HealthStatus.HEALTHY,
    HealthStatus.DEGRADED,
    HealthStatus.DOWN,
    HealthStatus.UNKNOWN,
)


def result(
    status: int | None = 200,
    *,
    latency: float = 0.01,
    error: ProbeErrorKind | None = None,
    connected: bool = True,
    body: dict[str, Any] | None = None,
    expected: range | frozenset[int] = range(200, 400),
) -> ProbeResult:
    return ProbeResult(
        name="prod",
        url="http://127.0.0.1:8080/health",
        ok_connect=connected,
        status=status if connected else None,
        status_expected=status is not None and status in expected,
        latency_s=latency,
        error=error,
        detail=None if error is None else f"{error} detail",
        body_json=body,
        checked_at=1_700_000_000.0,
    )


OK = result()
SLOW = result(latency=5.0)
REFUSED = result(None, connected=False, error=ProbeErrorKind.REFUSED)
TIMEOUT = result(None, error=ProbeErrorKind.TIMEOUT)
ERROR_500 = result(500)
LIMITED_429 = result(429)

BY_LETTER = {"P": OK, "W": SLOW, "F": REFUSED}


def feed(classifier: Classifier, checks: str) -> list[Verdict]:
    """Feed results spelled as letters: P pass, W warn (slow), F fail (refused)."""
    return [classifier.observe(BY_LETTER[letter]) for letter in checks]


def statuses(checks: str, thresholds: Thresholds | None = None) -> list[HealthStatus]:
    return [v.status for v in feed(Classifier(thresholds), checks)]


# -- step 1: one result on its own -------------------------------------------------------------


@pytest.mark.parametrize(
    ("probe", "observation"),
    [
        (OK, Observation.PASS),
        (SLOW, Observation.WARN),
        (REFUSED, Observation.FAIL),
        (TIMEOUT, Observation.FAIL),
        (result(200, error=ProbeErrorKind.TIMEOUT), Observation.FAIL),  # status, then stalled
        (result(None, error=ProbeErrorKind.RESET), Observation.FAIL),
        (ERROR_500, Observation.FAIL),
        (result(503), Observation.FAIL),
        (result(404), Observation.FAIL),
        (LIMITED_429, Observation.WARN),
        (result(401), Observation.WARN),
        (result(200, error=ProbeErrorKind.BAD_BODY), Observation.WARN),
        (result(200, error=ProbeErrorKind.TOO_LARGE), Observation.WARN),
        (result(500, error=ProbeErrorKind.TOO_LARGE), Observation.FAIL),
        (result(body={"status": "degraded"}), Observation.WARN),
        (result(body={"status": "down"}), Observation.FAIL),
        (result(body={"status": "green"}), Observation.PASS),
        (result(body={"status": "UP"}), Observation.PASS),
        (result(body={"state": "whatever"}), Observation.PASS),
    ],
)
def test_assess_judges_one_result(probe: ProbeResult, observation: Observation) -> None:
    assert assess(probe, Thresholds()).observation is observation


def test_assess_explains_itself() -> None:
    assert assess(SLOW, Thresholds()).reason == "latency 5.000 s > 1.0 s"
    assert assess(LIMITED_429, Thresholds()).reason == "HTTP 429 (non-fatal)"
    assert assess(REFUSED, Thresholds()).reason == "refused: refused detail"
    assert assess(result(body={"status": "Down"}), Thresholds()).reason == (
        "health body reports status='down'"
    )


def test_body_status_can_be_ignored() -> None:
    rule = BodyRule(key="")
    assert assess(result(body={"status": "down"}), Thresholds(), rule).observation is (
        Observation.PASS
    )


def test_a_configured_value_and_field_change_the_verdict() -> None:
    rule = BodyRule(key="checks.db", down=frozenset({"RED"}))
    red = result(body={"checks": {"db": "red"}, "status": "down"})
    assert assess(red, Thresholds(), rule).observation is Observation.FAIL
    assert assess(result(body={"status": "down"}), Thresholds(), rule).observation is (
        Observation.PASS
    )


def test_degraded_statuses_are_configurable() -> None:
    rule = BodyRule(degraded_statuses=frozenset({503}))
    assert assess(result(503), Thresholds(), rule).observation is Observation.WARN
    assert assess(LIMITED_429, Thresholds(), rule).observation is Observation.FAIL


# -- step 2: the state machine -----------------------------------------------------------------


def test_starts_unknown_and_first_pass_is_healthy() -> None:
    classifier = Classifier()
    assert classifier.status is UNKNOWN
    verdict = classifier.observe(OK)
    assert (verdict.previous, verdict.status, verdict.changed) == (UNKNOWN, HEALTHY, True)
    assert verdict.status == "healthy"  # a str for logs and the store


def test_first_warn_is_degraded() -> None:
    assert statuses("W") == [DEGRADED]


def test_unknown_stays_unknown_until_failure_threshold_then_down() -> None:
    assert statuses("FFF") == [UNKNOWN, UNKNOWN, DOWN]


def test_one_failure_does_not_flap_a_healthy_state() -> None:
    verdicts = feed(Classifier(), "PPFP")
    assert [v.status for v in verdicts] == [HEALTHY] * 4
    assert [v.changed for v in verdicts] == [True, False, False, False]
    assert verdicts[2].reason.startswith("tolerated 1/3: refused")
    assert verdicts[2].consecutive_failures == 1
    assert verdicts[3].consecutive_failures == 0


def test_failure_threshold_consecutive_failures_go_down() -> None:
    verdicts = feed(Classifier(), "PFFF")
    assert [v.status for v in verdicts] == [HEALTHY, HEALTHY, HEALTHY, DOWN]
    assert verdicts[3].changed
    assert verdicts[3].reason == "3 consecutive failures, last: refused: refused detail"


def test_failure_threshold_is_configurable() -> None:
    assert statuses("PF", Thresholds(failure_threshold=1)) == [HEALTHY, DOWN]
    # Before the 5th failure in a row, 4 errors in 10 checks already degrade it.
    assert statuses("PFFFFF", Thresholds(failure_threshold=5)) == [HEALTHY] * 4 + [DEGRADED, DOWN]


def test_timeouts_and_5xx_count_as_failures_toward_down() -> None:
    classifier = Classifier()
    classifier.observe(OK)
    assert [classifier.observe(r).status for r in (TIMEOUT, ERROR_500, REFUSED)] == [
        HEALTHY,
        HEALTHY,
        DOWN,
    ]


def test_repeated_slowness_degrades_but_one_slow_check_does_not() -> None:
    assert statuses("PWP") == [HEALTHY] * 3
    assert statuses("PWWW") == [HEALTHY, HEALTHY, HEALTHY, DEGRADED]


def test_failures_broken_by_a_warning_degrade_instead_of_down() -> None:
    assert statuses("PFWF") == [HEALTHY, HEALTHY, HEALTHY, DEGRADED]


def test_degraded_needs_success_threshold_passes_to_return_to_healthy() -> None:
    verdicts = feed(Classifier(), "WPP")
    assert [v.status for v in verdicts] == [DEGRADED, DEGRADED, HEALTHY]
    assert verdicts[1].reason == "passing 1/2 before healthy"
    assert verdicts[2].reason == "2 consecutive passing checks"


def test_success_threshold_is_configurable() -> None:
    assert statuses("WPPP", Thresholds(success_threshold=3)) == [DEGRADED] * 3 + [HEALTHY]


def test_down_needs_success_threshold_answers_to_come_back() -> None:
    assert statuses("FFFPP") == [UNKNOWN, UNKNOWN, DOWN, DOWN, HEALTHY]


def test_one_answer_does_not_bring_down_back_up() -> None:
    assert statuses("FFFPFP") == [UNKNOWN, UNKNOWN, DOWN, DOWN, DOWN, DOWN]


def test_down_recovers_to_degraded_when_the_answers_are_not_all_passing() -> None:
    assert statuses("FFFWPP") == [UNKNOWN, UNKNOWN, DOWN, DOWN, DEGRADED, HEALTHY]


def test_intermittent_failures_degrade_through_the_error_rate() -> None:
    # Never two failures in a row, so only the window can see it: 4 errors in 10 > 30 %.
    verdicts = feed(Classifier(), "PFPFPFPF")
    assert [v.status for v in verdicts] == [HEALTHY] * 7 + [DEGRADED]
    assert verdicts[-1].error_rate == pytest.approx(0.4)
    assert verdicts[-1].reason == "error rate 40% over the last 10 checks exceeds 30%"


def test_high_error_rate_keeps_degraded_despite_passes() -> None:
    verdicts = feed(Classifier(), "PFPFPFPFPP")
    assert [v.status for v in verdicts[-2:]] == [DEGRADED, DEGRADED]
    assert verdicts[-1].reason.startswith("error rate 40%")


def test_error_rate_counts_a_fresh_window_as_successes() -> None:
    verdict = feed(Classifier(), "F")[-1]
    assert verdict.error_rate == pytest.approx(0.1)  # 1 error, window of 10


def test_window_slides_out_old_errors() -> None:
    classifier = Classifier(Thresholds(window=4, error_rate_degraded=0.5))
    verdicts = feed(classifier, "PFPFPPP" + "PP")
    assert [v.error_rate for v in verdicts] == [0, 0.25, 0.25, 0.5, 0.5, 0.25, 0.25, 0, 0]


def test_going_down_clears_the_error_window() -> None:
    # The outage was reported as down; it must not keep the recovered service degraded.
    verdicts = feed(Classifier(), "PFFFFFFFPP")
    assert verdicts[-1].status is HEALTHY
    assert verdicts[-1].error_rate == 0


def test_slow_answers_are_not_errors() -> None:
    verdict = feed(Classifier(), "WWWW")[-1]
    assert (verdict.errors, verdict.error_rate) == (0, 0)


def test_verdict_counts_checks_errors_and_runs() -> None:
    classifier = Classifier()
    feed(classifier, "PPF")
    verdict = classifier.observe(LIMITED_429)
    assert (verdict.checks, verdict.errors) == (4, 2)
    assert (verdict.consecutive_failures, verdict.consecutive_successes) == (0, 0)
    assert verdict.observation is Observation.WARN
    assert (verdict.name, verdict.latency_s, verdict.checked_at) == ("prod", 0.01, OK.checked_at)


# -- properties over arbitrary sequences ---------------------------------------------------------

sequences = st.text(alphabet="PWF", max_size=60)
thresholds = st.builds(
    Thresholds,
    failure_threshold=st.integers(1, 5),
    success_threshold=st.integers(1, 5),
    window=st.integers(1, 12),
    error_rate_degraded=st.floats(0, 1),
)


@given(checks=sequences, limits=thresholds)
def test_down_only_after_failure_threshold_consecutive_failures(
    checks: str, limits: Thresholds
) -> None:
    for verdict in feed(Classifier(limits), checks):
        if verdict.status is DOWN and verdict.previous is not DOWN:
            assert verdict.consecutive_failures >= limits.failure_threshold


@given(checks=sequences, limits=thresholds)
def test_leaving_down_needs_success_threshold_answers_in_a_row(
    checks: str, limits: Thresholds
) -> None:
    verdicts = feed(Classifier(limits), checks)
    for index, verdict in enumerate(verdicts):
        if verdict.previous is DOWN and verdict.status is not DOWN:
            recent = checks[index + 1 - limits.success_threshold : index + 1]
            assert len(recent) == limits.success_threshold
            assert "F" not in recent


@given(checks=sequences, limits=thresholds)
def test_changed_means_the_status_differs_from_the_previous(
    checks: str, limits: Thresholds
) -> None:
    previous = UNKNOWN
    for verdict in feed(Classifier(limits), checks):
        assert verdict.previous is previous
        assert verdict.changed == (verdict.status is not previous)
        previous = verdict.status


# -- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"latency_degraded_s": 0}, "latency_degraded_s"),
        ({"error_rate_degraded": 1.5}, "error_rate_degraded"),
        ({"window": 0}, "window"),
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"success_threshold": 0}, "success_threshold"),
    ],
)
def test_invalid_thresholds_name_the_field(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Thresholds(**kwargs)  # type: ignore[arg-type]


def test_a_body_rule_accepts_plain_sets_and_stays_hashable() -> None:
    rule = BodyRule(
        degraded_statuses={429},  # type: ignore[arg-type]
        down={"RED"},  # type: ignore[arg-type]
    )
    assert rule.degraded_statuses == frozenset({429})
    assert rule.down == frozenset({"red"})
    assert hash(rule) == hash(BodyRule(degraded_statuses=frozenset({429}), down=frozenset({"red"})))


def test_a_refusal_while_starting_changes_nothing_and_counts_nowhere() -> None:
    classifier = Classifier(Thresholds(failure_threshold=1))
    for _ in range(5):
        verdict = classifier.observe(REFUSED, starting=True)
        assert (verdict.status, verdict.changed, verdict.errors, verdict.checks) == (
            UNKNOWN,
            False,
            0,
            0,
        )
    assert classifier.observe(OK, starting=True).status is HEALTHY
    assert classifier.observe(TIMEOUT, starting=True).status is DOWN  # only refusals wait
