"""Health checks over HTTP: one request judged by the verdict of `gaia_actors.health`, and a
wait until an endpoint is healthy."""

from __future__ import annotations

import threading
import time

from gaia_actors.health import BodyRule, Judgement, judge, read_json, unanswered
from gaia_actors.httpclient.client import Answer, Client, ErrorKind, Limits, get

_HEALTH_CHECK_S = 1.0  # each check of a wait_healthy loop, at most


def health_verdict(answer: Answer, rule: BodyRule) -> Judgement:
    """The project's health verdict on an answer (gaia_actors/health.py)."""
    if answer.status is None or answer.error not in (None, ErrorKind.TOO_LARGE):
        return unanswered(answer.describe())
    if answer.error is ErrorKind.TOO_LARGE:
        return judge(answer.status, None, rule, body_problem=answer.describe())
    body, problem = read_json(answer.content_type, answer.body)
    return judge(answer.status, body, rule, body_problem=problem)


def check_health(
    url: str, rule: BodyRule | None = None, *, limits: Limits | None = None
) -> Judgement:
    """GET a health URL (its query string kept) once and judge the answer."""
    return health_verdict(get(url, limits), rule or BodyRule())


def wait_healthy(
    url: str,
    timeout: float,
    rule: BodyRule | None = None,
    *,
    cancel: threading.Event | None = None,
    interval: float = 0.05,
) -> Judgement:
    """Check ``url`` until it is healthy, ``timeout`` passes or ``cancel`` is set.

    Every check gets its share of what is left, so the whole wait ends by ``timeout`` even
    against a server that trickles its answers.
    """
    end = time.monotonic() + timeout
    last = unanswered("not checked")
    with Client() as client:
        while (left := end - time.monotonic()) > 0:
            limits = Limits(min(_HEALTH_CHECK_S, left), min(_HEALTH_CHECK_S, left))
            last = health_verdict(client.get(url, limits), rule or BodyRule())
            if last.healthy:
                return last
            pause = min(interval, max(0.0, end - time.monotonic()))
            if cancel is not None and cancel.wait(pause):
                return unanswered("cancelled")
            if cancel is None:
                time.sleep(pause)  # polling a service's port; nothing to wait on
    return unanswered(f"not healthy within {timeout:g}s (last: {last.reason})")
