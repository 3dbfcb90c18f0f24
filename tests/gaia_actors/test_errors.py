"""The error tree: one root, drawn once, and the exit codes the command line reads from it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import gaia_actors
from gaia_actors import cli, errors
from gaia_actors.client import RemoteError
from gaia_actors.errors import GaiaError, UsageError
from supervisors import NotRunning

# One line of the drawing: the branch marks, then the class name.
_NODE = re.compile(r"^(?P<indent>(?:│   |    )*)(?:├── |└── )?(?P<name>[A-Z]\w*)\b")


def exception_classes() -> dict[str, type[BaseException]]:
    """Every public exception class defined in gaia_actors, by name (private ones are signals
    a module raises and catches itself)."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(gaia_actors.__path__, "gaia_actors."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and not name.startswith("_")
            ):
                assert name not in found, f"two exception classes named {name}"
                found[name] = value
    return found


def drawn_tree() -> dict[str, str]:
    """The docstring's drawing as {class name: parent name} (the root's parent is "")."""
    doc = errors.__doc__ or ""
    lines = doc[doc.index("GaiaError ") :].split("\n\n")[0].splitlines()
    parents: dict[str, str] = {}
    path: list[str] = []
    for line in lines:
        match = _NODE.match(line)
        assert match is not None, f"not a node of the tree: {line!r}"
        depth = len(match["indent"]) // 4 + (0 if line.startswith("GaiaError") else 1)
        del path[depth:]
        parents[match["name"]] = path[-1] if path else ""
        path.append(match["name"])
    return parents


def test_every_exception_of_the_package_derives_from_gaia_error() -> None:
    classes = exception_classes()
    assert {"ProcessError", "BackupError", "ReleaseError", "FrameError"} <= classes.keys()
    outside = sorted(name for name, cls in classes.items() if not issubclass(cls, GaiaError))
    assert outside == []


def test_the_drawn_tree_lists_every_class_under_its_real_parent() -> None:
    classes = exception_classes()
    parents = drawn_tree()
    assert parents.keys() == classes.keys()
    for name, parent in parents.items():
        if parent:
            assert classes[parent] in classes[name].__bases__, f"{name} is not a {parent}"


def test_there_is_one_usage_error() -> None:
    from gaia_actors import commands, tail

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
