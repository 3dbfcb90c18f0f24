"""Stage building blocks on their own: configuration, placeholders, JUnit XML, the HTTP load,
leftover stage processes, progress lines."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gaia_actors.errors import ConfigError, TemplateError
from gaia_actors.pipeline import junit
from gaia_actors.pipeline.commands import progress_of
from gaia_actors.pipeline.errors import StageError
from gaia_actors.pipeline.leftovers import kill_leftover_stages
from gaia_actors.pipeline.load import run_load
from gaia_actors.pipeline.stages import STAGE_TOKEN, plan
from gaia_actors.settings import Settings, expand, load
from tests.conftest import wait_until
from tests.gaia_actors.environments.conftest import free_port
from tests.gaia_actors.pipeline.conftest import pid_alive, pipeline_toml

ENVS = "".join(
    f"[environments.{env}]\nport = {port}\n"
    for env, port in (("dev", 18081), ("staging", 18082), ("prod", 18080))
)


def settings_with(tmp_path: Path, promotions: dict[str, list[dict[str, object]]]) -> Settings:
    config = tmp_path / "gaia.toml"
    config.write_text(ENVS + pipeline_toml(promotions))
    return load(config, environ={"GAIA_STATE_DIR": str(tmp_path / "state")})


# --------------------------------------------------------------------------- configuration


def test_stage_environments_default_by_kind_and_position(tmp_path: Path) -> None:
    settings = settings_with(
        tmp_path,
        {
            "staging_to_prod": [
                {"kind": "health", "name": "before"},
                {"kind": "backup"},
                {"kind": "command", "name": "on-dev", "env": "dev", "command": ["true"]},
                {"kind": "deploy"},
                {"kind": "load", "name": "after"},
                {"kind": "health", "name": "source-again", "env": "source"},
            ]
        },
    )
    stages = plan(settings, "staging_to_prod")
    assert [(s.position, s.name, s.env) for s in stages] == [
        (1, "before", "staging"),
        (2, "backup", "prod"),
        (3, "on-dev", "dev"),
        (4, "deploy", "prod"),
        (5, "after", "prod"),
        (6, "source-again", "staging"),
    ]
    assert stages[0].timeout == 300.0
    assert stages[0].blocking


@pytest.mark.parametrize(
    ("stages", "key", "problem"),
    [
        ([{"kind": "health"}, {"kind": "health"}], "[1].name", "used twice"),
        ([{"kind": "health", "env": "qa"}], "[0].env", "got 'qa'"),
        ([{"kind": "deploy"}, {"kind": "deploy", "name": "again"}], "", "at most one deploy"),
        ([{"kind": "deploy", "env": "source"}], "[0].env", "acts on 'target'"),
        ([{"kind": "command"}], "[0].command", "non-empty argv"),
        ([{"kind": "load", "concurrency": 0}], "[0].concurrency", "an integer from 1 to"),
        ([{"kind": "cook"}], "[0].kind", "expected one of"),
    ],
)
def test_bad_stage_configuration_names_the_key(
    tmp_path: Path, stages: list[dict[str, object]], key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as error:
        settings_with(tmp_path, {"staging_to_prod": stages})
    assert error.value.key == f"pipeline.staging_to_prod{key}"
    assert problem in str(error.value)


def test_a_promotion_between_unconfigured_environments_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "gaia.toml"
    config.write_text("[environments.dev]\nport = 18081\n" + pipeline_toml(
        {"dev_to_staging": [{"kind": "build"}]}
    ))  # fmt: skip
    with pytest.raises(ConfigError, match="'staging' is not configured"):
        load(config, environ={"GAIA_STATE_DIR": str(tmp_path / "state")})


def test_placeholders_are_replaced_and_doubled_braces_are_literal() -> None:
    values = {"python": "/venv/python", "url": "http://127.0.0.1:8082"}
    assert expand("{python}", values) == "/venv/python"
    assert expand("DEMO_URL={url}/health", values) == "DEMO_URL=http://127.0.0.1:8082/health"
    assert expand("print({{'a': 1}}); {{url}}", values) == "print({'a': 1}); {url}"
    with pytest.raises(TemplateError, match="unknown placeholder"):
        expand("{unknown}", values)


# --------------------------------------------------------------------------- JUnit XML

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites>
  <testsuite name="pytest" tests="5" failures="1" errors="1" skipped="1">
    <testcase classname="tests.unit.test_a" name="test_ok" time="0.010"/>
    <testcase classname="tests.unit.test_a" name="test_also_ok" time="0.002"/>
    <testcase classname="tests.unit.test_b" name="test_wrong" time="0.1">
      <failure message="assert 4 == 5">long traceback</failure>
    </testcase>
    <testcase classname="tests.unit.test_b" name="test_setup" time="0.1">
      <error message="fixture exploded"/>
    </testcase>
    <testcase classname="tests.unit.test_c" name="test_later" time="x">
      <skipped message="not today"/>
    </testcase>
  </testsuite>
</testsuites>
"""


def test_junit_results_become_counts_and_cases_failures_first(tmp_path: Path) -> None:
    path = tmp_path / "report.xml"
    path.write_text(REPORT)
    results = junit.parse(path)
    counts = {k: results[k] for k in ("total", "passed", "failed", "errors", "skipped")}
    assert counts == {"total": 5, "passed": 2, "failed": 1, "errors": 1, "skipped": 1}
    assert results["time"] == 0.212
    first = results["cases"][0]
    assert (first["name"], first["status"], first["message"]) == (
        "test_wrong",
        "failed",
        "assert 4 == 5",
    )
    assert results["cases"][1]["status"] == "error"
    assert junit.describe(results) == (
        "5 tests: 2 passed, 1 failed, 1 errors, 1 skipped "
        "(tests.unit.test_b.test_wrong, tests.unit.test_b.test_setup)"
    )


def test_a_single_testsuite_root_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "go.xml"
    path.write_text('<testsuite><testcase name="TestX" time="1"/></testsuite>')
    assert junit.describe(junit.parse(path)) == "1 tests: 1 passed"


@pytest.mark.parametrize("text", ["<html></html>", "<testsuites><testcase", ""])
def test_a_file_that_is_not_junit_fails_with_its_path(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.xml"
    path.write_text(text)
    with pytest.raises(StageError, match=str(path)):
        junit.parse(path)


# --------------------------------------------------------------------------- HTTP load


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        status = 500 if self.path.startswith("/fail") else 200
        body = b"{}"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


def test_load_sends_every_request_and_measures_latency(server: int) -> None:
    result = run_load(
        "127.0.0.1", server, "/ok", requests=40, concurrency=4, deadline=time.monotonic() + 10
    )
    assert (result.sent, result.errors, result.complete) == (40, 0, True)
    assert 0 < result.percentile_ms(0.5) <= result.percentile_ms(0.95) <= result.percentile_ms(1)
    assert "40 requests" in result.describe()


def test_load_counts_http_errors_and_refused_connections(server: int) -> None:
    failing = run_load(
        "127.0.0.1", server, "/fail", requests=10, concurrency=2, deadline=time.monotonic() + 10
    )
    assert (failing.errors, failing.error_rate, failing.first_error) == (10, 1.0, "HTTP 500")
    refused = run_load(
        "127.0.0.1", free_port(), "/", requests=3, concurrency=1, deadline=time.monotonic() + 10
    )
    assert refused.errors == 3
    assert refused.first_error.startswith("connection: refused")


def test_load_stops_at_its_deadline_or_when_cancelled(server: int) -> None:
    late = run_load("127.0.0.1", server, "/ok", requests=5, concurrency=1, deadline=0.0)
    assert (late.sent, late.complete) == (0, False)
    cancel = threading.Event()
    cancel.set()
    cancelled = run_load(
        "127.0.0.1", server, "/ok", requests=5, concurrency=1, deadline=time.monotonic() + 10,
        cancel=cancel,
    )  # fmt: skip
    assert cancelled.sent == 0


# --------------------------------------------------------------------------- leftovers


def test_leftover_stage_processes_are_killed_by_their_token(tmp_path: Path) -> None:
    def stage(token: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["sh", "-c", f"sleep 30 & echo $! > {tmp_path / token}; wait"],
            env={**os.environ, STAGE_TOKEN: token},
            start_new_session=True,
        )

    doomed, other = stage("state:7:2"), stage("state:8:1")
    try:
        grandchild = wait_until(lambda: _pid(tmp_path / "state:7:2"), timeout=10)
        killed = kill_leftover_stages({"state:7:2"})
        assert doomed.pid in killed
        assert doomed.wait(timeout=5) == -9
        assert isinstance(grandchild, int)
        wait_until(lambda: not pid_alive(grandchild), timeout=5)
        assert other.poll() is None
    finally:
        for proc in (doomed, other):
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
            proc.wait()


def _pid(path: Path) -> int | None:
    text = path.read_text().strip() if path.exists() else ""
    return int(text) if text.isdigit() else None


# --------------------------------------------------------------------------- progress


def test_progress_lines_name_the_stage_its_status_and_duration() -> None:
    started = {"event": "stage.started", "pipeline_id": 4, "position": 2, "name": "unit-tests",
               "kind": "command", "env": "dev"}  # fmt: skip
    ended = {**started, "event": "stage.failed", "status": "timed_out", "duration": 1.234,
             "summary": "", "error": "timed out after 1s"}  # fmt: skip
    line = {"event": "stage.output", "name": "unit-tests", "line": "collected 3 items"}
    assert progress_of(started)["message"] == "#4 [2] unit-tests (command on dev) started"
    assert progress_of(ended) == {
        "message": "#4 [2] unit-tests timed_out in 1.23s: timed out after 1s",
        "event": "stage.failed",
    }
    assert progress_of(line) == {"message": "    unit-tests | collected 3 items"}
