"""One health check as its caller sees it: the target (``ProbeTarget``), the result
(``ProbeResult``), and how a check's answer or failure becomes that result.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import field
from typing import Any

from gaia_actors.health import DEFAULT_EXPECTED_STATUS, read_json
from gaia_actors.monitoring.http11 import Endpoint, ProbeErrorKind, ProbeFailed, Response, parse_url
from supervisors.records import record


@record
class ProbeTarget:
    """One URL to check, with its bounds. Invalid settings raise ValueError naming them."""

    name: str
    url: str
    expected_status: Collection[int] = DEFAULT_EXPECTED_STATUS  # a range or a frozenset
    connect_timeout: float = 2.0
    read_timeout: float = 5.0
    max_body_bytes: int = 64 * 1024
    raw_body: bool = False  # keep the body's bytes (`ProbeResult.body`) instead of parsing JSON
    _endpoint: Endpoint = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError(f"probe target for {self.url!r}: name must not be empty")
        for key in ("connect_timeout", "read_timeout"):
            if not getattr(self, key) > 0:
                raise ValueError(f"probe target {self.name!r}: {key} must be > 0 seconds")
        if self.max_body_bytes < 1:
            raise ValueError(f"probe target {self.name!r}: max_body_bytes must be >= 1")
        if not isinstance(self.expected_status, range):
            # A set, list or tuple from configuration becomes a hashable frozenset.
            object.__setattr__(self, "expected_status", frozenset(self.expected_status))
        object.__setattr__(self, "_endpoint", parse_url(self.name, self.url))


@record
class ProbeResult:
    """The outcome of one check of one target.

    `body_json` is a fresh dict per result (parsed from at most `max_body_bytes`); treat it
    as read-only. For a `raw_body` target, `body` holds the bytes instead (a scrape of
    /metrics) and no JSON is parsed. `latency_s` runs from the start of the check (connect
    included when a new connection was needed) to the last byte read. `checked_at` is
    wall-clock (time.time()).
    """

    name: str
    url: str
    ok_connect: bool
    status: int | None
    status_expected: bool
    latency_s: float
    error: ProbeErrorKind | None
    detail: str | None
    body_json: dict[str, Any] | None
    checked_at: float
    reused: bool = False
    body: bytes | None = None

    @property
    def ok(self) -> bool:
        """Connected, got an expected status and a clean body."""
        return self.ok_connect and self.status_expected and self.error is None


def _result(
    target: ProbeTarget,
    checked_at: float,
    started: float,
    *,
    ok_connect: bool,
    status: int | None = None,
    error: ProbeErrorKind | None = None,
    detail: str | None = None,
    body_json: dict[str, Any] | None = None,
    reused: bool = False,
    body: bytes | None = None,
) -> ProbeResult:
    return ProbeResult(
        name=target.name,
        url=target.url,
        ok_connect=ok_connect,
        status=status,
        status_expected=status is not None and status in target.expected_status,
        latency_s=time.perf_counter() - started,
        error=error,
        detail=detail,
        body_json=body_json,
        checked_at=checked_at,
        reused=reused,
        body=body,
    )


def failed_result(
    target: ProbeTarget, checked_at: float, started: float, failed: ProbeFailed
) -> ProbeResult:
    return _result(
        target, checked_at, started, ok_connect=failed.connected, status=failed.status,
        error=failed.kind, detail=failed.detail,
    )  # fmt: skip


def answered_result(
    target: ProbeTarget, checked_at: float, started: float, response: Response, reused: bool
) -> ProbeResult:
    if target.raw_body:
        return _result(
            target, checked_at, started, ok_connect=True, status=response.status,
            reused=reused, body=response.body,
        )  # fmt: skip
    body_json, problem = read_json(response.content_type, response.body)
    return _result(
        target, checked_at, started, ok_connect=True, status=response.status,
        error=ProbeErrorKind.BAD_BODY if problem else None, detail=problem,
        body_json=body_json, reused=reused,
    )  # fmt: skip
