"""Promotions on real releases of the demo service: the happy path, gates, warnings,
timeouts, rollback of code and of data (issue 4, parts 1-3 and 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import wait_until
from tests.gaia_actors.environments.conftest import http_json
from tests.gaia_actors.pipeline.conftest import (
    INTEGRATION,
    UNIT,
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
    release = first["release"]
    assert release not in before.values()
    assert (first["kind"], second["kind"]) == ("dev_to_staging", "staging_to_prod")
    assert second["release"] == release
    assert second["chain"] == first["id"] == first["chain"]
    for env in ("dev", "staging", "prod"):
        assert tree.current(env) == release
        assert tree.served_release(env) == release
    assert second["previous"] == before["prod"]
    all_stages = first["stages"] + second["stages"]
    stages = {s["name"]: s for s in all_stages}  # the second "deploy" is prod's
    assert {s["kind"] for s in stages.values()} == {
        "build",
        "command",
        "health",
        "load",
        "backup",
        "deploy",
    }
    assert all(s["status"] == "passed" for s in all_stages), all_stages
    assert all(s["duration"] is not None and s["started"] and s["ended"] for s in all_stages)
    unit = stages["unit-tests"]
    assert unit["exit_code"] == 0
    assert (unit["tests"]["total"], unit["tests"]["passed"]) == (2, 2)
    assert "2 passed" in unit["output_tail"]
    assert stages["integration-tests"]["tests"]["passed"] >= 5
    assert stages["integration-tests"]["tests"]["failed"] == 0
    assert stages["load"]["detail"]["sent"] == 60
    assert second["backup"] and stages["backup"]["detail"]["backup"] == second["backup"]
    # Every stage was announced as it started and ended, in order, on the bus and to the caller.
    names = [name for event, name in run.stage_events() if event == "stage.started"]
    assert names == [s["name"] for s in all_stages]
    for pid in ended["pipeline_ids"]:
        assert len(events_of(tree.events, "pipeline.started", pid)) == 1
        assert len(events_of(tree.events, "pipeline.finished", pid)) == 1
    assert len(tree.events.matching("stage.finished")) == len(all_stages)
