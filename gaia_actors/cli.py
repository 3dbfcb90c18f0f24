"""The command line: ``python run.py [command]`` and the ``gaia-env`` console script.

With no command it runs the daemon in the foreground. Every command registered with
``@command`` (gaia_actors/commands.py) becomes a subcommand with its positional arguments and
options, so a capability's new command appears here, in ``--help`` and in the REPL without
editing this file. Built in: ``run``, ``repl``, ``tail``, ``help``, ``send``, ``ask``,
``watch`` and ``monitor`` (a refreshing ``status``), plus the original tool's names
``promote-dev``/``promote-staging``/``promote-all`` when a ``promote`` command exists.

A command goes to the running daemon over the control socket; with no daemon, an
``offline=True`` command runs here against the store, and any other says how to start one.
Exit codes: 0 ok, 1 the operation failed, 2 usage or configuration error, 3 the daemon is
not reachable (141 when the reader of the output left early, as for any command in a pipe).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from gaia_actors import __version__, app, commands, errors
from gaia_actors.client import Client, parse_fields
from gaia_actors.commands import Command, CommandContext
from gaia_actors.errors import ConfigError, DaemonUnreachable, GaiaError, UsageError
from gaia_actors.messages import describe, message_types, unknown_environment
from gaia_actors.render import Printer, default_note, listing, message_help, plain
from gaia_actors.settings import Settings, load
from supervisors import SupervisionError

EXIT_OK = 0
# The error classes carry their exit codes (``GaiaError.exit_code``); named here for callers.
EXIT_FAILED = errors.EXIT_FAILED
EXIT_USAGE = errors.EXIT_USAGE
EXIT_UNREACHABLE = errors.EXIT_UNREACHABLE
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # what a shell reports for `cmd | head`

# The built-in commands: synopsis and help, for the parser and the grouped --help.
BUILTIN_HELP: dict[str, tuple[str, str]] = {
    "run": ("run", "run the daemon in the foreground (the default)"),
    "repl": ("repl [--json]", "an interactive shell on the running daemon"),
    "tail": (
        "tail [-f] [--level L] [--env ENV] ...",
        "read and follow the daemon's structured log",
    ),
    "watch": ("watch [--env ENV] [--event GLOB]", "stream the daemon's events until Ctrl-C"),
    "monitor": (
        "monitor [--interval S] [--count N]",
        "a live view of status, refreshed until Ctrl-C",
    ),
    "help": ("help [COMMAND|MESSAGE]", "show help, or one command's or message's help"),
    "send": ("send ACTOR MESSAGE [FIELD=VALUE ...]", "tell ACTOR a typed message (no reply)"),
    "ask": ("ask ACTOR MESSAGE [FIELD=VALUE ...]", "ask ACTOR a typed message and print the reply"),
}
BUILTINS = tuple(BUILTIN_HELP)
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


# --- the parser, generated from the command registry ---------------------------------------


def build_parser() -> Parser:
    registered = commands.commands()
    parser = Parser(
        prog="gaia-env",
        description="Keeps a service's dev, staging and prod environments alive and promotes\n"
        "releases between them. With no command, runs the daemon in the foreground.",
        epilog=command_listing(registered)
        + "\n\nhelp COMMAND (or COMMAND --help) shows one command.\n"
        "Exit codes: 0 ok, 1 operation failed, 2 usage or configuration error, "
        "3 daemon not reachable.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", help="configuration file (default: config/gaia.toml or $GAIA_CONFIG)"
    )
    parser.add_argument(
        "--json", dest="json_output", action="store_true", help="machine-readable output"
    )
    parser.add_argument("--version", action="version", version=f"gaia-env {__version__}")
    # The commands are listed, grouped, in the epilog: no help= here, so argparse does not
    # list them a second time.
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=Parser, help="one of the commands below"
    )
    _add_builtins(sub, registered)
    for name, cmd in sorted(registered.items()):
        if name in BUILTINS and name != "monitor":
            continue  # the built-ins keep their meaning; a clash is the registrant's to rename
        command_parser = sub.add_parser(name, description=plain(cmd.help))
        add_command_arguments(command_parser, cmd)
    for alias, (target, words) in _aliases(registered).items():
        alias_parser = sub.add_parser(alias, description=f"same as: {target} {' '.join(words)}")
        # The target's arguments but those the alias fills in (promote-all --output).
        add_command_arguments(alias_parser, registered[target], filled=len(words))
    return parser


def _aliases(registered: Mapping[str, Command]) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {
        alias: (target, words)
        for alias, (target, words) in ALIASES.items()
        if alias not in registered and target in registered
    }


def command_listing(registered: Mapping[str, Command]) -> str:
    """Every command, grouped, one aligned line each (--help's list)."""
    builtins = [BUILTIN_HELP[name] for name in BUILTINS if name not in registered or name == "help"]
    groups = [(title, [(c.usage(), c.help) for c in group]) for title, group in commands.grouped()]
    aliases = [(a, f"same as: {t} {' '.join(w)}") for a, (t, w) in _aliases(registered).items()]
    if aliases:
        groups.append(("The original tool's names", aliases))
    return listing([("The daemon, the shell and raw access", builtins), *groups])


def _add_builtins(sub: Any, registered: Mapping[str, Command]) -> None:
    about = {name: text for name, (_synopsis, text) in BUILTIN_HELP.items()}
    sub.add_parser("run", description=about["run"])
    sub.add_parser("repl", description=about["repl"]).add_argument(
        "--json",
        dest="json_output",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print results and events as JSON lines (for scripts)",
    )
    tail = sub.add_parser("tail", description=about["tail"])
    from gaia_actors import tail as tail_module

    tail_module.add_arguments(tail)
    help_parser = sub.add_parser("help", description=about["help"])
    help_parser.add_argument("topic", nargs="?", metavar="COMMAND")
    for verb in ("send", "ask"):
        inject = sub.add_parser(verb, description=about[verb])
        inject.add_argument("actor", metavar="ACTOR")
        inject.add_argument("message", metavar="MESSAGE")
        inject.add_argument("fields", nargs="*", metavar="FIELD=VALUE")
        if verb == "ask":
            inject.add_argument("--timeout", type=float, help="seconds to wait (default 5)")
        _add_json_flag(inject)
    watch = sub.add_parser("watch", description=about["watch"])
    add_watch_arguments(watch)
    _add_json_flag(watch)
    if "monitor" not in registered:
        monitor = sub.add_parser("monitor", description=about["monitor"])
        monitor.add_argument("--interval", type=float, default=2.0, help="seconds between views")
        monitor.add_argument("--count", type=int, help="stop after this many views")
        _add_json_flag(monitor)


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
        _add_json_flag(parser)


def _add_json_flag(parser: argparse.ArgumentParser) -> None:
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
    """Run ``cmd`` in the daemon, or here when it is ``offline`` and no daemon answers."""
    if client is None:
        try:
            client = Client.connect(settings.socket_path)
        except DaemonUnreachable:
            if cmd.offline:
                return run_offline(cmd, values, settings, printer)
            raise DaemonUnreachable(str(settings.socket_path), f"{cmd.name} needs it") from None
        with client:
            return client.command(cmd.name, values, printer.progress)
    return client.command(cmd.name, values, printer.progress)


def run_offline(
    cmd: Command, values: Mapping[str, Any], settings: Settings, printer: Printer
) -> Any:
    """A command without a daemon: the store opened here, no registry (``ctx.registry`` None)."""
    from gaia_actors.store import open_database

    kwargs = commands.bind(cmd, values, settings)
    db = open_database(settings.database_url)
    try:
        ctx = CommandContext(
            settings, None, progress=printer.progress, start_tree=app.start_capabilities
        )
        return cmd.handler(ctx, **kwargs)
    finally:
        db.close()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        return _reader_left()


def _reader_left() -> int:
    """The reader of our output went away (``status --json | head -c 100``): end quietly,
    with the exit code of a process a SIGPIPE ended, and keep the interpreter's final
    flush of stdout from failing again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


def _main(argv: Sequence[str] | None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except ParseError as exc:
        missing = next((w for w in argv or sys.argv[1:] if unavailable(w)), None)
        if missing is not None:
            exc = ParseError(not_available(missing), exc.usage)
        sys.stderr.write(f"{exc.usage}gaia-env: error: {exc}\n")
        return EXIT_USAGE
    except ParserExit as exc:
        return exc.status
    if args.command == "help":
        return _help(parser, args.topic)
    try:
        settings = load(args.config)
    except ConfigError as exc:
        print(f"gaia-env: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    printer = Printer(json_output=bool(getattr(args, "json_output", False)))
    try:
        return _dispatch(args, settings, printer)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message and an exit code
        return report(exc, printer)


def report(exc: Exception, printer: Printer) -> int:
    """Print ``exc`` for people and return its exit code (re-raise what is not ours)."""
    printer.error(str(exc))
    code = exit_code(exc)
    if code is None:
        raise exc
    return code


def exit_code(exc: BaseException) -> int | None:
    """The exit code an error of ours says (``GaiaError.exit_code``); None for anything else.
    The generic supervision errors know nothing of exit codes: they are failures."""
    if isinstance(exc, GaiaError | SupervisionError):
        return getattr(exc, "exit_code", EXIT_FAILED)
    return None


def _help(parser: Parser, topic: str | None) -> int:
    if topic is None:
        parser.print_help()
        return EXIT_OK
    if topic in message_types():
        print(message_help_text(topic))
        return EXIT_OK
    try:
        parser.parse_args([topic, "--help"])
    except ParserExit as exc:
        return exc.status
    except ParseError as exc:
        sys.stderr.write(f"gaia-env: no command {topic!r} ({exc})\n")
        return EXIT_USAGE
    return EXIT_OK


def _dispatch(args: argparse.Namespace, settings: Settings, printer: Printer) -> int:
    match args.command:
        case None | "run":
            from gaia_actors.app import Daemon

            return Daemon(settings).run()
        case "tail":
            from gaia_actors import tail

            args.json = args.json or args.json_output
            for env in args.env or ():
                check_environment("tail", env, settings)
            return tail.run(args, settings.log_path)
        case "repl":
            from gaia_actors.repl import Repl

            return Repl(settings, printer).run()
        case "send" | "ask":
            return _inject(args, settings, printer)
        case "watch":
            from gaia_actors.repl import watch

            check_environment("watch", args.env, settings)
            with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a watch ends
                watch(settings.socket_path, printer, tuple(args.event or ("*",)), args.env)
            return EXIT_OK
        case "monitor" if commands.get("monitor") is None:
            return _monitor(settings, printer, args.interval, args.count)
    found = resolve(args.command)
    if found is None:
        raise AssertionError(f"unhandled command {args.command!r}")  # argparse knows them all
    cmd, words = found
    # An alias's own words (promote-all: what=all), then whatever was given on the line.
    values = dict(zip((a.name for a in cmd.args), words, strict=False))
    values.update(command_values(cmd, args))
    printer.result(invoke(cmd, values, settings, printer), cmd)
    return EXIT_OK


def check_environment(command: str, env: str | None, settings: Settings) -> None:
    """An --env filter (watch, tail) must name an environment, as a command argument must:
    a typo would otherwise show nothing, for ever."""
    problem = unknown_environment(env, settings.environments)
    if problem is not None:
        raise UsageError(command, problem, "env")


def _inject(args: argparse.Namespace, settings: Settings, printer: Printer) -> int:
    fields = parse_fields(args.fields, args.command)
    with Client.connect(settings.socket_path) as client:
        if args.command == "send":
            printer.result(client.tell(args.actor, args.message, fields))
        else:
            printer.result(client.ask(args.actor, args.message, fields, args.timeout))
    return EXIT_OK


def _monitor(settings: Settings, printer: Printer, interval: float, count: int | None) -> int:
    """`status` again and again until Ctrl-C (or ``count`` views)."""
    status = commands.get("status")
    if status is None:
        raise UsageError("monitor", "it shows the `status` command, which no capability registers")
    shown = 0
    try:
        while count is None or shown < count:
            result = invoke(status, {}, settings, printer)
            printer.screen(result, status, f"every {interval:g}s; Ctrl-C to stop")
            shown += 1
            if count is None or shown < count:
                time.sleep(interval)  # a person's refresh interval, not a wait on work
    except KeyboardInterrupt:
        pass
    return EXIT_OK
