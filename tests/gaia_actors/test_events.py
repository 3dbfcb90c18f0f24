"""Event names: one module spells them, the product imports them.

The checks read the product's source with ``ast``. A string literal counts as an event name
where it is one of the events modules' names or globs, anywhere; and where an event name is
expected — an argument of a publishing call, a comparison with an event's name, an f-string
built there — when it is shaped like one (``family.name``). Logger event names
(``log.info("store.records_lost")``), module paths and actor names are not event names.
``test_layering.py`` runs the checks over the product; here they are tested on samples.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from gaia_actors import events
from gaia_actors.environments.state import OpKind
from gaia_actors.pipeline.reports import PipelineReport, StageReport, event_name
from gaia_actors.pipeline.runner import FAILED
from supervisors import events as supervisor_events

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("gaia_actors", "supervisors")
EVENT_MODULES = frozenset({REPO / "gaia_actors" / "events.py", REPO / "supervisors" / "events.py"})
# Calls that take an event name: the publishers, the supervisor's listener and its wrappers.
PUBLISHERS = frozenset({"publish", "_publish", "_emit", "_alert", "_notify", "Event", "listener"})
# What an event's name is read into before it is compared.
NAME_HOLDERS = frozenset({"name", "event", "event_name"})
LOG_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical", "msg"})
SHAPE = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")


def families() -> dict[str, type]:
    """Every class of event names, by class name."""
    return {
        name: value
        for module in (events, supervisor_events)
        for name, value in vars(module).items()
        if inspect.isclass(value) and value.__module__ == module.__name__
    }


def constants() -> dict[str, str]:
    """``Class.ATTR`` -> value, for every name and glob."""
    return {
        f"{cls_name}.{attr}": value
        for cls_name, cls in families().items()
        for attr, value in vars(cls).items()
        if attr.isupper()
    }


def names_of(cls: type) -> set[str]:
    return {value for attr, value in vars(cls).items() if attr.isupper()}


NAMES = frozenset(constants().values())
FAMILIES = frozenset(name.split(".")[0] for name in NAMES)


def _is_log_call(call: ast.Call) -> bool:
    func = call.func
    if not isinstance(func, ast.Attribute) or func.attr not in LOG_METHODS:
        return False
    target: ast.expr = func.value
    while isinstance(target, ast.Call | ast.Attribute):
        if isinstance(target, ast.Attribute) and "log" in target.attr:
            return True
        target = target.func if isinstance(target, ast.Call) else target.value
    return isinstance(target, ast.Name) and "log" in target.id


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _spelled(node: ast.expr) -> Iterator[ast.expr]:
    """The literal strings and f-strings an expression is made of (through ``a if c else b``)."""
    if isinstance(node, ast.IfExp):
        yield from _spelled(node.body)
        yield from _spelled(node.orelse)
    elif isinstance(node, ast.Tuple | ast.List | ast.Set):
        for element in node.elts:
            yield from _spelled(element)
    elif isinstance(node, ast.BinOp):
        yield from _spelled(node.left)
        yield from _spelled(node.right)
    elif isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    ):
        yield node


def _names_an_event(node: ast.expr, any_family: bool) -> bool:
    """A literal shaped like an event name, or an f-string that starts like one; of a known
    family unless ``any_family`` (where only an event name can go)."""
    if isinstance(node, ast.Constant):
        text = node.value
    elif isinstance(node, ast.JoinedStr) and node.values:
        head = node.values[0]
        text = head.value + "x" if isinstance(head, ast.Constant) else ""
    else:
        return False
    if isinstance(text, str) and text.endswith("."):  # a family's prefix
        text += "x"
    if not isinstance(text, str) or not SHAPE.match(text):
        return False
    return any_family or text.split(".")[0] in FAMILIES


def _where_names_go(tree: ast.AST) -> Iterator[tuple[ast.expr, bool]]:
    """The expressions in a place an event name goes: a publisher's positional arguments
    (where any dotted name is one), either side of a comparison with an event's name."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) in PUBLISHERS:
            yield from ((arg, True) for arg in node.args)
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_holds_name(side) for side in sides):
                yield from ((side, False) for side in sides)
        elif isinstance(node, ast.Call) and _tests_a_prefix(node):
            yield from ((arg, False) for arg in node.args)


def _tests_a_prefix(call: ast.Call) -> bool:
    """``name.startswith("family.")``: a family told by its spelling, not by its glob."""
    func = call.func
    prefix_methods = ("startswith", "removeprefix")
    return (
        isinstance(func, ast.Attribute) and func.attr in prefix_methods and _holds_name(func.value)
    )


def _holds_name(node: ast.expr) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr in NAME_HOLDERS
    return isinstance(node, ast.Name) and node.id in NAME_HOLDERS


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def spelled_event_names(source: str) -> list[tuple[int, str]]:
    """(line, text) of every event name spelled as a string in ``source``."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found: dict[int, tuple[int, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip.update(id(part) for part in node.values)
        elif isinstance(node, ast.Call) and _is_log_call(node) and node.args:
            skip.add(id(node.args[0]))  # a logger's own event name
    for node in ast.walk(tree):
        is_name = isinstance(node, ast.Constant) and node.value in NAMES
        if is_name and id(node) not in skip:
            found[id(node)] = (node.lineno, repr(node.value))
    for place, any_family in _where_names_go(tree):
        for node in _spelled(place):
            if _names_an_event(node, any_family) and id(node) not in skip:
                found[id(node)] = (node.lineno, ast.unparse(node))
    return sorted(found.values())


def product_files() -> Iterator[Path]:
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if path not in EVENT_MODULES:
                yield path


def test_every_event_name_is_unique_and_in_its_family() -> None:
    seen: dict[str, str] = {}
    for where, value in constants().items():
        assert value not in seen, f"{where} repeats {seen.get(value)}: {value!r}"
        seen[value] = where
    for cls_name, cls in families().items():
        names = {attr: v for attr, v in vars(cls).items() if attr.isupper() and attr != "ALL"}
        assert names, f"{cls_name} names no event"
        for attr, value in names.items():
            assert SHAPE.match(value), f"{cls_name}.{attr} = {value!r} is not family.name"
            if "ALL" in vars(cls):  # a family with a glob holds only the names it matches
                assert events.matches(value, cls.ALL), f"{cls_name}.ALL misses {value!r}"


def test_the_events_module_lists_the_supervisors_names_too() -> None:
    assert events.SupervisorEvent is supervisor_events.SupervisorEvent
    assert set(events.__all__) >= set(families())


def test_operation_tables_hold_only_environment_names() -> None:
    tables = (
        events.OPERATION_STARTED,
        events.OPERATION_DONE,
        events.OPERATION_FAILED,
        events.OPERATION_REVERTED,
        events.DATA_OPERATION_REPLACED,
    )
    for table in tables:
        assert set(table.values()) <= names_of(events.EnvironmentEvent)
    assert set(events.OPERATION_DONE) == set(events.OPERATION_FAILED)


def test_every_operation_kind_has_its_events() -> None:
    switching = {kind for kind in OpKind if kind.switches_release}
    assert set(events.OPERATION_DONE) == set(OpKind)
    assert set(events.OPERATION_STARTED) == set(events.OPERATION_REVERTED) == switching
    assert set(events.DATA_OPERATION_REPLACED) == set(OpKind) - switching


@pytest.mark.parametrize("status", ["running", "succeeded", *FAILED])
def test_a_pipeline_report_is_published_under_a_constant(status: str) -> None:
    report = PipelineReport(
        run_id=1, pipeline_id=2, kind="promote", source="staging", target="prod",
        release="r1", status=status,
    )  # fmt: skip
    assert event_name(report) in names_of(events.PipelineEvent)


@pytest.mark.parametrize("status", ["running", "passed", "warned", "skipped", *FAILED])
def test_a_stage_report_is_published_under_a_constant(status: str) -> None:
    report = StageReport(
        run_id=1, pipeline_id=2, position=1, name="unit", kind="tests", env="staging",
        blocking=True, status=status,
    )  # fmt: skip
    assert event_name(report) in names_of(events.StageEvent)


MISUSE = {
    "a retyped name": 'self.publish("health.changed", env=env)',
    "a typo in a known family": 'self.publish("health.chnaged", env=env)',
    "a typo in the family": 'self.publish("helth.changed", env=env)',
    "a new name not in the module": 'self.publish("environment.exploded")',
    "a name built by an f-string": 'self.publish(f"environment.{kind}_started")',
    "one built in a conditional": 'self.publish("stage.a" if ok else f"stage.{status}")',
    "a name compared with an event's": 'if event.name == "environment.startd": pass',
    "a name held and compared": 'if name in ("supervisor.restrat",): pass',
    "a retyped glob": 'PATTERNS = ("health.*",)',
    "a name among others": 'RESTARTS = frozenset({"supervisor.restart"})',
    "a supervisor listener's name": 'self._emit("supervisor.child_gone", child)',
    "an outbox event": 'Event("alert.data_lost", level="critical")',
    "a family told by its prefix": 'if event.name.startswith("supervisor."): pass',
    "a family among prefixes": 'if name.startswith(("pipeline.", "stage.")): pass',
}
NOT_EVENTS = {
    "a logger's event name": 'self.log.warning("bus.sink_failed", sink=key)',
    "a logger's name in a known family": 'log.info("store.records_lost", lost=1)',
    "a bound logger": 'self.log.bind(actor=a).error("pipeline.run_ended")',
    "a logger's name": 'log = structlog.get_logger("gaia.control")',
    "a module loaded by name": 'importlib.import_module("gaia_actors.improve.cli_commands")',
    "an actor's name": 'self.tell(f"environment.{env}", Fail())',
    "a settings key": 'check(where, "improve.schedule", value)',
    "a path's prefix": 'if path.name.startswith("data."): pass',
    "a file name": 'path = state_dir / "daemon.lock"',
    "a docstring": 'def f() -> None:\n    """Publishes ``health.changed``."""',
    "the constants": "self.publish(HealthEvent.CHANGED, env=env)",
    "a name looked up by kind": "self.publish(OPERATION_DONE[op.kind], env=env)",
}


@pytest.mark.parametrize("source", MISUSE.values(), ids=MISUSE.keys())
def test_the_check_finds_an_event_name_spelled_as_a_string(source: str) -> None:
    assert spelled_event_names(source)


@pytest.mark.parametrize("source", NOT_EVENTS.values(), ids=NOT_EVENTS.keys())
def test_the_check_leaves_other_dotted_strings_alone(source: str) -> None:
    assert spelled_event_names(source) == []
