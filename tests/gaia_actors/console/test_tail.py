"""``python run.py tail``: filters, rendering, reading back, and following across rotation.

Real files in tmp_path; the concurrency tests run a real writer (``tail_writer.py``: structlog
and a stdlib RotatingFileHandler with a small maxBytes) in a subprocess or a thread while the
follower runs, and wait on the follower's output with timeouts.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import logging
import logging.handlers
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gaia_actors.console import tail
from gaia_actors.console.tail import filtering, following, reading
from tests.conftest import wait_until

WRITER_PATH = Path(__file__).with_name("tail_writer.py")
NOW = datetime(2026, 11, 28, 7, 55, 1, 123456, tzinfo=UTC)


def _load_writer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tail_writer", WRITER_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


writer = _load_writer()


# --------------------------------------------------------------------------- helpers


class Sink(io.TextIOBase):
    """An output stream the tail thread writes and the test waits on."""

    def __init__(self, tty: bool = False) -> None:
        super().__init__()
        self._tty = tty
        self._parts: list[str] = []
        self._changed = threading.Condition()

    def write(self, text: str) -> int:
        with self._changed:
            self._parts.append(text)
            self._changed.notify_all()
        return len(text)

    def isatty(self) -> bool:
        return self._tty

    def text(self) -> str:
        with self._changed:
            return "".join(self._parts)

    def lines(self) -> list[str]:
        return self.text().splitlines()

    def seqs(self) -> list[int]:
        return [json.loads(line)["seq"] for line in self.lines()]

    def wait_for(self, predicate: Callable[[Sink], bool], timeout: float = 10.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self), timeout):
                raise AssertionError(f"output never matched; got:\n{''.join(self._parts)}")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    tail.add_arguments(parser)
    return parser.parse_args(argv)


def run_tail(argv: list[str], path: Path, out: Sink | None = None) -> tuple[int, str]:
    sink = out if out is not None else Sink()
    code = tail.run(parse(argv), path, out=sink)  # type: ignore[arg-type]
    return code, sink.text()


class TailThread:
    """``tail.run`` in a thread, with its output in a Sink and a stop event."""

    def __init__(self, argv: list[str], path: Path) -> None:
        self.sink = Sink()
        self.stop = threading.Event()
        self.code: int | None = None
        self._thread = threading.Thread(target=self._run, args=(parse(argv), path), daemon=True)
        self._thread.start()

    def _run(self, args: argparse.Namespace, path: Path) -> None:
        self.code = tail.run(args, path, out=self.sink, stop=self.stop)  # type: ignore[arg-type]

    def finish(self, timeout: float = 5.0) -> int:
        self.stop.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "tail did not stop"
        assert self.code is not None
        return self.code


@pytest.fixture
def tails() -> Iterator[Callable[[list[str], Path], TailThread]]:
    started: list[TailThread] = []

    def start(argv: list[str], path: Path) -> TailThread:
        started.append(TailThread(argv, path))
        return started[-1]

    yield start
    for thread in started:
        thread.stop.set()


def record(seq: int, at: datetime = NOW, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"event": "health.changed", "level": "info", "seq": seq}
    return base | fields | {"timestamp": at.isoformat().replace("+00:00", "Z")}


def line(seq: int, **fields: Any) -> str:
    return json.dumps(record(seq, **fields)) + "\n"


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def write_seqs(path: Path, seqs: range, **fields: Any) -> None:
    append(path, "".join(line(i, **fields) for i in seqs))


def seqs_of(lines: list[str]) -> list[int]:
    return [json.loads(text)["seq"] for text in lines]


def start_writer(path: Path, count: int, *extra: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, str(WRITER_PATH), str(path), "--count", str(count), *extra]
    return subprocess.Popen(argv)


def finish_writer(process: subprocess.Popen[bytes]) -> None:
    assert process.wait(timeout=60) == 0


def rank(level: str) -> int:
    return tail.LEVELS.index(level)


# --------------------------------------------------------------------------- parse_since


@pytest.mark.parametrize(
    ("text", "back"),
    [
        ("90s", timedelta(seconds=90)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("250ms", timedelta(milliseconds=250)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_since_duration_counts_back_from_now(text: str, back: timedelta) -> None:
    assert tail.parse_since(text, NOW) == NOW - back


def test_since_iso_time_with_offset_is_taken_as_given() -> None:
    assert tail.parse_since("2026-11-28T06:00:00Z", NOW) == datetime(2026, 11, 28, 6, tzinfo=UTC)
    plus_two = tail.parse_since("2026-11-28T08:00:00+02:00", NOW)
    assert plus_two == datetime(2026, 11, 28, 6, tzinfo=UTC)


def test_since_iso_time_without_offset_is_local_time() -> None:
    expected = datetime(2026, 11, 28, 6, 30).astimezone().astimezone(UTC)
    assert tail.parse_since("2026-11-28 06:30", NOW) == expected
    assert tail.parse_since("2026-11-28", NOW) == datetime(2026, 11, 28).astimezone()


def test_since_time_of_day_means_today_local() -> None:
    local_now = NOW.astimezone()
    expected = local_now.replace(hour=6, minute=5, second=0, microsecond=0)
    assert tail.parse_since("06:05", NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "10", "5 parsecs", "", "-5m", "2026-13-01"])
def test_since_rejects_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        tail.parse_since(text, NOW)


# --------------------------------------------------------------------------- Filter


def entry(**fields: Any) -> tail.Entry:
    data = record(1, **fields)
    return tail.Entry(json.dumps(data), data)


def build_filter(*argv: str) -> tail.Filter:
    return tail.Filter.from_args(parse(list(argv)), NOW)


def test_empty_filter_passes_everything_including_malformed_lines() -> None:
    flt = build_filter()
    assert flt.matches(entry())
    assert flt.matches(tail.parse_line("not json"))


def test_env_filter_keeps_only_the_named_environments() -> None:
    flt = build_filter("--env", "prod", "--env", "staging")
    assert flt.matches(entry(env="prod"))
    assert flt.matches(entry(env="staging"))
    assert not flt.matches(entry(env="dev"))
    assert not flt.matches(entry())
    assert not flt.matches(entry(env=["prod"]))


def test_actor_filter_takes_globs() -> None:
    flt = build_filter("--actor", "environment.*")
    assert flt.matches(entry(actor="environment.prod"))
    assert not flt.matches(entry(actor="monitor"))
    assert not flt.matches(entry())


def test_level_filter_is_a_minimum_and_knows_aliases() -> None:
    flt = build_filter("--level", "WARN")
    assert flt.level == "warning"
    assert [flt.matches(entry(level=name)) for name in tail.LEVELS] == [
        False,
        False,
        True,
        True,
        True,
    ]
    assert flt.matches(entry(level="exception"))
    assert not flt.matches(entry(level="chatty"))


def test_event_filter_takes_repeated_globs() -> None:
    flt = build_filter("--event", "health.*", "--event", "stage.finished")
    assert flt.matches(entry(event="health.changed"))
    assert flt.matches(entry(event="stage.finished"))
    assert not flt.matches(entry(event="stage.started"))
    assert not flt.matches(entry(event="supervisor.restart"))


def test_since_filter_compares_timestamps() -> None:
    flt = build_filter("--since", "10m")
    assert flt.matches(entry(at=NOW - timedelta(minutes=9)))
    assert not flt.matches(entry(at=NOW - timedelta(minutes=11)))
    assert flt.matches(tail.Entry("{}", {"timestamp": (NOW - timedelta(minutes=1)).timestamp()}))
    assert not flt.matches(tail.Entry("{}", {"event": "no.timestamp"}))


def test_grep_searches_the_whole_record_and_its_decoded_text() -> None:
    flt = build_filter("--grep", r"disk (is )?full")
    assert flt.matches(entry(reason="disk full"))
    assert not flt.matches(entry(reason="disk fine"))
    assert build_filter("--grep", '"env": "prod"').matches(entry(env="prod"))
    # The JSON line spells é as \u00e9 and a newline as \n: the decoded text still matches.
    assert build_filter("--grep", "café\nclosed").matches(entry(note="café\nclosed"))


def test_malformed_lines_pass_grep_alone_but_no_field_condition() -> None:
    broken = tail.parse_line("Traceback (most recent call last):")
    assert broken.malformed
    assert build_filter("--grep", "Traceback").matches(broken)
    assert not build_filter("--grep", "nothing").matches(broken)
    assert not build_filter("--level", "debug").matches(broken)
    assert not build_filter("--env", "prod").matches(broken)


@pytest.mark.parametrize(
    ("pattern", "literal"),
    [("health.*", "health."), ("*.finished", ".finished"), ("*", ""), ("[]ab]x", "x")],
)
def test_a_glob_literal_part_is_in_every_match(pattern: str, literal: str) -> None:
    assert filtering._literal_part(pattern) == literal


# Few words, so filters and records often share one; some need escapes in JSON.
WORDS = st.sampled_from(["prod", "health.changed", "a]b", "é", 'q"t', "\\", "ERROR", "warn"])
FIELD_VALUES = st.one_of(WORDS, WORDS, st.text(max_size=4), st.integers(), st.none())
RECORDS = st.dictionaries(
    st.sampled_from(["env", "event", "actor", "level", "note", "timestamp"]), FIELD_VALUES
)
GLOBS = st.lists(st.one_of(WORDS, st.text("ab*?[]!.", max_size=5)), max_size=2)


CONDITIONS = st.fixed_dictionaries(
    {},
    optional={
        "envs": st.frozensets(WORDS, max_size=2),
        "events": GLOBS.map(tuple),
        "actors": GLOBS.map(tuple),
        "grep": st.one_of(WORDS.map(re.escape), st.just("x|é")).map(re.compile),
        "level": st.sampled_from(tail.LEVELS),
    },
)


@settings(max_examples=300, deadline=None)
@example(data={"env": "é"}, conditions={"envs": frozenset(["é"])}, ensure_ascii=True)
@example(data={"event": 'q"t'}, conditions={"events": ('q"*',)}, ensure_ascii=False)
@example(data={"note": "a\\b"}, conditions={"grep": re.compile(r"a\\b")}, ensure_ascii=False)
@example(data={"level": "WARN"}, conditions={"level": "warning"}, ensure_ascii=False)
@given(data=RECORDS, conditions=CONDITIONS, ensure_ascii=st.booleans())
def test_the_text_pre_check_never_rules_out_a_matching_record(
    data: dict[str, Any], conditions: dict[str, Any], ensure_ascii: bool
) -> None:
    flt = tail.Filter(**conditions)
    raw = json.dumps(data, ensure_ascii=ensure_ascii)
    if flt.matches(tail.parse_line(raw)):
        assert not flt.rules_out(raw)


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", "42", '{"half": ', "[" * 100_000])
def test_anything_but_a_json_object_is_a_malformed_entry(raw: str) -> None:
    assert tail.parse_line(raw) == tail.Entry(raw, None)


# --------------------------------------------------------------------------- render

HEALTH = {
    "event": "health.changed",
    "level": "warning",
    "timestamp": "2026-11-28T07:55:01.123456Z",
    "status": "down",
    "env": "prod",
    "actor": "monitor",
    "previous": "healthy",
    "latency_ms": 12.5,
}


def test_render_lays_out_time_level_event_scope_then_the_rest() -> None:
    assert tail.render(HEALTH, color=False, tz=UTC) == (
        "07:55:01.123 warning  health.changed           "
        "actor=monitor env=prod status=down previous=healthy latency_ms=12.5"
    )


def test_render_shows_time_in_local_time_by_default() -> None:
    local = datetime(2026, 11, 28, 7, 55, 1, tzinfo=UTC).astimezone()
    assert tail.render(HEALTH, color=False).startswith(f"{local:%H:%M:%S}.123 ")


def test_render_colours_the_level_and_resets() -> None:
    text = tail.render(HEALTH | {"level": "error"}, color=True, tz=UTC)
    assert "\x1b[31merror   \x1b[0m" in text
    assert re.sub(r"\x1b\[[0-9;]*m", "", text) == tail.render(
        HEALTH | {"level": "error"}, color=False, tz=UTC
    )


def test_render_quotes_values_that_need_it() -> None:
    text = tail.render(
        {"event": "e", "level": "info", "msg": "two words", "n": None, "tags": ["a", 1]},
        color=False,
    )
    assert text.endswith('msg="two words" n=null tags=["a", 1]')


def test_render_shows_a_sentence_event_bare() -> None:
    pykka = {"event": "Unhandled exception in X", "level": "error", "logger": "pykka"}
    assert tail.render(pykka, color=False).endswith(" Unhandled exception in X logger=pykka")


def test_render_puts_a_traceback_under_the_line() -> None:
    failed = HEALTH | {"exception": "Traceback (most recent call last):\nZeroDivisionError: x\n"}
    first, *rest = tail.render(failed, color=False, tz=UTC).split("\n")
    assert "exception" not in first
    assert rest == ["    Traceback (most recent call last):", "    ZeroDivisionError: x"]


def test_render_escapes_terminal_control_characters() -> None:
    text = tail.render({"event": "evil\x1b[2J", "level": "info"}, color=False)
    assert "\x1b" not in text
    assert "\\u001b[2J" in text or "\\x1b[2J" in text
    assert "\x1b" not in tail.render_malformed("raw \x1b]0;title\x07", color=False)


def test_render_survives_a_record_without_the_usual_fields() -> None:
    assert tail.render({"other": 1}, color=False) == f"{'-':<12} {'-':<8} {'-':<24} other=1"
    assert tail.render({"timestamp": "soon", "event": "x"}, color=False).startswith("soon ")


def test_malformed_line_is_shown_raw_and_marked() -> None:
    assert tail.render_malformed("oops {", color=False) == "[malformed] oops {"
    assert tail.render_malformed("oops {", color=True) == "\x1b[1;31m[malformed]\x1b[0m oops {"


# --------------------------------------------------------------------------- reading back


def make_rotated_log(directory: Path) -> Path:
    """gaia.jsonl.2 holds 0-9, gaia.jsonl.1 10-19, gaia.jsonl 20-24; env cycles dev/prod."""
    path = directory / "gaia.jsonl"
    for name, seqs in (("gaia.jsonl.2", range(10)), ("gaia.jsonl.1", range(10, 20))):
        append(directory / name, "".join(line(i, env=("dev", "prod")[i % 2]) for i in seqs))
    append(path, "".join(line(i, env=("dev", "prod")[i % 2]) for i in range(20, 25)))
    return path


def test_last_n_defaults_to_twenty_reading_back_across_rotated_files(tmp_path: Path) -> None:
    code, text = run_tail(["--json"], make_rotated_log(tmp_path))
    assert code == 0
    assert seqs_of(text.splitlines()) == list(range(5, 25))


def test_last_n_with_a_filter_counts_matching_records_only(tmp_path: Path) -> None:
    code, text = run_tail(["--json", "-n", "8", "--env", "prod"], make_rotated_log(tmp_path))
    assert code == 0
    assert seqs_of(text.splitlines()) == [9, 11, 13, 15, 17, 19, 21, 23]


def test_last_n_all_and_zero(tmp_path: Path) -> None:
    path = make_rotated_log(tmp_path)
    assert seqs_of(run_tail(["--json", "-n", "all"], path)[1].splitlines()) == list(range(25))
    assert run_tail(["-n", "0"], path) == (0, "")


def test_last_n_agrees_with_a_naive_read_at_every_chunk_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A tiny chunk makes lines straddle many chunk edges; lengths vary so every offset is hit.
    for module in (reading, following):
        monkeypatch.setattr(module, "CHUNK", 37)
    path = tmp_path / "gaia.jsonl"
    texts = [line(i, pad="p" * (i * 7 % 53), env=("dev", "prod")[i % 3 == 0]) for i in range(600)]
    append(tmp_path / "gaia.jsonl.1", "".join(texts[:250]))
    append(path, "".join(texts[250:]) + "\n\n")  # blank lines are not records
    expected = [i for i in range(600) if i % 3 == 0][-150:]
    code, text = run_tail(["--json", "-n", "150", "--env", "prod"], path)
    assert code == 0
    assert seqs_of(text.splitlines()) == expected
    assert text == "".join(texts[i] for i in expected)


def test_since_without_n_shows_the_whole_window(tmp_path: Path) -> None:
    path = tmp_path / "gaia.jsonl"
    now = datetime.now(UTC)
    old = "".join(line(i, at=now - timedelta(minutes=60 - i)) for i in range(30))
    append(tmp_path / "gaia.jsonl.1", old)
    append(path, "".join(line(i, at=now - timedelta(minutes=60 - i)) for i in range(30, 60)))
    code, text = run_tail(["--json", "--since", "45m"], path)
    assert code == 0
    assert seqs_of(text.splitlines()) == list(range(16, 60))
    code, text = run_tail(["--json", "--since", "45m", "-n", "3"], path)
    assert seqs_of(text.splitlines()) == [57, 58, 59]


def test_json_passes_records_through_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "gaia.jsonl"
    text = '{"b": 1, "event": "x",   "timestamp": "2026-11-28T07:55:01Z", "é": "\\u00e9"}\n'
    append(path, text)
    assert run_tail(["--json"], path) == (0, text)


def test_malformed_lines_are_marked_and_never_fatal(tmp_path: Path) -> None:
    path = tmp_path / "gaia.jsonl"
    append(path, line(1) + "Traceback (most recent call last):\n")
    with path.open("ab") as handle:
        handle.write(b"\xff\xfe junk\n")  # not even UTF-8
    append(path, line(2))
    code, text = run_tail(["--color"], path)
    assert code == 0
    rendered = text.splitlines()
    assert rendered[1] == "\x1b[1;31m[malformed]\x1b[0m Traceback (most recent call last):"
    plain = [re.sub(r"\x1b\[[0-9;]*m", "", text) for text in rendered]
    assert plain[0].endswith(" seq=1")
    assert plain[2] == "[malformed] \ufffd\ufffd junk"
    assert plain[3].endswith(" seq=2")
    code, text = run_tail(["--json"], path)
    wrapped = [json.loads(t) for t in text.splitlines()]
    assert wrapped[1] == {
        "event": "tail.malformed",
        "level": "warning",
        "raw": "Traceback (most recent call last):",
    }
    assert [w.get("seq") for w in wrapped] == [1, None, None, 2]


def test_filters_combine_on_a_real_log(tmp_path: Path) -> None:
    path = tmp_path / "gaia.jsonl"
    writer.write(path, count=400, max_bytes=4096, backups=200)
    argv = ["--json", "-n", "all", "--env", "prod", "--level", "warning", "--event", "*.finished"]
    actors = ["--actor", "pipe*", "--actor", "fail*", "--actor", "monitor"]
    code, text = run_tail([*argv, *actors, "--grep", r'"seq": [12]\d*\b'], path)
    expected = [
        i
        for i in range(400)
        if (f := writer.fields(i))["env"] == "prod"
        and rank(f["level"]) >= rank("warning")
        and f["event"].endswith(".finished")
        and f["actor"] in ("pipeline", "failover", "monitor")
        and str(i)[0] in "12"
    ]
    assert code == 0
    assert expected == [29, 149, 209, 269]  # the grep drops 89, 329 and 389
    assert seqs_of(text.splitlines()) == expected


def test_partial_last_line_is_shown_only_when_it_is_a_whole_record(tmp_path: Path) -> None:
    path = tmp_path / "gaia.jsonl"
    append(path, line(1) + line(2).rstrip("\n"))
    assert seqs_of(run_tail(["--json"], path)[1].splitlines()) == [1, 2]
    append(path, "\n" + '{"seq": 3, "event": "half')
    assert seqs_of(run_tail(["--json"], path)[1].splitlines()) == [1, 2]


def test_readable_output_is_plain_when_not_a_terminal(tmp_path: Path) -> None:
    path = tmp_path / "gaia.jsonl"
    append(path, line(1, level="error"))
    assert "\x1b[" not in run_tail([], path)[1]
    assert "\x1b[31m" in run_tail([], path, out=Sink(tty=True))[1]
    assert "\x1b[" not in run_tail(["--no-color"], path, out=Sink(tty=True))[1]


def test_no_color_environment_variable_turns_colour_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "gaia.jsonl"
    append(path, line(1, level="error"))
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in run_tail([], path, out=Sink(tty=True))[1]
    assert "\x1b[" in run_tail(["--color"], path, out=Sink(tty=True))[1]


def test_file_option_overrides_the_log_path(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.jsonl"
    append(other, line(7))
    code, text = run_tail(["--json", "--file", str(other)], tmp_path / "missing.jsonl")
    assert (code, seqs_of(text.splitlines())) == (0, [7])


def test_missing_log_exits_1_naming_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "logs" / "gaia.jsonl"
    assert run_tail([], path) == (1, "")
    error = capsys.readouterr().err
    assert str(path) in error
    assert "daemon writes" in error


def test_unreadable_log_exits_1_naming_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gaia.jsonl"
    path.mkdir()  # as root, chmod would not stop us reading; a directory does
    assert run_tail([], path) == (1, "")
    assert f"cannot read {path}: " in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--since", "yesterday"], "--since"),
        (["--grep", "(unclosed"], "--grep"),
        (["--level", "loud"], "--level"),
    ],
)
def test_bad_argument_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    assert run_tail(argv, tmp_path / "gaia.jsonl") == (2, "")
    assert f"gaia tail: {named}: " in capsys.readouterr().err


@pytest.mark.parametrize("count", ["-3", "lots"])
def test_bad_line_count_is_a_usage_error(count: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse(["-n", count])
    assert exit_info.value.code == 2


# --------------------------------------------------------------------------- Follower


def poll_all(follower: tail.Follower) -> list[int]:
    return seqs_of(follower.poll())


def test_follower_holds_a_partial_line_until_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "gaia.jsonl"
    text = line(1)
    append(path, line(0) + text[:10])
    with tail.Follower(path) as follower:
        assert poll_all(follower) == [0]
        assert follower.poll() == []
        append(path, text[10:])
        assert poll_all(follower) == [1]


def test_follower_lines_yields_until_stopped(tmp_path: Path) -> None:
    path = tmp_path / "gaia.jsonl"
    write_seqs(path, range(3))
    stop = threading.Event()
    seen: list[int] = []
    with tail.Follower(path) as follower:
        for text in follower.lines(stop, interval=0.01):
            seen.append(json.loads(text)["seq"])
            if len(seen) == 3:
                stop.set()
    assert seen == [0, 1, 2]


def test_follower_waits_for_the_file_to_appear(tmp_path: Path) -> None:
    path = tmp_path / "gaia.jsonl"
    with tail.Follower(path) as follower:
        assert follower.poll() == []
        assert follower.waiting
        write_seqs(path, range(3))
        assert poll_all(follower) == [0, 1, 2]
        assert not follower.waiting


def test_follower_restarts_after_truncation_in_place(tmp_path: Path) -> None:
    path = tmp_path / "gaia.jsonl"
    write_seqs(path, range(10))
    with tail.Follower(path) as follower:
        assert poll_all(follower) == list(range(10))
        os.truncate(path, 0)
        write_seqs(path, range(10, 12))
        assert poll_all(follower) == [10, 11]


def test_follower_notices_a_truncation_already_grown_past_its_position(tmp_path: Path) -> None:
    path = tmp_path / "gaia.jsonl"
    write_seqs(path, range(3))
    with tail.Follower(path) as follower:
        assert poll_all(follower) == [0, 1, 2]
        with path.open("r+", encoding="utf-8") as handle:  # same inode, rewritten from 0
            handle.truncate(0)
            handle.write("".join(line(i) for i in range(3, 13)))
        assert poll_all(follower) == list(range(3, 13))


def test_follower_takes_unread_lines_from_the_copy_on_copy_truncate(tmp_path: Path) -> None:
    path = tmp_path / "gaia.jsonl"
    write_seqs(path, range(5))
    with tail.Follower(path) as follower:
        assert poll_all(follower) == list(range(5))
        write_seqs(path, range(5, 8))  # written, not yet read, when logrotate copies
        shutil.copyfile(path, tmp_path / "gaia.jsonl.1")
        os.truncate(path, 0)
        write_seqs(path, range(8, 10))
        assert poll_all(follower) == list(range(5, 10))


def test_follower_finishes_the_renamed_file_before_the_new_one(tmp_path: Path) -> None:
    path = tmp_path / "gaia.jsonl"
    write_seqs(path, range(3))
    with tail.Follower(path) as follower:
        assert poll_all(follower) == [0, 1, 2]
        write_seqs(path, range(3, 5))
        path.rename(tmp_path / "gaia.jsonl.1")
        assert poll_all(follower) == [3, 4]  # the new file is not there yet
        write_seqs(path, range(5, 7))
        assert poll_all(follower) == [5, 6]


class RotatingLog:
    """A RotatingFileHandler driven by hand, to rotate at the exact moment a race needs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handler = logging.handlers.RotatingFileHandler(path, maxBytes=10**9, backupCount=9)
        self.handler.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, seqs: range) -> None:
        for i in seqs:
            self.handler.emit(logging.makeLogRecord({"msg": json.dumps(record(i))}))

    def rotate(self) -> None:
        self.handler.doRollover()

    def close(self) -> None:
        self.handler.close()


@pytest.fixture
def rotating_log(tmp_path: Path) -> Iterator[RotatingLog]:
    log = RotatingLog(tmp_path / "gaia.jsonl")
    yield log
    log.close()


def once(action: Callable[[], None]) -> Callable[[], None]:
    done: list[bool] = []

    def run_once() -> None:
        if not done:
            done.append(True)
            action()

    return run_once


def test_follower_walks_a_burst_of_rotations_oldest_first(rotating_log: RotatingLog) -> None:
    rotating_log.emit(range(2))
    with tail.Follower(rotating_log.path) as follower:
        assert poll_all(follower) == [0, 1]
        for block in range(4):  # four rotations between two polls
            rotating_log.emit(range(2 + block * 3, 5 + block * 3))
            rotating_log.rotate()
        rotating_log.emit(range(14, 16))
        assert poll_all(follower) == list(range(2, 16))


def test_follower_drains_lines_written_between_its_last_read_and_the_rename(
    rotating_log: RotatingLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    rotating_log.emit(range(2))
    with tail.Follower(rotating_log.path) as follower:
        assert poll_all(follower) == [0, 1]

        def race() -> None:  # the writer gets in after our read reached the end of the file
            rotating_log.emit(range(2, 4))
            rotating_log.rotate()
            rotating_log.emit(range(4, 5))

        strike = once(race)
        real = following.identity_at

        def identity_at(path: Path) -> tuple[int, int] | None:
            strike()
            return real(path)

        monkeypatch.setattr(following, "identity_at", identity_at)
        assert poll_all(follower) == [2, 3, 4]


def test_follower_rechecks_when_a_rotation_races_its_move_to_the_newer_file(
    rotating_log: RotatingLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    rotating_log.emit(range(2))
    with tail.Follower(rotating_log.path) as follower:
        assert poll_all(follower) == [0, 1]
        rotating_log.rotate()
        rotating_log.emit(range(2, 4))

        def race() -> None:  # another rotation while the follower opens the newer file
            rotating_log.rotate()
            rotating_log.emit(range(4, 6))

        strike = once(race)
        real = following.open_log

        def open_(path: Path) -> io.FileIO | None:
            if path == rotating_log.path:
                strike()
            return real(path)

        monkeypatch.setattr(following, "open_log", open_)
        assert poll_all(follower) == [2, 3, 4, 5]


@pytest.mark.parametrize("rotations", [1, 2])
def test_last_n_reads_each_file_once_in_order_when_rotations_race_the_read(
    rotating_log: RotatingLog, monkeypatch: pytest.MonkeyPatch, rotations: int
) -> None:
    rotating_log.emit(range(3))
    rotating_log.rotate()
    rotating_log.emit(range(3, 6))

    def race() -> None:  # right after the live file (3-5) is opened
        for _ in range(rotations):
            rotating_log.rotate()
            rotating_log.emit(range(100, 103))  # newer than what we opened: not shown

    strike = once(race)
    real = reading.open_log

    def open_(path: Path) -> io.FileIO | None:
        handle = real(path)
        if path == rotating_log.path:
            strike()
        return handle

    monkeypatch.setattr(reading, "open_log", open_)
    code, text = run_tail(["--json", "-n", "all"], rotating_log.path)
    assert (code, seqs_of(text.splitlines())) == (0, list(range(6)))


def test_follower_shows_the_unfinished_last_line_of_a_finished_file(tmp_path: Path) -> None:
    path = tmp_path / "gaia.jsonl"
    write_seqs(path, range(1))
    with tail.Follower(path) as follower:
        assert poll_all(follower) == [0]
        append(path, '{"seq": 1, "event": "cut sh')  # the writer died mid-line
        path.rename(tmp_path / "gaia.jsonl.1")
        write_seqs(path, range(2, 3))
        assert follower.poll() == ['{"seq": 1, "event": "cut sh', line(2).rstrip("\n")]


def test_follower_moves_on_when_its_file_is_deleted(tmp_path: Path) -> None:
    path = tmp_path / "gaia.jsonl"
    write_seqs(path, range(2))
    with tail.Follower(path) as follower:
        assert poll_all(follower) == [0, 1]
        path.unlink()
        assert follower.poll() == []
        write_seqs(path, range(2, 4))
        assert poll_all(follower) == [2, 3]


def test_follower_keeps_up_with_a_writer_thread_rotating_many_times(tmp_path: Path) -> None:
    path = tmp_path / "gaia.jsonl"
    count = 2000
    # backups above the ~100 files written, so no line is deleted before it can be read.
    options = {"count": count, "max_bytes": 4096, "backups": 300, "pause_every": 50}
    done = threading.Thread(target=writer.write, args=(path,), kwargs=options)
    seen: list[int] = []
    with tail.Follower(path) as follower:
        done.start()

        def caught_up() -> bool:
            seen.extend(poll_all(follower))
            return len(seen) >= count

        wait_until(caught_up, timeout=30)
        done.join(timeout=30)
        assert follower.poll() == []
    assert seen == list(range(count))
    assert len(list(tmp_path.glob("gaia.jsonl.*"))) > 20


# --------------------------------------------------------------------------- run -f


def test_follow_across_rotation_while_the_daemon_writes(
    tmp_path: Path,
    tails: Callable[[list[str], Path], TailThread],
    capfd: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "logs" / "gaia.jsonl"
    path.parent.mkdir()
    count = 3000
    follow = tails(["-f", "--json"], path)
    # Once it waits for the file it reads all of it: no race with the writer's start.
    wait_until(lambda: "waiting for" in capfd.readouterr().err)
    process = start_writer(path, count, "--max-bytes", "16384", "--pause-every", "20")
    finish_writer(process)
    follow.sink.wait_for(lambda s: f'"seq": {count - 1},' in s.text(), timeout=20)
    assert follow.finish() == 0
    assert follow.sink.seqs() == list(range(count))
    assert len(list(path.parent.glob("gaia.jsonl.*"))) >= 5


def test_follow_with_filters_across_rotation_keeps_exactly_the_matching_records(
    tmp_path: Path,
    tails: Callable[[list[str], Path], TailThread],
    capfd: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "gaia.jsonl"
    count = 3000
    argv = ["-f", "--json", "--env", "prod", "--level", "warning", "--event", "stage.*"]
    follow = tails(argv, path)
    wait_until(lambda: "waiting for" in capfd.readouterr().err)  # then it reads the whole file
    finish_writer(start_writer(path, count, "--max-bytes", "8192"))  # one burst
    expected = [
        i
        for i in range(count)
        if (f := writer.fields(i))["env"] == "prod"
        and rank(f["level"]) >= rank("warning")
        and f["event"].startswith("stage.")
    ]
    follow.sink.wait_for(lambda s: f'"seq": {expected[-1]},' in s.text(), timeout=20)
    assert follow.finish() == 0
    assert follow.sink.seqs() == expected


def test_last_n_then_follow_hands_over_without_gap_or_repeat(
    tmp_path: Path, tails: Callable[[list[str], Path], TailThread]
) -> None:
    path = tmp_path / "gaia.jsonl"
    count = 3000
    process = start_writer(path, count, "--max-bytes", "16384", "--pause-every", "10")
    wait_until((tmp_path / "gaia.jsonl.2").exists, timeout=20)
    follow = tails(["-f", "--json", "-n", "5"], path)
    finish_writer(process)
    follow.sink.wait_for(lambda s: f'"seq": {count - 1},' in s.text(), timeout=20)
    assert follow.finish() == 0
    seqs = follow.sink.seqs()
    assert seqs == list(range(seqs[0], count))
    assert len(seqs) >= 5


def test_follow_shows_a_half_written_last_line_once_it_is_complete(
    tmp_path: Path, tails: Callable[[list[str], Path], TailThread]
) -> None:
    path = tmp_path / "gaia.jsonl"
    text = line(1)
    append(path, line(0) + text[:12])
    follow = tails(["-f", "--json"], path)
    follow.sink.wait_for(lambda s: s.seqs() == [0])
    append(path, text[12:])
    follow.sink.wait_for(lambda s: s.seqs() == [0, 1])
    assert follow.finish() == 0
    assert follow.sink.text() == line(0) + text


def test_follow_restarts_when_the_log_is_truncated(
    tmp_path: Path, tails: Callable[[list[str], Path], TailThread]
) -> None:
    path = tmp_path / "gaia.jsonl"
    write_seqs(path, range(3))
    follow = tails(["-f", "--json", "-n", "1"], path)
    follow.sink.wait_for(lambda s: s.seqs() == [2])
    os.truncate(path, 0)
    write_seqs(path, range(3, 5))
    follow.sink.wait_for(lambda s: s.seqs() == [2, 3, 4])
    assert follow.finish() == 0


def test_follow_waits_for_a_missing_log_and_says_so(
    tmp_path: Path,
    tails: Callable[[list[str], Path], TailThread],
    capfd: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "gaia.jsonl"
    follow = tails(["-f", "--json"], path)
    wait_until(lambda: "waiting for" in capfd.readouterr().err)
    write_seqs(path, range(2))
    follow.sink.wait_for(lambda s: s.seqs() == [0, 1])
    assert follow.finish() == 0


def test_follow_ends_promptly_when_stopped(
    tmp_path: Path, tails: Callable[[list[str], Path], TailThread]
) -> None:
    path = tmp_path / "gaia.jsonl"
    write_seqs(path, range(1))
    follow = tails(["-f", "--json"], path)
    follow.sink.wait_for(lambda s: s.seqs() == [0])
    started = time.monotonic()
    assert follow.finish(timeout=2) == 0
    assert time.monotonic() - started < 0.5


def test_ctrl_c_ends_follow_cleanly(tmp_path: Path) -> None:
    class Interrupting(Sink):
        def write(self, text: str) -> int:
            raise KeyboardInterrupt

    path = tmp_path / "gaia.jsonl"
    follower_args = parse(["-f"])
    stop = threading.Event()
    waiter = threading.Timer(5, stop.set)  # a backstop, should the interrupt be lost
    waiter.start()
    append(path, line(1))
    assert tail.run(follower_args, path, out=Interrupting(), stop=stop) == 0  # type: ignore[arg-type]
    assert not stop.is_set()
    waiter.cancel()
