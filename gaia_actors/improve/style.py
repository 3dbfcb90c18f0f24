"""The tools a target has chosen for its style, so fixes come in that style and no other.

A fixer runs on a target only where the target uses that tool, as its own configuration says,
or where the operator configured it for that target. A target that has chosen none gets
findings and ranked tasks, never a reformatting by a tool it does not use.

What counts as choosing a tool:

- ruff (its lint fixes, ``ruff check --fix``): ``ruff.toml``, ``.ruff.toml`` or ``[tool.ruff]``
  in ``pyproject.toml``; ruff reads that configuration, so only the rules the target selects
  are fixed;
- ruff's formatter: a ``[format]`` table there (``[tool.ruff.format]``);
- black: ``[tool.black]`` in ``pyproject.toml``;
- isort: ``.isort.cfg``, ``[tool.isort]``, or an ``[isort]``/``[tool:isort]`` section in
  ``setup.cfg``, ``tox.ini`` or ``.editorconfig``;
- any of these as a hook id in ``.pre-commit-config.yaml`` (``ruff``, ``ruff-format``,
  ``black``, ``isort``);
- gofmt: a ``go.mod`` (Go has one format).

Each formatter also has a check that lists the files it would change (``ruff format --check``,
``black --check``, ``isort --check-only``, ``gofmt -l``): each such file is a ``format``
finding, which the formatter's fix removes. A command the operator configured that is none of
these still runs, with no check of its own.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gaia_actors.improve.linters import LinterSpec
from supervisors.records import record


@record
class StyleTool:
    """A tool the target (or the operator) chose: how it fixes, how to see what it would fix."""

    name: str
    evidence: str  # where the choice was found ("pyproject.toml [tool.black]", "configured")
    fix: tuple[str, ...]
    check: LinterSpec | None = None


_RUFF_FIX = ("ruff", "check", "--fix", "--no-cache", "--exit-zero", ".")
# --no-cache: no .ruff_cache written into the target.
_KNOWN: dict[str, tuple[tuple[str, ...], LinterSpec | None]] = {
    "ruff": (_RUFF_FIX, None),  # its findings come from the ruff linter
    "ruff format": (
        ("ruff", "format", "--no-cache", "."),
        LinterSpec(
            "ruff format", ("ruff", "format", "--check", "--no-cache", "."), "reformat", (0, 1)
        ),
    ),
    "black": (
        ("black", "-q", "."),
        LinterSpec("black", ("black", "--check", "."), "reformat", (0, 1)),
    ),
    "isort": (
        ("isort", "-q", "."),
        LinterSpec("isort", ("isort", "--check-only", "."), "reformat", (0, 1)),
    ),
    "gofmt": (("gofmt", "-w", "."), LinterSpec("gofmt", ("gofmt", "-l", "."), "file-list")),
}
_HOOKS = {"ruff": "ruff", "ruff-format": "ruff format", "black": "black", "isort": "isort"}
_INI_SECTIONS = ("setup.cfg", "tox.ini", ".editorconfig")


def tool(name: str, evidence: str) -> StyleTool:
    fix, check = _KNOWN[name]
    return StyleTool(name, evidence, fix, check)


def chosen_tools(root: Path) -> tuple[StyleTool, ...]:
    """The style tools ``root``'s own configuration chooses, in the order they should run
    (import sorting, then lint fixes, then formatting)."""
    found: dict[str, str] = {}
    for name, evidence in _evidence(root):
        found.setdefault(name, evidence)
    order = ("isort", "ruff", "black", "ruff format", "gofmt")
    return tuple(tool(name, found[name]) for name in order if name in found)


def _evidence(root: Path) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    pyproject = _toml(root / "pyproject.toml").get("tool", {})
    for name, table in (("ruff", "ruff"), ("black", "black"), ("isort", "isort")):
        if isinstance(pyproject, dict) and table in pyproject:
            found.append((name, f"pyproject.toml [tool.{table}]"))
    ruff = pyproject.get("ruff", {}) if isinstance(pyproject, dict) else {}
    if isinstance(ruff, dict) and "format" in ruff:
        found.append(("ruff format", "pyproject.toml [tool.ruff.format]"))
    for name in ("ruff.toml", ".ruff.toml"):
        if (root / name).is_file():
            found.append(("ruff", name))
            if "format" in _toml(root / name):
                found.append(("ruff format", f"{name} [format]"))
    if (root / ".isort.cfg").is_file():
        found.append(("isort", ".isort.cfg"))
    for name in _INI_SECTIONS:
        section = _ini_section(root / name, ("isort", "tool:isort"))
        if section:
            found.append(("isort", f"{name} [{section}]"))
    found.extend(_pre_commit_hooks(root / ".pre-commit-config.yaml"))
    if (root / "go.mod").is_file():
        found.append(("gofmt", "go.mod"))
    return found


def _toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return {}  # absent or unreadable: it chooses nothing


def _ini_section(path: Path, sections: Sequence[str]) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    for section in sections:
        if re.search(rf"^\[{re.escape(section)}\]\s*$", text, re.M):
            return section
    return ""


def _pre_commit_hooks(path: Path) -> list[tuple[str, str]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    ids = re.findall(r"^\s*-?\s*id:\s*['\"]?([\w.-]+)", text, re.M)
    return [(_HOOKS[i], f".pre-commit-config.yaml hook {i}") for i in ids if i in _HOOKS]


def configured_tools(fixers: Sequence[Sequence[str]]) -> tuple[StyleTool, ...]:
    """The operator's fixer commands, each with the check of the tool it runs (if known)."""
    return tuple(_configured(tuple(argv)) for argv in fixers if argv)


def _configured(argv: tuple[str, ...]) -> StyleTool:
    name = _tool_of(argv)
    check = _KNOWN[name][1] if name else None
    return StyleTool(name or _short(argv), "configured", argv, check)


def _tool_of(argv: tuple[str, ...]) -> str:
    program = Path(argv[0]).name
    words = argv[1:]
    if program == "ruff" and words[:1] == ("format",):
        return "ruff format"
    if program == "ruff" and words[:1] == ("check",):
        return "ruff"
    return program if program in ("black", "isort", "gofmt") else ""


def _short(argv: tuple[str, ...]) -> str:
    """``ruff check --fix`` for ``ruff check --fix --no-cache --exit-zero .``: the command
    without its path arguments and cache/exit flags, shortened."""
    noise = {".", "./...", "--no-cache", "--exit-zero", "-w", "-q"}
    words = [Path(argv[0]).name, *(w for w in argv[1:] if w not in noise)]
    name = " ".join(words)
    return name if len(name) <= 40 else name[:37] + "..."
