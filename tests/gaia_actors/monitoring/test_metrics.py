"""MetricsCollector: scraping hostile /metrics, storing samples, the daemon's own /metrics."""

from __future__ import annotations

import contextlib
import math
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from gaia_actors.messages import Event, Flush, GetHealth, Insert, Prune, ScrapeNow, fields_of
from gaia_actors.monitoring.exporter import parse_listen
from gaia_actors.store.models import MetricSample
from tests.conftest import wait_until
from tests.gaia_actors.monitoring.conftest import GOOD, HOSTILE, Tree, make_settings
from tests.gaia_actors.monitoring.hostile import (
    Behaviour,
    Hang,
    HostileServer,
    HugeBody,
    Respond,
    Switch,
    Trickle,
    refused_port,
)


def text(body: bytes) -> Respond:
    return Respond(body=body, content_type="text/plain; version=0.0.4")


# -- the listen address ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listen", "expected"),
    [("127.0.0.1:9464", ("127.0.0.1", 9464)), ("[::1]:0", ("::1", 0)), ("localhost:1", None)],
)
def test_listen_addresses_parse(listen: str, expected: tuple[str, int] | None) -> None:
    assert parse_listen(listen) == (expected or ("localhost", 1))


@pytest.mark.parametrize("listen", ["0.0.0.0:9464", "10.1.2.3:80", "9464", "host:port"])
def test_non_loopback_or_malformed_listen_addresses_are_refused(listen: str) -> None:
    with pytest.raises(ValueError, match="listen"):
        parse_listen(listen)


# -- scraping through the actor ----------------------------------------------------------------

SCRAPED: dict[str, Behaviour | None] = {
    "good": text(GOOD),
    "hostile": text(HOSTILE),
    "huge": HugeBody(6 * 1024 * 1024, framing="chunked"),
    "hang": Hang(),
    "trickle": Trickle(interval=0.05),  # each byte in time, the whole body never
    "refused": None,
}


@pytest.fixture(scope="class")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tree]:
    with contextlib.ExitStack() as stack:
        ports = {}
        for env, behaviour in SCRAPED.items():
            if behaviour is None:
                ports[env] = stack.enter_context(refused_port())
            else:
                routes = {"/health": Respond(), "/metrics": behaviour}
                ports[env] = stack.enter_context(HostileServer(routes)).port
        overrides = {"metrics": {"max_body_bytes": 1_000_000, "read_timeout": 0.3}}
        settings = make_settings(tmp_path_factory.mktemp("scraped"), ports, overrides)
        tree = Tree(settings, actors=("monitor", "metrics"))
        stack.callback(tree.stop)
        tree.wait_rounds(2, "metrics")
        yield tree


class TestScraping:
    """Every kind of /metrics, scraped by one collector; it never stops."""

    def test_samples_are_stored(self, scraped: Tree) -> None:
        scraped.ask("store", Flush())
        names = {s.name for s in MetricSample.select().where(MetricSample.env == "good")}
        assert names == {"app_requests_total", "app_request_errors_total", "app_up"}

    def test_hostile_lines_are_counted_not_fatal(self, scraped: Tree) -> None:
        state = scraped.state("metrics")["environments"]["hostile"]
        assert (state["parse_errors"], state["nonfinite"], state["dropped_labels"]) == (2, 2, 1)
        assert state["samples"] >= 2
        scraped.ask("store", Flush())
        stored = {s.name for s in MetricSample.select().where(MetricSample.env == "hostile")}
        assert stored == {"app_requests_total", "app_after_garbage"}
        assert all(math.isfinite(s.value) for s in MetricSample.select())

    @pytest.mark.parametrize(
        ("env", "error"),
        [
            ("huge", "too_large: body exceeds 1000000 bytes"),
            ("hang", "timeout: no complete answer within 0.3 s"),
            ("trickle", "timeout: no complete answer within 0.3 s"),
            ("refused", "refused: connection refused"),
        ],
    )
    def test_a_failed_scrape_is_counted_with_its_reason(
        self, scraped: Tree, env: str, error: str
    ) -> None:
        state = scraped.state("metrics")["environments"][env]
        assert state["failures"] == state["scrapes"] >= 2
        assert error in state["error"]

    def test_the_service_totals_reach_the_monitor(self, scraped: Tree) -> None:
        def counted() -> bool:
            snapshot = scraped.ask("monitor", GetHealth("good"))
            return (snapshot.requests, snapshot.errors) == (7.0, 1.0)

        wait_until(counted)

    def test_the_collector_never_restarted(self, scraped: Tree) -> None:
        scraped.registry.tell("metrics", ScrapeNow())
        scraped.wait_rounds(1, "metrics")
        assert scraped.registry.node("metrics").generation == 1  # type: ignore[union-attr]
        assert scraped.state("metrics")["failed_rounds"] == 0


def test_old_samples_are_pruned_by_retention(
    tmp_path: Path, start_tree: Callable[..., Tree]
) -> None:
    overrides = {"metrics": {"retention_days": 1.0}}
    tree = start_tree(make_settings(tmp_path, {}, overrides), actors=())
    now = time.time()
    for age_days in (0.5, 2.0):
        row = fields_of(ts=now - age_days * 86400, env="x", name="m", labels={}, value=1.0)
        tree.registry.tell("store", Insert("metric_samples", row))
    tree.ask("store", Flush())
    tree.ask("store", Prune())
    assert [round((now - s.ts) / 86400, 1) for s in MetricSample.select()] == [0.5]


# -- the daemon's own /metrics -----------------------------------------------------------------


BUILD = (("stage", "build"), ("status", "passed"))
UP = (("env", "app"), ("status", "healthy"))
SCRAPED_OK = (("env", "app"), ("result", "ok"))


def scrape_own(tree: Tree) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    address = tree.state("metrics")["listen"]
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
        body = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def publish(tree: Tree, name: str, env: str = "", **data: Any) -> None:
    tree.registry.tell("bus", Event(name, env=env, data=fields_of(**data)))


def test_own_metrics_show_health_restarts_recoveries_and_durations(
    tmp_path: Path, start_tree: Callable[..., Tree]
) -> None:
    with HostileServer({"/health": Respond(), "/metrics": text(GOOD)}) as server:
        overrides = {"metrics": {"listen": "127.0.0.1:0"}}
        tree = start_tree(make_settings(tmp_path, {"app": server.port}, overrides))
        publish(tree, "supervisor.restart", child="monitor")
        publish(tree, "failover.triggered", env="app", cause="hung")
        publish(tree, "incident.recovered", env="app", cause="hung")
        publish(tree, "environment.rolled_back", env="app", release="r1")
        publish(tree, "pipeline.finished", kind="dev_to_staging", status="succeeded", duration=12.5)
        publish(tree, "stage.finished", stage="build", status="passed", duration=3.0)
        publish(tree, "stage.started", stage="build")  # no duration: not observed

        def seen() -> dict[Any, float] | None:
            metrics = scrape_own(tree)
            wanted = [
                ("gaia_stage_duration_seconds_count", BUILD),  # the last event published
                ("gaia_environment_status", UP),  # a health round
                ("gaia_metrics_scrapes_total", SCRAPED_OK),  # a scrape
            ]
            return metrics if all(key in metrics for key in wanted) else None

        metrics = wait_until(seen)
        assert isinstance(metrics, dict)
    assert metrics[("gaia_environment_status", UP)] == 1.0
    assert metrics[("gaia_environment_status", (("env", "app"), ("status", "down")))] == 0.0
    assert metrics[("gaia_probe_latency_seconds_count", (("env", "app"),))] >= 1
    assert metrics[("gaia_actor_restarts_total", (("child", "monitor"),))] == 1.0
    assert metrics[("gaia_failovers_total", (("env", "app"),))] == 1.0
    assert metrics[("gaia_recoveries_total", (("cause", "hung"), ("env", "app")))] == 1.0
    action = ("gaia_recovery_actions_total", (("action", "rolled_back"), ("env", "app")))
    assert metrics[action] == 1.0
    pipeline = (("kind", "dev_to_staging"), ("status", "succeeded"))
    assert metrics[("gaia_pipeline_duration_seconds_sum", pipeline)] == 12.5
    assert metrics[("gaia_stage_duration_seconds_sum", BUILD)] == 3.0
    assert metrics[("gaia_metrics_scrapes_total", SCRAPED_OK)] >= 1


def test_a_busy_port_is_a_logged_error_the_collector_runs_on_and_takes_it_once_free(
    tmp_path: Path, start_tree: Callable[..., Tree]
) -> None:
    busy = socket.create_server(("127.0.0.1", 0))
    with (
        busy,
        HostileServer({"/health": Respond(), "/metrics": text(GOOD)}) as server,
        capture_logs() as logs,
    ):
        listen = f"127.0.0.1:{busy.getsockname()[1]}"
        settings = make_settings(tmp_path, {"app": server.port}, {"metrics": {"listen": listen}})
        tree = start_tree(settings, actors=("monitor", "metrics"))
        tree.wait_rounds(2, "metrics")
        state = tree.state("metrics")
        busy.close()  # as a hung predecessor letting go of the port
        wait_until(lambda: tree.state("metrics")["listen"] == listen, timeout=10)
        assert ("gaia_metrics_scrapes_total", SCRAPED_OK) in scrape_own(tree)
    assert state["listen"] == ""
    assert state["listen_failures"] >= 1
    assert state["environments"]["app"]["samples"] > 0
    failed = [entry for entry in logs if entry["event"] == "metrics.listen_failed"]
    assert len(failed) == 1  # retries are quiet; the success says how many failed
    assert failed[0]["log_level"] == "error"
    assert failed[0]["listen"] == listen
    assert failed[0]["retry_in"] == 1.0
    listening = [entry for entry in logs if entry["event"] == "metrics.listening"]
    assert listening[-1]["failures"] >= 1
    assert tree.registry.node("metrics").generation == 1  # type: ignore[union-attr]


# -- one report per change of state; optional per environment ------------------------------------


def scrape_logs(logs: list[dict[str, Any]], env: str) -> list[tuple[str, Any]]:
    """The scrape state changes logged for ``env``: (event, outcome)."""
    return [
        (entry["event"], entry.get("outcome"))
        for entry in logs
        if entry["event"].startswith("metrics.scrape_") and entry.get("env") == env
    ]


def test_a_missing_or_foreign_metrics_endpoint_is_reported_once_per_change(
    tmp_path: Path, start_tree: Callable[..., Tree]
) -> None:
    html = Respond(200, b"<html><body>hello</body></html>", content_type="text/html")
    metrics = Switch(Respond(404, b"not found", content_type="text/plain"))
    with (
        HostileServer({"/health": Respond(), "/metrics": metrics}) as server,
        capture_logs() as logs,
    ):
        tree = start_tree(
            make_settings(tmp_path, {"app": server.port}), actors=("monitor", "metrics")
        )
        tree.wait_rounds(3, "metrics")
        metrics.set(html)
        tree.wait_rounds(3, "metrics")
        metrics.set(text(GOOD))
        tree.wait_rounds(3, "metrics")
        state = tree.state("metrics")["environments"]["app"]
        health = tree.ask("monitor", GetHealth("app"))
    assert scrape_logs(logs, "app") == [
        ("metrics.scrape_problems", "HTTP 404"),
        ("metrics.scrape_problems", "not Prometheus text"),
        ("metrics.scrape_recovered", None),
    ]
    first = next(e for e in logs if e["event"] == "metrics.scrape_problems")
    assert first["http_status"] == 404
    assert state["failures"] >= 6
    assert state["samples"] > 0  # only the Prometheus body was stored
    # A scrape that failed is no service error: the health checks' error rate stays 0.
    assert (health.status, health.error_rate, health.check_errors) == ("healthy", 0.0, 0)


def test_an_empty_metrics_path_turns_scraping_off_for_that_environment(
    tmp_path: Path, start_tree: Callable[..., Tree]
) -> None:
    routes = {"/health": Respond(), "/metrics": text(GOOD)}
    with HostileServer(routes) as app, HostileServer(routes) as quiet:
        overrides = {"env.quiet": {"metrics_path": ""}}
        settings = make_settings(tmp_path, {"app": app.port, "quiet": quiet.port}, overrides)
        tree = start_tree(settings, actors=("monitor", "metrics"))
        tree.wait_rounds(2, "metrics")
        environments = tree.state("metrics")["environments"]
        quiet_paths = {r.path for r in quiet.requests}
    assert set(environments) == {"app"}
    assert environments["app"]["scrapes"] >= 2
    assert quiet_paths == {"/health"}
