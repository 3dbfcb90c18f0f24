"""A message field's value converted to its type, or InvalidMessage naming the field."""

from __future__ import annotations

from typing import Any

from gaia_actors.conversion import INT_RANGE, SCALAR_CONVERTERS, to_type, type_name
from gaia_actors.errors import InvalidMessage

__all__ = ["INT_RANGE", "SCALAR_CONVERTERS", "convert", "type_name"]


def convert(message_name: str, field: str, value: Any, target: Any) -> Any:
    """Convert one field value to ``target``; raise InvalidMessage naming field and type."""
    try:
        return to_type(value, target)
    except (TypeError, ValueError) as exc:
        raise InvalidMessage(
            message_name, f"expected {type_name(target)}, got {value!r} ({exc})", field
        ) from None
