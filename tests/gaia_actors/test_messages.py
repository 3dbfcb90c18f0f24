"""Typed messages: the registry and conversion from strings and JSON."""

from __future__ import annotations

import dataclasses

import pytest

from gaia_actors.errors import InvalidMessage
from gaia_actors.messages import (
    Event,
    Hang,
    Insert,
    build,
    describe,
    message,
    message_types,
    to_dict,
)


@message
class _Probe:
    """Test message with every supported field type."""

    env: str
    count: int = 1
    ratio: float = 0.5
    flag: bool = False
    tags: tuple[str, ...] = ()
    maybe: int | None = None


def test_messages_are_frozen_and_slotted() -> None:
    msg = Hang(2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.seconds = 3.0  # type: ignore[misc]
    assert not hasattr(msg, "__dict__")


def test_registry_knows_messages_by_name() -> None:
    assert message_types()["Insert"] is Insert
    assert "_Probe" in message_types()


def test_build_converts_strings_to_field_types() -> None:
    msg = build(
        "_Probe",
        {
            "env": "prod",
            "count": "3",
            "ratio": "0.25",
            "flag": "yes",
            "tags": "a,b",
            "maybe": "none",
        },
    )
    assert msg == _Probe("prod", 3, 0.25, True, ("a", "b"), None)


def test_build_accepts_json_values() -> None:
    msg = build("_Probe", {"env": "dev", "count": 2, "tags": ["x"], "maybe": 4})
    assert msg.count == 2
    assert msg.tags == ("x",)
    assert msg.maybe == 4


@pytest.mark.parametrize(
    ("fields", "field", "expected"),
    [
        ({"env": "p", "count": "many"}, "count", "expected int"),
        ({"env": "p", "count": 1.5}, "count", "expected int"),
        ({"env": "p", "flag": "perhaps"}, "flag", "expected bool"),
        ({"env": "p", "ratio": True}, "ratio", "expected float"),
        ({"env": "p", "maybe": "x"}, "maybe", "expected int | none"),
    ],
)
def test_conversion_errors_name_the_field_and_type(
    fields: dict[str, object], field: str, expected: str
) -> None:
    with pytest.raises(InvalidMessage) as info:
        build("_Probe", fields)
    assert info.value.field == field
    assert expected in str(info.value)


def test_unknown_message_lists_known_ones() -> None:
    with pytest.raises(InvalidMessage) as info:
        build("TakeBakup", {})
    assert "unknown message" in str(info.value)
    assert "Insert" in str(info.value)


def test_unknown_and_missing_fields_are_named() -> None:
    with pytest.raises(InvalidMessage) as info:
        build("_Probe", {"env": "p", "colour": "red"})
    assert info.value.field == "colour"
    with pytest.raises(InvalidMessage) as info:
        build("_Probe", {})
    assert info.value.field == "env"
    assert "missing required field" in str(info.value)


def test_describe_lists_fields_with_types() -> None:
    fields = {f.name: f for f in describe(_Probe)}
    assert fields["env"].required
    assert fields["tags"].type == "list of str"
    assert not fields["count"].required


def test_event_fields_round_trip_to_dict() -> None:
    event = Event(
        "health.changed", level="warning", env="prod", data=(("new", "down"), ("old", "healthy"))
    )
    assert event.get("new") == "down"
    assert event.as_dict()["env"] == "prod"
    assert to_dict(event)["data"] == [["new", "down"], ["old", "healthy"]]


def test_an_environment_field_must_name_a_configured_environment() -> None:
    assert build("GetHealth", {"env": "dev"}, ("dev", "prod")).env == "dev"
    assert build("GetHealth", {}, ("dev",)).env == ""  # all of them
    with pytest.raises(InvalidMessage) as error:
        build("GetHealth", {"env": "nope"}, ("dev", "prod"))
    assert str(error.value) == "GetHealth.env: no environment 'nope'; environments: dev, prod"
    # An event only records what happened: its env is not checked.
    assert build("Event", {"name": "x", "env": "gone"}, ("dev",)).env == "gone"


@pytest.mark.parametrize(
    ("name", "fields", "problem"),
    [
        ("GetIncidents", {"limit": str(10**40)}, "out of range"),
        ("Hang", {"seconds": "nan"}, "not a finite number"),
        ("Subscribe", {"subscriber": "x", "patterns": "[" * 1900}, "nested too deeply"),
    ],
)
def test_values_beyond_what_peers_take_are_invalid(
    name: str, fields: dict[str, str], problem: str
) -> None:
    with pytest.raises(InvalidMessage, match=problem):
        build(name, fields)
