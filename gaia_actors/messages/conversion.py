"""One strict conversion of a JSON value or a string into a message field's type (scalars,
unions, literals, lists), shared by messages and command arguments."""

from __future__ import annotations

import json
import math
import types
import typing
from collections.abc import Callable
from typing import Any, Literal

from gaia_actors.errors import InvalidMessage


def convert(message_name: str, field: str, value: Any, target: Any) -> Any:
    """Convert one field value to ``target``; raise InvalidMessage naming field and type."""
    try:
        return _convert(value, target)
    except (TypeError, ValueError) as exc:
        raise InvalidMessage(
            message_name, f"expected {type_name(target)}, got {value!r} ({exc})", field
        ) from None


def _convert(value: Any, target: Any) -> Any:
    origin = typing.get_origin(target)
    args = typing.get_args(target)
    if target is Any:
        return value
    if origin in (types.UnionType, typing.Union):
        return _convert_union(value, args)
    if origin is Literal:
        if value in args:
            return value
        raise ValueError(f"not one of {', '.join(map(str, args))}")
    if origin is tuple:
        return _convert_tuple(value, args)
    if target in SCALAR_CONVERTERS:
        return SCALAR_CONVERTERS[target](value)
    if isinstance(value, target):
        return value
    raise TypeError(f"cannot convert to {type_name(target)}")


def _convert_union(value: Any, args: tuple[Any, ...]) -> Any:
    is_none = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
    if is_none and type(None) in args:
        return None
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _convert(value, arg)
        except (TypeError, ValueError) as exc:
            errors.append(str(exc))
    raise ValueError("; ".join(errors))


def _convert_tuple(value: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    if isinstance(value, str):
        stripped = value.strip()
        value = (
            _json_list(stripped)
            if stripped.startswith("[")
            else [v for v in stripped.split(",") if v]
        )
    if not isinstance(value, list | tuple):
        raise TypeError("expected a list")
    item = args[0] if args else Any
    return tuple(_convert(v, item) for v in value)


def _json_list(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("a list nested too deeply") from None


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true/false")


# What every store and peer takes as an integer (SQLite's INTEGER, a C long).
INT_RANGE = (-(2**63), 2**63 - 1)


def _to_int(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError("not an integer")
    if not isinstance(value, int | float | str):
        raise TypeError("not an integer")
    number = int(value)
    if not INT_RANGE[0] <= number <= INT_RANGE[1]:
        raise ValueError("out of range: at most 19 digits")
    return number


def _to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError("not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _to_str(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError("not a string")
    return str(value)


SCALAR_CONVERTERS: dict[Any, Callable[[Any], Any]] = {
    bool: _to_bool,
    int: _to_int,
    float: _to_float,
    str: _to_str,
}


def type_name(target: Any) -> str:
    origin = typing.get_origin(target)
    if origin in (types.UnionType, typing.Union):
        return " | ".join(type_name(a) for a in typing.get_args(target))
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(target))
    if origin is tuple:
        return f"list of {type_name(typing.get_args(target)[0])}"
    if target is type(None):
        return "none"
    return getattr(target, "__name__", str(target))
