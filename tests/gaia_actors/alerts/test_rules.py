"""Which bus events raise or resolve which alert (the events as their publishers send them)."""

from __future__ import annotations

import pytest

from gaia_actors.alerts import rules
from gaia_actors.messages import Event, fields_of


def _event(name: str, env: str = "prod", **data: object) -> Event:
    return Event(name, env=env, data=fields_of(**data), ts=100.0)


FAILED = _event("environment.failed", reason="restart budget spent")
ROLLED_BACK = _event("environment.rolled_back", reason="ladder", release="r1", previous="r2")
PROMOTION = _event(
    "pipeline.failed", kind="staging_to_prod", status="failed", error="load", rollback="failed"
)
HEALTHY = _event("health.changed", old="down", new="healthy")
REGRESSED = _event("alert.improve_regressed", env="", reasons=["coverage -3.0 points"])
ONCE = ":100.000000"  # a one-off alert's key ends with its event's time


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (FAILED, [("fire", "environment_failed:prod", "critical")]),
        (_event("environment.blocked"), [("fire", "environment_blocked:prod", "critical")]),
        (_event("environment.unblocked"), [("resolve", "environment_blocked:prod", "warning")]),
        (
            HEALTHY,
            [
                ("resolve", "environment_failed:prod", "warning"),
                ("resolve", "environment_degraded:prod", "warning"),
            ],
        ),
        (
            _event("environment.healthy"),
            [
                ("resolve", "environment_failed:prod", "warning"),
                ("resolve", "environment_degraded:prod", "warning"),
                ("resolve", "environment_blocked:prod", "warning"),
            ],
        ),
        (_event("health.changed", old="healthy", new="down"), []),
        (ROLLED_BACK, [("fire", "environment_rolled_back:prod" + ONCE, "warning")]),
        (_event("alert.data_loss", lost=["x"]), [("fire", "data_loss:prod" + ONCE, "critical")]),
        (_event("alert.flapping"), [("fire", "environment_flapping:prod" + ONCE, "warning")]),
        (PROMOTION, [("fire", "promotion_failed:staging_to_prod", "critical")]),
        (_event("pipeline.failed", kind="dev_to_staging", status="cancelled"), []),
        (
            _event("pipeline.finished", kind="dev_to_staging"),
            [("resolve", "promotion_failed:dev_to_staging", "warning")],
        ),
        (REGRESSED, [("fire", "improve_regressed:" + ONCE, "warning")]),
        (_event("stage.finished"), []),
    ],
)
def test_events_raise_and_resolve_alerts(
    event: Event, expected: list[tuple[str, str, str]]
) -> None:
    assert [(c.action, c.key, c.severity) for c in rules.changes(event)] == expected


@pytest.mark.parametrize(
    ("event", "summary"),
    [
        (FAILED, "prod is FAILED and parked: restart budget spent"),
        (ROLLED_BACK, "prod rolled back from r2 to r1 (ladder)"),
        (PROMOTION, "promotion staging_to_prod failed: load; rollback: failed"),
        (REGRESSED, "an improve cycle regressed: coverage -3.0 points"),
    ],
)
def test_a_summary_says_what_happened(event: Event, summary: str) -> None:
    assert rules.changes(event)[0].summary == summary


def test_every_alert_name_a_rule_raises_is_listed() -> None:
    events = [_event(name, reason="x", kind="k", status="failed") for name in rules.RULES]
    raised = {c.name for e in events for c in rules.changes(e) if c.action == "fire"}
    raised |= {rules.degraded("prod", 0, "").name, rules.escalated("c", "root", "r", 0).name}
    assert raised == set(rules.ALERT_NAMES)


def test_the_router_subscribes_to_every_event_a_rule_reads() -> None:
    assert set(rules.RULES) == set(rules.EVENTS)
