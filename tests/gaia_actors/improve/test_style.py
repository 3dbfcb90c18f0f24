"""Fixes in the target's own style: the tools it chose, only the files they may touch, and only
the changes that remove findings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gaia_actors.improve import history
from gaia_actors.improve.improvements import FixScope
from gaia_actors.improve.linters import parse_file_list, parse_reformat
from gaia_actors.improve.style import chosen_tools, configured_tools
from tests.gaia_actors.improve.conftest import snapshot, write
from tests.gaia_actors.improve.support import config, improve_tree


def names(root: Path) -> list[tuple[str, str]]:
    return [(t.name, t.evidence) for t in chosen_tools(root)]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "pyproject.toml",
            "[tool.black]\nline-length = 79\n",
            [("black", "pyproject.toml [tool.black]")],
        ),
        (
            "pyproject.toml",
            "[tool.ruff]\nline-length = 99\n[tool.ruff.format]\nquote-style = 'single'\n",
            [
                ("ruff", "pyproject.toml [tool.ruff]"),
                ("ruff format", "pyproject.toml [tool.ruff.format]"),
            ],
        ),
        ("ruff.toml", "[lint]\nselect = ['F']\n", [("ruff", "ruff.toml")]),
        (
            ".ruff.toml",
            "[format]\n",
            [("ruff", ".ruff.toml"), ("ruff format", ".ruff.toml [format]")],
        ),
        (
            "setup.cfg",
            "[flake8]\nx = 1\n\n[isort]\nskip = docs\n",
            [("isort", "setup.cfg [isort]")],
        ),
        ("tox.ini", "[tool:isort]\n", [("isort", "tox.ini [tool:isort]")]),
        (".isort.cfg", "[settings]\n", [("isort", ".isort.cfg")]),
        (
            ".pre-commit-config.yaml",
            "repos:\n- repo: x\n  hooks:\n  - id: black\n  - id: flake8\n",
            [("black", ".pre-commit-config.yaml hook black")],
        ),
        ("go.mod", "module example.com/m\n", [("gofmt", "go.mod")]),
    ],
)
def test_a_tool_is_chosen_only_by_the_targets_own_configuration(
    tmp_path: Path, name: str, text: str, expected: list[tuple[str, str]]
) -> None:
    write(tmp_path, name, text)
    assert names(tmp_path) == expected


def test_a_target_without_style_configuration_chooses_nothing(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", "[project]\nname = 'x'\n[tool.flit.sdist]\ninclude = []\n")
    write(tmp_path, "setup.cfg", "[flake8]\nmax-line-length = 100\n")
    write(tmp_path, "tox.ini", "[testenv]\ncommands = pytest  # isort is run elsewhere\n")
    assert chosen_tools(tmp_path) == ()


def test_configured_fixers_get_the_check_of_the_tool_they_run() -> None:
    tools = configured_tools(
        [["ruff", "format", "."], ["/venv/bin/black", "."], ["sed", "-i", "x"]]
    )
    assert [(t.name, t.evidence) for t in tools] == [
        ("ruff format", "configured"),
        ("black", "configured"),
        ("sed -i x", "configured"),
    ]
    assert [t.check.name if t.check else None for t in tools] == ["ruff format", "black", None]


def test_formatter_checks_become_one_format_finding_per_file(tmp_path: Path) -> None:
    old_ruff = "Would reformat: pkg/a.py\nWould reformat: b.py\n2 files would be reformatted\n"
    new_ruff = (
        "unformatted: File would be reformatted\n --> pkg/a.py:1:2\n  |\n"
        "unformatted: File would be reformatted\n --> pkg/a.py:9:1\n"
    )
    black = "would reformat /x/b.py\nOh no! 1 file would be reformatted.\n"
    isort = "ERROR: /x/c.py Imports are incorrectly sorted and/or formatted.\n"
    assert [f.file for f in parse_reformat(old_ruff, "", tmp_path)] == ["pkg/a.py", "b.py"]
    assert [f.file for f in parse_reformat(new_ruff, "", tmp_path)] == ["pkg/a.py"]
    assert [f.file for f in parse_reformat("", black, Path("/x"))] == ["b.py"]
    assert [f.file for f in parse_reformat("", isort, Path("/x"))] == ["c.py"]
    assert [f.type for f in parse_file_list("a.go\nsub/b.go\n", "", tmp_path)] == ["format"] * 2


def test_fixes_touch_source_files_outside_the_docs_only() -> None:
    scope = FixScope((".py", ".pyi"), ("docs/", "doc/", "examples/old.py"))
    assert scope.allows("pkg/mod.py")
    assert scope.allows("pkg/mod.pyi")
    assert not scope.allows("README.md")
    assert not scope.allows("docs/conf.py")
    assert not scope.allows("pkg/doc/example.py")
    assert not scope.allows("examples/old.py")


MODULE = """\
import os


def add(a,b):
    return a + b
"""
TESTS = "from mod import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
RUFF_CONFIG = (
    "[tool.ruff]\nline-length = 100\n\n[tool.ruff.lint]\nselect = ['F401']\n\n[tool.ruff.format]\n"
)


@pytest.fixture
def styled(tmp_path: Path) -> Path:
    """A project that chose ruff (F401) and ruff's formatter; an unformatted module with an
    unused import, an unformatted docs/conf.py and a README example."""
    root = tmp_path / "styled"
    write(root, "pyproject.toml", RUFF_CONFIG)
    write(root, "mod.py", MODULE)
    write(root, "test_mod.py", TESTS)
    write(root, "docs/conf.py", "project='x'\nimport os\n")
    write(root, "README.md", "```python\nx=1\n```\n")
    return root


def test_a_target_with_its_own_ruff_gets_the_smallest_diff_that_removes_its_findings(
    tmp_path: Path, styled: Path
) -> None:
    before = snapshot(styled)
    with improve_tree(config(tmp_path, styled, 'linters = ["ruff"]\nfixers = []\n')) as tree:
        result = history.show(tree.cycle(str(styled)))

    fixes = result["fixes"]
    assert fixes["status"] == "verified"
    assert [t["name"] for t in fixes["tools"]] == ["ruff", "ruff format"]
    assert fixes["files"] == ["mod.py"]  # not docs/conf.py, not the README
    assert sorted((f["type"], f["where"]) for f in fixes["fixed"]) == [
        ("format", "mod.py:1"),
        ("lint", "mod.py:1"),
    ]
    assert fixes["issues_fixed"] == 2
    assert result["issues_fixed"] == 2
    # ruff format rewrote both; neither is a file fixes touch.
    assert {e["file"] for e in fixes["left_out_examples"]} == {"docs/conf.py", "README.md"}
    assert "+def add(a, b):" in fixes["diff"]
    assert "-import os" in fixes["diff"]
    assert snapshot(styled) == before  # reported, not applied


def test_a_configured_fixer_whose_change_removes_no_finding_leaves_no_diff(
    tmp_path: Path, styled: Path
) -> None:
    # Appends a comment to the tests: nothing any check reports goes away.
    rewrite = (
        "import pathlib; p = pathlib.Path('test_mod.py'); "
        "p.write_text(p.read_text() + chr(35) + ' x' + chr(10))"
    )
    extra = 'linters = ["ruff"]\n' + f"fixers = {json.dumps([['{python}', '-c', rewrite]])}\n"
    with improve_tree(config(tmp_path, styled, extra)) as tree:
        result = history.show(tree.cycle())

    fixes = result["fixes"]
    assert fixes["status"] == "no_changes"
    assert fixes["left_out_examples"] == [
        {"file": "test_mod.py", "why": "its change removes no finding"}
    ]
    assert result["issues_fixed"] == 0
