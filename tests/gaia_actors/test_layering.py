"""The import layering, read from the source with ``ast``.

Imports flow one way: console -> app -> capabilities -> core -> ``supervisors``. Every import
counts: module level, inside functions, under ``TYPE_CHECKING``, and a string literal that
names one of the project's modules (a module loaded from a string list, such as a registry of
module names handed to ``importlib``); importing a package's module from outside the package
also imports the package (its ``__init__`` runs first, and may import more). The rules:

- ``supervisors/`` imports nothing from ``gaia_actors``;
- the core imports no capability and no console module;
- a capability imports no other capability, not the app and not the console;
- there is no import cycle anywhere in the module graph.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import TypeGuard

from tests.gaia_actors.test_events import product_files, spelled_event_names

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("gaia_actors", "supervisors")
CAPABILITIES = ("environments", "monitoring", "pipeline", "improve", "alerts")
CONSOLE = frozenset({"console"})
# The app: the tree and the control server it starts last. Every module directly under
# gaia_actors/ is named in one layer, so a new module is placed by whoever adds it; a module of
# a package is placed by its own name (``control.server``) before its package's (``control``:
# the command registry and the wire protocol, which the capabilities use, are core).
APP = frozenset(
    {
        "app",
        "control.catalog",
        "control.connection",
        "control.frames",
        "control.ops",
        "control.server",
        "control.streams",
    }
)
CORE = frozenset(
    {
        "__init__",
        "actor",
        "bus",
        "control",
        "conversion",
        "datanotes",
        "errors",
        "events",
        "formatting",
        "health",
        "httpclient",
        "junit",
        "layout",
        "lock",
        "logs",
        "messages",
        "outbox",
        "process",
        "relay",
        "replies",
        "settings",
        "store",
        "timers",
    }
)

Edge = tuple[str, str]

# Edges allowed against the rules, each with its reason (none today); any other fails.
KNOWN_EXCEPTIONS: dict[Edge, str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((REPO / package).rglob("*.py"))
    }


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module ``name`` is or lives in (``a.b.func`` -> ``a.b``), or None."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _from_base(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    anchor = module.split(".")
    anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def _import_names(
    node: ast.AST, module: str, is_package: bool, modules: dict[str, Path]
) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = _from_base(node, module, is_package)
        for alias in node.names:  # ``from pkg import sub`` imports the submodule
            submodule = f"{base}.{alias.name}"
            yield submodule if submodule in modules else base
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        # A dotted name of one of the project's modules: loaded from a string list.
        name = node.value
        if name.startswith(PACKAGES) and "." in name and name.replace(".", "").isidentifier():
            yield name


@functools.cache  # read once for all the tests of a run (~1 CPU-s a reading)
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(parsed(path)):
        for name in _import_names(node, module, is_package, modules):
            target = _resolve(name, modules)
            if target is not None and target != module:
                found.add(target)
                found |= _packages_entered(module, target, modules)
    return found


def _packages_entered(module: str, target: str, modules: dict[str, Path]) -> set[str]:
    """The packages whose ``__init__`` runs when ``module`` imports ``target`` from outside
    them: a package that re-exports its modules is imported with each of them."""
    parts = target.split(".")
    packages = (".".join(parts[:i]) for i in range(2, len(parts)))
    return {p for p in packages if p in modules and not module.startswith(p + ".")}


@functools.cache  # built once for the three tests that read it; none changes it
def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "supervisors":
        return "supervisors"
    if len(parts) == 1:
        return "core"  # the package's __init__
    if parts[1] in CAPABILITIES:
        return f"capability:{parts[1]}"
    for name in (".".join(parts[1:3]), parts[1]):
        if name in CONSOLE:
            return "console"
        if name in APP:
            return "app"
        if name in CORE:
            return "core"
    raise AssertionError(f"{module}: not placed in a layer; add it to CORE, APP or CONSOLE")


def forbidden(source: str, target: str) -> bool:
    src, dst = layer(source), layer(target)
    if src == "supervisors":
        return dst != "supervisors"
    if src == "core":
        return dst.startswith("capability:") or dst in ("app", "console")
    if src.startswith("capability:"):
        return dst != src and (dst.startswith("capability:") or dst in ("app", "console"))
    if src == "app":
        return dst == "console"
    return False


def layering_violations(graph: dict[str, set[str]]) -> list[Edge]:
    return sorted(
        (source, target)
        for source, targets in graph.items()
        for target in targets
        if forbidden(source, target)
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The graph's strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def without_known(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    return {
        source: {t for t in targets if (source, t) not in KNOWN_EXCEPTIONS}
        for source, targets in graph.items()
    }


def _describe(edges: list[Edge]) -> str:
    return "\n".join(
        f"  {source} -> {target}  ({layer(source)} -> {layer(target)})" for source, target in edges
    )


def test_every_module_has_a_layer() -> None:
    for module in project_modules():
        layer(module)


def test_imports_flow_one_way() -> None:
    violations = [e for e in layering_violations(import_graph()) if e not in KNOWN_EXCEPTIONS]
    assert not violations, "imports against the layering:\n" + _describe(violations)


def test_no_import_cycle() -> None:
    graph = without_known(import_graph())
    found = cycles(graph)
    lines = []
    for component in found:
        members = set(component)
        edges = sorted((s, t) for s in component for t in graph[s] if t in members)
        lines.append(f"cycle among {', '.join(component)}:\n{_describe(edges)}")
    assert not found, "import cycles:\n" + "\n".join(lines)


def test_known_exceptions_are_still_needed() -> None:
    graph = import_graph()
    stale = sorted(edge for edge in KNOWN_EXCEPTIONS if edge[1] not in graph.get(edge[0], ()))
    assert not stale, "known exceptions no longer imported; remove them:\n" + _describe(stale)


# Modules that load others by name, and why. A loader takes its names from a table of
# literal module names in its own source, which this test reads as its imports (above); the
# name is never built at run time.
NAME_LOADERS: dict[str, str] = {
    "gaia_actors.control.catalog": "a command line imports only the module of its command",
    "gaia_actors.messages": "a public name is imported from its module on first use",
    "gaia_actors.monitoring": "a public name is imported from its module on first use",
    "supervisors": "a public name is imported from its module on first use",
}


# What imports the names a loader's table lists, for the loaders above that are packages.
LOADER_MECHANISMS = frozenset({"supervisors.lazy"})


def _loads_by_name(node: ast.AST) -> TypeGuard[ast.Call]:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in ("import_module", "__import__")


def _built_at_run_time(call: ast.Call) -> bool:
    """A name formatted, concatenated or computed by a call, rather than read from a table."""
    built = (ast.JoinedStr, ast.BinOp, ast.Call)
    return any(isinstance(node, built) for arg in call.args for node in ast.walk(arg))


def test_no_module_is_loaded_by_a_computed_name() -> None:
    """A module name built at run time is an import this test cannot read: register
    imported modules instead, or list them by name in one of the ``NAME_LOADERS``."""
    found = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for module, path in project_modules().items()
        for node in ast.walk(parsed(path))
        if _loads_by_name(node)
        and (module not in NAME_LOADERS.keys() | LOADER_MECHANISMS or _built_at_run_time(node))
    ]
    assert not found, "modules loaded by name:\n  " + "\n  ".join(found)


def test_a_loader_lists_modules_that_exist() -> None:
    """A misspelt name in a loader's table would be no import here, and an ImportError only
    when someone runs that command."""
    modules = project_modules()
    for loader in NAME_LOADERS:
        tree = parsed(modules[loader])
        listed = {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.startswith(tuple(f"{p}." for p in PACKAGES))
        }
        assert listed, f"{loader} lists no module"
        assert listed <= set(modules), f"{loader}: no such module: {sorted(listed - set(modules))}"


def test_no_event_name_is_spelled_outside_the_events_modules() -> None:
    """An event name retyped as a string is a contract between actors that nothing checks."""
    spelled = [
        f"{path.relative_to(REPO)}:{line}: {text}"
        for path in product_files()
        for line, text in spelled_event_names(path.read_text())
    ]
    assert spelled == [], "use the constants of gaia_actors/events.py:\n" + "\n".join(spelled)


def test_the_reader_sees_every_kind_of_import(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text(
        "import gaia_actors.bus\n"
        "from gaia_actors import settings\n"
        "def f():\n"
        "    from gaia_actors.store import Store\n"
        "MODULES = ['gaia_actors.pipeline.commands']\n"
    )
    modules = project_modules()
    assert imports_of("gaia_actors.sample", source, modules) == {
        "gaia_actors.bus",
        "gaia_actors.settings",
        "gaia_actors.store",
        "gaia_actors.pipeline.commands",
        "gaia_actors.pipeline",  # its __init__ runs first
    }


def test_a_cycle_and_a_forbidden_edge_are_reported() -> None:
    graph = {
        "gaia_actors.control.commands": {"gaia_actors.improve.cli_commands"},
        "gaia_actors.improve.cli_commands": {"gaia_actors.app"},
        "gaia_actors.app": {"gaia_actors.control.commands"},
    }
    assert cycles(graph) == [sorted(graph)]
    assert layering_violations(graph) == [
        ("gaia_actors.control.commands", "gaia_actors.improve.cli_commands"),
        ("gaia_actors.improve.cli_commands", "gaia_actors.app"),
    ]
