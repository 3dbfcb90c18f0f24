"""Tools from outside Python that some tests need: Go and a PostgreSQL server.

On a developer's machine a missing one skips its tests with the reason and how to get it.
Under CI (``CI=true``) it fails them instead: ``.ci/run`` installs Go and starts PostgreSQL, so
a missing one there is a broken CI, not a reason to pass without testing.
"""

from __future__ import annotations

import os
import shutil

import pytest

POSTGRES_URL_VARIABLE = "GAIA_TEST_POSTGRES_URL"


def require(available: bool, reason: str) -> None:
    """Skip (or under CI fail) the calling test with ``reason`` unless ``available``."""
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true, so this is a failure (.ci/run should provide it)")
    pytest.skip(reason)


def go() -> str:
    """The ``go`` executable; skips (fails under CI) without one."""
    path = shutil.which("go")
    require(path is not None, "go is not installed (apt-get install golang-go)")
    assert path is not None
    return path


def postgres_url() -> str:
    """A PostgreSQL server's peewee URL; skips (fails under CI) when none is configured."""
    url = os.environ.get(POSTGRES_URL_VARIABLE, "")
    require(
        bool(url),
        f"{POSTGRES_URL_VARIABLE} is unset (start a server with: "
        f"export {POSTGRES_URL_VARIABLE}=$(.ci/postgres start $(mktemp -d)))",
    )
    return url
