"""Reading a package's error classes and the tree its errors module draws of them."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import types

# One line of the drawing: the branch marks, then the class name.
_NODE = re.compile(r"^(?P<indent>(?:│   |    )*)(?:├── |└── )?(?P<name>[A-Z]\w*)\b")


def exception_classes(package: types.ModuleType) -> dict[str, type[BaseException]]:
    """Every public exception class the package's modules define, by name (private ones are
    signals a module raises and catches itself)."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and not name.startswith("_")
            ):
                assert name not in found, f"two exception classes named {name}"
                found[name] = value
    return found


def drawn_tree(errors: types.ModuleType, root: str) -> dict[str, str]:
    """The errors module's drawing, from the line naming ``root`` to the first blank line,
    as {class name: parent name} (the root's parent is "")."""
    doc = errors.__doc__ or ""
    lines = doc[doc.index(f"\n{root}") + 1 :].split("\n\n")[0].splitlines()
    parents: dict[str, str] = {}
    path: list[str] = []
    for line in lines:
        match = _NODE.match(line)
        if match is None:  # a description running on below its class
            assert line.startswith(("│ ", " ")), f"not a node of the tree: {line!r}"
            continue
        depth = len(match["indent"]) // 4 + (0 if line.startswith(root) else 1)
        del path[depth:]
        parents[match["name"]] = path[-1] if path else ""
        path.append(match["name"])
    return parents


def check_tree(package: types.ModuleType, errors: types.ModuleType, root: str) -> None:
    """Every exception class of ``package`` derives from ``root`` and is drawn in ``errors``'s
    docstring under the class it really derives from."""
    classes = exception_classes(package)
    outside = sorted(name for name, cls in classes.items() if not issubclass(cls, classes[root]))
    assert outside == [], f"not under {root}"
    parents = drawn_tree(errors, root)
    assert parents.keys() == classes.keys()
    for name, parent in parents.items():
        if parent:
            assert classes[parent] in classes[name].__bases__, f"{name} is not a {parent}"
