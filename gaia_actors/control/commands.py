"""Named commands the daemon runs for the control socket, the REPL and the CLI.

A capability registers its operator commands here, next to its actor:

    @command("backup", help="take a verified backup of ENV now", args=("env",))
    def backup(ctx: CommandContext, env: str) -> dict[str, Any]: ...

A handler runs in a control-server worker thread, never in an actor's mailbox; it talks to
actors by name through ``ctx.registry`` (asks with timeouts) and returns a JSON-friendly
value. It raises ``GaiaError`` subclasses for failures the user should read.
``offline=True`` marks commands that also work without a daemon (they read the store);
``local=True`` ones always run in the caller's process, daemon or not (they read only the
caller's files, and a relative path is the caller's).
Importing a capability's command module registers its commands; ``catalog`` lists each
module with the commands it registers and its group's title (``add_group``), and loads them
(the daemon all of them, a command line only the one it runs). This registry imports none.

Arguments are typed from the handler's signature: ``args=("env", "id")`` with
``def h(ctx, env: str, id: int | None = None)`` makes ``env`` a required positional and
``id`` an optional one converted to int; ``options=("n", "apply")`` with ``n: int = 50,
apply: bool = False`` gives ``-n N`` and a ``--apply`` flag on the command line (a
one-letter option is ``-x``, a longer one ``--name``). ``Arg``/``Option`` declare help text,
choices or a type explicitly. ``render`` turns the JSON result into text for people (the
CLI and REPL fall back to a generic table/key-value rendering).
"""

from __future__ import annotations

import inspect
import math
import queue
import re
import threading
import time
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field, replace
from typing import TYPE_CHECKING, Any

from gaia_actors.conversion import SCALAR_CONVERTERS
from gaia_actors.errors import DaemonError

# Re-exported: every capability's commands raise it beside the rest of this module's API.
from gaia_actors.errors import UsageError as UsageError  # noqa: PLC0414
from gaia_actors.messages import ENV_FIELD, Progress, unknown_environment
from gaia_actors.settings import Settings
from supervisors.records import record

if TYPE_CHECKING:
    # Types only: a command line that sends a command to the daemon starts no actor.
    import pykka

    from gaia_actors.relay import Relay
    from supervisors import Registry

    # Starts the store, the bus and the given capabilities' actors in this process under a
    # root supervisor and returns the root: the app's, handed to an offline command that needs
    # actors.
    TreeStarter = Callable[[Settings, Registry, Sequence[types.ModuleType]], pykka.ActorRef[Any]]

SCALAR_TYPES: tuple[type, ...] = (str, int, float, bool)


@record
class CommandContext:
    settings: Settings
    registry: Registry | None  # None when run offline, without a daemon
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: Callable[[dict[str, Any]], None] = lambda _update: None
    # True once the daemon stops: ``cancel`` was set by the shutdown, not by the client.
    stopping: Callable[[], bool] = lambda: False
    start_tree: TreeStarter | None = None  # given offline, where there is no daemon


@record
class Arg:
    """A positional argument; ``required=False`` makes it optional (``history [ID]``)."""

    name: str
    type: type = str
    help: str = ""
    required: bool = True
    default: Any = None
    choices: tuple[str, ...] = ()


@record
class Option:
    """A named option: ``-n N`` for a one-letter name, ``--name`` otherwise; bool is a flag."""

    name: str
    type: type = str
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return f"-{self.name}" if len(self.name) == 1 else "--" + self.name.replace("_", "-")


Handler = Callable[..., Any]
Renderer = Callable[[Any], str]


@record
class Command:
    name: str
    handler: Handler
    help: str
    args: tuple[Arg, ...] = ()  # positional arguments, in order
    options: tuple[Option, ...] = ()  # optional keyword arguments
    offline: bool = False
    render: Renderer | None = None
    local: bool = False  # run by the caller, never sent to the daemon (implies offline)

    @property
    def params(self) -> tuple[Arg | Option, ...]:
        return (*self.args, *self.options)

    def param(self, name: str) -> Arg | Option | None:
        return next((p for p in self.params if p.name == name), None)

    def usage(self) -> str:
        """``health ENV [-n N]``: the one-line synopsis shown by help and completion."""
        parts = [self.name]
        for arg in self.args:
            word = arg.name.upper()
            parts.append(word if arg.required else f"[{word}]")
        for opt in self.options:
            parts.append(
                f"[{opt.flag}]" if opt.type is bool else f"[{opt.flag} {opt.name.upper()}]"
            )
        return " ".join(parts)


_COMMANDS: dict[str, Command] = {}


def command(
    name: str,
    *,
    help: str,
    args: tuple[str | Arg, ...] = (),
    options: tuple[str | Option, ...] = (),
    offline: bool = False,
    render: Renderer | None = None,
    local: bool = False,
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        signature = _signature(name, handler)
        _COMMANDS[name] = Command(
            name,
            handler,
            help,
            tuple(_arg(a, signature) for a in args),
            tuple(_option(o, signature) for o in options),
            offline or local,
            render,
            local,
        )
        return handler

    return register


def commands() -> dict[str, Command]:
    return dict(_COMMANDS)


def get(name: str) -> Command | None:
    return _COMMANDS.get(name)


def bind(cmd: Command, values: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """Check and convert ``values`` (strings or JSON) into the handler's keyword arguments;
    an ``env`` argument must name a configured environment."""
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        param = cmd.param(key)
        if param is None:
            known = ", ".join(p.name for p in cmd.params) or "none"
            raise UsageError(cmd.name, f"unknown argument; arguments are: {known}", key)
        if value is None and not (isinstance(param, Arg) and param.required):
            continue  # an option left out on the command line
        kwargs[key] = coerce(cmd.name, param, value)
    missing = [a.name for a in cmd.args if a.required and a.name not in kwargs]
    if missing:
        raise UsageError(cmd.name, f"missing required argument ({cmd.usage()})", missing[0])
    problem = unknown_environment(kwargs.get(ENV_FIELD), settings.environments)
    if problem is not None:
        raise UsageError(cmd.name, problem, ENV_FIELD)
    return kwargs


def coerce(command_name: str, param: Arg | Option, value: Any) -> Any:
    """Convert one argument value to its declared type; UsageError names it and the type."""
    try:
        converted = SCALAR_CONVERTERS[param.type](value)
    except (TypeError, ValueError) as exc:
        raise UsageError(
            command_name, f"expected {param.type.__name__}, got {value!r} ({exc})", param.name
        ) from None
    if param.choices and converted not in param.choices:
        raise UsageError(
            command_name, f"expected one of {', '.join(param.choices)}, got {value!r}", param.name
        )
    # Every number a command takes is a count, an id or a time: never below 0, never NaN.
    if param.type in (int, float) and not 0 <= converted < math.inf:
        raise UsageError(command_name, f"expected a number >= 0, got {value!r}", param.name)
    return converted


# Declarations given as plain names take their type and default from the handler.

_Signature = dict[str, tuple[type, Any]]  # name -> (scalar type, default or EMPTY)
_EMPTY = inspect.Parameter.empty


def _signature(command_name: str, handler: Handler) -> _Signature:
    try:
        hints = typing.get_type_hints(handler)
    except (NameError, TypeError) as exc:
        # Read as strings, its arguments would skip their conversion and checks: a name
        # imported only under TYPE_CHECKING is a programming error, refused at registration.
        raise TypeError(
            f"command {command_name!r}: {_unresolved(handler, exc)} does not resolve ({exc})"
        ) from exc
    return {
        name: (_scalar(hints.get(name, str)), p.default)
        for name, p in inspect.signature(handler).parameters.items()
    }


def _unresolved(handler: Handler, exc: Exception) -> str:
    """The annotation ``exc`` fails on, as ``param: annotation``, when it can be told."""
    missing = getattr(exc, "name", None)
    for param, annotation in handler.__annotations__.items():
        if missing and re.search(rf"\b{re.escape(missing)}\b", str(annotation)):
            return f"the annotation {param}: {annotation}"
    return f"an annotation of {handler.__qualname__}"


def _scalar(hint: Any) -> type:
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = members[0] if len(members) == 1 else str
    return hint if hint in SCALAR_TYPES else str


def _arg(decl: str | Arg, signature: _Signature) -> Arg:
    if isinstance(decl, Arg):
        return decl
    kind, default = signature.get(decl, (str, _EMPTY))
    if default is _EMPTY:
        return Arg(decl, kind)
    return Arg(decl, kind, required=False, default=default)


def _option(decl: str | Option, signature: _Signature) -> Option:
    if isinstance(decl, Option):
        return decl
    kind, default = signature.get(decl, (str, None))
    option = Option(decl, kind, None if default is _EMPTY else default)
    return replace(option, default=False) if kind is bool and option.default is None else option


UPDATE_BUFFER = 10_000  # a long job's updates buffered for a slow client; beyond it they drop


def update_relay(registry: Registry, limit: int = UPDATE_BUFFER) -> Relay:
    """A relay for a long job's ``Progress``: name it as the job's watcher, and read its
    updates with ``follow_updates``. The job only tells it, so it never waits on the client:
    past ``limit`` waiting updates they drop."""
    from gaia_actors.relay import Relay

    return Relay(registry, "control.progress", limit, lambda m: isinstance(m, Progress))


def follow_updates(
    ctx: CommandContext,
    updates: Relay,
    *,
    final: str,
    show: Callable[[dict[str, Any]], None],
    still_running: Callable[[], bool],
    ended: Callable[[], dict[str, Any] | None],
    alive_check: float = 2.0,
    job: str = "the job",
) -> dict[str, Any] | None:
    """Stream a long job's updates (from its watcher's relay) to ``show`` until the
    update whose ``event`` is ``final``, which is returned; None if the client left. A job
    whose actor went away meanwhile (restarted, its watcher lost) is noticed every
    ``alive_check`` seconds, and ``ended()`` then reads its outcome from the store. A daemon
    that stops meanwhile is an error (DaemonError naming ``job``): the client that waited
    must not read it as a success."""
    checked = time.monotonic()
    while not ctx.cancel.is_set():
        try:
            progress = updates.get(timeout=0.2)
        except queue.Empty:
            if time.monotonic() - checked >= alive_check:
                checked = time.monotonic()
                if not still_running():
                    return ended()
            continue
        update = dict(progress.update)
        if update.get("event") == final:
            return update
        show(update)
    if ctx.stopping():
        raise DaemonError(f"the daemon stopped before {job} ended")
    return None


# How --help and the REPL's help group the commands: by the module that registers them, in
# the order their groups are added, under their titles (another module's commands come last,
# under its name).
_GROUP_TITLES: dict[str, str] = {}


def add_group(module: str, title: str) -> None:
    """List the commands the module named ``module`` registers (by importing it) under
    ``title``."""
    _GROUP_TITLES[module] = title


def grouped() -> list[tuple[str, list[Command]]]:
    """The registered commands as (title, commands by name), groups in the order added."""
    groups: dict[str, list[Command]] = {title: [] for title in _GROUP_TITLES.values()}
    for cmd in sorted(commands().values(), key=lambda c: c.name):
        module = getattr(cmd.handler, "__module__", "") or "other"
        groups.setdefault(_GROUP_TITLES.get(module, module), []).append(cmd)
    return [(title, group) for title, group in groups.items() if group]
