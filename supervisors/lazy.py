"""A package's public names imported from their modules on first use (PEP 562): a program that
needs one module of a package does not import every module the package re-exports.

    __getattr__, __dir__ = lazy_names(__name__, globals(), _HOMES)

``_HOMES`` maps each public name to the module that defines it, as literal names in the
package's own source (where the layering test reads them as its imports)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(
    package: str, namespace: dict[str, Any], homes: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The package's ``__getattr__`` and ``__dir__``."""

    def get(name: str) -> object:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        try:
            module = importlib.import_module(home)
        except AttributeError as exc:
            # Raised by the module's import (a library without an attribute it uses), it would
            # read as "no such name": hasattr() would answer False, and ``from package import
            # name`` would hide the cause.
            raise ImportError(
                f"{package}.{name}: importing {home} failed: {exc}", name=home
            ) from exc
        value = getattr(module, name)
        namespace[name] = value
        return value

    def names() -> list[str]:
        # The names not imported yet too, as when every name was imported with the package.
        return sorted({*namespace, *homes})

    return get, names
