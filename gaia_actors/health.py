"""The one health verdict: what an answer from a service's health URL means.

The monitor's rounds, an environment's deploy verification, the pipeline's health stage and a
rollback's checks all judge an answer with `judge`, so the same answer gets the same verdict
wherever it is seen. The callers differ only in what they do with it: the monitor smooths
verdicts over several checks (thresholds) before it calls an environment degraded or down; a
deploy, a health stage and a rollback need `Health.HEALTHY` now.

Rules, in order:

1. No complete answer (refused, timed out, reset, not HTTP): **unhealthy**. The caller that
   fetched says why (`unanswered`).
2. The HTTP status. 200-399 (Kubernetes' success range) goes on to the body. A status in
   `degraded_statuses` (default: 4xx except 404: the service answers but refuses, as a 429
   rate limit or a 401 does) is **degraded**. Anything else (404, every 5xx) is **unhealthy**:
   an error answer, never mistaken for a hung service.
3. The body, read as JSON when its Content-Type says JSON (``application/json``,
   ``*/*+json``) or when there is none. A body that declares JSON but is not a JSON object,
   or that was cut off at the caller's size bound, is **degraded** (the service answers, the
   answer is broken). A body without a content type that is not JSON (a plain ``OK``) says
   nothing: the status alone decides.
4. The body's own verdict, read from the field `BodyRule.key` (default ``status``; a dotted
   path such as ``checks.db`` reads a nested object; ``""`` ignores bodies). Its value is
   compared lower-cased (booleans as ``true``/``false``, numbers as written): in
   `BodyRule.down` (default ``down fail failed failing unhealthy error critical``) it is
   **unhealthy**, in `BodyRule.degraded` (default ``degraded warn warning``) **degraded**, and
   anything else, or a missing field, is **healthy**: ``{"status": "green"}`` is healthy
   unless ``green`` is configured as down or degraded.

Each environment configures its rule (`health_body_key`, `health_down`, `health_degraded`).
Latency is not part of the verdict: only the monitor degrades slow answers
(``[monitor] latency_degraded``), because a service's first answers after a start are slow
by nature and a deploy must not fail for it.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, Protocol

from supervisors.records import record

__all__ = [
    "DEFAULT_DEGRADED_STATUSES",
    "DEFAULT_DEGRADED_VALUES",
    "DEFAULT_DOWN_VALUES",
    "DEFAULT_EXPECTED_STATUS",
    "BodyRule",
    "Health",
    "Judgement",
    "is_json",
    "judge",
    "read_json",
    "unanswered",
]

DEFAULT_EXPECTED_STATUS = range(200, 400)  # Kubernetes' HTTP probe success range
DEFAULT_DEGRADED_STATUSES = frozenset(range(400, 500)) - {404}
DEFAULT_DOWN_VALUES = ("down", "fail", "failed", "failing", "unhealthy", "error", "critical")
DEFAULT_DEGRADED_VALUES = ("degraded", "warn", "warning")


class Health(StrEnum):
    """What one answer says on its own."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


class RuleSettings(Protocol):
    """What ``BodyRule.of`` reads of an environment's settings (``EnvironmentSettings``)."""

    @property
    def health_body_key(self) -> str: ...
    @property
    def health_down(self) -> tuple[str, ...]: ...
    @property
    def health_degraded(self) -> tuple[str, ...]: ...


@record
class BodyRule:
    """How a health answer is read; invalid values raise ValueError naming the field."""

    key: str = "status"  # dotted path into the JSON object; "" ignores the body
    down: frozenset[str] = frozenset(DEFAULT_DOWN_VALUES)
    degraded: frozenset[str] = frozenset(DEFAULT_DEGRADED_VALUES)
    degraded_statuses: frozenset[int] = DEFAULT_DEGRADED_STATUSES

    def __post_init__(self) -> None:
        # Configuration hands over tuples or lists: keep the rule hashable and lower-cased.
        down = frozenset(str(v).lower() for v in self.down)
        degraded = frozenset(str(v).lower() for v in self.degraded)
        both = sorted(down & degraded)
        if both:
            raise ValueError(f"health rule: {both} listed as both down and degraded")
        object.__setattr__(self, "down", down)
        object.__setattr__(self, "degraded", degraded)
        object.__setattr__(self, "degraded_statuses", frozenset(self.degraded_statuses))

    @classmethod
    def of(cls, env: RuleSettings) -> BodyRule:
        """The rule an environment's settings describe."""
        return cls(env.health_body_key, frozenset(env.health_down), frozenset(env.health_degraded))


@record
class Judgement:
    """The verdict on one answer and the reason for it."""

    health: Health
    reason: str

    @property
    def healthy(self) -> bool:
        return self.health is Health.HEALTHY


def unanswered(why: str) -> Judgement:
    """The verdict on a check that got no complete answer (rule 1)."""
    return Judgement(Health.UNHEALTHY, why)


def judge(
    status: int,
    body: dict[str, Any] | None,
    rule: BodyRule,
    *,
    body_problem: str | None = None,
) -> Judgement:
    """The verdict on an answer: its HTTP status, its JSON object (None when it had none or
    it was unreadable) and, when the body was unreadable or cut off, why (rules 2-4)."""
    if status not in DEFAULT_EXPECTED_STATUS:
        if status in rule.degraded_statuses:
            return Judgement(Health.DEGRADED, f"HTTP {status} (non-fatal)")
        return Judgement(Health.UNHEALTHY, f"HTTP {status}")
    if body_problem is not None:
        return Judgement(Health.DEGRADED, body_problem)
    value = _field(body, rule.key)
    if value is None:
        return Judgement(Health.HEALTHY, "ok")
    if value in rule.down:
        return Judgement(Health.UNHEALTHY, f"health body reports {rule.key}={value!r}")
    if value in rule.degraded:
        return Judgement(Health.DEGRADED, f"health body reports {rule.key}={value!r}")
    return Judgement(Health.HEALTHY, "ok" if value == "ok" else f"{rule.key}={value!r}")


def _field(body: dict[str, Any] | None, key: str) -> str | None:
    """The value at the dotted ``key``, lower-cased as text; None when absent or not a
    scalar (a nested object says nothing by itself)."""
    if body is None or not key:
        return None
    value: Any = body
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value).lower()
    return None


def is_json(content_type: str | None) -> bool:
    """Whether a Content-Type declares JSON (``application/json``, ``*/*+json``)."""
    if content_type is None:
        return False
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def read_json(content_type: str | None, body: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """The body as a JSON object and, when it declares JSON but is not one, why not (rule 3).

    A body without a content type is tried as JSON; when it is not, it is simply no JSON.
    """
    if not body or not (content_type is None or is_json(content_type)):
        return None, None
    value, problem = _parse_json(body)
    return value, problem if content_type is not None else None


def _parse_json(body: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        value = json.loads(body)
    except UnicodeDecodeError as exc:
        return None, f"body is not UTF-8: {exc.reason} at byte {exc.start}"
    except ValueError as exc:
        return None, f"body is not JSON: {exc}"
    except RecursionError:
        return None, "body JSON nests too deeply"
    if not isinstance(value, dict):
        return None, f"body JSON is a {type(value).__name__}, expected an object"
    return value, None
