"""What makes a class a message: ``@message`` (a frozen, slotted dataclass registered by name),
building one from a name and JSON values or strings (``build``), describing its fields, and a
JSON-friendly view of one (``to_dict``)."""

from __future__ import annotations

import dataclasses
import time
import typing
from collections.abc import Collection, Mapping
from typing import Annotated, Any, TypeVar, dataclass_transform

from gaia_actors.conversion import to_type, type_name
from gaia_actors.errors import InvalidMessage
from supervisors.records import record

T = TypeVar("T")


_REGISTRY: dict[str, type[Any]] = {}


@dataclass_transform(frozen_default=True)
def message(cls: type[T]) -> type[T]:
    """Make ``cls`` a frozen, slotted dataclass (``record``) and register it by its class name."""
    made = record(cls)
    _REGISTRY[made.__name__] = made
    return made


def _convert(message_name: str, field: str, value: Any, target: Any) -> Any:
    """Convert one field value to ``target``; raise InvalidMessage naming field and type."""
    try:
        return to_type(value, target)
    except (TypeError, ValueError) as exc:
        raise InvalidMessage(
            message_name, f"expected {type_name(target)}, got {value!r} ({exc})", field
        ) from None


def message_types() -> dict[str, type[Any]]:
    """All registered message classes by name."""
    return dict(_REGISTRY)


@record
class FieldInfo:
    name: str
    type: str
    required: bool
    default: str


def describe(cls: type[Any]) -> list[FieldInfo]:
    """The fields of a message class, for `help MESSAGE` and the control protocol."""
    hints = typing.get_type_hints(cls)
    infos = []
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = (
            "" if required else repr(f.default if f.default is not dataclasses.MISSING else "")
        )
        infos.append(FieldInfo(f.name, type_name(hints[f.name]), required, default))
    return infos


# A command argument with this name holds an environment's name, as does a message field
# declared ``EnvName``: given the configured environments, binding a command or building a
# message checks it ('' means all or none).
ENV_FIELD = "env"


_ENVIRONMENT = "environment"


EnvName = Annotated[str, _ENVIRONMENT]


def unknown_environment(name: Any, environments: Collection[str]) -> str | None:
    """Why ``name`` is not one of ``environments``, or None when it is (or is empty)."""
    if not isinstance(name, str) or name == "" or name in environments:
        return None
    known = ", ".join(environments) or "none configured"
    return f"no environment {name!r}; environments: {known}"


def build(name: str, fields: Mapping[str, Any], environments: Collection[str] | None = None) -> Any:
    """Build message ``name`` from JSON values or strings, converting to the field types;
    with ``environments``, an ``EnvName`` field must name one of them."""
    cls = _REGISTRY.get(name)
    if cls is None:
        raise InvalidMessage(name, f"unknown message; known: {', '.join(sorted(_REGISTRY))}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in fields:
        if key not in known:
            raise InvalidMessage(
                name, f"unknown field; fields are: {', '.join(known) or 'none'}", key
            )
    values = {key: _convert(name, key, value, hints[key]) for key, value in fields.items()}
    if environments is not None:
        _check_environments(cls, values, environments)
    missing = [
        k
        for k, f in known.items()
        if k not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise InvalidMessage(
            name, f"missing required field (type {type_name(hints[missing[0]])})", missing[0]
        )
    return cls(**values)


def _check_environments(
    cls: type[Any], values: Mapping[str, Any], environments: Collection[str]
) -> None:
    for key, hint in typing.get_type_hints(cls, include_extras=True).items():
        if _ENVIRONMENT in getattr(hint, "__metadata__", ()):
            problem = unknown_environment(values.get(key), environments)
            if problem is not None:
                raise InvalidMessage(cls.__name__, problem, key)


def to_dict(msg: Any) -> dict[str, Any]:
    """A JSON-friendly view of a message (for the log, the store and the control socket)."""
    return {f.name: jsonable(getattr(msg, f.name)) for f in dataclasses.fields(msg)}


def jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__, **to_dict(value)}
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def now() -> float:
    return time.time()


Fields = tuple[tuple[str, Any], ...]


def fields_of(**values: Any) -> Fields:
    """Freeze keyword values into the immutable pairs messages carry."""
    return tuple(sorted(values.items()))
