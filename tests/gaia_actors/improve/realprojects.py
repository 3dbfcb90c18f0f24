"""Real third-party projects for whole cycles: pinned sdists from PyPI, fetched once and cached.

``pip download --no-deps --no-binary :all: NAME==VERSION`` into the cache (``GAIA_TEST_TARGETS``,
else ``~/.cache/gaia-test-targets``), extracted there once; each test works on its own copy.
Without the network the tests that need a project are skipped, except under ``CI=true``, where
a missing project fails them (a CI run must not pass by skipping its real targets).

The projects are small, pure Python, with their tests in the sdist and no test dependency
beyond pytest:

- idna 3.7: a ``tests/`` folder and no pytest configuration at all, no formatter configured;
- cachetools 5.3.3: a ``src/`` layout, ``tests/``, a tox.ini that is not pytest's;
- inflection 0.5.1: ``test_inflection.py`` beside the package, an ``[isort]`` section.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

PINNED = {"idna": "3.7", "cachetools": "5.3.3", "inflection": "0.5.1"}
DOWNLOAD_TIMEOUT = 120.0


def cache_dir() -> Path:
    configured = os.environ.get("GAIA_TEST_TARGETS")
    return Path(configured) if configured else Path.home() / ".cache" / "gaia-test-targets"


def fetch_sdist(name: str) -> Path:
    """The extracted sdist of ``name`` at its pinned version, downloaded on first use; raises
    OSError, subprocess.SubprocessError or tarfile.TarError when it cannot be fetched."""
    version = PINNED[name]
    tree = cache_dir() / f"{name}-{version}"
    if not tree.is_dir():
        try:
            _download_and_extract(name, version, tree)
        except OSError:
            if not tree.is_dir():  # else another run put it there first
                raise
    return tree


def sdist_tree(name: str) -> Path:
    """``fetch_sdist`` for a test: skipped without the network, failed under ``CI=true``."""
    try:
        return fetch_sdist(name)
    except (OSError, subprocess.SubprocessError, tarfile.TarError) as exc:
        message = f"cannot fetch {name}=={PINNED[name]} from PyPI: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def _download_and_extract(name: str, version: str, tree: Path) -> None:
    tree.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tree.parent, prefix=f".{name}-") as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--disable-pip-version-check",
                "-q",
                "-d",
                tmp,
                f"{name}=={version}",
            ],
            check=True,
            capture_output=True,
            timeout=DOWNLOAD_TIMEOUT,
        )
        archive = next(Path(tmp).glob("*.tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        extracted = Path(tmp) / f"{name}-{version}"
        os.replace(extracted, tree)  # atomic: a concurrent run sees the whole tree or none


def real_project(name: str, dest: Path) -> Path:
    """A private copy of ``name``'s sdist tree under ``dest``."""
    copy = dest / name
    shutil.copytree(sdist_tree(name), copy, symlinks=True)
    return copy
