"""Settings: one TOML file validated into frozen dataclasses, with ``GAIA_*`` overrides.

Every error names the file, the key and what was expected (``ConfigError``); the CLI turns
it into exit code 2 before any state is touched. Overrides: ``GAIA_STATE_DIR``,
``GAIA_DATABASE_URL``, and ``GAIA_<SECTION>__<KEY>`` for any single key, with ``__``
between levels (``GAIA_MONITOR__INTERVAL=5``, ``GAIA_ENVIRONMENTS__PROD__PORT=9080``); the
value is read as a TOML value when it parses as one, else as a string.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import tomllib
import types
import typing
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from gaia_actors.errors import ConfigError, TemplateError
from gaia_actors.health import DEFAULT_DEGRADED_VALUES, DEFAULT_DOWN_VALUES

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "gaia.toml"

# A number setting's accepted values, declared beside the field (``bounded``) and enforced by
# the generic loader: a zero interval or threshold would burn a core, flood the store or stop
# the daemon, so every number has a range (NaN and infinity are never accepted).
RANGE = "range"
Number = TypeVar("Number", int, float)


def bounded(default: Number, low: float, high: float) -> Number:
    """A setting with ``default`` that accepts numbers from ``low`` to ``high`` inclusive."""
    return field(default=default, metadata={RANGE: (low, high)})


# Without a declared range a number must still be finite and non-negative.
DEFAULT_RANGE = (0, 1e12)
SCHEDULE_SECONDS = (0.1, 31_536_000)  # a numeric backup_schedule: up to a year

# Command templates: a field whose metadata names its placeholders is checked at load, and
# expanded at run time by ``expand`` with the same rules: ``{name}`` is a placeholder, ``{{``
# and ``}}`` are literal braces (a shell's ``${{VAR}}``, JSON in an argument).
PLACEHOLDERS = "placeholders"
# What an environment's command and env values may use (Layout.substitutions fills them).
ENV_PLACEHOLDERS = ("python", "port", "host", "data_dir", "release_id", "name", "env_dir")
BUILD_PLACEHOLDERS = ("python",)
# What a promotion stage's command, environ values and junit path may use.
STAGE_PLACEHOLDERS = (
    "python", "release_dir", "release", "url", "env", "port", "junit", "pipeline_id"
)  # fmt: skip
IMPROVE_PLACEHOLDERS = ("python",)
IMPROVE_BUILD_PLACEHOLDERS = ("python", "tmp")  # "{tmp}": the cycle's scratch directory


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    state_dir: str = ""  # default: var/ beside the config's folder
    shutdown_timeout: float = bounded(30.0, 0.1, 3600)


@dataclass(frozen=True, slots=True)
class SupervisionSettings:
    max_restarts: int = bounded(3, 0, 1000)
    max_seconds: float = bounded(5.0, 0.1, 86400)
    backoff_initial: float = bounded(0.5, 0, 3600)
    backoff_max: float = bounded(30.0, 0, 86400)
    backoff_jitter: float = bounded(0.2, 0, 1)
    stable_after: float = bounded(10.0, 0, 86400)
    ping_interval: float = bounded(1.0, 0.05, 3600)
    ping_timeout: float = bounded(3.0, 0.05, 3600)


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    level: Literal["debug", "info", "warning", "error"] = "info"
    console: Literal["auto", "pretty", "json", "off"] = "auto"
    file_max_bytes: int = bounded(10_000_000, 256, 2**40)
    file_backups: int = bounded(5, 0, 1000)


@dataclass(frozen=True, slots=True)
class StoreSettings:
    url: str = ""  # default: sqlite at <state_dir>/gaia.db; or GAIA_DATABASE_URL
    batch_size: int = bounded(500, 1, 100_000)
    flush_interval: float = bounded(0.2, 0.01, 60)
    retention_days: float = bounded(30.0, 0.01, 36500)


@dataclass(frozen=True, slots=True)
class ControlSettings:
    socket: str = ""  # default: <state_dir>/control.sock
    max_line_bytes: int = bounded(1_048_576, 4096, 2**30)
    # Seconds a connection with nothing in flight may stay silent before it is closed.
    idle_timeout: float = bounded(300.0, 0.5, 86400)


@dataclass(frozen=True, slots=True)
class EnvironmentSettings:
    """One environment of the managed service."""

    port: int = field(metadata={RANGE: (1, 65535)})
    source: str = "demo"  # the source tree releases are built from (relative to the config)
    command: tuple[str, ...] = field(
        default=("{python}", "server.py"), metadata={PLACEHOLDERS: ENV_PLACEHOLDERS}
    )
    env: dict[str, str] = field(default_factory=dict, metadata={PLACEHOLDERS: ENV_PLACEHOLDERS})
    host: str = "127.0.0.1"
    health_path: str = "/health"
    metrics_path: str = "/metrics"
    build: tuple[str, ...] = field(
        default=("{python}", "-m", "compileall", "-q", "."),
        metadata={PLACEHOLDERS: BUILD_PLACEHOLDERS},
    )
    build_timeout: float = bounded(120.0, 0.1, 86400)
    ignore: tuple[str, ...] = ("__pycache__", "*.pyc", ".pytest_cache", ".git", "var")
    keep_releases: int = bounded(5, 1, 1000)
    backup_schedule: str | float = field(default="none", metadata={RANGE: SCHEDULE_SECONDS})
    backup_keep: int = bounded(10, 1, 100_000)
    backup_max_age_days: float = bounded(30.0, 0.01, 36500)
    log_retention_days: float = bounded(7.0, 0.01, 36500)
    log_max_bytes: int = bounded(5_000_000, 256, 2**40)
    log_backups: int = bounded(5, 0, 1000)
    reset_on_error: bool = False
    startsecs: float = bounded(1.0, 0, 3600)
    stop_grace: float = bounded(5.0, 0, 3600)
    deploy_timeout: float = bounded(30.0, 0.1, 86400)
    # How a health answer's JSON body is read (gaia_actors/health.py): the field holding the
    # service's own verdict ("" ignores bodies; "a.b" reads a nested object) and the values
    # of it that mean down or degraded; any other value is healthy.
    health_body_key: str = "status"
    health_down: tuple[str, ...] = DEFAULT_DOWN_VALUES
    health_degraded: tuple[str, ...] = DEFAULT_DEGRADED_VALUES
    # Which files under the data directory are the databases (backed up, verified, watched).
    # "**/" matches the data directory itself too: these cover every depth.
    databases: tuple[str, ...] = ("**/*.db", "**/*.sqlite", "**/*.sqlite3")
    restore_on_data_loss: bool = False  # a database lost while running: restore the newest backup
    data_check_interval: float = bounded(5.0, 0.05, 86400)  # seconds between looks for lost data


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    interval: float = bounded(30.0, 0.02, 86400)
    connect_timeout: float = bounded(1.0, 0.01, 600)
    read_timeout: float = bounded(2.0, 0.01, 600)
    max_body_bytes: int = bounded(65_536, 16, 2**30)
    latency_degraded: float = bounded(0.5, 0.001, 600)
    error_rate_degraded: float = bounded(0.2, 0, 1)
    window: int = bounded(10, 1, 10_000)
    failure_threshold: int = bounded(3, 1, 1000)
    success_threshold: int = bounded(2, 1, 1000)
    retention_days: float = bounded(7.0, 0.01, 36500)
    # checks (and sockets) in flight during one round
    max_concurrency: int = bounded(512, 1, 100_000)
    # Seconds between rounds while an environment's process has just started and has not
    # answered yet (up to its deploy_timeout): status shows it healthy soon after it listens.
    start_interval: float = bounded(0.25, 0.02, 60)
    # Seconds between re-checks of an environment whose check failed, or has not answered
    # within this long, until enough consecutive failures to call it down (and fail it over)
    # have been seen (a hung service is re-checked without waiting for its read timeout); and
    # of a down environment that answers again, until it is up.
    recheck_interval: float = bounded(0.25, 0.02, 60)


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    interval: float = bounded(60.0, 0.05, 86400)
    retention_days: float = bounded(7.0, 0.01, 36500)
    listen: str = "127.0.0.1:9464"  # the daemon's own /metrics; "" turns it off
    connect_timeout: float = bounded(1.0, 0.01, 600)
    read_timeout: float = bounded(5.0, 0.01, 600)  # a deadline for the whole scrape, not per read
    max_body_bytes: int = bounded(4_194_304, 1024, 2**30)
    # per environment and scrape; the rest is dropped and counted
    max_samples: int = bounded(10_000, 1, 10_000_000)
    # a sample with more labels (or more label bytes) is dropped
    max_labels: int = bounded(32, 1, 10_000)
    max_label_bytes: int = bounded(4096, 1, 2**20)
    # Sample-name globs summed into an environment's request and error totals (status, load).
    requests_metric: str = "*requests_total"
    errors_metric: str = "*errors_total"
    # Seconds of CPU one body may cost; the lines left are dropped and counted.
    max_parse_cpu: float = bounded(0.5, 0.01, 60)


@dataclass(frozen=True, slots=True)
class FailoverSettings:
    down_checks: int = bounded(3, 1, 10_000_000)
    flap_window: float = bounded(300.0, 1, 604_800)
    flap_max: int = bounded(5, 1, 10_000)
    # A process's failed checks count once it has answered one, or is older than this.
    start_grace: float = bounded(30.0, 0, 86400)


@dataclass(frozen=True, slots=True)
class BalancerSettings:
    pool: tuple[str, ...] = ()  # default: every environment
    # seconds of routed requests that count as an environment's load
    window: float = bounded(10.0, 0.1, 86400)


@dataclass(frozen=True, slots=True)
class StageSettings:
    """One stage of a promotion: what it does, how long it may take, if it blocks.

    ``env`` is "source", "target" or an environment name; "" means the source for a build,
    the target for a backup or deploy, and for the other kinds the source before the
    promotion's deploy stage and the target from it on. Command placeholders: {python},
    {release_dir}, {release}, {url} (the env's base URL), {env}, {port}, {junit},
    {pipeline_id}; ``{{`` and ``}}`` are literal braces.
    """

    kind: Literal["build", "command", "health", "load", "backup", "deploy"]
    name: str = ""  # default: the kind; unique within its promotion
    env: str = ""
    # command: the argv, run in the release directory, and extra variables for it
    command: tuple[str, ...] = field(default=(), metadata={PLACEHOLDERS: STAGE_PLACEHOLDERS})
    environ: dict[str, str] = field(
        default_factory=dict, metadata={PLACEHOLDERS: STAGE_PLACEHOLDERS}
    )
    timeout: float = bounded(300.0, 0.1, 604_800)
    blocking: bool = True  # False: a failure only warns
    # command: JUnit XML it writes (relative to the release); "" = {junit}
    junit: str = field(default="", metadata={PLACEHOLDERS: STAGE_PLACEHOLDERS})
    deploy: bool = True  # build: also deploy the new release to the source environment
    soak: float = bounded(0.0, 0, 86400)  # health: seconds the environment must stay healthy
    interval: float = bounded(0.5, 0.05, 3600)  # health: seconds between checks while soaking
    path: str = "/health"  # load: the request path
    requests: int = bounded(200, 1, 10_000_000)  # load: requests in total ...
    concurrency: int = bounded(4, 1, 1024)  # ... over this many connections
    max_error_rate: float = bounded(0.01, 0, 1)  # load: errors / requests above this fails
    # load: a 95th percentile latency above this fails
    max_p95_ms: float = bounded(250.0, 0.001, 10_000_000)


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    dev_to_staging: tuple[StageSettings, ...] = ()
    staging_to_prod: tuple[StageSettings, ...] = ()
    history_limit: int = bounded(20, 1, 10_000)  # promotions `history` lists
    # promotions kept in the store with their stages and artifacts (JUnit)
    keep: int = bounded(500, 1, 10_000_000)
    # characters of a stage's output kept in its history
    output_tail: int = bounded(4000, 0, 100_000_000)
    rollback_timeout: float = bounded(300.0, 0.1, 86400)


@dataclass(frozen=True, slots=True)
class ImproveTargetSettings:
    """Another codebase the engine improves (``[improve.targets.NAME]``), with what the
    operator configured for it; ``path`` is relative to the config's folder."""

    path: str
    tests: Literal["auto", "pytest", "go", "command", "none"] = "auto"
    pytest_args: tuple[str, ...] = ("-q",)
    test_command: tuple[str, ...] = field(default=(), metadata={PLACEHOLDERS: IMPROVE_PLACEHOLDERS})
    test_env: dict[str, str] = field(default_factory=dict)
    fixers: tuple[tuple[str, ...], ...] = field(
        default=(), metadata={PLACEHOLDERS: IMPROVE_PLACEHOLDERS}
    )
    schedule: str | float = field(default="none", metadata={RANGE: SCHEDULE_SECONDS})
    branch: str = ""


@dataclass(frozen=True, slots=True)
class ImproveSettings:
    """The self-improvement engine. ``target`` is relative to the config's folder.

    The commands (tests, build, benchmark, fixers) are argv lists ("{python}" is the daemon's
    interpreter) that belong to the configured target: ``improve --target OTHER`` runs only
    what needs no configuration there (analysis, linters; pytest when OTHER has a pytest
    configuration or test files pytest collects, ``go test`` with a go.mod). ``tests``:
    auto | pytest | go | command (run
    ``test_command``, its exit code decides) | none. Inner pytest runs take ``test_env``
    (e.g. PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1" for targets that need no plugins).
    """

    target: str = "."
    workers: int = bounded(4, 1, 256)
    batch_size: int = bounded(32, 1, 100_000)
    # a worker still on one batch after this is restarted
    batch_timeout: float = bounded(300.0, 0.1, 86400)
    exclude: tuple[str, ...] = ()  # gitignore-style patterns on top of the target's own
    markers: tuple[str, ...] = ("TODO", "FIXME", "XXX", "HACK")
    tests: Literal["auto", "pytest", "go", "command", "none"] = "auto"
    pytest_args: tuple[str, ...] = ("-q",)
    test_command: tuple[str, ...] = field(default=(), metadata={PLACEHOLDERS: IMPROVE_PLACEHOLDERS})
    test_env: dict[str, str] = field(default_factory=dict)
    build_command: tuple[str, ...] = field(
        default=(), metadata={PLACEHOLDERS: IMPROVE_BUILD_PLACEHOLDERS}
    )
    # must print "ops/sec: N"
    benchmark_command: tuple[str, ...] = field(
        default=(), metadata={PLACEHOLDERS: IMPROVE_PLACEHOLDERS}
    )
    linters: tuple[str, ...] = ("ruff", "go vet")
    # Empty: the fixers the target's own configuration chooses (its ruff, black, isort
    # configuration; gofmt for a go.mod). A target that chooses none gets no fixes.
    fixers: tuple[tuple[str, ...], ...] = field(
        default=(), metadata={PLACEHOLDERS: IMPROVE_PLACEHOLDERS}
    )
    fix_suffixes: tuple[str, ...] = (".py", ".pyi", ".go")  # fixes touch only these files ...
    fix_exclude: tuple[str, ...] = ("docs/", "doc/", "documentation/")  # ... outside these
    coverage_threshold: float = bounded(50.0, 0, 100)
    coverage_omit: tuple[str, ...] = ()  # gitignore-style: no coverage_gap findings there
    long_function_lines: int = bounded(60, 1, 100_000)
    max_file_bytes: int = bounded(2_097_152, 1, 2**31)
    regression_threshold: float = bounded(0.1, 0, 100)
    # per command: each linter, build, test run, fixer, benchmark
    timeout: float = bounded(900.0, 0.1, 604_800)
    churn_commits: int = bounded(200, 0, 10_000_000)
    history_limit: int = bounded(10, 1, 10_000)
    # Cycles on their own: "none" (only on request), "hourly", "daily", a number of seconds, or
    # "on-commit" (a new commit on ``branch``, "" = the checked-out one, polled every
    # ``commit_poll`` seconds). ``schedule_apply``: scheduled cycles apply their verified fix
    # (a new branch on a git target, never the checked-out one).
    schedule: str | float = field(default="none", metadata={RANGE: SCHEDULE_SECONDS})
    branch: str = ""
    commit_poll: float = bounded(30.0, 0.1, 86400)
    schedule_apply: bool = False
    # A cycle that regresses past these (against the previous one) publishes
    # alert.improve_regressed: coverage down by more than ``alert_coverage_drop`` points, the
    # pass rate down by more than ``alert_pass_rate_drop``, the benchmark past
    # ``regression_threshold``, or a new critical finding.
    alert_coverage_drop: float = bounded(1.0, 0, 100)
    alert_pass_rate_drop: float = bounded(0.0, 0, 1)
    targets: dict[str, ImproveTargetSettings] = field(default_factory=dict)


RECEIVER_KINDS = ("webhook", "slack", "discord", "smtp", "command")
# The keys each kind of receiver takes beside the common ones (name, kind and the filters).
RECEIVER_FIELDS: dict[str, tuple[str, ...]] = {
    "webhook": ("url", "headers"),
    "slack": ("url", "headers"),
    "discord": ("url", "headers"),
    "smtp": ("host", "port", "security", "username", "password", "sender", "to"),
    "command": ("command",),
}
RECEIVER_REQUIRED: dict[str, tuple[str, ...]] = {
    "webhook": ("url",),
    "slack": ("url",),
    "discord": ("url",),
    "smtp": ("host", "sender", "to"),
    "command": ("command",),
}
# Keys whose values may hold ``${NAME}``, replaced at load by the daemon's environment variable.
SECRET_FIELDS = ("url", "headers", "username", "password")
SMTP_PORTS = {"starttls": 587, "tls": 465, "none": 25}


@dataclass(frozen=True, slots=True)
class ReceiverSettings:
    """One place alerts are delivered to (``[[alerts.receivers]]``).

    The filters: ``events`` are globs of alert names, ``envs`` environment names (empty: all;
    the daemon's own alerts pass any), ``min_severity`` the least severe alert sent. ``url``,
    ``headers``, ``username`` and ``password`` have their ``${NAME}`` replaced at load from the
    environment; they are left out of ``repr`` and only ``endpoint`` is ever logged.
    """

    name: str
    kind: Literal["webhook", "slack", "discord", "smtp", "command"]
    events: tuple[str, ...] = ("*",)
    envs: tuple[str, ...] = ()
    min_severity: Literal["info", "warning", "critical"] = "warning"
    timeout: float = bounded(10.0, 0.1, 600)  # seconds one send may take
    rate_limit: int = bounded(20, 1, 100_000)  # notifications per minute
    send_resolved: bool = True
    # webhook, slack, discord
    url: str = field(default="", repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    # smtp; port 0 means the security's usual port (587, 465 or 25)
    host: str = ""
    port: int = bounded(0, 0, 65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    sender: str = ""
    to: tuple[str, ...] = ()
    # command: an argv, run without a shell, the notification as JSON on its stdin
    command: tuple[str, ...] = ()

    @property
    def smtp_port(self) -> int:
        return self.port or SMTP_PORTS[self.security]

    @property
    def endpoint(self) -> str:
        """Where the receiver sends, safe to log: a URL's host (its path and query may hold a
        token), the SMTP server, or the command's program."""
        if self.kind == "smtp":
            return f"{self.host}:{self.smtp_port}"
        if self.kind == "command":
            return self.command[0] if self.command else ""
        return urllib.parse.urlsplit(self.url).netloc.rpartition("@")[2]


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """How alerts are grouped, repeated, retried and kept, and where they go.

    Alerts with the same ``group_by`` values (any of name, env, severity; none: one group)
    that fire within ``group_wait`` go out as one notification per receiver; alerts joining a
    group already notified wait ``group_interval``; a group still firing is sent again after
    ``repeat_interval``. A failed send is retried from ``retry_initial`` seconds, doubling up
    to ``retry_max``, with ``retry_jitter`` of randomness, for at most ``retry_for`` seconds.
    """

    group_by: tuple[Literal["name", "env", "severity"], ...] = ("name",)
    group_wait: float = bounded(1.0, 0, 3600)
    group_interval: float = bounded(30.0, 0.01, 86400)
    repeat_interval: float = bounded(14_400.0, 1, 604_800)
    retry_initial: float = bounded(1.0, 0.01, 3600)
    retry_max: float = bounded(300.0, 0.01, 86400)
    retry_jitter: float = bounded(0.2, 0, 1)
    retry_for: float = bounded(86_400.0, 1, 2_592_000)
    # an environment degraded for this long raises environment_degraded
    degraded_after: float = bounded(300.0, 0.01, 604_800)
    # seconds the last alert before the daemon exits may take to deliver
    final_timeout: float = bounded(5.0, 0.1, 300)
    retention_days: float = bounded(30.0, 0.01, 36500)
    receivers: tuple[ReceiverSettings, ...] = ()


@dataclass(frozen=True, slots=True)
class Settings:
    """All configuration; ``config_path`` and ``state_dir`` are resolved absolute paths."""

    config_path: Path
    state_dir: Path
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    supervision: SupervisionSettings = field(default_factory=SupervisionSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    control: ControlSettings = field(default_factory=ControlSettings)
    environments: dict[str, EnvironmentSettings] = field(default_factory=dict)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    failover: FailoverSettings = field(default_factory=FailoverSettings)
    balancer: BalancerSettings = field(default_factory=BalancerSettings)
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    improve: ImproveSettings = field(default_factory=ImproveSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the config are resolved against."""
        return self.config_path.parent

    def resolve(self, path: str) -> Path:
        return (self.base_dir / path).resolve()

    @property
    def database_url(self) -> str:
        return self.store.url or f"sqlite:///{self.state_dir / 'gaia.db'}"

    @property
    def socket_path(self) -> Path:
        return Path(self.control.socket) if self.control.socket else self.state_dir / "control.sock"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "logs" / "gaia.jsonl"

    def env_dir(self, env: str) -> Path:
        return self.state_dir / "environments" / env


_SECTIONS = {f.name for f in dataclasses.fields(Settings)} - {"config_path", "state_dir"}


def load(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, override and validate the configuration. Raises ConfigError."""
    environ = os.environ if environ is None else environ
    config_path = Path(path or environ.get("GAIA_CONFIG") or DEFAULT_CONFIG).resolve()
    raw = _read_toml(config_path)
    _apply_overrides(raw, environ, str(config_path))
    where = str(config_path)
    unknown = set(raw) - _SECTIONS
    if unknown:
        name = sorted(unknown)[0]
        raise ConfigError(
            where, name, f"unknown section; sections are: {', '.join(sorted(_SECTIONS))}"
        )
    hints = typing.get_type_hints(Settings)
    sections = {name: _build(hints[name], raw[name], where, name) for name in raw}
    state_dir = _state_dir(config_path, sections.get("daemon"), environ)
    settings = Settings(config_path=config_path, state_dir=state_dir, **sections)
    if environ.get("GAIA_DATABASE_URL"):
        settings = dataclasses.replace(
            settings, store=dataclasses.replace(settings.store, url=environ["GAIA_DATABASE_URL"])
        )
    _check(settings, where)
    return _resolve_secrets(settings, environ, where)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            str(path), "", "file not found (set GAIA_CONFIG or pass --config)"
        ) from None
    except PermissionError:
        raise ConfigError(str(path), "", "file is not readable (permission denied)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            str(path), "", f"not UTF-8 text (byte {exc.start}): {exc.reason}"
        ) from None
    except IsADirectoryError:
        raise ConfigError(str(path), "", "is a directory, expected a TOML file") from None


def _apply_overrides(raw: dict[str, Any], environ: Mapping[str, str], where: str) -> None:
    for name, value in environ.items():
        if not name.startswith("GAIA_") or "__" not in name:
            continue
        keys = [k.lower() for k in name[len("GAIA_") :].split("__")]
        if not all(keys):
            raise ConfigError(where, name, "malformed override name (empty key between '__')")
        table = raw
        for key in keys[:-1]:
            nested = table.setdefault(key, {})
            if not isinstance(nested, dict):
                raise ConfigError(
                    where, name, f"override goes through {key!r}, which is not a table"
                )
            table = nested
        table[keys[-1]] = _parse_override(value)


def _parse_override(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _state_dir(
    config_path: Path, daemon: DaemonSettings | None, environ: Mapping[str, str]
) -> Path:
    if environ.get("GAIA_STATE_DIR"):
        return Path(environ["GAIA_STATE_DIR"]).resolve()
    if daemon is not None and daemon.state_dir:
        if "\x00" in daemon.state_dir:
            raise ConfigError(str(config_path), "daemon.state_dir", "a path cannot hold a NUL byte")
        return (config_path.parent / daemon.state_dir).resolve()
    return (config_path.parent.parent / "var").resolve()


def _check(settings: Settings, where: str) -> None:
    ports: dict[int, str] = {}
    for name, env in settings.environments.items():
        if not name.isidentifier():
            raise ConfigError(
                where, f"environments.{name}", "environment names must be identifiers"
            )
        if env.port in ports:
            raise ConfigError(
                where,
                f"environments.{name}.port",
                f"port {env.port} is also used by {ports[env.port]!r}",
            )
        ports[env.port] = name
        if not env.command:
            raise ConfigError(
                where, f"environments.{name}.command", "expected a non-empty argv list"
            )
        _check_schedule(where, f"environments.{name}.backup_schedule", env.backup_schedule)
        _check_health_rule(where, name, env)
        _check_templates(where, f"environments.{name}", env)
    _check_pipeline(settings, where)
    _check_improve(settings.improve, where)
    _check_templates(where, "improve", settings.improve)
    _check_alerts(settings, where)


# The promotions and the environments they move a release between.
PROMOTIONS: dict[str, tuple[str, str]] = {
    "dev_to_staging": ("dev", "staging"),
    "staging_to_prod": ("staging", "prod"),
}


def _check_pipeline(settings: Settings, where: str) -> None:
    for kind, (source, target) in PROMOTIONS.items():
        stages: tuple[StageSettings, ...] = getattr(settings.pipeline, kind)
        for env in (source, target) if stages else ():
            if env not in settings.environments:
                raise ConfigError(
                    where,
                    f"pipeline.{kind}",
                    f"promotes between environments {source!r} and "
                    f"{target!r}, but {env!r} is not configured",
                )
        names: set[str] = set()
        for i, stage in enumerate(stages):
            key = f"pipeline.{kind}[{i}]"
            name = stage.name or stage.kind
            if name in names:
                raise ConfigError(where, f"{key}.name", f"stage name {name!r} is used twice")
            names.add(name)
            _check_stage(settings, where, key, stage)
        if sum(s.kind == "deploy" for s in stages) > 1:
            raise ConfigError(where, f"pipeline.{kind}", "at most one deploy stage")


def _check_stage(settings: Settings, where: str, key: str, stage: StageSettings) -> None:
    allowed = {"build": ("", "source"), "deploy": ("", "target")}.get(stage.kind)
    if allowed is not None and stage.env not in allowed:
        raise ConfigError(where, f"{key}.env", f"a {stage.kind} stage acts on {allowed[1]!r}")
    if stage.env not in ("", "source", "target", *settings.environments):
        raise ConfigError(
            where, f"{key}.env", f"expected source, target or an environment, got {stage.env!r}"
        )
    if stage.kind == "command" and not stage.command:
        raise ConfigError(where, f"{key}.command", "a command stage needs a non-empty argv")
    _check_templates(where, key, stage)


def _check_health_rule(where: str, name: str, env: EnvironmentSettings) -> None:
    both = sorted({v.lower() for v in env.health_down} & {v.lower() for v in env.health_degraded})
    if both:
        raise ConfigError(
            where,
            f"environments.{name}.health_degraded",
            f"{both} also listed in health_down: a value means down or degraded, not both",
        )
    if not env.health_path.startswith("/"):
        raise ConfigError(
            where,
            f"environments.{name}.health_path",
            f"expected a path starting with /, got {env.health_path!r}",
        )


def _check_schedule(
    where: str,
    key: str,
    schedule: str | float,
    named: tuple[str, ...] = ("none", "hourly", "daily"),
) -> None:
    if schedule in named:
        return
    low, high = SCHEDULE_SECONDS
    try:
        if low <= float(schedule) <= high:
            return
    except ValueError:
        pass
    raise ConfigError(
        where,
        key,
        f"expected {', '.join(named)} or a number of seconds from {_number(low)} to "
        f"{_number(high)}, "
        f"got {schedule!r}",
    )


IMPROVE_SCHEDULES = ("none", "hourly", "daily", "on-commit")


def _check_improve(improve: ImproveSettings, where: str) -> None:
    _check_schedule(where, "improve.schedule", improve.schedule, IMPROVE_SCHEDULES)
    for name, target in improve.targets.items():
        if not target.path:
            raise ConfigError(where, f"improve.targets.{name}.path", "expected a non-empty path")
        key = f"improve.targets.{name}.schedule"
        _check_schedule(where, key, target.schedule, IMPROVE_SCHEDULES)


def _check_alerts(settings: Settings, where: str) -> None:
    names: set[str] = set()
    for i, receiver in enumerate(settings.alerts.receivers):
        key = f"alerts.receivers[{i}]"
        if not re.fullmatch(r"[A-Za-z0-9_-]+", receiver.name):
            raise ConfigError(
                where, f"{key}.name", f"expected letters, digits, - or _, got {receiver.name!r}"
            )
        if receiver.name in names:
            raise ConfigError(where, f"{key}.name", f"receiver {receiver.name!r} is named twice")
        names.add(receiver.name)
        _check_receiver_fields(where, key, receiver)
        unknown = sorted(set(receiver.envs) - set(settings.environments))
        if unknown:
            raise ConfigError(
                where, f"{key}.envs", f"{unknown[0]!r} is not a configured environment"
            )
        if receiver.kind in ("webhook", "slack", "discord"):
            scheme = urllib.parse.urlsplit(receiver.url).scheme
            if scheme not in ("http", "https") or not receiver.endpoint:
                raise ConfigError(where, f"{key}.url", "expected an http:// or https:// URL")


def _check_receiver_fields(where: str, key: str, receiver: ReceiverSettings) -> None:
    """A key of another kind is refused (it would be ignored silently), a required one named."""
    defaults = ReceiverSettings(name="", kind=receiver.kind)
    own = RECEIVER_FIELDS[receiver.kind]
    for name in {f for fields in RECEIVER_FIELDS.values() for f in fields} - set(own):
        if getattr(receiver, name) != getattr(defaults, name):
            raise ConfigError(
                where,
                f"{key}.{name}",
                f"not a key of a {receiver.kind} receiver; its keys: {', '.join(own)}",
            )
    for name in RECEIVER_REQUIRED[receiver.kind]:
        if not getattr(receiver, name):
            raise ConfigError(where, f"{key}.{name}", f"a {receiver.kind} receiver needs it")
    if bool(receiver.username) != bool(receiver.password):
        raise ConfigError(where, f"{key}.password", "username and password go together")


_SECRET = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _resolve_secrets(settings: Settings, environ: Mapping[str, str], where: str) -> Settings:
    """Each ``${NAME}`` in a receiver's secret-bearing keys replaced by the variable's value."""

    def one(text: str, key: str) -> str:
        def value(match: re.Match[str]) -> str:
            if match[1] not in environ:
                raise ConfigError(where, key, f"environment variable {match[1]} is not set")
            return environ[match[1]]

        return _SECRET.sub(value, text)

    receivers = []
    for i, receiver in enumerate(settings.alerts.receivers):
        key = f"alerts.receivers[{i}]"
        changes: dict[str, Any] = {
            name: one(getattr(receiver, name), f"{key}.{name}")
            for name in SECRET_FIELDS
            if name != "headers"
        }
        changes["headers"] = {k: one(v, f"{key}.headers.{k}") for k, v in receiver.headers.items()}
        receivers.append(dataclasses.replace(receiver, **changes))
    alerts = dataclasses.replace(settings.alerts, receivers=tuple(receivers))
    return dataclasses.replace(settings, alerts=alerts)


def backup_interval(schedule: str | float) -> float | None:
    """Seconds between scheduled backups, or None for ``none``."""
    named = {"none": None, "hourly": 3600.0, "daily": 86400.0}
    return named[schedule] if schedule in named else float(schedule)


# --- command templates ---------------------------------------------------------------------

_TEMPLATE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def expand(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each ``{name}`` replaced by ``values[name]`` and ``{{``/``}}`` by one
    brace. TemplateError names an unknown placeholder (and those that exist) or a lone brace."""

    def one(match: re.Match[str]) -> str:
        text, name = match[0], match[1]
        if text in ("{{", "}}"):
            return text[0]
        if name is None:
            raise TemplateError(f"a lone {text!r} (write {text * 2!r} for a literal brace)")
        if name not in values:
            known = ", ".join(f"{{{k}}}" for k in values) or "none"
            raise TemplateError(
                f"unknown placeholder {text!r}; placeholders: {known} "
                "(write {{ and }} for literal braces)"
            )
        return values[name]

    return _TEMPLATE.sub(one, template)


def _check_templates(where: str, key: str, section: Any) -> None:
    """Every template field of ``section`` (metadata PLACEHOLDERS) expands with its names."""
    for f in dataclasses.fields(section):
        names = f.metadata.get(PLACEHOLDERS)
        if names is None:
            continue
        values = dict.fromkeys(names, "")
        for path, text in _strings(getattr(section, f.name), f"{key}.{f.name}"):
            try:
                expand(text, values)
            except TemplateError as exc:
                raise ConfigError(where, path, f"{exc}, in {text!r}") from None


def _strings(value: Any, key: str) -> list[tuple[str, str]]:
    """The strings in a template setting (a string, an argv, argvs, a table's values)."""
    if isinstance(value, str):
        return [(key, value)]
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _strings(v, f"{key}.{k}")]
    return [pair for i, v in enumerate(value) for pair in _strings(v, f"{key}[{i}]")]


# --- the generic validator: TOML values into typed dataclasses ---------------------------


Bounds = tuple[float, float]


def _build(target: Any, value: Any, where: str, key: str, bounds: Bounds | None = None) -> Any:
    if dataclasses.is_dataclass(target):
        return _build_dataclass(target, value, where, key)  # type: ignore[arg-type]
    origin = typing.get_origin(target)
    args = typing.get_args(target)
    if origin in (types.UnionType, typing.Union):
        member = next((a for a in args if _accepts(a, value)), None)
        if member is None:
            raise ConfigError(
                where, key, f"expected {_describe(target)}, got {_kind(value)} {value!r}"
            )
        return _build(member, value, where, key, bounds)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(where, key, f"expected a table, got {_kind(value)}")
        return {k: _build(args[1], v, where, f"{key}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(where, key, f"expected a list, got {_kind(value)}")
        return tuple(_build(args[0], v, where, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(where, key, f"expected one of {choices}, got {value!r}")
        return value
    return _scalar(target, value, where, key, bounds)


def _build_dataclass(cls: type[Any], value: Any, where: str, key: str) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(where, key, f"expected a table, got {_kind(value)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for name in value:
        if name not in fields:
            known = ", ".join(fields)
            raise ConfigError(where, f"{key}.{name}", f"unknown key; known keys: {known}")
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and name not in value:
            raise ConfigError(
                where, f"{key}.{name}", f"required key is missing ({_describe(hints[name])})"
            )
    built = {
        name: _build(hints[name], v, where, f"{key}.{name}", fields[name].metadata.get(RANGE))
        for name, v in value.items()
    }
    return cls(**built)


def _accepts(target: Any, value: Any) -> bool | None:
    """Whether ``value`` has the scalar type ``target`` (None: not a scalar type)."""
    return {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(target)


def _scalar(target: Any, value: Any, where: str, key: str, bounds: Bounds | None) -> Any:
    ok = _accepts(target, value)
    if ok is None:
        raise ConfigError(where, key, f"unsupported setting type {target!r}")
    if not ok:
        raise ConfigError(where, key, f"expected {_describe(target)}, got {_kind(value)} {value!r}")
    if target in (int, float):
        low, high = bounds or DEFAULT_RANGE
        if not low <= value <= high:  # NaN compares false: refused here too
            raise ConfigError(
                where,
                key,
                f"expected {_describe(target)} from {_number(low)} to {_number(high)}, "
                f"got {value!r}",
            )
    return float(value) if target is float else value


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _describe(target: Any) -> str:
    origin = typing.get_origin(target)
    if origin is tuple:
        return f"a list of {_describe(typing.get_args(target)[0])}"
    if origin is dict:
        return "a table"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(target))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in typing.get_args(target))
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        target, getattr(target, "__name__", str(target))
    )


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def python_executable() -> str:
    """The interpreter to run children with (never a pyenv shim: it costs ~170 ms a spawn)."""
    return sys.executable
