"""The Python import graph of a target: edges between its files, cycles, and fan-in.

Module names. A file gets two names: its dotted path from the root (``src.pkg.mod``, which
also covers namespace packages) and its name from the top of its chain of regular packages
(``pkg.mod`` when ``src/`` has no ``__init__.py``: the name it is imported by when ``src`` is
on the path). ``pkg/__init__.py`` is the module ``pkg``. Imports resolve against both.

Resolution. ``import a.b.c`` depends on the deepest of ``a.b.c``, ``a.b``, ``a`` that is in the
tree (executing the parent packages' ``__init__`` is not counted: counting it makes every
submodule that imports a sibling look like a cycle with its package). ``from a.b import c``
depends on the module ``a.b.c`` when there is one, else on ``a.b``. Relative imports resolve
against the importing file's package. Imports of anything outside the tree are dropped.

Cycles are found among *import-time* edges only: imports at module level (also inside ``if``,
``try``, ``with`` and class bodies), not those inside functions and not those under ``if
TYPE_CHECKING:``, which do not run at import and are the usual way to break a cycle. Each
strongly connected component (Tarjan) with more than one file, or a file importing itself, is
one ``ImportCycle``: its members, plus one shortest concrete cycle through its first member
(listing every elementary cycle can take exponential time).

Fan-in counts every edge, deferred ones included: the number of files that import a file
directly, and the number that depend on it directly or transitively.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable, Mapping, Sequence

from gaia_actors.improve.findings import Finding, Severity
from supervisors.records import record


@record
class ImportRef:
    """One imported module as written: ``from ..a import b`` is ("a", level 2, ("b",))."""

    module: str
    level: int
    names: tuple[str, ...]
    line: int
    import_time: bool  # False inside functions and under ``if TYPE_CHECKING:``


@record
class FanIn:
    """How many files import a file directly, and how many depend on it at all."""

    direct: int
    transitive: int


@record
class ImportCycle:
    """A set of files that import each other at import time, and one concrete cycle."""

    files: tuple[str, ...]
    example: tuple[str, ...]  # a -> b -> ... -> a, first element repeated at the end


@record
class ImportGraph:
    """Files (relative posix paths) and their dependencies within the tree."""

    edges: Mapping[str, frozenset[str]]
    import_time_edges: Mapping[str, frozenset[str]]
    modules: Mapping[str, str]  # dotted name -> file
    cycles: tuple[ImportCycle, ...]
    fan_in: Mapping[str, FanIn]


# --- extracting imports ---------------------------------------------------------------


def extract_imports(tree: ast.Module) -> tuple[ImportRef, ...]:
    """The imports of a parsed module, statements only (cheap: expressions are not visited)."""
    found: list[ImportRef] = []
    _collect(tree.body, found, import_time=True)
    return tuple(found)


def _collect(body: Sequence[ast.AST], found: list[ImportRef], import_time: bool) -> None:
    for node in body:
        if isinstance(node, ast.Import):
            found.extend(ImportRef(a.name, 0, (), node.lineno, import_time) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names = tuple(a.name for a in node.names)
            found.append(ImportRef(node.module or "", node.level, names, node.lineno, import_time))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            _collect(node.body, found, import_time=False)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            _collect(node.body, found, import_time=False)
            _collect(node.orelse, found, import_time)
        else:
            _collect(statement_children(node), found, import_time)


def statement_children(node: ast.AST) -> list[ast.AST]:
    """The statements directly nested in ``node`` (bodies, ``else``/``finally`` blocks, match
    cases) and its ``except`` handlers; never expressions. Walking only these visits a small
    fraction of a module's nodes."""
    children: list[ast.AST] = []
    for name in ("body", "orelse", "finalbody", "handlers"):
        value = getattr(node, name, None)
        if isinstance(value, list):
            children.extend(value)
    for case in getattr(node, "cases", ()):
        children.extend(case.body)
    return children


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


# --- module names ---------------------------------------------------------------------


def module_names(files: Iterable[str]) -> dict[str, str]:
    """Dotted name -> file for every ``.py`` file, under both naming rules (see above)."""
    paths = sorted(f for f in files if f.endswith(".py"))
    packages = {p.rsplit("/", 1)[0] for p in paths if p.endswith("/__init__.py")}
    names: dict[str, str] = {}
    for path in paths:
        for name in (_package_name(path, packages), _root_name(path)):
            if name:
                names.setdefault(name, path)
    return names


def _root_name(path: str) -> str:
    parts = path[: -len(".py")].split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_name(path: str, packages: set[str]) -> str:
    parts = path[: -len(".py")].split("/")
    directory = parts[:-1]
    start = len(directory)
    while start > 0 and "/".join(directory[:start]) in packages:
        start -= 1
    name = parts[start:]
    if name[-1] == "__init__":
        name.pop()
    return ".".join(name)


def _package_of(path: str, packages: set[str]) -> str | None:
    """The package a file's relative imports start from, or None outside any package."""
    name = _package_name(path, packages)
    if path.endswith("/__init__.py") or path == "__init__.py":
        return name
    if "." not in name:
        return None if "/".join(path.split("/")[:-1]) not in packages else ""
    return name.rsplit(".", 1)[0]


# --- resolving and building -----------------------------------------------------------


def resolve(
    ref: ImportRef, importer: str, names: Mapping[str, str], packages: set[str]
) -> set[str]:
    """The files in the tree that ``ref`` (written in ``importer``) depends on."""
    base = ref.module
    if ref.level:
        package = _package_of(importer, packages)
        if package is None:
            return set()
        parts = package.split(".") if package else []
        if ref.level - 1 > len(parts):
            return set()
        parts = parts[: len(parts) - (ref.level - 1)]
        base = ".".join([*parts, ref.module] if ref.module else parts)
    if not ref.names:
        return _deepest(base, names)
    targets: set[str] = set()
    for name in ref.names:
        full = f"{base}.{name}" if base else name
        if full in names:
            targets.add(names[full])
        elif base in names:
            targets.add(names[base])
    return targets


def _deepest(dotted: str, names: Mapping[str, str]) -> set[str]:
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in names:
            return {names[prefix]}
    return set()


def build_graph(imports: Mapping[str, Sequence[ImportRef]]) -> ImportGraph:
    """The graph of the files in ``imports`` (file -> its ``extract_imports``)."""
    names = module_names(imports)
    packages = {p.rsplit("/", 1)[0] for p in imports if p.endswith("/__init__.py")}
    edges: dict[str, set[str]] = {path: set() for path in imports}
    runtime: dict[str, set[str]] = {path: set() for path in imports}
    for path, refs in imports.items():
        for ref in refs:
            targets = resolve(ref, path, names, packages)
            edges[path] |= targets
            if ref.import_time:
                runtime[path] |= targets
    frozen = {k: frozenset(v) for k, v in edges.items()}
    frozen_runtime = {k: frozenset(v) for k, v in runtime.items()}
    return ImportGraph(
        edges=frozen,
        import_time_edges=frozen_runtime,
        modules=names,
        cycles=find_cycles(frozen_runtime),
        fan_in=fan_in(frozen),
    )


# --- strongly connected components ----------------------------------------------------


def strongly_connected(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (deep import chains must not hit the recursion limit).

    Components come out in reverse topological order: a component before those that import it.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work: list[tuple[str, Iterable[str]]] = [(root, iter(sorted(edges.get(root, ()))))]
        _visit(root, index, low, stack, on_stack)
        while work:
            node, children = work[-1]
            child = next(iter(children), None)
            if child is not None:
                if child not in index:
                    _visit(child, index, low, stack, on_stack)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                components.append(_pop_component(node, stack, on_stack))
    return components


def _visit(
    node: str, index: dict[str, int], low: dict[str, int], stack: list[str], on_stack: set[str]
) -> None:
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)


def _pop_component(node: str, stack: list[str], on_stack: set[str]) -> list[str]:
    component: list[str] = []
    while True:
        member = stack.pop()
        on_stack.discard(member)
        component.append(member)
        if member == node:
            return sorted(component)


def find_cycles(edges: Mapping[str, frozenset[str]]) -> tuple[ImportCycle, ...]:
    """One ``ImportCycle`` per strongly connected component that has a cycle."""
    cycles: list[ImportCycle] = []
    for component in strongly_connected(edges):
        first = component[0]
        if len(component) == 1 and first not in edges.get(first, frozenset()):
            continue
        members = set(component)
        cycles.append(ImportCycle(tuple(component), _shortest_cycle(first, edges, members)))
    return tuple(sorted(cycles, key=lambda c: c.files))


def _shortest_cycle(
    start: str, edges: Mapping[str, frozenset[str]], members: set[str]
) -> tuple[str, ...]:
    """Breadth-first from ``start`` back to itself, staying inside the component."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(edges.get(node, ())):
            if child not in members:
                continue
            if child == start:
                chain = [node]
                while chain[-1] != start:
                    chain.append(previous[chain[-1]])
                return (*reversed(chain), start)
            if child not in previous:
                previous[child] = node
                queue.append(child)
    return (start,)  # unreachable for a real component; keeps the type total


# --- fan-in ---------------------------------------------------------------------------


def fan_in(edges: Mapping[str, frozenset[str]]) -> dict[str, FanIn]:
    """Direct and transitive importers of every file.

    Transitive: the graph's components are condensed into a DAG and each component's set of
    dependants is built as a bitset (a Python int) from those of its importers, in topological
    order, so the whole thing is one pass instead of a search per file.
    """
    nodes = sorted(set(edges).union(*edges.values()))
    direct = dict.fromkeys(nodes, 0)
    for targets in edges.values():
        for target in targets:
            direct[target] += 1
    components = strongly_connected(edges)
    owner = {node: i for i, comp in enumerate(components) for node in comp}
    position = {node: i for i, node in enumerate(nodes)}
    bits = [sum(1 << position[node] for node in comp) for comp in components]
    importers: dict[int, set[int]] = {i: set() for i in range(len(components))}
    for source, targets in edges.items():
        for target in targets:
            if owner[source] != owner[target]:
                importers[owner[target]].add(owner[source])
    masks = [0] * len(components)
    # Tarjan emits a component after everything it imports, so importers come later:
    # walking backwards finishes every importer's mask before it is needed.
    for i in reversed(range(len(components))):
        for j in importers[i]:
            masks[i] |= masks[j] | bits[j]
    return {
        node: FanIn(direct[node], masks[owner[node]].bit_count() + len(components[owner[node]]) - 1)
        for node in nodes
    }


def cycle_findings(graph: ImportGraph) -> list[Finding]:
    """One ``import_cycle`` finding per cycle, on its first file (medium, priority 5)."""
    return [
        Finding(
            type="import_cycle",
            file=cycle.files[0],
            line=1,
            text="import cycle: " + " -> ".join(cycle.example),
            severity=Severity.MEDIUM,
            priority=5,
            detector="graph",
            anchor="import cycle among " + " ".join(cycle.files),
        )
        for cycle in graph.cycles
    ]
