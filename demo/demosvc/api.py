"""Routing, validation and the endpoint handlers: requests in, responses out, no sockets.

Endpoints::

    GET    /health          200 {"status": "ok", ...} | 503 {"status": "error", "db": reason}
    GET    /metrics         Prometheus text format
    GET    /items?limit=N   200 {"items": [...]}        (N in 1..1000, default 100)
    POST   /items           201 item | 400 {"error", "field"}
    GET    /items/<id>      200 item | 404
    DELETE /items/<id>      204 | 404
    GET    /admin/fault     200 faults                  (loopback clients only)
    POST   /admin/fault     200 faults | 400 {"error", "field"}
    DELETE /admin/fault     200 faults (all off)
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from . import __version__
from .config import Settings
from .db import Database, DatabaseUnavailable
from .faults import FaultError, Faults, FaultState
from .logs import EventLog
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import Metrics

JSON_TYPE = "application/json"
UNMATCHED_ROUTE = "other"  # the metrics label of every unknown path
MAX_NAME_LENGTH = 200
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
ITEM_FIELDS = ("name", "value")


@dataclass(frozen=True, slots=True)
class Request:
    """What a handler needs from an HTTP request."""

    method: str
    path: str
    query: str = ""
    body: bytes = b""
    client_host: str = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Response:
    """Status, body and extra headers; Content-Type and Content-Length are added when sent."""

    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = field(default=())


def json_response(
    status: int, payload: object, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    return Response(status, json.dumps(payload, separators=(",", ":")).encode(), JSON_TYPE, headers)


def error_response(status: int, message: str, **context: object) -> Response:
    return json_response(status, {"error": message, **context})


class ValidationError(ValueError):
    """A request field with a bad value; answered 400 naming the field."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"{field_name}: {problem}")
        self.field = field_name
        self.problem = problem


@dataclass(frozen=True, slots=True)
class NewItem:
    """A validated POST /items body."""

    name: str
    value: int


def parse_json_body(body: bytes) -> object:
    if not body.strip():
        raise ValidationError("body", "a JSON object is required")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError("body", f"invalid JSON: {exc}") from None


def validate_new_item(payload: object) -> NewItem:
    """Check a POST /items body: ``{"name": non-empty str <= 200, "value": int64}``."""
    if not isinstance(payload, dict):
        raise ValidationError("body", "expected a JSON object")
    for key in payload:
        if key not in ITEM_FIELDS:
            raise ValidationError(str(key), "unknown field")
    return NewItem(_validate_name(payload.get("name")), _validate_value(payload.get("value")))


def _validate_name(name: object) -> str:
    if name is None:
        raise ValidationError("name", "is required")
    if not isinstance(name, str):
        raise ValidationError("name", f"expected a string, got {type(name).__name__}")
    if not name.strip():
        raise ValidationError("name", "must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError("name", f"at most {MAX_NAME_LENGTH} characters, got {len(name)}")
    return name


def _validate_value(value: object) -> int:
    if value is None:
        raise ValidationError("value", "is required")
    # bool is an int subclass: true must not be stored as 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("value", f"expected an integer, got {type(value).__name__}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValidationError("value", "out of the 64-bit integer range")
    return value


def parse_limit(query: str) -> int:
    """``limit`` from a query string: an integer 1..1000, default 100."""
    values = parse_qs(query, keep_blank_values=True).get("limit")
    if not values:
        return DEFAULT_LIMIT
    try:
        limit = int(values[-1])
    except ValueError:
        raise ValidationError("limit", f"expected an integer, got {values[-1]!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", f"expected 1..{MAX_LIMIT}, got {limit}")
    return limit


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback; False for anything unparsable."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


Handler = Callable[[Request, dict[str, str]], Response]


@dataclass(frozen=True, slots=True)
class Route:
    """A path template with one handler per method."""

    template: str
    pattern: re.Pattern[str]
    methods: dict[str, Handler]


def build_route(template: str, methods: dict[str, Handler]) -> Route:
    """``/items/{id}`` becomes ``^/items/(?P<id>[0-9]+)$`` (ids are positive integers)."""
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[0-9]+)", template)
    return Route(template, re.compile(f"^{regex}$"), methods)


def match_route(routes: list[Route], path: str) -> tuple[Route, dict[str, str]] | None:
    for route in routes:
        match = route.pattern.match(path)
        if match is not None:
            return route, match.groupdict()
    return None


class Api:
    """The service's endpoints over its database, faults and metrics."""

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        faults: FaultState,
        metrics: Metrics,
        log: EventLog,
        started: float,
    ) -> None:
        self._settings, self._db, self._faults = settings, db, faults
        self._metrics, self._log, self._started = metrics, log, started
        self.routes = [
            build_route("/health", {"GET": self.health}),
            build_route("/metrics", {"GET": self.metrics}),
            build_route("/items", {"GET": self.list_items, "POST": self.create_item}),
            build_route("/items/{id}", {"GET": self.get_item, "DELETE": self.delete_item}),
            build_route(
                "/admin/fault",
                {"GET": self.get_faults, "POST": self.set_faults, "DELETE": self.clear_faults},
            ),
        ]

    def route_template(self, path: str) -> str:
        """The metrics label for ``path``: its route template, or "other"."""
        found = match_route(self.routes, path)
        return UNMATCHED_ROUTE if found is None else found[0].template

    def handle(self, request: Request) -> tuple[str, Response]:
        """Route ``request``; return the route template (for metrics) and the response."""
        found = match_route(self.routes, request.path)
        if found is None:
            self._faults.delay()
            return UNMATCHED_ROUTE, error_response(404, "not found", path=request.path)
        route, params = found
        if not route.template.startswith("/admin/"):
            # The admin endpoint stays fast so a test can always turn `slow` off again.
            self._faults.delay()
        handler = route.methods.get(request.method)
        if handler is None:
            allow = ", ".join(sorted(route.methods))
            return route.template, error_response(
                405, f"method {request.method} not allowed", allow=allow
            )
        return route.template, self._call(handler, request, params)

    def _call(self, handler: Handler, request: Request, params: dict[str, str]) -> Response:
        try:
            return handler(request, params)
        except ValidationError as exc:
            return error_response(400, exc.problem, field=exc.field)
        except DatabaseUnavailable as exc:
            return error_response(503, "database unavailable", detail=str(exc))

    # -- health and metrics -------------------------------------------------------------

    def health(self, _request: Request, _params: dict[str, str]) -> Response:
        if self._faults.current().hang:
            self._faults.wait_while_hung()
        report = self._db.health()
        unhealthy = self._faults.current().unhealthy
        body: dict[str, object] = {
            "status": "ok" if report.ok and not unhealthy else "error",
            "release": self._settings.release_id,
            "env": self._settings.env_name,
            "version": __version__,
            "uptime_s": round(time.monotonic() - self._started, 3),
            "db": report.reason,
            "items": report.items,
        }
        if unhealthy:
            body["fault"] = "unhealthy"
        return json_response(200 if body["status"] == "ok" else 503, body)

    def metrics(self, _request: Request, _params: dict[str, str]) -> Response:
        return Response(200, self._metrics.render(), METRICS_CONTENT_TYPE)

    # -- items ----------------------------------------------------------------------------

    def list_items(self, request: Request, _params: dict[str, str]) -> Response:
        items = self._db.list_items(parse_limit(request.query))
        return json_response(200, {"items": [item.to_json() for item in items]})

    def create_item(self, request: Request, _params: dict[str, str]) -> Response:
        new = validate_new_item(parse_json_body(request.body))
        item = self._db.create_item(new.name, new.value)
        return json_response(201, item.to_json(), (("Location", f"/items/{item.id}"),))

    def get_item(self, _request: Request, params: dict[str, str]) -> Response:
        item = self._db.get_item(int(params["id"]))
        if item is None:
            return error_response(404, "item not found", id=int(params["id"]))
        return json_response(200, item.to_json())

    def delete_item(self, _request: Request, params: dict[str, str]) -> Response:
        if not self._db.delete_item(int(params["id"])):
            return error_response(404, "item not found", id=int(params["id"]))
        return Response(204)

    # -- fault knobs ----------------------------------------------------------------------

    def get_faults(self, request: Request, _params: dict[str, str]) -> Response:
        return self._admin(request, lambda: self._faults.current().to_json())

    def set_faults(self, request: Request, _params: dict[str, str]) -> Response:
        return self._admin(
            request, lambda: self._changed(self._faults.update(parse_json_body(request.body)))
        )

    def clear_faults(self, request: Request, _params: dict[str, str]) -> Response:
        return self._admin(request, lambda: self._changed(self._faults.clear()))

    def _admin(self, request: Request, act: Callable[[], dict[str, object]]) -> Response:
        if not is_loopback(request.client_host):
            return error_response(403, "admin endpoints answer loopback clients only")
        try:
            return json_response(200, act())
        except FaultError as exc:
            return error_response(400, str(exc), field=exc.fault)

    def _changed(self, faults: Faults) -> dict[str, object]:
        self._log.warning("fault.changed", active=faults.active(), faults=faults.to_json())
        return faults.to_json()
