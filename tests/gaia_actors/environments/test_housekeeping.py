"""Housekeeping of a live environment: process log rotation and retention, release pruning."""

from __future__ import annotations

import http.client
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gaia_actors import process
from gaia_actors.environments import builds, releases
from gaia_actors.environments.notices import Housekeeping
from gaia_actors.layout import Layout
from gaia_actors.messages import GetLogs
from tests.conftest import wait_until
from tests.gaia_actors.environments.conftest import (
    EnvTree,
    demo_source,
    free_port,
    load_settings,
    write_config,
)

StartTree = Callable[..., EnvTree]
MAX_BYTES = 2048


def test_process_output_is_rotated_by_size_and_pruned_by_age(
    tmp_path: Path, env_tree: StartTree
) -> None:
    source = demo_source(tmp_path / "src")
    env = {
        "port": free_port(),
        "source": str(source),
        "log_max_bytes": MAX_BYTES,
        "log_backups": 2,
        "log_retention_days": 1.0,
    }
    tree = env_tree({"prod": env})
    tree.wait_healthy("prod")
    log = tree.layout("prod").log_sink.path

    # Each request writes one http.request line of ~200 bytes, after its answer. On one
    # keep-alive connection the next request is read only once that line is written, so
    # when the last, recognisable one is in the log, everything is and nothing else writes.
    conn = http.client.HTTPConnection("127.0.0.1", tree.port("prod"), timeout=5)
    try:
        for path in ["/items?limit=1"] * 60 + ["/items/424242"]:
            conn.request("GET", path)
            conn.getresponse().read()
    finally:
        conn.close()
    wait_until(lambda: '"/items/424242"' in "".join(process.read_log_tail(log, 1)), timeout=10)

    rotated = [log.with_name("app.log.1"), log.with_name("app.log.2")]
    assert all(p.exists() for p in rotated)
    assert not log.with_name("app.log.3").exists()  # log_backups = 2
    for path in [log, *rotated]:
        assert path.stat().st_size <= MAX_BYTES
        assert path.read_bytes().endswith(b"\n") or path == log  # rotated between lines
    lines = tree.ask("prod", GetLogs(lines=10))
    assert len(lines) == 10  # reaches back into app.log.1 when app.log holds fewer
    assert "http.request" in lines[-1]

    old = (datetime.now(UTC) - timedelta(days=2)).timestamp()
    os.utime(rotated[1], (old, old))
    os.utime(log, (old, old))  # the active file is never pruned, however old
    tree.ask("prod", Housekeeping())

    assert not rotated[1].exists()
    assert rotated[0].exists()
    assert log.exists()


def test_release_pruning_keeps_current_and_last_healthy(
    tmp_path: Path, env_tree: StartTree
) -> None:
    envs = {
        "prod": {
            "port": free_port(),
            "source": str(demo_source(tmp_path / "src")),
            "keep_releases": 1,
            "deploy_timeout": 1.0,
        }
    }
    layout = Layout.of(load_settings(tmp_path, write_config(tmp_path, envs)), "prod")
    layout.make_dirs()
    # Four releases, oldest first: the oldest was the last healthy one, the newest (current)
    # has never passed a health check.
    t0 = datetime.now(UTC) - timedelta(hours=1)
    built = [
        builds.build_release(
            demo_source(tmp_path / f"r{i}", fault="unhealthy" if i == 3 else ""),
            layout.releases,
            now=t0 + timedelta(minutes=i),
        )
        for i in range(4)
    ]
    releases.mark_healthy(layout.root, built[0].id)
    releases.switch_current(layout.root, built[3].id)

    tree = env_tree(envs)
    tree.events.wait_for("environment.unhealthy", timeout=10)
    tree.ask("prod", Housekeeping())

    kept = {r.id for r in releases.list_releases(layout.root)}
    assert kept == {built[3].id, built[0].id}
    pruned = tree.events.wait_for("environment.releases_pruned")
    assert sorted(pruned.get("removed")) == sorted([built[1].id, built[2].id])
    assert layout.current_release() == built[3].id
    assert releases.last_healthy(layout.root) == built[0].id
    assert not any(p.name.endswith(".tmp") for p in layout.releases.iterdir())
