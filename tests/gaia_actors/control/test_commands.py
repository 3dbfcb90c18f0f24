"""The command registry types a handler's arguments from its annotations, or refuses it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from gaia_actors.control import commands
from gaia_actors.control.commands import CommandContext, command

if TYPE_CHECKING:
    from decimal import Decimal


@pytest.fixture(autouse=True)
def _registry() -> Iterator[None]:
    saved = commands.commands()
    yield
    commands._COMMANDS.clear()
    commands._COMMANDS.update(saved)


def test_a_handler_whose_annotation_does_not_resolve_is_refused_at_registration() -> None:
    def handler(ctx: CommandContext, count: Decimal, n: int = 1) -> int:
        return n

    register = command("test-unresolved", help="test only", args=("count",), options=("n",))
    with pytest.raises(TypeError) as info:
        register(handler)
    assert "command 'test-unresolved': the annotation count: Decimal does not resolve" in str(
        info.value
    )
    assert "'Decimal' is not defined" in str(info.value)
    assert commands.get("test-unresolved") is None


def test_a_handler_that_resolves_gets_typed_arguments() -> None:
    @command("test-resolved", help="test only", args=("env",), options=("n", "apply"))
    def handler(ctx: CommandContext, env: str, n: int | None = 3, apply: bool = False) -> int:
        return 0

    cmd = commands.get("test-resolved")
    assert cmd is not None
    assert [(p.name, p.type, p.default) for p in cmd.params] == [
        ("env", str, None),
        ("n", int, 3),
        ("apply", bool, False),
    ]
