"""Named commands the daemon runs for the control socket, the REPL and the CLI.

A capability registers its operator commands here, next to its actor:

    @command("backup", help="take a verified backup of ENV now", args=("env",))
    def backup(ctx: CommandContext, env: str) -> dict[str, Any]: ...

A handler runs in a control-server worker thread, never in an actor's mailbox; it talks to
actors by name through ``ctx.registry`` (asks with timeouts) and returns a JSON-friendly
value. It raises ``GaiaError`` subclasses for failures the user should read.
``offline=True`` marks commands that also work without a daemon (they read the store).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gaia_actors.settings import Settings
from supervisors import Registry


@dataclass(frozen=True, slots=True)
class CommandContext:
    settings: Settings
    registry: Registry | None  # None when run offline, without a daemon
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: Callable[[dict[str, Any]], None] = lambda _update: None


Handler = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    handler: Handler
    help: str
    args: tuple[str, ...] = ()  # positional argument names, in order
    options: tuple[str, ...] = ()  # optional keyword arguments
    offline: bool = False


_COMMANDS: dict[str, Command] = {}


def command(
    name: str,
    *,
    help: str,
    args: tuple[str, ...] = (),
    options: tuple[str, ...] = (),
    offline: bool = False,
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _COMMANDS[name] = Command(name, handler, help, args, options, offline)
        return handler

    return register


def commands() -> dict[str, Command]:
    _load_all()
    return dict(_COMMANDS)


def get(name: str) -> Command | None:
    _load_all()
    return _COMMANDS.get(name)


# Modules that define commands; imported on first use so the registry is complete.
COMMAND_MODULES: list[str] = ["gaia_actors.core_commands"]


def _load_all() -> None:
    import importlib

    for module in COMMAND_MODULES:
        importlib.import_module(module)
