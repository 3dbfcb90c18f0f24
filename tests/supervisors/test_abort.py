"""SystemExit / KeyboardInterrupt inside one actor fail that actor alone (Pykka: stop_all)."""

from __future__ import annotations

import pykka
import pytest

from supervisors import ChildAborted, Restart, WhichChildren
from tests.supervisors.support import Abort, Exit, Probe, Tree, Who


class Custom(BaseException):
    """A BaseException that is neither SystemExit nor KeyboardInterrupt."""


def probes_alive() -> int:
    return len([r for r in pykka.ActorRegistry.get_all() if r.actor_class is Probe])


@pytest.mark.parametrize("kind", [SystemExit, KeyboardInterrupt, Custom])
def test_told_abort_fails_only_that_actor_which_is_restarted(
    tree: Tree, kind: type[BaseException]
) -> None:
    tree.start([tree.spec("a"), tree.spec("b")])
    tree.registry.tell("a", Abort(kind))
    tree.journal.wait_for("start", "a", 2)
    assert tree.registry.ask("b", Who()) == ("b", 1)  # the sibling kept running
    assert tree.registry.ask("a", Who()) == ("a", 2)
    assert probes_alive() == 2
    [failed] = tree.events.all("supervisor.child_failed", child="a")
    assert "ChildAborted" in failed["error"]
    assert kind.__name__ in failed["error"]
    assert tree.journal.kinds("crash") == [("crash", "a", 1)]  # reported once


@pytest.mark.parametrize("kind", [SystemExit, KeyboardInterrupt])
def test_asked_abort_raises_child_aborted_and_the_actor_is_restarted(
    tree: Tree, kind: type[BaseException]
) -> None:
    tree.start([tree.spec("a"), tree.spec("b")])
    with pytest.raises(ChildAborted, match=kind.__name__) as caught:
        tree.registry.ask("a", Abort(kind))
    assert isinstance(caught.value.__cause__, kind)
    tree.journal.wait_for("start", "a", 2)
    assert tree.registry.ask("b", Who()) == ("b", 1)
    assert tree.registry.ask("a", Who()) == ("a", 2)
    assert tree.journal.kinds("crash") == [("crash", "a", 1)]


def test_system_exit_in_on_stop_fails_only_that_actor(tree: Tree) -> None:
    def raise_once(_: Probe) -> None:
        tree.script.on_stop.pop("a")
        raise SystemExit(1)

    tree.script.on_stop["a"] = raise_once
    tree.start([tree.spec("a", Restart.TRANSIENT), tree.spec("b")])
    tree.registry.tell("a", Exit())  # a normal exit, except that on_stop raises
    tree.journal.wait_for("start", "a", 2)  # transient, yet restarted: the exit was abnormal
    assert tree.registry.ask("b", Who()) == ("b", 1)
    [failed] = tree.events.all("supervisor.child_failed", child="a")
    assert failed["phase"] == "stop"
    assert "SystemExit" in failed["error"]
    tree.registry.ask("root", WhichChildren())
    assert probes_alive() == 2


def test_an_on_stop_error_makes_a_transient_exit_abnormal(tree: Tree) -> None:
    def raise_once(_: Probe) -> None:
        tree.script.on_stop.pop("a")
        raise OSError("could not flush")

    tree.script.on_stop["a"] = raise_once
    tree.start([tree.spec("a", Restart.TRANSIENT)])
    tree.registry.tell("a", Exit())
    tree.journal.wait_for("start", "a", 2)
    [failed] = tree.events.all("supervisor.child_failed", child="a")
    assert "could not flush" in failed["error"]
