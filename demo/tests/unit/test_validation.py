from __future__ import annotations

import pytest
from demosvc.api import (
    NewItem,
    ValidationError,
    build_route,
    is_loopback,
    match_route,
    parse_json_body,
    parse_limit,
    validate_new_item,
)


def test_valid_item_passes() -> None:
    assert validate_new_item({"name": "widget", "value": -3}) == NewItem("widget", -3)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"value": 1}, "name"),
        ({"name": 5, "value": 1}, "name"),
        ({"name": "  ", "value": 1}, "name"),
        ({"name": "x" * 201, "value": 1}, "name"),
        ({"name": "a"}, "value"),
        ({"name": "a", "value": "1"}, "value"),
        ({"name": "a", "value": 1.5}, "value"),
        ({"name": "a", "value": True}, "value"),
        ({"name": "a", "value": 2**63}, "value"),
        ({"name": "a", "value": 1, "colour": "red"}, "colour"),
        (["name", "value"], "body"),
    ],
)
def test_invalid_item_names_the_field(payload: object, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_new_item(payload)
    assert caught.value.field == field


@pytest.mark.parametrize("body", [b"", b"  ", b"{oops", b"\xff\xfe"])
def test_unparsable_body_is_a_body_error(body: bytes) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_json_body(body)
    assert caught.value.field == "body"


@pytest.mark.parametrize(("query", "limit"), [("", 100), ("limit=5", 5), ("x=1&limit=1000", 1000)])
def test_limit_parses(query: str, limit: int) -> None:
    assert parse_limit(query) == limit


@pytest.mark.parametrize("query", ["limit=", "limit=ten", "limit=0", "limit=1001"])
def test_bad_limit_is_a_limit_error(query: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_limit(query)
    assert caught.value.field == "limit"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("localhost", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_route_templates_match_numeric_ids_only() -> None:
    routes = [build_route("/items", {}), build_route("/items/{id}", {})]
    found = match_route(routes, "/items/42")
    assert found is not None
    assert found[0].template == "/items/{id}"
    assert found[1] == {"id": "42"}
    assert match_route(routes, "/items/abc") is None
    assert match_route(routes, "/items/42/x") is None
