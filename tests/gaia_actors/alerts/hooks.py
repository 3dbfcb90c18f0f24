"""A webhook receiver on loopback for the router's tests, and a receiver that posts to it.

The server answers each POST with the next status of ``answers`` (then 200), and can hold
requests until ``release`` is set (a receiver that hangs). ``post`` builds the tests' own
receiver: the notification's payload as JSON, an HTTP error status a failure.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

import pykka
import requests

from gaia_actors.alerts import tree
from gaia_actors.alerts.model import Notification
from gaia_actors.alerts.receivers import Delivery, DeliveryFailed
from gaia_actors.app import build_children, start_root
from gaia_actors.settings import ReceiverSettings, Settings
from supervisors import Registry


class HookServer:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.answers: list[int] = []
        self.release = threading.Event()
        self.release.set()
        self.lock = threading.Lock()
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.release.wait(30)
                with hook.lock:
                    status = hook.answers.pop(0) if hook.answers else 200
                    if status == 200:
                        hook.received.append(body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ids(self) -> list[str]:
        with self.lock:
            return [body["id"] for body in self.received]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def hook_server() -> Iterator[HookServer]:
    server = HookServer()
    try:
        yield server
    finally:
        server.close()


class Poster:
    """The tests' receiver: the payload as JSON to the receiver's url."""

    def __init__(self, settings: ReceiverSettings) -> None:
        self.name, self.kind, self.timeout = settings.name, "webhook", settings.timeout
        self.url, self.target = settings.url, settings.endpoint

    def send(self, notification: Notification) -> Delivery:
        started = time.monotonic()
        try:
            answer = requests.post(self.url, json=notification.payload(), timeout=self.timeout)
        except requests.RequestException as exc:
            raise DeliveryFailed(self.name, str(exc)) from exc
        code = answer.status_code
        if code >= 300:  # a 4xx but a timeout or a rate limit would be answered again
            raise DeliveryFailed(
                self.name, f"HTTP {code}", permanent=code < 500 and code not in (408, 429)
            )
        return Delivery(f"HTTP {answer.status_code}", time.monotonic() - started)

    def close(self) -> None:
        pass


def post(settings: ReceiverSettings) -> Poster:
    return Poster(settings)


@contextlib.contextmanager
def alerts_tree(settings: Settings) -> Iterator[Registry]:
    """The store, the bus and the alerts supervisor (with ``post`` as every sender)."""
    registry = Registry()
    capability = types.SimpleNamespace(
        child_specs=functools.partial(tree.child_specs, make_receiver=post)
    )
    children = build_children(settings, registry, capabilities=(capability,))  # type: ignore[arg-type]
    root = start_root(settings, registry, children=children)
    try:
        yield registry
    finally:
        with contextlib.suppress(pykka.ActorDeadError):
            root.stop(block=True, timeout=15)
