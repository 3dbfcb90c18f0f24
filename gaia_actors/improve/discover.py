"""How a target's tests are found: by pytest's own rules, as ``python -m pytest`` would.

pytest runs in a target that has either

- a pytest configuration: ``pytest.ini`` or ``.pytest.ini`` (even empty), a ``conftest.py`` at
  the top, or a ``[tool.pytest.ini_options]`` table in ``pyproject.toml``, ``[tool:pytest]`` in
  ``setup.cfg``, ``[pytest]`` in ``tox.ini`` (the files pytest reads its ``inifile`` from); or
- test files pytest collects by default (``python_files = test_*.py *_test.py``) anywhere in
  the analysed tree (the walk's exclusions apply: ``.gitignore``, ``venv``, ...).

A Go target (``go.mod``) gets ``go test``. The operator may name any other test command for a
target in the configuration (``tests = "command"``).

A target with a ``src/`` layout (its packages under ``src/``) is usually tested after an
install; the cycle installs nothing, so ``src`` goes first on the tests' ``PYTHONPATH``, which
is what an editable install would give them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from supervisors.records import record

PYTEST_FILES = ("pytest.ini", ".pytest.ini", "conftest.py")
PYTEST_SECTIONS = (
    ("pyproject.toml", "tool.pytest.ini_options"),
    ("setup.cfg", "tool:pytest"),
    ("tox.ini", "pytest"),
)
TEST_FILE = re.compile(r"(?:^|/)(?:test_[^/]*|[^/]*_test)\.py\Z")
SHOWN = 3  # test files named in the reason


@record
class TestPlan:
    """Which tests a target gets (pytest | go | command | none) and why."""

    __test__ = False

    kind: str
    reason: str


def pytest_config(root: Path) -> str:
    """Where ``root``'s pytest configuration is (``"setup.cfg [tool:pytest]"``), or ""."""
    for name in PYTEST_FILES:
        if (root / name).is_file():
            return name
    for name, section in PYTEST_SECTIONS:
        try:
            text = (root / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if re.search(rf"^\[{re.escape(section)}\]\s*$", text, re.M):
            return f"{name} [{section}]"
    return ""


def collected_modules(paths: Iterable[str]) -> list[str]:
    """The paths pytest collects as test modules by default, sorted."""
    return sorted(path for path in paths if TEST_FILE.search(path))


def find_tests(root: Path, python_files: Iterable[str]) -> TestPlan:
    """What runs ``root``'s tests when nothing is configured for it."""
    config = pytest_config(root)
    if config:
        return TestPlan("pytest", f"pytest configuration in {config}")
    if (root / "go.mod").is_file():
        return TestPlan("go", "found go.mod")
    found = collected_modules(python_files)
    if found:
        more = f" and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
        return TestPlan("pytest", f"test files pytest collects: {', '.join(found[:SHOWN])}{more}")
    return TestPlan(
        "none",
        "no test files pytest collects (test_*.py, *_test.py), no pytest configuration "
        "(pytest.ini, conftest.py, [tool.pytest.ini_options], [tool:pytest], [pytest]) "
        "and no go.mod in the target",
    )


def src_layout(root: Path) -> str:
    """``"src"`` when ``root`` keeps its packages under ``src/``, else ""."""
    src = root / "src"
    if not src.is_dir():
        return ""
    has_package = any(
        (child / "__init__.py").is_file() or child.suffix == ".py" for child in src.iterdir()
    )
    return "src" if has_package else ""
