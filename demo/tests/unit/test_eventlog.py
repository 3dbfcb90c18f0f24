from __future__ import annotations

import io
import json

from demosvc.logs import EventLog


def test_lines_are_json_with_bound_fields_and_level_threshold() -> None:
    stream = io.StringIO()
    log = EventLog(stream, "info", release="r1").bind(env="dev")
    log.debug("hidden")
    log.info("http.request", status=200)
    log.error("boom", error="x")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["http.request", "boom"]
    assert lines[0]["release"] == "r1"
    assert lines[0]["env"] == "dev"
    assert lines[0]["status"] == 200
    assert lines[0]["ts"].endswith("Z")
    assert lines[1]["level"] == "error"


def test_closed_stream_does_not_raise() -> None:
    stream = io.StringIO()
    log = EventLog(stream)
    stream.close()
    log.info("after.close")
