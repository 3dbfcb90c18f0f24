"""The promotion history: complete, answered while a stage runs, and kept across a daemon
restart; one promotion per environment at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from gaia_actors.console.cli import run_offline
from gaia_actors.console.render import Printer
from gaia_actors.control import commands
from gaia_actors.control.protocol import to_json
from gaia_actors.errors import Busy
from gaia_actors.messages import GetPipelineHistory, GetPipelineStatus, Promote
from gaia_actors.pipeline.coordinator import prune_artifacts
from tests.gaia_actors.pipeline.conftest import UNIT, StartPipe, release_source


def test_history_is_complete_and_survives_a_restart(tmp_path: Path, pipe_tree: StartPipe) -> None:
    stages = [{"kind": "build"}, UNIT, {"kind": "deploy"}, {"kind": "health"}]
    tree = pipe_tree({"dev_to_staging": stages}, envs=("dev", "staging"))
    run = tree.promote("dev")
    assert run.wait()["status"] == "succeeded"
    before = tree.ask(GetPipelineHistory(run.pipeline_id))

    assert before.status == "succeeded"
    assert before.started
    assert before.ended
    assert before.duration > 0
    assert [s.name for s in before.stages] == ["build", "unit-tests", "deploy", "health"]
    for stage in before.stages:
        assert stage.status == "passed"
        assert stage.started
        assert stage.ended
        assert stage.duration is not None
        assert stage.summary
    unit = before.stages[1]
    assert (unit.exit_code, unit.tests["passed"]) == (0, 2)
    assert "2 passed" in unit.output_tail
    config = tree.settings.config_path
    tree.stop()

    # No daemon: the history command reads the store itself.
    cmd = commands.get("history")
    assert cmd is not None
    assert cmd.offline
    offline = run_offline(cmd, {"id": run.pipeline_id}, tree.settings, Printer(json_output=True))
    listed = run_offline(cmd, {}, tree.settings, Printer(json_output=True))
    assert offline == to_json(before)  # as the daemon would have sent it
    assert [(p["id"], p["status"], p["stages"]) for p in listed] == [
        (run.pipeline_id, "succeeded", "4 passed")
    ]

    # A new daemon on the same state directory answers the same history.
    again = pipe_tree({}, config=config)
    assert again.ask(GetPipelineHistory(run.pipeline_id)) == before
    assert [p.id for p in again.ask(GetPipelineHistory())] == [run.pipeline_id]


def test_the_history_command_renders_stages_with_tests_and_failures() -> None:
    from gaia_actors.pipeline.commands import render_history

    promotion = {
        "id": 3,
        "kind": "dev_to_staging",
        "source": "dev",
        "target": "staging",
        "status": "failed",
        "duration": 4.25,
        "release": "r2",
        "error": "stage unit-tests failed: exit code 1",
        "rollback": "",
        "recovery": "",
        "stages": [
            {
                "position": 1,
                "name": "unit-tests",
                "kind": "command",
                "env": "dev",
                "status": "failed",
                "duration": 1.5,
                "summary": "",
                "error": "exit code 1",
                "tests": {
                    "cases": [
                        {"status": "failed", "classname": "t.test_x", "name": "test_broken"},
                        {"status": "passed", "classname": "t.test_x", "name": "test_fine"},
                    ]
                },
                "output_tail": "collected 2 items\n1 failed, 1 passed",
            }
        ],
    }
    text = render_history(promotion)
    assert "promotion #3 dev_to_staging (dev -> staging): failed in 4.25s, release r2" in text
    assert "failed t.test_x.test_broken" in text
    assert "test_fine" not in text
    assert "| 1 failed, 1 passed" in text
    assert render_history([]) == "(no promotions yet)"


def test_a_second_promotion_of_a_held_environment_is_refused_naming_the_first(
    tmp_path: Path, pipe_tree: StartPipe
) -> None:
    started, gate = tmp_path / "started", tmp_path / "open"
    hold = {
        "kind": "command",
        "name": "hold",
        "command": ["sh", "-c", f"touch {started}; while [ ! -e {gate} ]; do sleep 0.02; done"],
    }
    tree = pipe_tree(
        {
            "dev_to_staging": [{"kind": "build", "deploy": False}, hold, {"kind": "deploy"}],
            "staging_to_prod": [{"kind": "deploy"}],
        },
        source=release_source(tmp_path / "source"),
    )
    run = tree.promote("dev")
    run.wait_for("stage.started", "hold")

    for what in ("dev", "staging", "all"):
        with pytest.raises(Busy) as refused:
            tree.ask(Promote(what))  # type: ignore[arg-type]
        assert f"promotion #{run.pipeline_id} (dev_to_staging, stage hold)" in str(refused.value)
        assert f"cancel {run.pipeline_id}" in str(refused.value)
    status = tree.ask(GetPipelineStatus())
    assert [(r.pipeline_id, r.stage) for r in status.running] == [(run.pipeline_id, "hold")]
    assert status.locks == {"dev": run.pipeline_id, "staging": run.pipeline_id}
    gate.touch()
    assert run.wait()["status"] == "succeeded"

    second = tree.promote("staging")  # staging is free again
    assert second.wait()["status"] == "succeeded"
    assert tree.current("prod") == tree.current("staging")


def test_artifact_folders_beyond_the_newest_kept_are_pruned_but_not_a_running_ones(
    tmp_path: Path,
) -> None:
    root = tmp_path / "pipelines"
    for pipeline_id in range(1, 11):
        folder = root / str(pipeline_id)
        folder.mkdir(parents=True)
        (folder / "01-unit.junit.xml").write_text("<testsuite/>", encoding="utf-8")
    (root / "notes").mkdir()  # not a promotion's: left alone
    assert prune_artifacts(root, keep=4, running={2}) == 5
    assert sorted(p.name for p in root.iterdir()) == ["10", "2", "7", "8", "9", "notes"]
    assert prune_artifacts(root, keep=4, running=set()) == 1
    assert prune_artifacts(tmp_path / "missing", keep=4, running=set()) == 0
