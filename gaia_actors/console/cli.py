"""The command line: ``python run.py [command]`` and the ``gaia-env`` console script.

With no command it runs the daemon in the foreground. Every command registered with
``@command`` (gaia_actors/control/commands.py) becomes a subcommand with its positional
arguments and options, so a capability's new command appears here, in ``--help`` and in the
REPL without editing this file, once ``control/catalog.py`` names it with its module: a command
line imports only the module of the command it runs (--help, the REPL and the daemon import
them all). Built in: ``run``, ``repl``, ``tail``, ``help``, ``send``, ``ask``,
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
import gc
import os
import signal
import sys
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from gaia_actors import __version__
from gaia_actors.console.client import Client, parse_fields
from gaia_actors.console.commandline import (
    ALIASES,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    EXPECTED,
    ParseError,
    Parser,
    ParserExit,
    above_zero,
    add_command_arguments,
    add_json_flag,
    add_watch_arguments,
    aliases,
    check_environment,
    command_values,
    exit_code,
    invoke,
    message_help_text,
    not_available,
    resolve,
    run_offline,
    unavailable,
)
from gaia_actors.console.render import Printer, listing, plain
from gaia_actors.control import catalog, commands
from gaia_actors.control.commands import Command
from gaia_actors.errors import ConfigError
from gaia_actors.messages import message_types
from gaia_actors.settings import Settings, load

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
# The registered commands a built-in's line needs (monitor shows `status`; the daemon's app
# imports them all, but its line needs none); the others not named here (repl, help) need
# them all.
BUILTIN_NEEDS: dict[str, tuple[str, ...]] = {
    "run": (),
    "tail": (),
    "watch": (),
    "send": (),
    "ask": (),
    "monitor": ("status",),
}


# --- the parser, generated from the command registry ---------------------------------------


def build_parser(names: Collection[str] | None = None, *, tail: bool = False) -> Parser:
    """The command line's parser, with a subcommand for every registered command, or only for
    ``names`` (and their aliases) when given: all a line that runs one of them needs. The
    options of ``tail`` are there with ``tail`` (a ``tail`` line) or every command."""
    registered = commands.commands()
    if names is not None:
        registered = {name: cmd for name, cmd in registered.items() if name in names}
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
    # Any other line's parser leaves out tail's options, and with them the import of the
    # log reader.
    _add_builtins(sub, registered, tail_options=names is None or tail)
    for name, cmd in sorted(registered.items()):
        if name in BUILTINS and name != "monitor":
            continue  # the built-ins keep their meaning; a clash is the registrant's to rename
        command_parser = sub.add_parser(name, description=plain(cmd.help))
        add_command_arguments(command_parser, cmd)
    for alias, (target, words) in aliases(registered).items():
        alias_parser = sub.add_parser(alias, description=f"same as: {target} {' '.join(words)}")
        # The target's arguments but those the alias fills in (promote-all --output).
        add_command_arguments(alias_parser, registered[target], filled=len(words))
    return parser


def command_listing(registered: Mapping[str, Command]) -> str:
    """Every command, grouped, one aligned line each (--help's list)."""
    builtins = [BUILTIN_HELP[name] for name in BUILTINS if name not in registered or name == "help"]
    groups = [(title, [(c.usage(), c.help) for c in group]) for title, group in commands.grouped()]
    names = [(a, f"same as: {t} {' '.join(w)}") for a, (t, w) in aliases(registered).items()]
    if names:
        groups.append(("The original tool's names", names))
    return listing([("The daemon, the shell and raw access", builtins), *groups])


def _add_builtins(sub: Any, registered: Mapping[str, Command], *, tail_options: bool) -> None:
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
    if tail_options:
        from gaia_actors.console import tail as tail_module

        tail_module.add_arguments(tail)
    help_parser = sub.add_parser("help", description=about["help"])
    help_parser.add_argument("topic", nargs="?", metavar="COMMAND")
    for verb in ("send", "ask"):
        inject = sub.add_parser(verb, description=about[verb])
        inject.add_argument("actor", metavar="ACTOR")
        inject.add_argument("message", metavar="MESSAGE")
        inject.add_argument("fields", nargs="*", metavar="FIELD=VALUE")
        if verb == "ask":
            inject.add_argument(
                "--timeout", type=above_zero(float), help="seconds to wait (default 5)"
            )
        add_json_flag(inject)
    watch = sub.add_parser("watch", description=about["watch"])
    add_watch_arguments(watch)
    add_json_flag(watch)
    if "monitor" not in registered:
        monitor = sub.add_parser("monitor", description=about["monitor"])
        monitor.add_argument(
            "--interval", type=above_zero(float), default=2.0, help="seconds between views"
        )
        monitor.add_argument("--count", type=above_zero(int), help="stop after this many views")
        add_json_flag(monitor)


# --- running the command line --------------------------------------------------------------


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


def command_word(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names: its first word that is not an option or the value of
    --config (None: the daemon, or the help that lists every command)."""
    words = iter(argv)
    for word in words:
        if word == "--":
            return next(words, None)
        if not word.startswith("-"):
            return word
        if word == "-h" or (len(word) > 2 and "--help".startswith(word)):
            return None
        if len(word) > 2 and "--config".startswith(word):  # argparse takes a unique prefix
            next(words, None)
    return None


def load_commands(argv: Sequence[str]) -> tuple[str, ...] | None:
    """Register the commands the command line ``argv`` runs and return their names: only
    its command (from its module) when ``argv`` names one, else every command (None).
    Importing them all costs more CPU than most commands' work."""
    word = command_word(argv) or ""
    name = ALIASES[word][0] if word in ALIASES else word
    needs = (name,) if name in catalog.MODULE_OF else BUILTIN_NEEDS.get(name)
    if needs is not None and catalog.load(needs):
        return needs
    catalog.load_all()
    return None


def parse(argv: Sequence[str]) -> tuple[Parser, argparse.Namespace]:
    """The parser and what it read from ``argv``, with only the commands ``argv`` needs; a
    line that parser refuses is read again with every command, so that its error is the one
    the whole command line gives."""
    needs = load_commands(argv)
    try:
        parser = build_parser(needs, tail=command_word(argv) == "tail")
        return parser, parser.parse_args(argv)
    except ParseError:
        if needs is None:
            raise
    catalog.load_all()
    parser = build_parser()
    return parser, parser.parse_args(argv)


@contextlib.contextmanager
def importing(*, frozen: bool = False) -> Iterator[None]:
    """No cyclic garbage collection while modules are imported: imports make tens of thousands
    of objects that live as long as the process and next to no cyclic garbage, yet set off
    ~140 collector passes. With ``frozen`` (the daemon, which keeps what it imported), those
    objects are then kept out of every later pass (``gc.freeze``)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        if frozen:
            gc.freeze()
    finally:
        if enabled:
            gc.enable()


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        with importing():
            parser, args = parse(argv)
    except ParseError as exc:
        missing = next((w for w in argv if unavailable(w)), None)
        if missing is not None:
            exc = ParseError(not_available(missing), exc.usage)
        sys.stderr.write(f"{exc.usage}gaia-env: error: {exc}\n")
        return EXIT_USAGE
    except ParserExit as exc:
        return exc.status
    if args.command == "help":
        return _help(parser, args.topic)
    try:
        settings = load(args.config, secrets=args.command in (None, "run"))  # the daemon sends
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
            with importing(frozen=True):
                from gaia_actors.app import Daemon

            return Daemon(settings).run()
        case "tail":
            from gaia_actors.console import tail

            args.json = args.json or args.json_output
            for env in args.env or ():
                check_environment("tail", env, settings)
            return tail.run(args, settings.log_path)
        case "repl":
            from gaia_actors.console.repl import Repl

            return Repl(settings, printer).run()
        case "send" | "ask":
            return _inject(args, settings, printer)
        case "watch":
            from gaia_actors.console.watch import watch

            check_environment("watch", args.env, settings)
            with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a watch ends
                watch(settings.socket_path, printer, tuple(args.event or ("*",)), args.env)
            return EXIT_OK
        case "monitor" if commands.get("monitor") is None:
            from gaia_actors.console.watch import monitor

            return monitor(settings, printer, args.interval, args.count)
    found = resolve(args.command)
    if found is None:
        raise AssertionError(f"unhandled command {args.command!r}")  # argparse knows them all
    cmd, words = found
    # An alias's own words (promote-all: what=all), then whatever was given on the line.
    values = dict(zip((a.name for a in cmd.args), words, strict=False))
    values.update(command_values(cmd, args))
    printer.result(invoke(cmd, values, settings, printer), cmd)
    return EXIT_OK


def _inject(args: argparse.Namespace, settings: Settings, printer: Printer) -> int:
    fields = parse_fields(args.fields, args.command)
    with Client.connect(settings.socket_path) as client:
        if args.command == "send":
            printer.result(client.tell(args.actor, args.message, fields))
        else:
            printer.result(client.ask(args.actor, args.message, fields, args.timeout))
    return EXIT_OK


# The names the command line's users and tests reach through this module.
__all__ = [
    "ALIASES",
    "BUILTINS",
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "EXPECTED",
    "ParseError",
    "ParserExit",
    "build_parser",
    "exit_code",
    "main",
    "run_offline",
]
