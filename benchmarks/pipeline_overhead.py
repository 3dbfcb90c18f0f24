"""What the pipeline machinery costs: promote-all through the actors against the same work
done as a plain sequence in one script.

Both sides run the shipped stage list (dev -> staging: build, unit tests, quality, deploy;
staging -> prod: health, integration tests, load, backup, deploy, health) on the demo
service, with every command (the stage commands and the environments' build command)
replaced by ``true`` and the health soak windows set to zero, so what is left is the real
work of a promotion plus, on the pipeline side, its machinery.

Pipeline: a tree with the store, the bus, three EnvironmentActors and the coordinator (the
daemon's log file sink on, the console off); timed from ``Promote("all")`` to the runner's
``run.ended``. It includes the actor messages, the stage and pipeline rows written through
the store, the events, the rollback bookkeeping and the environments' own deploy work.

Baseline: the same work with the same library functions and no actors, in one thread: copy
the source into a release and run the build command (``builds.build_release``), deploy to
dev, staging and prod (import the release, switch ``current``, stop the old process with
SIGTERM and its grace, spawn the new one with the same argv, environment and log pump, write
its pid file, ``wait_healthy`` with the same poll, mark it healthy), run each stage command
with ``process.run`` (own process group, timeout), check health, the same HTTP load, and an
online backup with verification (``backups.take_backup``). No history, no events.

Rounds alternate between the two (a new source marker each round, so each builds a new
release); the medians are compared.

    python benchmarks/pipeline_overhead.py [--rounds 3]

Goal: pipeline <= 1.5x the baseline.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from gaia_actors import logs, pipeline, process
from gaia_actors.app import start_root
from gaia_actors.environments import backups, builds, releases
from gaia_actors.environments import tree as environment_tree
from gaia_actors.httpclient import check_health, wait_healthy
from gaia_actors.layout import Layout
from gaia_actors.messages import GetEnvStatus, Progress, Promote
from gaia_actors.pipeline.load import run_load
from gaia_actors.settings import Settings, load
from supervisors import Registry
from tests.gaia_actors.listener import Listener

REPO = Path(__file__).resolve().parent.parent
ENVS = ("dev", "staging", "prod")
TRUE = ["true"]
LOAD = {"path": "/items?limit=10", "requests": 100, "concurrency": 4}
CAPABILITIES = [environment_tree, pipeline]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_config(root: Path, source: Path) -> Path:
    lines = ["[logging]", 'console = "off"', "[store]", "flush_interval = 0.2"]
    for env in ENVS:
        lines += [
            f"[environments.{env}]",
            f"port = {free_port()}",
            f'source = "{source}"',
            'command = ["{python}", "server.py"]',
            'env = { PORT = "{port}", DATA_DIR = "{data_dir}", RELEASE_ID = "{release_id}", '
            'ENV_NAME = "{name}", LOG_LEVEL = "info" }',
            'build = ["true"]',
            "stop_grace = 5.0",
            "deploy_timeout = 30.0",
        ]
    stage = "[[pipeline.{}]]\n{}"
    dev = [
        'kind = "build"',
        'kind = "command"\nname = "unit-tests"\ncommand = ["true"]',
        'kind = "command"\nname = "quality"\ncommand = ["true"]\nblocking = false',
        'kind = "deploy"',
    ]
    load_stage = (
        f'kind = "load"\npath = "{LOAD["path"]}"\nrequests = {LOAD["requests"]}\n'
        f"concurrency = {LOAD['concurrency']}\nmax_p95_ms = 5000\nblocking = false"
    )
    prod = [
        'kind = "health"\nname = "staging-health"\nsoak = 0',
        'kind = "command"\nname = "integration-tests"\ncommand = ["true"]',
        load_stage,
        'kind = "backup"',
        'kind = "deploy"',
        'kind = "health"\nname = "prod-health"\nsoak = 0',
    ]
    lines += [stage.format("dev_to_staging", s) for s in dev]
    lines += [stage.format("staging_to_prod", s) for s in prod]
    root.mkdir(parents=True, exist_ok=True)
    path = root / "gaia.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def settings_for(config: Path, state: Path) -> Settings:
    return load(config, environ={"GAIA_STATE_DIR": str(state)})


# --------------------------------------------------------------------------- the pipeline


class PipelineSide:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = Registry()
        self.root = start_root(settings, self.registry, capabilities=CAPABILITIES)
        for env in ENVS:
            self._wait_healthy(env)

    def _wait_healthy(self, env: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = self.registry.ask(f"environment.{env}", GetEnvStatus(), timeout=10)
            if status.healthy:
                return
            time.sleep(0.05)  # waiting for a service to start, outside the timed part
        raise RuntimeError(f"{env} did not come up")

    def promote_all(self) -> float:
        ended = threading.Event()
        outcome: dict[str, Any] = {}

        def watcher(progress: Progress) -> None:
            update = dict(progress.update)
            if update["event"] == "run.ended":
                outcome.update(update)
                ended.set()

        with Listener(self.registry, watcher) as listener:
            started = time.perf_counter()
            self.registry.ask("pipeline", Promote("all", "benchmark", listener.name), timeout=30)
            if not ended.wait(300):
                raise RuntimeError("promote-all did not finish")
            elapsed = time.perf_counter() - started
        if outcome["status"] != "succeeded":
            raise RuntimeError(f"promote-all {outcome['status']}: {outcome}")
        return elapsed

    def stop(self) -> None:
        self.root.stop(block=True, timeout=60)


# --------------------------------------------------------------------------- the baseline


class BaselineSide:
    """The same work as a plain sequence: no actors, no store, no events."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.layouts = {env: Layout.of(settings, env) for env in ENVS}
        self.procs: dict[str, process.Child] = {}
        for layout in self.layouts.values():
            layout.make_dirs()
            release = self._build(layout)
            releases.switch_current(layout.root, release.id)
            self._start(layout, release.id)

    def _build(self, layout: Layout) -> releases.Release:
        return builds.build_release(
            layout.source, layout.releases, layout.config.ignore, layout.build_argv()
        )

    def _start(self, layout: Layout, release: str) -> None:
        child = process.spawn(
            layout.argv(release),
            cwd=layout.current,
            env=layout.process_env(release),
            log=layout.log_sink,
        )
        process.write_pidfile(layout.pidfile, child.pid, child.start_time)
        self.procs[layout.name] = child
        verdict = wait_healthy(layout.health_url, layout.config.deploy_timeout)
        if not verdict.healthy:
            raise RuntimeError(f"{layout.name}: {verdict.reason}")
        releases.mark_healthy(layout.root, release)

    def _deploy(self, env: str, release_dir: Path) -> None:
        layout = self.layouts[env]
        release = builds.import_release(release_dir, layout.releases)
        releases.switch_current(layout.root, release.id)
        self.procs[env].stop(layout.config.stop_grace)
        process.remove_pidfile(layout.pidfile)
        self._start(layout, release.id)

    def _command(self, release_dir: Path) -> None:
        result = process.run(TRUE, release_dir, timeout=300)
        if not result.ok:
            raise RuntimeError(f"true failed: {result}")

    def _health(self, env: str) -> None:
        verdict = check_health(self.layouts[env].health_url)
        if not verdict.healthy:
            raise RuntimeError(f"{env}: {verdict.reason}")

    def promote_all(self) -> float:
        started = time.perf_counter()
        dev = self.layouts["dev"]
        release = self._build(dev)  # build, and deploy it to dev
        self._deploy("dev", release.path)
        self._command(release.path)  # unit tests
        self._command(release.path)  # quality
        self._deploy("staging", release.path)
        staged = self.layouts["staging"].releases / release.id
        self._health("staging")
        self._command(staged)  # integration tests
        config = self.layouts["staging"].config
        result = run_load(
            config.host,
            config.port,
            str(LOAD["path"]),
            requests=int(LOAD["requests"]),
            concurrency=int(LOAD["concurrency"]),
            deadline=time.monotonic() + 300,
        )
        if not result.complete:
            raise RuntimeError("load incomplete")
        prod = self.layouts["prod"]
        if not backups.take_backup(prod.data, prod.backups).verified:
            raise RuntimeError("backup did not verify")
        self._deploy("prod", staged)
        self._health("prod")
        return time.perf_counter() - started

    def stop(self) -> None:
        for child in self.procs.values():
            child.stop(5.0)


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    source = root / "source"
    shutil.copytree(
        REPO / "demo", source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests")
    )
    pipeline_settings = settings_for(write_config(root / "p", source), root / "p" / "state")
    baseline_settings = settings_for(write_config(root / "b", source), root / "b" / "state")
    logs.configure(pipeline_settings.logging, pipeline_settings.log_path)
    pipeline = PipelineSide(pipeline_settings)
    baseline = BaselineSide(baseline_settings)
    timings: dict[str, list[float]] = {"pipeline": [], "baseline": []}
    try:
        for i in range(args.rounds):
            (source / "MARKER").write_text(f"round {i}\n")  # a new release each round
            timings["baseline"].append(baseline.promote_all())
            timings["pipeline"].append(pipeline.promote_all())
            print(
                f"round {i + 1}: baseline {timings['baseline'][-1]:.3f}s  "
                f"pipeline {timings['pipeline'][-1]:.3f}s"
            )
    finally:
        pipeline.stop()
        baseline.stop()
        logs.shutdown()
        shutil.rmtree(root, ignore_errors=True)
    base, ours = statistics.median(timings["baseline"]), statistics.median(timings["pipeline"])
    print(f"baseline (plain sequence): median {base:.3f}s over {args.rounds} rounds")
    print(f"pipeline (promote-all):    median {ours:.3f}s over {args.rounds} rounds")
    print(f"ratio pipeline/baseline:   {ours / base:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()
