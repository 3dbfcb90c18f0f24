"""The error tree: one root, drawn once, and the exit codes the command line reads from it."""

from __future__ import annotations

import pytest

import gaia_actors
from gaia_actors import errors
from gaia_actors.console import cli
from gaia_actors.console.client import RemoteError
from gaia_actors.errors import UsageError
from supervisors import NotRunning
from tests.errortree import check_tree, exception_classes


def test_every_exception_of_the_package_derives_from_gaia_error_and_is_drawn() -> None:
    assert {"ProcessError", "BackupError", "ReleaseError", "FrameError"} <= exception_classes(
        gaia_actors
    ).keys()
    check_tree(gaia_actors, errors, "GaiaError")


def test_there_is_one_usage_error() -> None:
    from gaia_actors.console import tail
    from gaia_actors.control import commands

    assert commands.UsageError is UsageError
    assert tail.UsageError is UsageError


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.ConfigError("gaia.toml", "port", "expected an integer"), cli.EXIT_USAGE),
        (UsageError("promote", "no environment 'qa'", "env"), cli.EXIT_USAGE),
        (cli.ParseError("invalid choice", "usage: gaia-env"), cli.EXIT_USAGE),
        (errors.LockHeld("/tmp/state", "123"), cli.EXIT_USAGE),
        (errors.DaemonUnreachable("/tmp/gaia.sock"), cli.EXIT_UNREACHABLE),
        (RemoteError("bad_argument", "no such field"), cli.EXIT_USAGE),
        (RemoteError("failed", "the bus refused"), cli.EXIT_FAILED),
        (errors.StoreError("disk full"), cli.EXIT_FAILED),
        (errors.EnvironmentFailure("prod", "exited 1"), cli.EXIT_FAILED),
        (cli.ParserExit(0), cli.EXIT_OK),
        (NotRunning("bus"), cli.EXIT_FAILED),
        (ValueError("a bug"), None),
    ],
)
def test_exit_code_reads_the_error_class(error: BaseException, code: int | None) -> None:
    assert cli.exit_code(error) == code
