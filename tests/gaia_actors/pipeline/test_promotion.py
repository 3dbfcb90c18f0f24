"""Promotions on real releases of the demo service: the happy path, gates, warnings,
timeouts, rollback of code and of data."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gaia_actors.environments.tree import actor_name
from gaia_actors.errors import EnvironmentFailure
from gaia_actors.messages import (
    BuildRelease,
    CancelPipeline,
    Deploy,
    Fail,
    GetEnvStatus,
    GetPipelineStatus,
)
from gaia_actors.pipeline.errors import PromotionRefused
from gaia_actors.pipeline.rollback import RollbackPlan, roll_back
from gaia_actors.store.models import Deployment
from supervisors import NotRunning
from tests.conftest import wait_until
from tests.gaia_actors.environments.conftest import http_json
from tests.gaia_actors.pipeline.conftest import (
    INTEGRATION,
    UNIT,
    PipeTree,
    Run,
    StartPipe,
    events_of,
    pid_alive,
    read_pid,
    release_source,
)

# A syntax check of the release that writes nothing into it (releases are immutable).
QUALITY = {
    "kind": "command",
    "name": "quality",
    "blocking": False,
    "command": [
        "{python}",
        "-c",
        "import ast, pathlib; [ast.parse(p.read_text()) for p in pathlib.Path('.').rglob('*.py')]",
    ],
}
SOAK = {"soak": 0.3, "interval": 0.1}
# Integration tests against the environment under test, through {url} (a quick one here;
# the demo's own live-API suite runs in the shipped config and in the happy path).
SMOKE = {
    "kind": "command",
    "name": "smoke",
    "command": [
        "{python}",
        "-c",
        "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/items', timeout=5)",
        "{url}",
    ],
}
BUILD = {"kind": "build", "deploy": False}  # no deploy to dev: nothing runs but the target


def sleeper(pidfile: Path, seconds: int = 60) -> list[str]:
    """A stage command whose shell starts a grandchild sleeper, writes its pid, and waits."""
    return ["sh", "-c", f"sleep {seconds} & echo $! > {pidfile}; wait"]


def new_release(tree: StartPipe | Any, env: str, source: Path, marker: str) -> str:
    """Build a new release into ``env`` and deploy it there (outside any promotion)."""
    (source / "MARKER").write_text(marker + "\n")
    built = tree.registry.ask(actor_name(env), BuildRelease(), timeout=60)
    tree.registry.ask(actor_name(env), Deploy(built["release"]), timeout=60)
    return str(built["release"])


def every_kind() -> dict[str, list[dict[str, Any]]]:
    return {
        "dev_to_staging": [{"kind": "build"}, UNIT, QUALITY, {"kind": "deploy"}],
        "staging_to_prod": [
            {"kind": "health", "name": "staging-health", **SOAK},
            INTEGRATION,
            {
                "kind": "load",
                "path": "/items?limit=5",
                "requests": 60,
                "concurrency": 3,
                "max_p95_ms": 2000,
                "blocking": False,
            },
            {"kind": "backup"},
            {"kind": "deploy"},
            {"kind": "health", "name": "prod-health", **SOAK},
        ],
    }


def test_promote_all_runs_every_stage_kind_and_prod_serves_the_new_release(
    tmp_path: Path, pipe_tree: StartPipe
) -> None:
    source = release_source(tmp_path / "source")
    tree = pipe_tree(every_kind(), source=source)
    before = {env: tree.current(env) for env in ("dev", "staging", "prod")}
    (source / "MARKER").write_text("release two\n")

    run = tree.promote("all")
    ended = run.wait()

    assert ended["status"] == "succeeded", tree.history(run.pipeline_id)
    first, second = (tree.history(pid) for pid in ended["pipeline_ids"])
    release = first.release
    assert release not in before.values()
    assert (first.kind, second.kind) == ("dev_to_staging", "staging_to_prod")
    assert second.release == release
    assert second.chain == first.id == first.chain
    for env in ("dev", "staging", "prod"):
        assert tree.current(env) == release
        assert tree.served_release(env) == release
    assert second.previous == before["prod"]
    all_stages = first.stages + second.stages
    stages = {s.name: s for s in all_stages}  # the second "deploy" is prod's
    assert {s.kind for s in stages.values()} == {
        "build",
        "command",
        "health",
        "load",
        "backup",
        "deploy",
    }
    assert all(s.status == "passed" for s in all_stages), all_stages
    assert all(s.duration is not None and s.started and s.ended for s in all_stages)
    unit = stages["unit-tests"]
    assert unit.exit_code == 0
    assert (unit.tests["total"], unit.tests["passed"]) == (2, 2)
    assert "2 passed" in unit.output_tail
    assert stages["integration-tests"].tests["passed"] >= 5
    assert stages["integration-tests"].tests["failed"] == 0
    assert stages["load"].detail["sent"] == 60
    assert second.backup
    assert stages["backup"].detail["backup"] == second.backup
    # Every stage was announced as it started and ended, in order, on the bus and to the caller.
    names = [name for event, name in run.stage_events() if event == "stage.started"]
    assert names == [s.name for s in all_stages]
    # The caller hears the end before the bus has carried the last pipeline's events.
    last = ended["pipeline_ids"][-1]
    tree.events.wait_for("pipeline.finished", lambda e: e.get("pipeline_id") == last)
    for pid in ended["pipeline_ids"]:
        assert len(events_of(tree.events, "pipeline.started", pid)) == 1
        assert len(events_of(tree.events, "pipeline.finished", pid)) == 1
    assert len(tree.events.matching("stage.finished")) == len(all_stages)


def test_a_failing_unit_test_stops_the_promotion_before_the_deploy(
    tmp_path: Path, pipe_tree: StartPipe
) -> None:
    tree = pipe_tree(
        {"dev_to_staging": [{"kind": "build"}, UNIT, {"kind": "deploy"}]},
        source=release_source(tmp_path / "source", failing_test=True),
        envs=("dev", "staging"),
    )
    before = tree.current("staging")

    run = tree.promote("dev")
    ended = run.wait()

    assert ended["status"] == "failed"
    promotion = tree.history(run.pipeline_id)
    stages = tree.stages(run.pipeline_id)
    assert [s.status for s in promotion.stages] == ["passed", "failed", "skipped"]
    unit = stages["unit-tests"]
    assert unit.exit_code == 1
    assert (unit.tests["total"], unit.tests["failed"]) == (3, 1)
    broken = unit.tests["cases"][0]
    assert (broken["name"], broken["status"]) == ("test_the_release_is_broken", "failed")
    assert "the new release is broken" in broken["message"]
    assert "unit-tests" in promotion.error
    assert "test_the_release_is_broken" in promotion.error
    assert promotion.rollback == ""  # nothing was deployed to roll back
    assert tree.current("staging") == before
    assert tree.served_release("staging") == before
    assert not Deployment.select().where(Deployment.env == "staging").exists()
    tree.events.wait_for("pipeline.failed", lambda e: e.get("pipeline_id") == run.pipeline_id)
    assert [e.get("stage") for e in events_of(tree.events, "stage.failed", run.pipeline_id)] == [
        "unit-tests"
    ]


def test_a_failing_non_blocking_stage_only_warns(tmp_path: Path, pipe_tree: StartPipe) -> None:
    lint = {
        "kind": "command",
        "name": "lint",
        "blocking": False,
        "command": ["{python}", "-c", "import sys; print('3 style problems'); sys.exit(1)"],
    }
    tree = pipe_tree({"dev_to_staging": [BUILD, lint, {"kind": "deploy"}]}, envs=("dev", "staging"))
    before = tree.current("staging")
    (tmp_path / "source" / "MARKER").write_text("two\n")

    run = tree.promote("dev")
    ended = run.wait()

    assert ended["status"] == "succeeded"
    promotion = tree.history(run.pipeline_id)
    lint_stage = tree.stages(run.pipeline_id)["lint"]
    assert (lint_stage.status, lint_stage.exit_code) == ("warned", 1)
    assert "3 style problems" in lint_stage.output_tail
    assert tree.current("staging") == promotion.release != before
    tree.events.wait_for("pipeline.finished", lambda e: e.get("pipeline_id") == run.pipeline_id)
    warned = events_of(tree.events, "stage.warned", run.pipeline_id)
    assert [(e.get("stage"), e.level) for e in warned] == [("lint", "warning")]


def test_a_stage_past_its_timeout_is_killed_with_its_children_and_fails(
    tmp_path: Path, pipe_tree: StartPipe
) -> None:
    pidfile = tmp_path / "grandchild.pid"
    slow = {"kind": "command", "name": "slow", "timeout": 1.0, "command": sleeper(pidfile)}
    tree = pipe_tree({"dev_to_staging": [BUILD, slow, {"kind": "deploy"}]}, envs=("dev", "staging"))
    before = tree.current("staging")

    run = tree.promote("dev")
    ended = run.wait()

    assert ended["status"] == "failed"
    stage = tree.stages(run.pipeline_id)["slow"]
    assert stage.status == "timed_out"
    assert "timed out after 1s" in stage.error
    assert stage.exit_code == -9
    grandchild = read_pid(pidfile)
    assert grandchild is not None
    wait_until(lambda: not pid_alive(grandchild), timeout=5)
    assert tree.stages(run.pipeline_id)["deploy"].status == "skipped"
    assert tree.current("staging") == before


def test_a_release_unhealthy_after_the_prod_deploy_is_rolled_back(
    tmp_path: Path, pipe_tree: StartPipe
) -> None:
    source = release_source(tmp_path / "source")
    soak = {"kind": "health", "name": "prod-health", "soak": 30, "interval": 0.05}
    tree = pipe_tree(
        {"staging_to_prod": [{"kind": "backup"}, {"kind": "deploy"}, soak]},
        source=source,
        envs=("staging", "prod"),
    )
    old = tree.current("prod")
    release = new_release(tree, "staging", source, "two")

    run = tree.promote("staging")
    run.wait_for("stage.finished", "deploy")
    assert tree.served_release("prod") == release
    # The new release turns unhealthy in prod while the health stage soaks.
    status, _ = http_json(tree.port("prod"), "POST", "/admin/fault", {"unhealthy": True})
    assert status == 200
    ended = run.wait()

    assert ended["status"] == "failed"
    promotion = tree.history(run.pipeline_id)
    stages = tree.stages(run.pipeline_id)
    assert stages["prod-health"].status == "failed"
    assert "HTTP 503" in stages["prod-health"].error
    assert stages["rollback"].status == "passed"
    assert stages["rollback"].kind == "rollback"
    assert promotion.rollback == "code"
    assert promotion.previous == old
    assert tree.current("prod") == old
    assert tree.wait_healthy("prod") == old
    rollbacks = Deployment.select().where(
        (Deployment.env == "prod") & (Deployment.kind == "rollback")
    )
    assert [(r.release_id, r.pipeline_id) for r in rollbacks] == [(old, run.pipeline_id)]


def test_a_data_breaking_release_gets_the_data_restored_from_the_pipeline_backup(
    tmp_path: Path, pipe_tree: StartPipe
) -> None:
    source = release_source(tmp_path / "source")
    stages_ = [BUILD, {"kind": "backup"}, {"kind": "deploy"}, {"kind": "health"}]
    tree = pipe_tree(
        {"dev_to_staging": stages_},
        source=source,
        envs=("dev", "staging"),
        env_keys={"deploy_timeout": 2.0},
    )
    old = tree.current("staging")
    status, item = http_json(tree.port("staging"), "POST", "/items", {"name": "keep", "value": 7})
    assert status == 201
    (source / "migrations" / "999_break.sql").write_text("DROP TABLE items;\n")

    run = tree.promote("dev")
    ended = run.wait(timeout=90)

    assert ended["status"] == "failed"
    promotion = tree.history(run.pipeline_id)
    stages = tree.stages(run.pipeline_id)
    assert stages["deploy"].status == "failed"
    assert stages["rollback"].status == "passed", stages["rollback"]
    assert promotion.rollback in ("data", "code+data")
    assert promotion.backup == stages["backup"].detail["backup"]
    assert f"restored staging's data from backup {promotion.backup}" in (
        stages["rollback"].output_tail
    )
    assert tree.wait_healthy("staging") == old
    assert tree.current("staging") == old
    status, kept = http_json(tree.port("staging"), "GET", f"/items/{item['id']}")
    assert (status, kept["name"]) == (200, "keep")


def test_cancel_kills_the_running_stage_and_rolls_the_target_back(
    tmp_path: Path, pipe_tree: StartPipe
) -> None:
    pidfile = tmp_path / "grandchild.pid"
    soak_tests = {"kind": "command", "name": "soak-tests", "command": sleeper(pidfile)}
    tree = pipe_tree(
        {"dev_to_staging": [BUILD, {"kind": "deploy"}, soak_tests, SMOKE]},
        envs=("dev", "staging"),
    )
    old = tree.current("staging")
    (tmp_path / "source" / "MARKER").write_text("two\n")
    run = tree.promote("dev")
    run.wait_for("stage.started", "soak-tests")
    grandchild = wait_until(lambda: read_pid(pidfile), timeout=10)
    assert isinstance(grandchild, int)

    status = tree.ask(GetPipelineStatus(lines=5))  # the coordinator answers while it runs
    assert [r.stage for r in status.running] == ["soak-tests"]
    assert status.running[0].output is not None  # asked for its last lines
    answer = tree.ask(CancelPipeline(run.pipeline_id))
    assert answer == {"pipeline_id": run.pipeline_id, "cancelling": True, "stage": "soak-tests"}
    ended = run.wait()

    assert ended["status"] == "cancelled"
    wait_until(lambda: not pid_alive(grandchild), timeout=5)
    promotion = tree.history(run.pipeline_id)
    assert [(s.name, s.status) for s in promotion.stages] == [
        ("build", "passed"),
        ("deploy", "passed"),
        ("soak-tests", "cancelled"),
        ("smoke", "skipped"),
        ("rollback", "passed"),
    ]
    assert promotion.status == "cancelled"
    assert promotion.rollback == "code"
    assert tree.current("staging") == old
    assert tree.wait_healthy("staging") == old
    with pytest.raises(PromotionRefused, match="not running"):
        tree.ask(CancelPipeline(run.pipeline_id))
    assert tree.ask(GetPipelineStatus()).running == ()


def unhang(port: int) -> bool:
    """Clears the hang of the release on ``port`` (False while nothing listens there: tests
    poll this every 50 ms, as starting the release takes far longer)."""
    try:
        status, _ = http_json(port, "POST", "/admin/fault", {"hang": False})
    except OSError:
        return False
    return status == 200


@dataclass
class BusyStaging:
    tree: PipeTree
    run: Run
    hung: str  # the release of the operator's deploy, whose /health hangs
    operator: threading.Thread
    answers: list[Any]


def busy_staging(tmp_path: Path, pipe_tree: StartPipe, deploy_timeout: float) -> BusyStaging:
    """A promotion to staging whose deploy stage starts while an operator's deploy of a
    release with a hung /health holds staging (busy until the test clears the hang)."""
    gate = tmp_path / "open"
    hold = {
        "kind": "command",
        "name": "hold",
        "command": ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.02; done"],
    }
    source = release_source(tmp_path / "source")
    deploy = {"kind": "deploy", "timeout": deploy_timeout}
    tree = pipe_tree(
        {"dev_to_staging": [BUILD, hold, deploy]}, source=source, envs=("dev", "staging")
    )
    run = tree.promote("dev", output=True)
    run.wait_for("stage.started", "hold")  # the promotion's release is built
    (source / "FAULT").write_text("hang\n")
    staging = actor_name("staging")
    hung = tree.registry.ask(staging, BuildRelease(), timeout=60)["release"]
    answers: list[Any] = []
    operator = threading.Thread(
        target=lambda: answers.append(
            tree.registry.ask(staging, Deploy(hung, timeout=60), timeout=90)
        )
    )
    operator.start()
    wait_until(lambda: tree.registry.ask(staging, GetEnvStatus()).operation, interval=0.02)
    gate.touch()
    waiting = run.wait_for("stage.output", "deploy")
    assert (
        f"waiting to deploy: environment 'staging' is busy: a deploy of {hung}" in (waiting["line"])
    )
    return BusyStaging(tree, run, hung, operator, answers)


def test_a_deploy_waits_while_the_target_is_busy_with_an_operators_deploy(
    tmp_path: Path, pipe_tree: StartPipe
) -> None:
    busy = busy_staging(tmp_path, pipe_tree, deploy_timeout=120)
    tree, run = busy.tree, busy.run
    wait_until(lambda: unhang(tree.port("staging")), timeout=30, interval=0.05)  # once it listens
    busy.operator.join(timeout=30)
    assert [(a["operation"], a["outcome"]) for a in busy.answers] == [("deploy", "succeeded")]

    assert run.wait()["status"] == "succeeded"
    promoted = tree.history(run.pipeline_id).release
    assert busy.answers[0]["release"] == busy.hung  # the operator's came first
    assert promoted != busy.hung
    assert tree.current("staging") == promoted
    assert tree.wait_healthy("staging") == promoted
    assert "rollback" not in tree.stages(run.pipeline_id)


def test_a_deploy_that_never_got_the_busy_target_fails_without_a_rollback(
    tmp_path: Path, pipe_tree: StartPipe
) -> None:
    """Nothing was deployed: a rollback could only restore a backup over newer data."""
    busy = busy_staging(tmp_path, pipe_tree, deploy_timeout=2)
    tree, run = busy.tree, busy.run
    ended = run.wait()
    assert ended["status"] == "failed"
    stages = tree.stages(run.pipeline_id)
    assert stages["deploy"].status == "timed_out"
    assert "staging was never free to deploy to" in stages["deploy"].error
    assert "rollback" not in stages
    assert tree.history(run.pipeline_id).rollback in ("", None)
    wait_until(lambda: unhang(tree.port("staging")), timeout=30, interval=0.05)
    busy.operator.join(timeout=30)
    assert tree.wait_healthy("staging") == busy.hung  # the operator's deploy stands


def test_a_cancel_ends_a_deploy_waiting_for_its_busy_target_without_deploying(
    tmp_path: Path, pipe_tree: StartPipe
) -> None:
    """A deploy stage runs to its end once its deploy started; while it only waits for the
    target, nothing is started yet and a cancel (or the daemon stopping) ends it at once."""
    busy = busy_staging(tmp_path, pipe_tree, deploy_timeout=120)
    tree, run = busy.tree, busy.run
    tree.ask(CancelPipeline(run.pipeline_id))
    ended = run.wait(timeout=10)  # not the stage's 120 s: the target is still busy
    assert ended["status"] == "cancelled"
    stages = tree.stages(run.pipeline_id)
    assert stages["deploy"].status == "cancelled"
    assert "rollback" not in stages  # nothing was deployed, no backup restored
    wait_until(lambda: unhang(tree.port("staging")), timeout=30, interval=0.05)
    busy.operator.join(timeout=30)
    assert tree.wait_healthy("staging") == busy.hung  # the operator's deploy stands
    assert tree.current("staging") == busy.hung


def park(tree: PipeTree, env: str) -> None:
    """Declare ``env`` down until its supervisor parks it FAILED (no older release to roll
    back to, data that verifies)."""
    name = actor_name(env)

    def parked() -> bool:
        node = tree.registry.node(name)
        if node is not None and node.state == "failed":
            return True
        with contextlib.suppress(NotRunning):  # restarting: told again on the next look
            tree.registry.tell(name, Fail("declared down by the test"))
        return False

    wait_until(parked, timeout=60, interval=0.2)


def test_a_deploy_to_a_parked_target_fails_at_once(tmp_path: Path, pipe_tree: StartPipe) -> None:
    """A FAILED environment waits for an operator, not for a promotion: the deploy stage
    says so at once instead of polling it until the stage's timeout."""
    tree = pipe_tree(
        {"dev_to_staging": [BUILD, {"kind": "deploy", "timeout": 120}]}, envs=("dev", "staging")
    )
    park(tree, "staging")
    run = tree.promote("dev")
    ended = run.wait(timeout=30)  # not the stage's 120 s
    assert ended["status"] == "failed"
    stages = tree.stages(run.pipeline_id)
    assert "staging is parked FAILED" in stages["deploy"].error
    assert "rollback" not in stages  # nothing was deployed


def test_a_rollback_of_a_parked_target_fails_at_once(tmp_path: Path, pipe_tree: StartPipe) -> None:
    tree = pipe_tree({"dev_to_staging": [BUILD]}, envs=("dev", "staging"))
    previous = tree.current("staging")
    park(tree, "staging")
    deadline = time.monotonic() + 120
    plan = RollbackPlan(tree.settings, tree.registry, "staging", previous, "", 1, deadline)
    with pytest.raises(EnvironmentFailure, match="parked FAILED"):
        roll_back(plan, lambda _line: None)
    assert deadline - time.monotonic() > 100  # not polled until the rollback's timeout
