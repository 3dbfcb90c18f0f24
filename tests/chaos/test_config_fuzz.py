"""Bad input: Hypothesis against the configuration loader.

Random TOML documents built from the real section and key names (and strangers), random
values of every TOML type, random text edits of the shipped file, and random ``GAIA_*``
overrides: ``load`` either returns settings or raises a ConfigError naming the file, never
anything else; and the CLI answers a bad file with exit code 2 and one line, without
creating the state directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import io
import math
import subprocess
import sys
import tempfile
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gaia_actors.console import cli
from gaia_actors.errors import ConfigError
from gaia_actors.layout import Layout
from gaia_actors.settings import (
    DEFAULT_CONFIG,
    RANGE,
    EnvironmentSettings,
    PipelineSettings,
    Settings,
    StageSettings,
    load,
)
from gaia_actors.settings.validation import STAGE_FIELDS

REPO = Path(__file__).resolve().parents[2]
SECTIONS = {
    f.name: typing.get_type_hints(Settings)[f.name]
    for f in dataclasses.fields(Settings)
    if f.name not in ("config_path", "state_dir", "environments", "pipeline")
}
ENV_KEYS = [f.name for f in dataclasses.fields(EnvironmentSettings)]
STAGE_KEYS = [f.name for f in dataclasses.fields(StageSettings)]
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# --------------------------------------------------------------------------- TOML values

# Anything a string may hold, NUL included (a NUL in daemon.state_dir was a bug, see below).
SURROGATES: tuple[typing.Literal["Cs"]] = ("Cs",)  # not encodable in UTF-8
texts = st.text(st.characters(blacklist_categories=SURROGATES))
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, 1, -1, 65535, 65536, 8080]),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
    st.sampled_from(["none", "hourly", "daily", "5", "-1", "nan", "inf", "1e-300", "{python}"]),
    st.datetimes(),
    st.dates(),
    st.times(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=3)),
    max_leaves=8,
)


# Settings whose valid values are narrower than their type.
NARROW: dict[str, st.SearchStrategy[Any]] = {
    "port": st.integers(1, 65535),
    "command": st.lists(texts, min_size=1, max_size=3),
    "backup_schedule": st.one_of(st.sampled_from(["none", "hourly", "daily", "0.5"]), texts),
    "state_dir": st.one_of(texts, st.sampled_from(["", ".", "var", "a\x00b", "~/x"])),
    "env": st.sampled_from(["", "source", "target", "dev"]),
}


@functools.cache  # built once per type: building a strategy per draw cost most of the run
def typed(hint: Any, name: str = "") -> st.SearchStrategy[Any]:
    """Values of the type a setting declares (so documents get past the first check and
    reach the deeper ones), sometimes at its edges."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if name in NARROW and not dataclasses.is_dataclass(hint) and origin is not dict:
        return NARROW[name]
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        fields = {f.name: typed(hints[f.name], f.name) for f in dataclasses.fields(hint) if f.init}
        required = {
            f.name: fields.pop(f.name)
            for f in dataclasses.fields(hint)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        return st.fixed_dictionaries(required, optional=fields)
    if origin is tuple:
        return st.lists(typed(args[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(texts, typed(args[1]), max_size=3)
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin is types.UnionType:
        return st.one_of([typed(a) for a in args])
    return {
        bool: st.booleans(),
        int: st.integers(0, 70_000),
        float: st.one_of(st.floats(0, 1e6), st.sampled_from([0.0, math.inf, math.nan])),
        str: st.one_of(texts, st.sampled_from(["none", "hourly", "5", "0", "{python}", ""])),
    }[hint]


def _key(keys: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(keys), texts)


def _section_fields(name: str) -> list[str]:
    return [f.name for f in dataclasses.fields(SECTIONS[name])]


# The strategies a draw uses, built once rather than per draw.
section_names = st.lists(st.sampled_from(sorted(SECTIONS)), unique=True, max_size=5)
env_names = st.lists(st.sampled_from(["dev", "staging", "prod", "qa"]), unique=True)
stage_lists = st.lists(typed(StageSettings), min_size=1, max_size=3)
promotion_names = st.sets(st.sampled_from(["dev_to_staging", "staging_to_prod"]))


@st.composite
def well_typed(draw: st.DrawFn) -> dict[str, Any]:
    """A document of the right shape: known sections, known keys, values of their types."""
    names = draw(section_names)
    doc: dict[str, Any] = {name: draw(typed(SECTIONS[name])) for name in names}
    envs = draw(env_names)
    if envs:
        doc["environments"] = {env: draw(typed(EnvironmentSettings)) for env in envs}
    if draw(st.booleans()):
        doc["pipeline"] = {kind: draw(stage_lists) for kind in draw(promotion_names)}
    return doc


well_typed_documents = well_typed()


sections = st.dictionaries(
    st.one_of(st.sampled_from(sorted(SECTIONS)), texts),
    st.one_of(
        st.dictionaries(_key([k for n in SECTIONS for k in _section_fields(n)]), values),
        values,
    ),
    max_size=4,
)
environments = st.dictionaries(
    st.one_of(st.sampled_from(["dev", "staging", "prod"]), texts),
    st.one_of(st.dictionaries(_key(ENV_KEYS), values, max_size=6), values),
    max_size=3,
)
stages = st.lists(st.dictionaries(_key(STAGE_KEYS), values, max_size=4), max_size=3)
pipelines = st.dictionaries(
    st.one_of(st.sampled_from(["dev_to_staging", "staging_to_prod", "history_limit"]), texts),
    st.one_of(stages, values),
    max_size=2,
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """Half well typed (to reach the deeper checks), half anything at all."""
    if draw(st.booleans()):
        return draw(well_typed_documents)
    doc = draw(sections)
    if draw(st.booleans()):
        doc["environments"] = draw(environments)
    if draw(st.booleans()):
        doc["pipeline"] = draw(pipelines)
    return doc


def toml_document(doc: dict[str, Any]) -> str:
    """TOML text for ``doc``: top-level tables as [headers], lists of tables as [[arrays]]."""
    top = [f"{_k(k)} = {_v(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    lines = [*top]
    for name, table in doc.items():
        if not isinstance(table, dict):
            continue
        lines.append(f"[{_k(name)}]")
        arrays = []
        for key, value in table.items():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                arrays.append((key, value))
            else:
                lines.append(f"{_k(key)} = {_v(value)}")
        for key, items in arrays:
            for item in items:
                lines.append(f"[[{_k(name)}.{_k(key)}]]")
                lines += [f"{_k(k)} = {_v(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def _k(key: str) -> str:
    return _string(key)


def _string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _v(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_v(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_k(k)} = {_v(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


# --------------------------------------------------------------------------- the property


def loads_or_names_the_file(path: Path, environ: dict[str, str]) -> ConfigError | None:
    """The property: settings, or a ConfigError that names ``path``; anything else raises."""
    error = None
    try:
        load(path, environ=environ)
    except ConfigError as exc:
        error = exc
    if error is not None:
        assert error.file == str(path), error
        assert str(path) in str(error)
    return error


def cli_exits_2(path: Path, state_dir: Path) -> None:
    """The CLI on a bad file: exit 2, one line naming the file, no state touched."""
    stderr = io.StringIO()
    environ = {"GAIA_STATE_DIR": str(state_dir)}
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(stderr):
        for key, value in environ.items():
            mp.setenv(key, value)
        mp.delenv("GAIA_CONFIG", raising=False)
        code = cli.main(["--config", str(path), "status"])
    text = stderr.getvalue()
    assert code == cli.EXIT_USAGE, text
    assert text.startswith("gaia-env: configuration error: "), text
    assert str(path) in text
    assert "Traceback" not in text
    assert not state_dir.exists()


def _check_document(text: str, environ: dict[str, str] | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config" / "gaia.toml"  # its default state dir is tmp/var
        path.parent.mkdir()
        path.write_text(text, encoding="utf-8")
        state_dir = Path(tmp) / "state"
        # Without GAIA_STATE_DIR the file's own daemon.state_dir is resolved too.
        loads_or_names_the_file(path, dict(environ or {}))
        error = loads_or_names_the_file(path, {"GAIA_STATE_DIR": str(state_dir), **(environ or {})})
        if error is not None and not environ:
            cli_exits_2(path, state_dir)
        assert not (Path(tmp) / "var").exists()


@FUZZ
@given(documents())
def test_random_documents_load_or_raise_a_config_error(doc: dict[str, Any]) -> None:
    _check_document(toml_document(doc))


@FUZZ
@given(st.data())
def test_edited_shipped_config_loads_or_raises_a_config_error(data: st.DataObject) -> None:
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    for _ in range(data.draw(st.integers(1, 4))):
        start = data.draw(st.integers(0, len(text)))
        end = data.draw(st.integers(start, min(len(text), start + 12)))
        text = text[:start] + data.draw(texts.filter(lambda t: len(t) < 12)) + text[end:]
    _check_document(text)


override_names = st.one_of(
    st.sampled_from(
        [
            "GAIA_MONITOR__INTERVAL",
            "GAIA_ENVIRONMENTS__PROD__PORT",
            "GAIA_ENVIRONMENTS__DEV__COMMAND",
            "GAIA_ENVIRONMENTS__NEW__PORT",
            "GAIA_PIPELINE__DEV_TO_STAGING",
            "GAIA_PIPELINE__DEV_TO_STAGING__KIND",
            "GAIA_SUPERVISION",
            "GAIA___",
            "GAIA_X__",
            "GAIA_LOGGING__LEVEL",
        ]
    ),
    st.builds(lambda parts: "GAIA_" + "__".join(parts), st.lists(texts, min_size=1, max_size=3)),
)


@FUZZ
@given(st.dictionaries(override_names, texts, max_size=3))
def test_random_overrides_load_or_raise_a_config_error(environ: dict[str, str]) -> None:
    _check_document(DEFAULT_CONFIG.read_text(encoding="utf-8"), environ)


def test_the_real_cli_exits_2_on_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "gaia.toml"
    path.write_text('[monitor]\ninterval = "soon"\n', encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(REPO / "run.py"), "--config", str(path), "status"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"GAIA_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "monitor.interval" in proc.stderr
    assert not (tmp_path / "state").exists()


# --------------------------------------------------------------------------- number ranges


def _bounded_fields() -> list[tuple[str, str, type, tuple[float, float]]]:
    """(where, key, type, range) of every number setting: a section's, an environment's and
    a stage's."""
    classes = [*SECTIONS.items(), ("pipeline", PipelineSettings)]
    classes += [("env", EnvironmentSettings), ("stage", StageSettings)]
    found = []
    for where, cls in classes:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if RANGE in f.metadata:
                kind = int if hints[f.name] is int else float
                found.append((where, f.name, kind, f.metadata[RANGE]))
    return found


BOUNDED = _bounded_fields()


def _document_with(where: str, name: str, value: Any) -> tuple[dict[str, Any], str]:
    """A document setting only ``name`` (plus what it needs to load) and that key's name."""
    envs: dict[str, Any] = {"dev": {"port": 9001}, "staging": {"port": 9002}}
    if where == "env":
        envs["dev"][name] = value
        return {"environments": envs}, f"environments.dev.{name}"
    if where == "stage":
        # The kind that reads ``name``, with room for the longest soak in its timeout.
        kind = next((k for k, names in STAGE_FIELDS.items() if name in names), "health")
        stage = {"kind": kind, "timeout": 604_800, name: value}
        pipeline = {"dev_to_staging": [stage]}
        return {"environments": envs, "pipeline": pipeline}, f"pipeline.dev_to_staging[0].{name}"
    return {where: {name: value}}, f"{where}.{name}"


def _outside(bounds: tuple[float, float]) -> st.SearchStrategy[float]:
    low, high = bounds
    beyond = [math.nan, math.inf, -math.inf, -1, high * 2 + 1]
    below = [st.floats(max_value=low, exclude_max=True, allow_nan=False)] if low > -math.inf else []
    return st.one_of(st.sampled_from(beyond), st.floats(min_value=high, exclude_min=True), *below)


@FUZZ
@given(st.data())
def test_a_number_outside_its_range_is_refused_naming_the_key(data: st.DataObject) -> None:
    where, name, _kind, bounds = data.draw(st.sampled_from(BOUNDED))
    doc, key = _document_with(where, name, data.draw(_outside(bounds)))
    error = _load_document(doc)
    assert error is not None, doc
    assert error.key == key, error
    assert "expected" in str(error)


@FUZZ
@given(st.data())
def test_a_number_inside_its_range_is_accepted(data: st.DataObject) -> None:
    where, name, kind, (low, high) = data.draw(st.sampled_from(BOUNDED))
    if kind is int:
        value: float = data.draw(st.integers(int(low), int(high)))
    else:
        value = data.draw(st.sampled_from([low, high]) | st.floats(low, high))
    doc, _key = _document_with(where, name, value)
    assert _load_document(doc) is None


def _load_document(doc: dict[str, Any]) -> ConfigError | None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gaia.toml"
        path.write_text(toml_document(doc), encoding="utf-8")
        return loads_or_names_the_file(path, {"GAIA_STATE_DIR": str(Path(tmp) / "s")})


# --------------------------------------------------------------------------- templates

# Text made of the pieces a template is made of: placeholders known and unknown, doubled and
# lone braces, shell and JSON braces.
template_parts = st.sampled_from(
    ["{python}", "{port}", "{data_dir}", "{nope}", "{", "}", "{{", "}}", "${HOME}", "{}", "x", " "]
)
templates = st.lists(st.one_of(template_parts, texts), max_size=6).map("".join)


@FUZZ
@given(templates, st.sampled_from(["command", "env"]))
def test_a_template_that_loads_expands_when_the_process_starts(text: str, where: str) -> None:
    """The rules at load and at run time are the same: what load accepts, the environment's
    process start expands, and with the same braces halved."""
    value = [text] if where == "command" else {"X": text}
    doc = {"environments": {"dev": {"port": 9001, where: value}}}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gaia.toml"
        path.write_text(toml_document(doc), encoding="utf-8")
        environ = {"GAIA_STATE_DIR": str(Path(tmp) / "s")}
        error = loads_or_names_the_file(path, environ)
        if error is not None:
            assert error.key.startswith(f"environments.dev.{where}"), error
            return
        layout = Layout.of(load(path, environ=environ), "dev")
        expanded = layout.argv("r1")[0] if where == "command" else layout.process_env("r1")["X"]
    # The values filled in hold no braces: every brace left is a doubled one, halved.
    assert expanded.count("{") == text.count("{{")
    assert expanded.count("}") == text.count("}}")


# Bugs found by this fuzzing, fixed in gaia_actors/settings/.


def test_a_nul_byte_in_state_dir_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "gaia.toml"
    path.write_text('[daemon]\nstate_dir = "a\\u0000b"\n', encoding="utf-8")
    assert loads_or_names_the_file(path, {}) is not None


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "gaia.toml"
    path.write_bytes(b"[monitor]\ninterval = 1 # \xff\n")
    assert loads_or_names_the_file(path, {"GAIA_STATE_DIR": str(tmp_path / "s")}) is not None
