"""The run-time fault knobs on a server of our own (never DEMO_URL: they would break it)."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

Spawn = Callable[..., Any]


@pytest.fixture(scope="module")
def shared_server(module_spawn: Spawn) -> Any:
    return module_spawn()


@pytest.fixture
def server(shared_server: Any) -> Iterator[Any]:
    """The module's server with every fault cleared after each test."""
    yield shared_server
    assert shared_server.request("DELETE", "/admin/fault").status == 200


@pytest.fixture
def own_server(spawn: Spawn) -> Any:
    """A server for a test that ends the process."""
    return spawn()


def test_admin_unhealthy_flips_health_and_delete_restores_it(server: Any) -> None:
    assert server.request("POST", "/admin/fault", {"unhealthy": True}).json()["unhealthy"] is True
    health = server.request("GET", "/health")
    assert (health.status, health.json()["fault"]) == (503, "unhealthy")
    assert server.request("GET", "/admin/fault").json()["unhealthy"] is True
    assert server.request("DELETE", "/admin/fault").json()["unhealthy"] is False
    assert server.request("GET", "/health").status == 200


def test_admin_rejects_unknown_and_start_only_faults(server: Any) -> None:
    unknown = server.request("POST", "/admin/fault", {"explode": True})
    assert (unknown.status, unknown.json()["field"]) == (400, "explode")
    start_only = server.request("POST", "/admin/fault", {"crash_on_start": True})
    assert (start_only.status, start_only.json()["field"]) == (400, "crash_on_start")


def test_slow_delays_responses_but_not_the_admin_endpoint(server: Any) -> None:
    server.request("POST", "/admin/fault", {"slow": 0.3})
    started = time.monotonic()
    assert server.request("GET", "/items").status == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert server.request("DELETE", "/admin/fault").status == 200
    assert time.monotonic() - started < 0.25


def test_hang_blocks_health_only_until_cleared(server: Any) -> None:
    server.request("POST", "/admin/fault", {"hang": True})
    with pytest.raises(TimeoutError):
        server.request("GET", "/health", timeout=0.3)
    assert server.request("GET", "/items", timeout=2).status == 200  # other threads still serve

    released: dict[str, int] = {}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/health")

    def read() -> None:
        released["status"] = conn.getresponse().status

    reader = threading.Thread(target=read)
    reader.start()
    server.request("POST", "/admin/fault", {"hang": False})
    reader.join(timeout=5)
    conn.close()
    assert released == {"status": 200}


def test_runtime_exit_after_kills_the_process(own_server: Any) -> None:
    assert own_server.request("POST", "/admin/fault", {"exit_after": 0.1}).status == 200
    assert own_server.wait_exit(timeout=5) == 1


def test_unhealthy_from_env_at_start(spawn: Spawn) -> None:
    server = spawn(env={"FAULT": "unhealthy"}, wait="listening")
    assert server.wait_health(status=503).json()["fault"] == "unhealthy"


def test_sigterm_is_not_held_up_by_a_hung_health_request(own_server: Any) -> None:
    own_server.request("POST", "/admin/fault", {"hang": True})
    conn = http.client.HTTPConnection("127.0.0.1", own_server.port, timeout=5)
    conn.request("GET", "/health")
    started = time.monotonic()
    assert own_server.terminate(timeout=5) == 0
    assert time.monotonic() - started < 2.0  # idle: ~0.1 s; room for a loaded machine
    conn.close()
