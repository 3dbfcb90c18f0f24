"""Cycles on their own: on an interval and on each new commit, one at a time, supervised, stored,
marked in the history, and an alert event when a cycle falls behind the one before it."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from gaia_actors.errors import ConfigError
from gaia_actors.improve import history
from gaia_actors.improve.schedule import scheduled_targets, without_schedules
from gaia_actors.messages import Crash
from gaia_actors.store.models import ImproveCycle
from tests.conftest import wait_until
from tests.gaia_actors.improve.conftest import git, write
from tests.gaia_actors.improve.support import config, improve_tree

MODULE = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"
TESTS = (
    "from mod import add, sub\n\n\ndef test_add():\n    assert add(1, 2) == 3\n\n\n"
    "def test_sub():\n    assert sub(3, 2) == 1\n"
)
QUIET = "linters = []\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    write(root, "mod.py", MODULE)
    write(root, "test_mod.py", TESTS)
    return root


def cycles(target: Path, trigger: str | None = None) -> list[Any]:
    query = ImproveCycle.select().where(ImproveCycle.target == str(target))
    if trigger is not None:
        query = query.where(ImproveCycle.trigger == trigger)
    return list(query.order_by(ImproveCycle.id))


def finished(target: Path, trigger: str, count: int) -> list[Any] | None:
    done = [c for c in cycles(target, trigger) if c.status == "succeeded"]
    return done if len(done) >= count else None


def test_an_interval_schedule_runs_cycles_one_at_a_time_and_survives_an_engine_crash(
    tmp_path: Path, project: Path
) -> None:
    with improve_tree(config(tmp_path, project, QUIET + "schedule = 1\n")) as tree:
        wait_until(lambda: finished(project, "schedule", 1), timeout=60, interval=0.1)
        tree.registry.tell("improve", Crash("fault injection"))
        crashed_at = max(c.started for c in cycles(project))
        # The restarted engine keeps to the schedule (the store is its clock).
        later = wait_until(
            lambda: [c for c in finished(project, "schedule", 2) or () if c.started > crashed_at],
            timeout=60,
            interval=0.1,
        )
        started = tree.events("improve.cycle.started")
        trend = history.trend(str(project))

    rows = cycles(project)
    for before, after in itertools.pairwise(rows):
        assert before.ended is not None
        assert after.started >= before.ended - 0.001  # one at a time
    assert later
    assert all(e.data.get("trigger") == "schedule" for e in started)
    assert {c["trigger"] for c in trend["cycles"]} == {"schedule"}


def test_a_new_commit_on_the_branch_starts_a_cycle_for_that_commit(
    tmp_path: Path, project: Path
) -> None:
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "first")
    first = git(project, "rev-parse", "HEAD")
    extra = QUIET + 'schedule = "on-commit"\ncommit_poll = 0.2\n'
    with improve_tree(config(tmp_path, project, extra)) as tree:
        # A commit no cycle has read yet: the one checked out when the daemon starts.
        wait_until(lambda: finished(project, "commit", 1), timeout=60, interval=0.1)
        write(project, "mod.py", MODULE + "\n\ndef mul(a, b):\n    return a * b\n")
        git(project, "commit", "-q", "-am", "second")
        second = git(project, "rev-parse", "HEAD")
        wait_until(lambda: finished(project, "commit", 2), timeout=60, interval=0.1)
        manual = tree.cycle()  # polls go on meanwhile: the same commit starts nothing more
        trend = history.trend(str(project))

    assert [c.commit for c in cycles(project, "commit")] == [first, second]
    assert [c["trigger"] for c in trend["cycles"]] == ["commit", "commit", "manual"]
    assert trend["cycles"][-1]["cycle_id"] == manual


def test_a_cycle_that_falls_behind_publishes_an_alert(tmp_path: Path, project: Path) -> None:
    with improve_tree(config(tmp_path, project, QUIET)) as tree:
        first = tree.cycle()
        # The test of sub() goes and add()'s breaks: coverage and pass rate both drop.
        write(
            project,
            "test_mod.py",
            "from mod import add\n\n\ndef test_add():\n    assert add(1, 2) == 4\n",
        )
        second = tree.cycle()
        alerts = tree.events("alert.improve_regressed")
        trend = history.trend(str(project))

    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.data.get("cycle_id"), alert.data.get("against")) == (second, first)
    assert "coverage" in alert.data.get("reasons")
    assert "pass rate 100.0% -> 0.0%" in alert.data.get("reasons")
    assert [c["regression"] for c in trend["cycles"]] == [False, True]


def test_a_schedule_that_is_not_one_is_a_config_error(tmp_path: Path, project: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, project, 'schedule = "weekly"\n')
    assert caught.value.key == "improve.schedule"
    assert "on-commit" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, project, '[improve.targets.lib]\npath = "x"\nschedule = 0\n')
    assert caught.value.key == "improve.targets.lib.schedule"


def test_a_one_cycle_process_runs_no_schedule(tmp_path: Path, project: Path) -> None:
    extra = 'schedule = "daily"\n[improve.targets.lib]\npath = "lib"\nschedule = "on-commit"\n'
    settings = config(tmp_path, project, extra)
    assert [s.trigger for s in scheduled_targets(settings)] == ["schedule", "commit"]
    assert scheduled_targets(without_schedules(settings)) == []
