"""``python run.py repl``: an interactive shell on the running daemon.

Every registered command works here with the CLI's syntax (``health prod -n 5``), plus
``promote dev|staging|all``, raw injection (``send ACTOR MESSAGE key=value ...``, ``ask ...``),
fault injection (``crash ACTOR``, ``hang ACTOR [SECONDS]``, ``kill ENV`` when the
environments capability registers ``kill``) and ``watch`` (events until Ctrl-C, riding out
a restart of the control server). Tab completes commands, actor names, message names and
``field=`` names. History is kept in ``<state_dir>/repl_history`` — beside the daemon it
belongs to, so two checkouts (or test runs) never mix their histories, and the state
directory is already private (0700). Ctrl-C cancels the current wait, Ctrl-D leaves.
"""

from __future__ import annotations

import contextlib
import shlex
import socket
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from typing import Any

from gaia_actors.console.client import Client, ConnectionLost, parse_fields
from gaia_actors.console.commandline import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    ParseError,
    Parser,
    ParserExit,
    add_command_arguments,
    add_watch_arguments,
    check_environment,
    command_values,
    exit_code,
    invoke,
    message_help_text,
    not_available,
    resolve,
    unavailable,
)
from gaia_actors.console.render import Printer, command_help, listing
from gaia_actors.console.watch import watch
from gaia_actors.control import catalog, commands
from gaia_actors.control.commands import Command, UsageError, grouped
from gaia_actors.errors import DaemonUnreachable
from gaia_actors.messages import describe, message_types
from gaia_actors.settings import Settings

PROMPT = "gaia> "
HISTORY_FILE = "repl_history"
HISTORY_LENGTH = 1000
ACTORS_TTL = 2.0  # seconds the actor names used for completion stay cached

# The shell's own words: synopsis and help.
SHELL_HELP: dict[str, tuple[str, str]] = {
    "send": ("send ACTOR MESSAGE [FIELD=VALUE ...]", "tell ACTOR a typed message (no reply)"),
    "ask": ("ask ACTOR MESSAGE [FIELD=VALUE ...] [--timeout S]", "ask ACTOR, print the reply"),
    "watch": ("watch [--env ENV] [--event GLOB]...", "stream events until Ctrl-C"),
    "help": ("help [COMMAND|MESSAGE]", "this list, or one command's or message's details"),
    "quit": ("quit", "leave the shell (or Ctrl-D)"),
}


class Repl:
    """One interactive session on one daemon."""

    def __init__(self, settings: Settings, printer: Printer) -> None:
        catalog.load_all()  # every command is typed, completed and listed here
        self.settings = settings
        self.printer = printer
        self.client: Client | None = None
        self.parsers: dict[str, Parser] = {}
        self.actor_cache: tuple[float, list[str]] = (0.0, [])
        self.matches: list[str] = []
        self.failures = 0
        self.history = settings.state_dir / HISTORY_FILE
        self.builtins: dict[str, Callable[[list[str]], bool | None]] = {
            "help": self.do_help,
            "send": self.do_send,
            "ask": self.do_ask,
            "watch": self.do_watch,
            "kill": self.do_kill,
            "quit": lambda _words: True,
            "exit": lambda _words: True,
        }

    # The loop

    def run(self) -> int:
        try:
            pong = self.connect().ping()
        except DaemonUnreachable as exc:
            self.printer.error(str(exc))
            return EXIT_UNREACHABLE
        interactive = sys.stdin.isatty()
        if interactive:
            self.setup_readline()
            self.printer.note(
                f"gaia daemon pid {pong.get('pid')} on {self.settings.socket_path}; "
                "`help` lists commands, Tab completes, Ctrl-C cancels, Ctrl-D leaves"
            )
        while True:
            try:
                line = input(PROMPT if interactive else "")
            except EOFError:
                if interactive:
                    print()
                return EXIT_FAILED if self.failures and not interactive else EXIT_OK
            except KeyboardInterrupt:
                print()
                continue
            if interactive and line.strip():
                self.save_history()
            try:
                if self.execute(line):
                    return EXIT_OK
            except KeyboardInterrupt:
                self.printer.note("(cancelled)")
                self.drop_client()  # the daemon cancels what this connection started

    def execute(self, line: str) -> bool:
        """Run one line; True asks to leave."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            self.printer.error(f"cannot split the line: {exc}")
            return False
        if not words:
            return False
        try:
            builtin = self.builtins.get(words[0])
            if builtin is not None:
                return bool(builtin(words[1:]))
            self.run_command(words[0], words[1:])
        except ParserExit:
            pass  # -h printed the command's help
        except ParseError as exc:
            self.fail(f"{exc}\n{exc.usage.rstrip()}")
        except Exception as exc:  # noqa: BLE001 - the shell reports and carries on
            self.report(exc)
        return False

    def report(self, exc: Exception) -> None:
        if isinstance(exc, DaemonUnreachable):
            self.drop_client()
            lost = isinstance(exc, ConnectionLost)
            self.fail(f"{exc}; the next command reconnects" if lost else str(exc))
            return
        self.fail(str(exc) if exit_code(exc) is not None else f"internal error: {exc!r}")

    def fail(self, text: str) -> None:
        self.failures += 1
        self.printer.error(text)

    # Connection

    def connect(self) -> Client:
        """The session's connection, reopened when the daemon closed it (a restart)."""
        if self.client is not None and not _alive(self.client.sock):
            self.drop_client()
        if self.client is None:
            self.client = Client.connect(self.settings.socket_path)
        return self.client

    def drop_client(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    # Commands

    def run_command(self, name: str, words: list[str]) -> None:
        found = resolve(name, words)
        if found is None:
            problem = not_available(name) if unavailable(name) else "unknown command"
            raise UsageError(name, f"{problem}; `help` lists the commands")
        cmd, rest = found
        namespace = self.parser(cmd).parse_args(rest)
        values = command_values(cmd, namespace)
        try:
            client: Client | None = self.connect()
        except DaemonUnreachable:
            if not cmd.offline:
                raise
            client = None  # invoke runs it here against the store
        printer = self.printer
        if getattr(namespace, "json_output", False) and not printer.json_output:
            printer = Printer(True, printer.out, printer.err)
        printer.result(invoke(cmd, values, self.settings, printer, client), cmd)

    def parser(self, cmd: Command) -> Parser:
        if cmd.name not in self.parsers:
            parser = Parser(prog=cmd.name, description=cmd.help, add_help=True)
            add_command_arguments(parser, cmd)
            self.parsers[cmd.name] = parser
        return self.parsers[cmd.name]

    def do_send(self, words: list[str]) -> None:
        actor, message, fields = _injection("send", words)
        self.printer.result(self.connect().tell(actor, message, fields))

    def do_ask(self, words: list[str]) -> None:
        timeout: float | None = None
        if "--timeout" in words:
            at = words.index("--timeout")
            if at + 1 >= len(words):
                raise UsageError("ask", "--timeout needs a number of seconds", "--timeout")
            timeout = commands.coerce("ask", commands.Option("timeout", float), words[at + 1])
            words = words[:at] + words[at + 2 :]
        actor, message, fields = _injection("ask", words)
        self.printer.result(self.connect().ask(actor, message, fields, timeout))

    def do_watch(self, words: list[str]) -> None:
        parser = Parser(prog="watch", description=SHELL_HELP["watch"][1])
        add_watch_arguments(parser)
        args = parser.parse_args(words)
        check_environment("watch", args.env, self.settings)
        try:
            watch(self.settings.socket_path, self.printer, tuple(args.event or ("*",)), args.env)
        except KeyboardInterrupt:
            self.printer.note("(stopped watching)")

    def do_kill(self, words: list[str]) -> None:
        if commands.get("kill") is None:
            raise UsageError(
                "kill",
                "not available: no capability registers a `kill` command "
                "(the environments capability provides it)",
            )
        self.run_command("kill", words)

    def do_help(self, words: list[str]) -> None:
        if not words:
            self.printer.note(self.overview())
            return
        topic = words[0]
        found = resolve(topic, words[1:])
        if topic in SHELL_HELP:
            synopsis, text = SHELL_HELP[topic]
            self.printer.note(f"usage: {synopsis}\n\n{text}")
        elif found is not None:
            self.printer.note(command_help(found[0]))
        elif topic in message_types():
            self.printer.note(message_help_text(topic))
        else:
            raise UsageError("help", f"no command or message named {topic!r}")

    def overview(self) -> str:
        groups = [(title, [(c.usage(), c.help) for c in group]) for title, group in grouped()]
        messages = " ".join(sorted(message_types()))
        return "\n".join(
            [
                listing([*groups, ("The shell", list(SHELL_HELP.values()))]),
                "",
                "Messages (help MESSAGE shows its fields):",
                *textwrap.wrap(messages, 98, initial_indent="  ", subsequent_indent="  "),
            ]
        )

    # History and completion

    def setup_readline(self) -> None:
        import readline

        readline.set_completer_delims(" \t\n")
        readline.set_completer(self.complete)
        readline.parse_and_bind("tab: complete")
        readline.set_history_length(HISTORY_LENGTH)
        self.history.parent.mkdir(parents=True, exist_ok=True)
        if self.history.exists():
            with contextlib.suppress(OSError):
                readline.read_history_file(self.history)
        else:
            self.history.touch(mode=0o600)

    def save_history(self) -> None:
        import readline

        # Appended per line, so a crash loses nothing and two sessions do not overwrite
        # each other's lines.
        with contextlib.suppress(OSError):
            readline.append_history_file(1, self.history)

    def complete(self, text: str, state: int) -> str | None:
        if state == 0:
            import readline

            line = readline.get_line_buffer()
            try:
                self.matches = self.candidates(line[: readline.get_begidx()].split(), text)
            except Exception:  # noqa: BLE001 - readline swallows errors; keep completion alive
                self.matches = []
        return self.matches[state] if state < len(self.matches) else None

    def candidates(self, before: list[str], text: str) -> list[str]:
        """Completions for the word ``text`` that follows the words ``before``."""
        if not before:
            return _words(self.command_names(), text)
        head, position = before[0], len(before)
        if head in ("send", "ask"):
            if position == 1:
                return _words(self.actor_names(), text)
            if position == 2:
                return _words(message_types(), text)
            return self.field_names(before[2], before[3:], text)
        if head == "help" and position == 1:
            return _words([*self.command_names(), *message_types()], text)
        if head == "watch":
            previous = before[-1]
            if previous == "--env":
                return _words(self.settings.environments, text)
            return _words(["--env", "--event"], text) if previous != "--event" else []
        if head == "promote" and position == 1:
            return _words(["dev", "staging", "all"], text)
        return self.argument_names(head, position - 1, text)

    def argument_names(self, name: str, index: int, text: str) -> list[str]:
        found = resolve(name)
        if found is None:
            return []
        cmd = found[0]
        if text.startswith("-"):
            return _words([o.flag for o in cmd.options], text)
        if index >= len(cmd.args):
            return []
        arg = cmd.args[index]
        if arg.choices:
            return _words(arg.choices, text)
        if arg.name in ("env", "environment"):
            return _words(self.settings.environments, text)
        if arg.name == "actor":
            return _words(self.actor_names(), text)
        return []

    def command_names(self) -> list[str]:
        names = set(commands.commands()) | set(self.builtins) - {"exit"}
        if commands.get("promote") is not None or any(
            n.startswith("promote-") for n in commands.commands()
        ):
            names.add("promote")
        return sorted(names)

    def actor_names(self) -> list[str]:
        fetched_at, names = self.actor_cache
        if time.monotonic() - fetched_at > ACTORS_TTL:
            try:
                names = [str(node["name"]) for node in self.connect().actors()]
            except (DaemonUnreachable, OSError):
                names = []
            self.actor_cache = (time.monotonic(), names)
        return names

    def field_names(self, message: str, given: Sequence[str], text: str) -> list[str]:
        cls = message_types().get(message)
        if cls is None:
            return []
        used = {word.partition("=")[0] for word in given}
        names = [f"{f.name}=" for f in describe(cls) if f.name not in used]
        return [n for n in names if n.startswith(text)]  # no space: the value follows


def _words(names: Any, text: str) -> list[str]:
    return [f"{name} " for name in sorted(names) if str(name).startswith(text)]


def _injection(verb: str, words: list[str]) -> tuple[str, str, dict[str, str]]:
    if len(words) < 2:
        raise UsageError(verb, f"usage: {SHELL_HELP[verb][0]}")
    return words[0], words[1], parse_fields(words[2:], verb)


def _alive(sock: socket.socket) -> bool:
    """False when the daemon has closed this connection (EOF is waiting to be read)."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True  # nothing to read: open and idle
    except OSError:
        return False
