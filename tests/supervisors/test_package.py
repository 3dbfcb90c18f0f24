"""The package's public surface, and its independence from the application."""

from __future__ import annotations

import ast
import pathlib

import supervisors

PUBLIC = {
    "AskExpired",
    "AskTimeout",
    "Backoff",
    "ChildAborted",
    "ChildSpec",
    "Clock",
    "Escalation",
    "Exhausted",
    "Intensity",
    "Link",
    "ManualClock",
    "Listener",
    "NodeInfo",
    "NotRunning",
    "ParkNow",
    "RealClock",
    "Registry",
    "ResetChild",
    "Restart",
    "RestartChild",
    "StepSkipped",
    "Strategy",
    "Supervised",
    "SupervisionError",
    "Supervisor",
    "SupervisorConfig",
    "WhichChildren",
}


def test_exported_names() -> None:
    assert set(supervisors.__all__) == PUBLIC
    assert all(hasattr(supervisors, name) for name in PUBLIC)


def test_errors_share_one_root() -> None:
    for name in ("AskExpired", "AskTimeout", "ChildAborted", "Escalation", "NotRunning"):
        assert issubclass(getattr(supervisors, name), supervisors.SupervisionError)


def test_the_package_imports_nothing_from_the_application() -> None:
    package = pathlib.Path(supervisors.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            assert not any(n.split(".")[0] == "gaia_actors" for n in names), path
