"""Each strategy with each restart type: who restarts, who stops, and in which order.

The tree is always [a, b, c] (started in that order) and b is the child that fails.
"""

from __future__ import annotations

from typing import Any

import pytest

from supervisors import NotRunning, Restart, Strategy
from supervisors.messages import RestartChild, WhichChildren
from tests.supervisors.support import Crash, Exit, Tree, Who, wait_until

ONE, ALL, REST = Strategy.ONE_FOR_ONE, Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE
PERM, TRANS, TEMP = Restart.PERMANENT, Restart.TRANSIENT, Restart.TEMPORARY

# What follows b's crash (or b's restart), as the journal records it.
RESTARTED = {
    ONE: [("start", "b", 2)],
    ALL: [
        ("stop", "c", 1),
        ("stop", "a", 1),
        ("start", "a", 2),
        ("start", "b", 2),
        ("start", "c", 2),
    ],
    REST: [("stop", "c", 1), ("start", "b", 2), ("start", "c", 2)],
}


def start_abc(tree: Tree, strategy: Strategy, b: Restart) -> None:
    tree.start([tree.spec("a"), tree.spec("b", b), tree.spec("c")], strategy=strategy)
    assert tree.journal.items() == [("start", "a", 1), ("start", "b", 1), ("start", "c", 1)]


def settle(tree: Tree, last: tuple[Any, ...]) -> list[Any]:
    """Wait for ``last`` in the journal, then for the supervisor to finish that handler."""
    tree.journal.wait_for(*last)
    return tree.registry.ask("root", WhichChildren())  # type: ignore[no-any-return]


def generations(tree: Tree) -> dict[str, int]:
    return {name: tree.registry.ask(name, Who())[1] for name in ("a", "b", "c")}


@pytest.mark.parametrize("strategy", [ONE, ALL, REST])
@pytest.mark.parametrize("restart", [PERM, TRANS])
def test_crashed_child_is_restarted_with_its_group(
    tree: Tree, strategy: Strategy, restart: Restart
) -> None:
    start_abc(tree, strategy, restart)
    mark = tree.journal.mark()
    tree.registry.tell("b", Crash())
    expected = [("crash", "b", 1), *RESTARTED[strategy]]
    settle(tree, expected[-1])
    assert tree.journal.since(mark) == expected
    moved = {name for _, name, _ in RESTARTED[strategy]}
    assert generations(tree) == {n: 2 if n in moved else 1 for n in "abc"}
    assert {n: tree.node(n).restarts for n in "abc"} == {n: int(n in moved) for n in "abc"}


@pytest.mark.parametrize("strategy", [ONE, ALL, REST])
def test_crashed_temporary_child_is_not_restarted_and_nobody_else_moves(
    tree: Tree, strategy: Strategy
) -> None:
    start_abc(tree, strategy, TEMP)
    mark = tree.journal.mark()
    tree.registry.tell("b", Crash())
    wait_until(lambda: tree.node("b").state == "stopped")
    children = tree.registry.ask("root", WhichChildren())
    assert [(c.name, c.state) for c in children] == [
        ("a", "running"),
        ("b", "stopped"),
        ("c", "running"),
    ]
    assert tree.journal.since(mark) == [("crash", "b", 1)]
    with pytest.raises(NotRunning, match="'b' is not running"):
        tree.registry.ask("b", Who())
    assert tree.registry.ask("a", Who()) == ("a", 1)
    assert tree.registry.ask("c", Who()) == ("c", 1)


@pytest.mark.parametrize("strategy", [ONE, ALL, REST])
@pytest.mark.parametrize("restart", [TRANS, TEMP])
def test_normal_exit_of_non_permanent_child_is_final(
    tree: Tree, strategy: Strategy, restart: Restart
) -> None:
    start_abc(tree, strategy, restart)
    mark = tree.journal.mark()
    tree.registry.tell("b", Exit())
    wait_until(lambda: tree.node("b").state == "stopped")
    tree.registry.ask("root", WhichChildren())
    assert tree.journal.since(mark) == [("stop", "b", 1)]
    assert tree.registry.ask("a", Who()) == ("a", 1)
    assert tree.registry.ask("c", Who()) == ("c", 1)
    assert not tree.registry.is_running("b")


@pytest.mark.parametrize("strategy", [ONE, ALL, REST])
def test_normal_exit_of_permanent_child_restarts_it_with_its_group(
    tree: Tree, strategy: Strategy
) -> None:
    start_abc(tree, strategy, PERM)
    mark = tree.journal.mark()
    tree.registry.tell("b", Exit())
    expected = [("stop", "b", 1), *RESTARTED[strategy]]
    settle(tree, expected[-1])
    assert tree.journal.since(mark) == expected
    assert tree.registry.ask("b", Who()) == ("b", 2)


def test_group_restart_skips_temporary_siblings_and_restarts_transient_ones(
    tree: Tree,
) -> None:
    tree.start([tree.spec("a", TEMP), tree.spec("b"), tree.spec("c", TRANS)], strategy=ALL)
    mark = tree.journal.mark()
    tree.registry.tell("b", Crash())
    settle(tree, ("start", "c", 2))
    assert tree.journal.since(mark) == [
        ("crash", "b", 1),
        ("stop", "c", 1),
        ("stop", "a", 1),
        ("start", "b", 2),
        ("start", "c", 2),
    ]
    assert tree.node("a").state == "stopped"
    with pytest.raises(NotRunning):
        tree.registry.tell("a", Who())


def test_rest_for_one_stops_a_later_temporary_child_for_good(tree: Tree) -> None:
    tree.start([tree.spec("a"), tree.spec("b"), tree.spec("c", TEMP)], strategy=REST)
    mark = tree.journal.mark()
    tree.registry.tell("b", Crash())
    settle(tree, ("start", "b", 2))
    assert tree.journal.since(mark) == [("crash", "b", 1), ("stop", "c", 1), ("start", "b", 2)]
    assert tree.node("c").state == "stopped"


@pytest.mark.parametrize("strategy", [ALL, REST])
def test_requested_restart_stops_the_group_in_reverse_start_order(
    tree: Tree, strategy: Strategy
) -> None:
    start_abc(tree, strategy, PERM)
    mark = tree.journal.mark()
    assert tree.registry.ask("root", RestartChild("b")) is None
    stops = [("stop", "c", 1), ("stop", "b", 1)] + ([("stop", "a", 1)] if strategy is ALL else [])
    starts = [s for s in RESTARTED[strategy] if s[0] == "start"]
    assert tree.journal.since(mark) == stops + starts


def test_root_stops_children_in_reverse_start_order(tree: Tree) -> None:
    root = tree.start([tree.spec("a"), tree.spec("b"), tree.spec("c")])
    mark = tree.journal.mark()
    root.stop(block=True, timeout=5)
    assert tree.journal.since(mark) == [("stop", "c", 1), ("stop", "b", 1), ("stop", "a", 1)]
    assert tree.registry.names() == []


def test_duplicate_child_names_are_refused(tree: Tree) -> None:
    with pytest.raises(ValueError, match="duplicate child names"):
        tree.start([tree.spec("a"), tree.spec("a")])
