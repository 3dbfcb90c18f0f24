"""The generic conversion of TOML values into typed dataclasses: unions, tables, lists, literals
and scalars, numbers within their declared range, and an error naming the file and the key."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

from gaia_actors.conversion import accepts, kind_of
from gaia_actors.errors import ConfigError
from gaia_actors.settings.fields import DEFAULT_RANGE, RANGE

Bounds = tuple[float, float]


def convert(target: Any, value: Any, where: str, key: str, bounds: Bounds | None = None) -> Any:
    if dataclasses.is_dataclass(target):
        return _build_dataclass(target, value, where, key)  # type: ignore[arg-type]
    origin = typing.get_origin(target)
    args = typing.get_args(target)
    if origin in (types.UnionType, typing.Union):
        member = next((a for a in args if accepts(a, value)), None)
        if member is None:
            raise ConfigError(
                where, key, f"expected {_describe(target)}, got {kind_of(value)} {value!r}"
            )
        return convert(member, value, where, key, bounds)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(where, key, f"expected a table, got {kind_of(value)}")
        return {k: convert(args[1], v, where, f"{key}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(where, key, f"expected a list, got {kind_of(value)}")
        return tuple(convert(args[0], v, where, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(where, key, f"expected one of {choices}, got {value!r}")
        return value
    return _scalar(target, value, where, key, bounds)


_HINTS: dict[type[Any], dict[str, Any]] = {}


def type_hints(cls: type[Any]) -> dict[str, Any]:
    """``cls``'s resolved field types (read only), once per class: resolving evaluates every
    annotation's text, which cost more than the rest of loading a file."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _build_dataclass(cls: type[Any], value: Any, where: str, key: str) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(where, key, f"expected a table, got {kind_of(value)}")
    hints = type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for name in value:
        if name not in fields:
            known = ", ".join(fields)
            raise ConfigError(where, f"{key}.{name}", f"unknown key; known keys: {known}")
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and name not in value:
            raise ConfigError(
                where, f"{key}.{name}", f"required key is missing ({_describe(hints[name])})"
            )
    built = {
        name: convert(hints[name], v, where, f"{key}.{name}", fields[name].metadata.get(RANGE))
        for name, v in value.items()
    }
    return cls(**built)


def _scalar(target: Any, value: Any, where: str, key: str, bounds: Bounds | None) -> Any:
    ok = accepts(target, value)
    if ok is None:
        raise ConfigError(where, key, f"unsupported setting type {target!r}")
    if not ok:
        raise ConfigError(
            where, key, f"expected {_describe(target)}, got {kind_of(value)} {value!r}"
        )
    if target in (int, float):
        low, high = bounds or DEFAULT_RANGE
        if not low <= value <= high:  # NaN compares false: refused here too
            raise ConfigError(
                where,
                key,
                f"expected {_describe(target)} from {number_text(low)} to {number_text(high)}, "
                f"got {value!r}",
            )
    return float(value) if target is float else value


def number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _describe(target: Any) -> str:
    origin = typing.get_origin(target)
    if origin is tuple:
        return f"a list of {_describe(typing.get_args(target)[0])}"
    if origin is dict:
        return "a table"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(target))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in typing.get_args(target))
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        target, getattr(target, "__name__", str(target))
    )
