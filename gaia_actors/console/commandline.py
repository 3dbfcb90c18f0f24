"""What the command line and the REPL share: the argument parser of a registered command,
the names a command goes by, running a command (in the daemon, or here when it is offline)
and the exit code an error says.
"""

from __future__ import annotations

import argparse
import math
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from gaia_actors import errors
from gaia_actors.console.client import Client
from gaia_actors.console.render import Printer, default_note, message_help
from gaia_actors.control import commands
from gaia_actors.control.commands import Command, CommandContext
from gaia_actors.control.protocol import to_json
from gaia_actors.errors import DaemonUnreachable, GaiaError, UsageError
from gaia_actors.messages import describe, message_types, unknown_environment
from gaia_actors.settings import Settings
from supervisors import SupervisionError

if TYPE_CHECKING:
    import pykka

    from supervisors import Registry

EXIT_OK = 0
# The error classes carry their exit codes (``GaiaError.exit_code``); named here for callers.
EXIT_FAILED = errors.EXIT_FAILED
EXIT_USAGE = errors.EXIT_USAGE
EXIT_UNREACHABLE = errors.EXIT_UNREACHABLE
# The commands people expect: when none of the capabilities registered one, say so
# rather than "invalid choice".
EXPECTED = frozenset(
    {
        "status", "health", "promote", "promote-dev", "promote-staging", "promote-all",
        "rollback", "logs", "load-balance", "improve", "history", "backup", "restore", "kill",
    }
)  # fmt: skip
# The original tool's names for commands that take their target as an argument here.
ALIASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "promote-dev": ("promote", ("dev",)),
    "promote-staging": ("promote", ("staging",)),
    "promote-all": ("promote", ("all",)),
}


class ParseError(GaiaError):
    """argparse refused the command line; ``usage`` is the parser's synopsis."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, usage: str) -> None:
        self.usage = usage
        super().__init__(message)


class ParserExit(GaiaError):
    """--help or --version printed; end with ``status``."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.exit_code = status
        super().__init__(status)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting (the REPL reuses command parsers)."""

    def error(self, message: str) -> NoReturn:
        raise ParseError(message, self.format_usage())

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise ParserExit(status)


# --- a command's arguments ----------------------------------------------------------------


def add_watch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", help="only events of this environment")
    parser.add_argument(
        "--event", action="append", metavar="GLOB", help="only events matching (repeatable)"
    )


def add_command_arguments(parser: argparse.ArgumentParser, cmd: Command, filled: int = 0) -> None:
    """Positional args in order (but the first ``filled``, which an alias gives), options as
    ``-n N`` / ``--name VALUE`` / ``--flag``."""
    for arg in cmd.args[filled:]:
        extra: dict[str, Any] = {"nargs": "?", "default": None} if not arg.required else {}
        if arg.choices:
            extra["choices"] = arg.choices
        parser.add_argument(
            _dest(arg.name),
            metavar=arg.name.upper(),
            type=_converter(cmd, arg),
            help=arg.help,
            **extra,
        )
    for opt in cmd.options:
        if opt.type is bool:
            action: Any = argparse.BooleanOptionalAction if opt.default else "store_true"
            parser.add_argument(
                opt.flag, dest=_dest(opt.name), action=action, default=None, help=opt.help
            )
            continue
        parser.add_argument(
            opt.flag,
            dest=_dest(opt.name),
            type=_converter(cmd, opt),
            default=None,
            metavar=opt.name.upper(),
            choices=opt.choices or None,
            help=f"{opt.help}{default_note(opt.default, ' (', ')')}".strip(),
        )
    if cmd.param("json") is None:
        add_json_flag(parser)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a subcommand's absent flag must not reset `gaia-env --json CMD`.
    parser.add_argument(
        "--json",
        dest="json_output",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the result as JSON",
    )


def _converter(cmd: Command, param: commands.Arg | commands.Option) -> Any:
    def convert(text: str) -> Any:
        try:
            return commands.coerce(cmd.name, param, text)
        except UsageError as exc:
            # argparse prints this message as it is (a ValueError became "invalid str value")
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = param.type.__name__  # argparse names it: "invalid int value: 'x'"
    return convert


def _dest(name: str) -> str:
    return f"arg_{name}"  # never clashes with the global --config/--json


def command_values(cmd: Command, namespace: argparse.Namespace) -> dict[str, Any]:
    """The arguments argparse parsed for ``cmd``, leaving out those not given."""
    values = {}
    for param in cmd.params:
        value = getattr(namespace, _dest(param.name), None)
        if value is not None:
            values[param.name] = value
    return values


def aliases(registered: Mapping[str, Command]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The original tool's names that ``registered`` has a target for and does not define."""
    return {
        alias: (target, words)
        for alias, (target, words) in ALIASES.items()
        if alias not in registered and target in registered
    }


def resolve(name: str, words: Sequence[str] = ()) -> tuple[Command, list[str]] | None:
    """A command for ``name`` (and its words): registered, an alias, or ``promote dev``-style."""
    registered = commands.commands()
    if name in registered:
        return registered[name], list(words)
    if name in ALIASES and ALIASES[name][0] in registered:
        target, prefix = ALIASES[name]
        return registered[target], [*prefix, *words]
    if words and f"{name}-{words[0]}" in registered:
        return registered[f"{name}-{words[0]}"], list(words[1:])
    for other in (name.replace("-", "_"), name.replace("_", "-")):
        if other in registered:
            return registered[other], list(words)
    return None


def unavailable(name: str) -> bool:
    return name in EXPECTED and resolve(name) is None


def not_available(name: str) -> str:
    return f"{name} is not available: no capability in this build registers a {name!r} command"


def message_help_text(name: str) -> str:
    cls = message_types()[name]
    doc = (cls.__doc__ or "").strip().splitlines()
    fields = [
        {"name": f.name, "type": f.type, "required": f.required, "default": f.default}
        for f in describe(cls)
    ]
    return message_help(name, doc[0] if doc else "", fields)


# --- running commands ------------------------------------------------------------------------


def invoke(
    cmd: Command,
    values: Mapping[str, Any],
    settings: Settings,
    printer: Printer,
    client: Client | None = None,
) -> Any:
    """Run ``cmd`` in the daemon, or here when it is ``offline`` and no daemon answers (or
    ``local``: here always)."""
    if cmd.local:
        return run_offline(cmd, values, settings, printer)
    if client is None:
        try:
            client = Client.connect(settings.socket_path)
        except DaemonUnreachable:
            if cmd.offline:
                return run_offline(cmd, values, settings, printer)
            commands.bind(cmd, values, settings)  # a wrong line is a usage error, daemon or not
            raise DaemonUnreachable(str(settings.socket_path), f"{cmd.name} needs it") from None
        with client:
            return client.command(cmd.name, values, printer.progress)
    return client.command(cmd.name, values, printer.progress)


def run_offline(
    cmd: Command, values: Mapping[str, Any], settings: Settings, printer: Printer
) -> Any:
    """A command without a daemon: the store opened here (but for a ``local`` command, which
    reads only files), no registry (``ctx.registry`` None)."""
    kwargs = commands.bind(cmd, values, settings)
    ctx = CommandContext(settings, None, progress=printer.progress, start_tree=_start_tree)
    if cmd.local:
        return to_json(cmd.handler(ctx, **kwargs))
    from gaia_actors.store.database import open_database

    db = open_database(settings.database_url)
    try:
        return to_json(cmd.handler(ctx, **kwargs))  # as the daemon would have sent it
    finally:
        db.close()


def _start_tree(
    settings: Settings, registry: Registry, capabilities: Sequence[types.ModuleType]
) -> pykka.ActorRef[Any]:
    # The app (every capability) is imported only by an offline command that starts actors.
    from gaia_actors.app import start_capabilities

    return start_capabilities(settings, registry, capabilities)


def exit_code(exc: BaseException) -> int | None:
    """The exit code an error of ours says (``GaiaError.exit_code``); None for anything else.
    The generic supervision errors know nothing of exit codes: they are failures."""
    if isinstance(exc, GaiaError | SupervisionError):
        return getattr(exc, "exit_code", EXIT_FAILED)
    return None


def check_environment(command: str, env: str | None, settings: Settings) -> None:
    """An --env filter (watch, tail) must name an environment, as a command argument must:
    a typo would otherwise show nothing, for ever."""
    problem = unknown_environment(env, settings.environments)
    if problem is not None:
        raise UsageError(command, problem, "env")


def above_zero(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """An argparse type for a count, an interval or a timeout: a finite number above 0."""

    def convert(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None
        if not 0 < value < math.inf:
            raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
        return value

    convert.__name__ = kind.__name__
    return convert
