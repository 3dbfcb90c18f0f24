"""Helpers for the improvement-engine tests: write small trees, snapshot them, a tiny project."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

RUFF = Path(sys.executable).parent / "ruff"
# Inner pytest runs skip plugin autoloading (hypothesis alone costs ~1.3 s per start here).
FAST_PYTEST_ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def write(root: Path, relpath: str, text: str | bytes) -> Path:
    """Create ``root/relpath`` (and its directories) with ``text`` (dedented) or raw bytes."""
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` as a developer would (an identity of its own); its stdout."""
    return subprocess.run(
        ["git", "-c", "user.name=dev", "-c", "user.email=dev@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def snapshot(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file (and symlink target) under ``root``."""
    result: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            result[rel] = "link:" + str(path.readlink())
        elif path.is_file():
            result[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return result


PROJECT_MODULE = """\
def add(a, b):
    return a + b


def unused(flag):
    if flag:
        return 1
    doubled = flag * 2
    return doubled
"""

PROJECT_TESTS = """\
from mod import add


def test_add():
    assert add(1, 2) == 3


def test_add_zero():
    assert add(0, 5) == 5


def test_add_wrong():
    assert add(2, 2) == 5
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A module and three tests, one of which fails."""
    root = tmp_path / "project"
    write(root, "mod.py", PROJECT_MODULE)
    write(root, "test_mod.py", PROJECT_TESTS)
    return root
