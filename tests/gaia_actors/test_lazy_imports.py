"""A process imports only what it uses, and what is imported later still registers.

The operator commands' modules import the actors, the store's models and their libraries
inside the handlers that use them; the packages ``supervisors``, ``gaia_actors.monitoring``
and ``gaia_actors.messages`` import a public name from its module on first use; an analysis
process runs a module of its own. What must hold: a command line and an analysis process
import no actor machinery and no heavy library, and the registries (messages by name,
commands, handler signatures) still see everything where they are read.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
import typing

import pytest

import supervisors
from gaia_actors import messages, monitoring
from gaia_actors.control import catalog, commands
from tests.gaia_actors.control.test_control import REPO

# What a command line that talks to the daemon does not need: the actors and their tree, the
# store's models and the libraries behind them (HTTP, SQL, metrics, logging, e-mail).
HEAVY = (
    "gaia_actors.actor",
    "gaia_actors.app",
    "gaia_actors.httpclient",
    "gaia_actors.process",
    "gaia_actors.store",
    "supervisors.supervisor",
    "supervisors.children",
    "supervisors.registry",
    "pykka",
    "requests",
    "urllib3",
    "peewee",
    "playhouse",
    "psycopg2",
    "structlog",
    "prometheus_client",
    "smtplib",
    "pathspec",
    "asyncio",
    "concurrent.futures",
)

# One process, in steps: the module an analysis process runs imported (the analysis is
# preloaded there, and is no heavy module); the registry read; the line
# `status --json` read, then the heavy modules seen (the log reader ``tail`` among them: that
# line has no use for it); every command module loaded (as --help and the REPL load them), then
# the heavy modules seen; then the daemon's tree built (its children, not started), then the
# messages registered by name.
SCRIPT = """
import json, sys
heavy = tuple(sys.argv[2:])
import gaia_actors.improve.batches
child = sorted(m for m in sys.modules if m.startswith(heavy))
from gaia_actors.messages import message_types
first = sorted(message_types())
from gaia_actors.console import cli
cli.parse(["status", "--json"])
one = sorted(m for m in sys.modules if m.startswith((*heavy, "gaia_actors.console.tail")))
from gaia_actors.control import catalog
catalog.load_all()
heavy = sorted(m for m in sys.modules if m.startswith(heavy))
listed = sorted(message_types())
from gaia_actors.app import build_children
from gaia_actors.messages import message_types
from gaia_actors.settings import load
from supervisors import Registry
build_children(load(sys.argv[1]), Registry())
found = {"child": child, "one": one, "heavy": heavy, "first": first, "listed": listed}
print(json.dumps({**found, "messages": sorted(message_types())}))
"""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    folder = tmp_path_factory.mktemp("lazy")
    config = folder / "gaia.toml"
    config.write_text('[logging]\nconsole = "off"\n', encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(config), *HEAVY],
        cwd=REPO,
        env={**os.environ, "GAIA_STATE_DIR": str(folder / "state")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, list[str]] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_an_analysis_process_imports_nothing_heavy(loaded: dict[str, list[str]]) -> None:
    # Each cycle forks one per worker: the actor machinery there would be imported again in each.
    assert loaded["child"] == []


def test_a_command_line_imports_nothing_heavy(loaded: dict[str, list[str]]) -> None:
    assert loaded["one"] == []


def test_the_command_line_with_every_command_imports_nothing_heavy(
    loaded: dict[str, list[str]],
) -> None:
    assert loaded["heavy"] == []


def _declared_messages(where: str = "gaia_actors") -> set[str]:
    """Every class the source under ``where`` (a folder or a file) decorates with ``@message``."""
    root = REPO / where
    names = set()
    for path in [root] if root.is_file() else sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(d, ast.Name) and d.id == "message" for d in node.decorator_list
            ):
                names.add(node.name)
    return names


def test_the_daemon_registers_every_message_its_source_declares(
    loaded: dict[str, list[str]],
) -> None:
    # The control socket builds messages by name, and it starts after every other child: by
    # then the daemon has imported every module that declares one, those its capabilities
    # import only when their children are built included.
    declared = _declared_messages()
    assert len(declared) > 50
    assert declared <= set(loaded["messages"]), sorted(declared - set(loaded["messages"]))


def test_the_registry_read_first_has_every_message_of_the_messages_package(
    loaded: dict[str, list[str]],
) -> None:
    # A name is imported from its area on first use; reading the registry imports them all.
    declared = _declared_messages("gaia_actors/messages")
    assert len(declared) > 40
    assert declared <= set(loaded["first"]), sorted(declared - set(loaded["first"]))


def test_help_and_the_repl_know_every_message_but_the_control_servers_own(
    loaded: dict[str, list[str]],
) -> None:
    # With every command loaded (help, the REPL), the registry lists the messages declared
    # beside the capabilities' actors too; the control server's timer is the daemon's alone.
    declared = _declared_messages() - _declared_messages("gaia_actors/control/server.py")
    assert declared <= set(loaded["listed"]), sorted(declared - set(loaded["listed"]))


def test_every_command_handler_signature_resolves() -> None:
    # Arguments are typed from the handler's annotations; one that names a module imported
    # only inside a function would not resolve, and every argument would read as a string.
    catalog.load_all()
    for name, cmd in commands.commands().items():
        hints = typing.get_type_hints(cmd.handler)
        assert "ctx" in hints, name


@pytest.mark.parametrize("package", [supervisors, monitoring, messages], ids=lambda p: p.__name__)
def test_a_package_imports_each_public_name_from_its_module(package: object) -> None:
    homes: dict[str, str] = vars(package)["_HOMES"]
    exported = set(vars(package)["__all__"])
    assert set(homes) <= exported
    for name, home in homes.items():
        assert getattr(package, name) is getattr(importlib.import_module(home), name)
    for name in exported - set(homes):  # defined by the package itself
        assert getattr(package, name).__module__ == vars(package)["__name__"]
    with pytest.raises(AttributeError, match="no_such_name"):
        getattr(package, "no_such_name")  # noqa: B009 - the name is the point


@pytest.mark.parametrize("package", [supervisors, monitoring, messages], ids=lambda p: p.__name__)
def test_a_package_lists_its_public_names_before_their_first_use(package: object) -> None:
    # dir() feeds completion, help() and inspect.getmembers: a name not yet imported is
    # listed all the same, as it was when the package imported every name at once.
    name = vars(package)["__name__"]
    script = f"import json, {name} as p; print(json.dumps(sorted(set(p.__all__) - set(dir(p)))))"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == []


# A module whose import raises AttributeError, as one does under an incompatible library
# (``class Supervised(pykka.ThreadingActor)`` with a Pykka that has no such class).
BROKEN_IMPORT = """
import importlib.abc, importlib.machinery, json, sys
package, name, home = sys.argv[1:]
class Broken(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        return importlib.machinery.ModuleSpec(fullname, self) if fullname == home else None
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        raise AttributeError("module 'pykka' has no attribute 'ThreadingActor'")
sys.meta_path.insert(0, Broken())
imported = importlib.import_module(package)
seen = {}
for how, attempt in (("hasattr", lambda: hasattr(imported, name)),
                     ("from", lambda: exec(f"from {package} import {name}"))):
    try:
        seen[how] = repr(attempt())
    except Exception as exc:
        seen[how] = f"{type(exc).__name__}: {exc} <- {exc.__cause__!r}"
print(json.dumps(seen))
"""


@pytest.mark.parametrize(
    ("package", "name"),
    [(supervisors, "Supervisor"), (monitoring, "HealthMonitor"), (messages, "GetHealth")],
    ids=lambda p: getattr(p, "__name__", p),
)
def test_a_failed_import_of_a_names_module_is_reported_with_its_cause(
    package: object, name: str
) -> None:
    # An AttributeError from the import is not "no such name": hasattr() would answer False
    # and ``from package import name`` would say only that it cannot import the name.
    home = vars(package)["_HOMES"][name]
    done = subprocess.run(
        [sys.executable, "-c", BROKEN_IMPORT, vars(package)["__name__"], name, home],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(done.stdout)
    for how in ("hasattr", "from"):
        assert seen[how].startswith("ImportError"), seen
        assert home in seen[how], seen
        assert "has no attribute 'ThreadingActor'" in seen[how], seen
