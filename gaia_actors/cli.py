"""The command line: ``python run.py [command]`` and the ``gaia-env`` console script.

With no command it runs the daemon in the foreground. Exit codes: 0 ok, 1 the operation
failed, 2 usage or configuration error, 3 the daemon is not reachable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gaia_actors import __version__
from gaia_actors.errors import ConfigError, DaemonUnreachable, GaiaError, LockHeld
from gaia_actors.settings import Settings, load

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gaia-env",
        description="Keeps a service's dev, staging and prod environments alive and promotes "
        "releases between them. With no command, runs the daemon in the foreground.",
        epilog="Exit codes: 0 ok, 1 operation failed, 2 usage or configuration error, "
        "3 daemon not reachable.",
    )
    parser.add_argument(
        "--config", help="configuration file (default: config/gaia.toml or $GAIA_CONFIG)"
    )
    parser.add_argument("--version", action="version", version=f"gaia-env {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="run the daemon in the foreground (the default)")
    tail = sub.add_parser("tail", help="read and follow the daemon's structured log")
    from gaia_actors import tail as tail_module

    tail_module.add_arguments(tail)
    sub.add_parser("help", help="show this help")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "help":
        parser.print_help()
        return EXIT_OK
    try:
        settings = load(args.config)
    except ConfigError as exc:
        print(f"gaia-env: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _dispatch(args, settings)
    except LockHeld as exc:
        print(f"gaia-env: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DaemonUnreachable as exc:
        print(f"gaia-env: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except GaiaError as exc:
        print(f"gaia-env: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command in (None, "run"):
        from gaia_actors.app import Daemon

        return Daemon(settings).run()
    if args.command == "tail":
        from gaia_actors import tail

        return tail.run(args, settings.log_path)
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse rejects unknown ones
