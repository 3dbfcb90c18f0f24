"""Backoff as the supervisor applies it: the delays of `supervisor.restart` events.

The trees run on the manual clock: a restart's delay passes when the test advances it."""

from __future__ import annotations

import itertools
import random

from supervisors import Backoff, Intensity
from tests.supervisors.support import Crash, Tree, config

SEED = 1234


def restart_delays(tree: Tree, child: str = "a") -> list[float]:
    return [e["delay"] for e in tree.events.all("supervisor.restart", child=child)]


def test_restart_delays_grow_are_capped_and_follow_the_seeded_jitter(tree: Tree) -> None:
    backoff = Backoff(initial=0.01, maximum=0.04, jitter=0.5, stable_after=60.0)
    tree.start([tree.spec("a")], config(backoff=backoff), seed=SEED, clock=tree.clock)
    tree.script.start_failures["a"] = 5  # the crash, then five failed starts in a row
    tree.registry.tell("a", Crash())
    for restarts in range(2, 7):  # the first restart is immediate, each later one waits
        tree.events.wait_for("supervisor.restart", restarts, child="a")
        assert ("start", "a", restarts + 1) not in tree.journal.items()  # not before its time
        tree.fire_restart_timer("a")
    tree.journal.wait_for("start", "a", 7)
    tree.events.wait_for("supervisor.child_started", child="a", generation=7)

    rng = random.Random(SEED)
    expected = [round(backoff.delay(n, rng), 3) for n in range(6)]
    delays = restart_delays(tree)
    assert delays == expected
    assert delays[0] == 0.0  # the first restart is immediate
    assert delays[1] < delays[2] < delays[3]  # growing
    assert delays[3:] == [0.04, 0.04, 0.04]  # capped
    assert delays[1:3] != [0.01, 0.02]  # jittered, not the bare exponential
    # The timers really waited: each restart came at least its delay after it was scheduled.
    timeline = [
        (name, data)
        for name, data in tree.events.items()
        if data["child"] == "a"
        and name in ("supervisor.restart", "supervisor.child_failed", "supervisor.child_started")
    ]
    checked = 0
    for (name, scheduled), (_, outcome) in itertools.pairwise(timeline):
        if name == "supervisor.restart":
            assert outcome["at"] - scheduled["at"] >= scheduled["delay"] - 0.001
            checked += 1
    assert checked == 6


def test_a_stable_run_resets_the_backoff(tree: Tree) -> None:
    backoff = Backoff(initial=0.02, maximum=1.0, jitter=0.0, stable_after=0.25)
    tree.start([tree.spec("a")], config(backoff=backoff), clock=tree.clock)
    tree.registry.tell("a", Crash())
    tree.journal.wait_for("start", "a", 2)
    tree.registry.tell("a", Crash())
    tree.events.wait_for("supervisor.restart", 2, child="a")
    tree.fire_restart_timer("a")
    tree.events.wait_for("supervisor.child_started", child="a", generation=3)
    assert restart_delays(tree) == [0.0, 0.02]
    tree.clock.advance(0.3)  # generation 3 runs longer than stable_after
    tree.registry.tell("a", Crash())
    tree.journal.wait_for("start", "a", 4)
    assert restart_delays(tree) == [0.0, 0.02, 0.0]


def test_failed_starts_after_a_stable_run_still_back_off(tree: Tree) -> None:
    # A start that fails never ran: the stability of an older generation must not count.
    backoff = Backoff(initial=0.02, maximum=1.0, jitter=0.0, stable_after=0.2)
    tree.start([tree.spec("a")], config(backoff=backoff), clock=tree.clock)
    tree.clock.advance(0.25)  # generation 1 is stable
    tree.script.start_failures["a"] = 2
    tree.registry.tell("a", Crash())
    for restarts in (2, 3):
        tree.events.wait_for("supervisor.restart", restarts, child="a")
        tree.fire_restart_timer("a")
    tree.journal.wait_for("start", "a", 4)
    tree.events.wait_for("supervisor.child_started", child="a", generation=4)
    assert restart_delays(tree) == [0.0, 0.02, 0.04]


def test_intensity_counts_restarts_not_delays(tree: Tree) -> None:
    backoff = Backoff(initial=0.01, maximum=0.01, jitter=0.0, stable_after=60.0)
    tree.start(
        [tree.spec("a")], config(backoff=backoff, intensity=Intensity(2, 30.0)), clock=tree.clock
    )
    tree.script.start_failures["a"] = 5
    tree.registry.tell("a", Crash())
    tree.events.wait_for("supervisor.restart", 2, child="a")
    tree.fire_restart_timer("a")
    assert tree.escalated.wait(5)
    assert restart_delays(tree) == [0.0, 0.01]
    assert "cannot start" in tree.escalations[0].reason
