"""The import graph: resolution, cycles (import-time only) and fan-in."""

from __future__ import annotations

import ast
from pathlib import Path

from gaia_actors.improve.analysis import analyse_batch
from gaia_actors.improve.files import walk
from gaia_actors.improve.graph import (
    FanIn,
    ImportGraph,
    build_graph,
    cycle_findings,
    extract_imports,
    fan_in,
    find_cycles,
    module_names,
)
from gaia_actors.improve.sources import AnalysisSettings
from tests.gaia_actors.improve.conftest import write


def graph_of(root: Path) -> ImportGraph:
    results = analyse_batch(walk(root).files, root, AnalysisSettings())
    return build_graph({r.path: r.imports for r in results})


def make_tree(root: Path) -> None:
    write(root, "app/__init__.py", "from app import core\n")
    write(root, "app/core.py", "from . import util\nfrom .models import Model\n")
    write(root, "app/util.py", "import app.models\n")
    write(root, "app/models.py", "from app.util import helper\nclass Model: ...\n")
    write(
        root,
        "app/late.py",
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from app.core import thing\n"
        "def f():\n    from app import core\n",
    )
    write(root, "scripts/run.py", "import app.core\nimport os\nimport json\n")
    write(root, "app/sub/__init__.py", "")
    write(root, "app/sub/leaf.py", "from ..util import helper\nfrom ... import nothing_here\n")


def test_imports_resolve_relative_absolute_and_package_forms(tmp_path: Path) -> None:
    make_tree(tmp_path)
    graph = graph_of(tmp_path)
    assert graph.edges["app/core.py"] == {"app/util.py", "app/models.py"}
    assert graph.edges["app/util.py"] == {"app/models.py"}
    assert graph.edges["app/__init__.py"] == {"app/core.py"}
    assert graph.edges["scripts/run.py"] == {"app/core.py"}  # os and json are not in the tree
    assert graph.edges["app/sub/leaf.py"] == {"app/util.py"}  # level 3 leaves the tree
    assert graph.edges["app/late.py"] == {"app/core.py"}
    assert graph.import_time_edges["app/late.py"] == frozenset()


def test_cycles_are_found_among_import_time_edges_only(tmp_path: Path) -> None:
    make_tree(tmp_path)
    graph = graph_of(tmp_path)
    assert [c.files for c in graph.cycles] == [("app/models.py", "app/util.py")]
    assert graph.cycles[0].example == ("app/models.py", "app/util.py", "app/models.py")
    [finding] = cycle_findings(graph)
    assert (finding.type, finding.file) == ("import_cycle", "app/models.py")
    assert finding.text == "import cycle: app/models.py -> app/util.py -> app/models.py"


def test_every_cycle_of_a_larger_component_is_one_report_with_a_shortest_example() -> None:
    edges = {
        "a": frozenset({"b"}),
        "b": frozenset({"c"}),
        "c": frozenset({"a", "d"}),
        "d": frozenset({"e"}),
        "e": frozenset({"d"}),
        "f": frozenset({"f"}),  # a module importing itself
        "g": frozenset({"a"}),
    }
    cycles = find_cycles(edges)
    assert [c.files for c in cycles] == [("a", "b", "c"), ("d", "e"), ("f",)]
    assert [c.example for c in cycles] == [("a", "b", "c", "a"), ("d", "e", "d"), ("f", "f")]


def test_deep_chains_do_not_hit_the_recursion_limit() -> None:
    edges = {f"m{i}": frozenset({f"m{i + 1}"}) for i in range(5000)}
    edges["m5000"] = frozenset({"m0"})
    [cycle] = find_cycles(edges)
    assert len(cycle.files) == 5001


def test_fan_in_counts_direct_and_transitive_dependants() -> None:
    edges = {
        "app.py": frozenset({"service.py"}),
        "cli.py": frozenset({"service.py", "util.py"}),
        "service.py": frozenset({"util.py"}),
        "util.py": frozenset(),
        "x.py": frozenset({"y.py"}),
        "y.py": frozenset({"x.py", "util.py"}),
    }
    result = fan_in(edges)
    assert result["util.py"] == FanIn(direct=3, transitive=6 - 1)
    assert result["service.py"] == FanIn(direct=2, transitive=2)
    assert result["app.py"] == FanIn(direct=0, transitive=0)
    assert result["x.py"] == FanIn(direct=1, transitive=1)  # its cycle partner


def test_src_layout_and_namespace_names() -> None:
    names = module_names(["src/pkg/__init__.py", "src/pkg/mod.py", "tools/script.py"])
    assert names["pkg.mod"] == "src/pkg/mod.py"
    assert names["src.pkg.mod"] == "src/pkg/mod.py"
    assert names["pkg"] == "src/pkg/__init__.py"
    assert names["tools.script"] == "tools/script.py"


def test_extract_imports_marks_deferred_and_type_checking_imports() -> None:
    tree = ast.parse(
        "import a\n"
        "try:\n    import b\nexcept ImportError:\n    import c\n"
        "class K:\n    import d\n"
        "if typing.TYPE_CHECKING:\n    import e\nelse:\n    import f\n"
        "async def g():\n    import h\n"
    )
    refs = {ref.module: ref.import_time for ref in extract_imports(tree)}
    assert refs == {
        "a": True,
        "b": True,
        "c": True,
        "d": True,
        "e": False,
        "f": True,
        "h": False,
    }
