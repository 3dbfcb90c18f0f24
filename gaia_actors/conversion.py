"""One conversion of raw values (JSON, TOML, ``key=value`` strings) to annotated field types.

``to_type`` turns a JSON value or a string into a message field's type (scalars, unions,
literals, lists) for messages and command arguments; ``accepts`` is the strict scalar check the
settings use (a TOML value must already have its type); ``kind_of`` and ``type_name`` are the
words every caller's errors use for a value and a type."""

from __future__ import annotations

import json
import math
import types
import typing
from collections.abc import Callable
from typing import Any, Literal


def to_type(value: Any, target: Any) -> Any:
    """``value`` as ``target``; TypeError or ValueError saying why not."""
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
            return to_type(value, arg)
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
    return tuple(to_type(v, item) for v in value)


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


def accepts(target: Any, value: Any) -> bool | None:
    """Whether ``value`` has the scalar type ``target`` as it is (None: not a scalar type)."""
    return {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(target)


def kind_of(value: Any, mapping: str = "a table") -> str:
    """A value's kind in words ("an integer"); a mapping is called ``mapping``."""
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: mapping,
        type(None): "null",
    }.get(type(value), type(value).__name__)
