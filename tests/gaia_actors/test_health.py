"""The one health verdict, through every caller, against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gaia_actors.environments import builds
from gaia_actors.errors import EnvironmentFailure
from gaia_actors.health import BodyRule, Health, judge, read_json
from gaia_actors.httpclient import check_health
from gaia_actors.layout import Layout
from gaia_actors.messages import Deploy
from gaia_actors.monitoring.classify import Observation, Thresholds, assess
from gaia_actors.monitoring.healthround import health_targets
from gaia_actors.monitoring.probes import Prober
from gaia_actors.pipeline.rollback import RollbackPlan, _verify
from gaia_actors.pipeline.stage import Promotion, StageContext
from gaia_actors.pipeline.stages import HealthStage
from gaia_actors.settings import Settings, StageSettings, load
from supervisors import Registry
from tests.gaia_actors.environments.conftest import (
    demo_source,
    free_port,
    kill_services,
    load_settings,
    start_tree,
    write_config,
)
from tests.gaia_actors.monitoring.hostile import Behaviour, HostileServer, Respond

HEALTH_PATH = "/health?full=1&probe=gaia"

ANSWERS: dict[str, tuple[Behaviour, Health]] = {
    "ok": (Respond(200, b'{"status": "ok"}'), Health.HEALTHY),
    "green": (Respond(200, b'{"status": "green"}'), Health.HEALTHY),
    "down body": (Respond(200, b'{"status": "down"}'), Health.UNHEALTHY),
    "degraded body": (Respond(200, b'{"status": "Degraded"}'), Health.DEGRADED),
    "plain OK": (Respond(200, b"OK", content_type=None), Health.HEALTHY),
    "text OK": (Respond(200, b"all good", content_type="text/plain"), Health.HEALTHY),
    "broken JSON": (Respond(200, b"{nope", content_type="application/json"), Health.DEGRADED),
    "503": (Respond(503, b'{"status": "ok"}'), Health.UNHEALTHY),
    "500 text": (Respond(500, b"boom", content_type="text/plain"), Health.UNHEALTHY),
    "429": (Respond(429, b""), Health.DEGRADED),
    "404": (Respond(404, b""), Health.UNHEALTHY),
}
OBSERVATION = {
    Health.HEALTHY: Observation.PASS,
    Health.DEGRADED: Observation.WARN,
    Health.UNHEALTHY: Observation.FAIL,
}


def settings_for(tmp_path: Path, port: int, extra: str = "") -> Settings:
    config = tmp_path / "gaia.toml"
    config.write_text(
        f'[environments.prod]\nport = {port}\nhealth_path = "{HEALTH_PATH}"\n'
        f"deploy_timeout = 0.5\n{extra}"
    )
    return load(config, environ={"GAIA_STATE_DIR": str(tmp_path / "state")})


def monitor_observation(settings: Settings) -> Observation:
    """What the monitor makes of one check: its own targets, prober and body rule."""
    (target,) = health_targets(settings)
    with Prober() as prober:
        (result,) = prober.round([target.probe])
    rule = BodyRule.of(settings.environments["prod"])
    return assess(result, Thresholds(latency_degraded_s=5.0), rule).observation


def health_stage_ok(settings: Settings) -> bool:
    """The pipeline's health stage, without a soak."""
    stage = HealthStage(StageSettings(kind="health", soak=0.0), 1, "prod")
    ctx = StageContext(
        settings=settings,
        registry=Registry(),
        promotion=Promotion(1, "staging_to_prod", "staging", "prod"),
        env="prod",
        deadline=time.monotonic() + 5.0,
        cancel=threading.Event(),
        on_line=lambda _line: None,
        artifacts=settings.state_dir,
        token="",
    )
    return stage.run(ctx).ok


def rollback_ok(settings: Settings) -> bool:
    """A rollback's verification (deploy verification's wait, bounded by deploy_timeout)."""
    plan = RollbackPlan(settings, Registry(), "prod", "", "", 1, time.monotonic() + 5.0)
    return _verify(plan, Layout.of(settings, "prod"))[0]


@pytest.mark.parametrize("answer", list(ANSWERS))
def test_every_caller_gives_the_same_answer_the_same_verdict(tmp_path: Path, answer: str) -> None:
    behaviour, expected = ANSWERS[answer]
    with HostileServer({"/health": behaviour}) as server:
        settings = settings_for(tmp_path, server.port)
        layout = Layout.of(settings, "prod")
        rule = BodyRule.of(layout.config)
        deploy_ok = check_health(layout.health_url, rule).healthy
        verdicts = {
            "monitor": monitor_observation(settings),
            "deploy": deploy_ok,
            "health stage": health_stage_ok(settings),
            "rollback": rollback_ok(settings),
        }
    healthy = expected is Health.HEALTHY
    assert verdicts == {
        "monitor": OBSERVATION[expected],
        "deploy": healthy,
        "health stage": healthy,
        "rollback": healthy,
    }


def test_every_caller_keeps_the_health_path_query_string(tmp_path: Path) -> None:
    with HostileServer({"/health": Respond()}) as server:
        settings = settings_for(tmp_path, server.port)
        layout = Layout.of(settings, "prod")
        monitor_observation(settings)
        check_health(layout.health_url)
        health_stage_ok(settings)
        rollback_ok(settings)
        targets = {request.target for request in server.requests}
    assert targets == {HEALTH_PATH}


def test_the_body_rule_is_configured_per_environment(tmp_path: Path) -> None:
    rule_toml = 'health_body_key = "checks.db"\nhealth_down = ["red"]\nhealth_degraded = []\n'
    body = b'{"status": "down", "checks": {"db": "RED"}}'
    with HostileServer({"/health": Respond(200, body)}) as server:
        settings = settings_for(tmp_path, server.port, rule_toml)
        assert monitor_observation(settings) is Observation.FAIL
        assert not health_stage_ok(settings)
        assert not rollback_ok(settings)


def test_judge_reads_booleans_and_ignores_nested_objects() -> None:
    rule = BodyRule(key="healthy", down=frozenset({"false"}))
    assert judge(200, {"healthy": False}, rule).health is Health.UNHEALTHY
    assert judge(200, {"healthy": True}, rule).health is Health.HEALTHY
    assert judge(200, {"healthy": {"db": "down"}}, rule).health is Health.HEALTHY


def test_a_value_cannot_be_both_down_and_degraded() -> None:
    with pytest.raises(ValueError, match="both down and degraded"):
        BodyRule(down=frozenset({"amber"}), degraded=frozenset({"Amber"}))


def test_a_body_without_content_type_is_json_only_when_it_parses() -> None:
    assert read_json(None, b"OK") == (None, None)
    assert read_json(None, b'{"status": "up"}') == ({"status": "up"}, None)
    body, problem = read_json("application/problem+json", b"[1]")
    assert body is None
    assert problem is not None
    assert "expected an object" in problem


TRICKLING_SERVICE = """
import os, socket, threading

def serve(conn):
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\\r\\nX-Slow: ")
    stop = threading.Event()
    while not stop.wait(0.2):  # a header byte every 0.2 s: every socket read succeeds
        conn.sendall(b"a")

listener = socket.create_server(("127.0.0.1", int(os.environ["PORT"])))
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""


def test_a_deploy_to_a_trickling_health_endpoint_ends_at_its_deploy_timeout(
    tmp_path: Path,
) -> None:
    source = demo_source(tmp_path / "src")
    trickling = tmp_path / "trickling"
    trickling.mkdir()
    (trickling / "server.py").write_text(TRICKLING_SERVICE)
    envs = {"prod": {"port": free_port(), "source": str(source), "deploy_timeout": 1.5}}
    settings = load_settings(tmp_path, write_config(tmp_path, envs))
    tree = start_tree(settings)
    try:
        tree.wait_healthy("prod")
        bad = builds.build_release(trickling, tmp_path / "elsewhere")
        started = time.monotonic()
        with pytest.raises(EnvironmentFailure, match=r"not healthy within 1\.5s"):
            tree.ask("prod", Deploy(str(bad.path)))
        elapsed = time.monotonic() - started
    finally:
        tree.stop()
        kill_services([Layout.of(settings, "prod").data])
    # The deploy's wait ends at deploy_timeout; the rest is stopping the new process and
    # starting the old release again (stop_grace 2 s at most, the demo's start).
    assert elapsed < 1.5 + 2.0 + 1.5
