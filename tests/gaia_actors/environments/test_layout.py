"""The environment's own health check: bounded by one deadline, whatever the peer does."""

from __future__ import annotations

import time

from gaia_actors.environments.layout import check_health, wait_healthy
from tests.gaia_actors.monitoring.hostile import HostileServer, Respond, Trickle


def test_a_trickling_body_cannot_stretch_a_health_check() -> None:
    with HostileServer({"/health": Trickle(interval=0.05, length=10_000)}) as server:
        started = time.monotonic()
        ok, why = check_health(server.url("/health"), timeout=0.5)
        elapsed = time.monotonic() - started
    assert not ok
    assert "in time" in why
    assert elapsed < 1.5  # one deadline (plus at most one socket read), not 10_000 x 50 ms


def test_wait_healthy_gives_up_at_its_deadline_on_a_trickling_peer() -> None:
    with HostileServer({"/health": Trickle(interval=0.05, length=10_000)}) as server:
        started = time.monotonic()
        ok, _ = wait_healthy(server.url("/health"), timeout=1.0)
        assert not ok
        assert time.monotonic() - started < 3.0


def test_an_ok_json_status_is_healthy_and_a_bad_one_is_not() -> None:
    routes = {"/ok": Respond(200, b'{"status": "ok"}'), "/bad": Respond(200, b'{"status": "down"}')}
    with HostileServer(routes) as server:
        assert check_health(server.url("/ok"))[0]
        ok, why = check_health(server.url("/bad"))
    assert not ok
    assert "down" in why
