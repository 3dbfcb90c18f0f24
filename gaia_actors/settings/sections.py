"""The configuration's sections, one frozen dataclass each (``[daemon]``, ``[environments.<name>]``,
``[monitor]`` ...), and `Settings`, which holds them all."""

from __future__ import annotations

from dataclasses import field
from pathlib import Path
from typing import Literal

from gaia_actors.health import DEFAULT_DEGRADED_VALUES, DEFAULT_DOWN_VALUES
from gaia_actors.settings.alerts import AlertSettings
from gaia_actors.settings.fields import (
    BUILD_PLACEHOLDERS,
    ENV_PLACEHOLDERS,
    IMPROVE_BUILD_PLACEHOLDERS,
    IMPROVE_PLACEHOLDERS,
    PLACEHOLDERS,
    RANGE,
    SCHEDULE_SECONDS,
    STAGE_PLACEHOLDERS,
    bounded,
)
from supervisors.records import record


@record
class DaemonSettings:
    state_dir: str = ""  # default: var/ beside the config's folder
    shutdown_timeout: float = bounded(30.0, 0.1, 3600)


@record
class SupervisionSettings:
    max_restarts: int = bounded(3, 0, 1000)
    max_seconds: float = bounded(5.0, 0.1, 86400)
    backoff_initial: float = bounded(0.5, 0, 3600)
    backoff_max: float = bounded(30.0, 0, 86400)
    backoff_jitter: float = bounded(0.2, 0, 1)
    stable_after: float = bounded(10.0, 0, 86400)
    ping_interval: float = bounded(1.0, 0.05, 3600)
    ping_timeout: float = bounded(3.0, 0.05, 3600)


@record
class LoggingSettings:
    level: Literal["debug", "info", "warning", "error"] = "info"
    console: Literal["auto", "pretty", "json", "off"] = "auto"
    file_max_bytes: int = bounded(10_000_000, 256, 2**40)
    file_backups: int = bounded(5, 0, 1000)


@record
class StoreSettings:
    url: str = ""  # default: sqlite at <state_dir>/gaia.db; or GAIA_DATABASE_URL
    batch_size: int = bounded(500, 1, 100_000)
    flush_interval: float = bounded(0.2, 0.01, 60)
    retention_days: float = bounded(30.0, 0.01, 36500)


@record
class ControlSettings:
    socket: str = ""  # default: <state_dir>/control.sock
    max_line_bytes: int = bounded(1_048_576, 4096, 2**30)
    # Seconds a connection with nothing in flight may stay silent before it is closed.
    idle_timeout: float = bounded(300.0, 0.5, 86400)
    # Seconds a client may leave a reply or an event unread (its socket buffer full) before
    # it is disconnected, so that one stuck reader never holds a sender.
    send_timeout: float = bounded(10.0, 0.1, 86400)


@record
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


@record
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


@record
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


@record
class FailoverSettings:
    down_checks: int = bounded(3, 1, 10_000_000)
    flap_window: float = bounded(300.0, 1, 604_800)
    flap_max: int = bounded(5, 1, 10_000)
    # A process's failed checks count once it has answered one, or is older than this.
    start_grace: float = bounded(30.0, 0, 86400)


@record
class BalancerSettings:
    pool: tuple[str, ...] = ()  # default: every environment
    # seconds of routed requests that count as an environment's load
    window: float = bounded(10.0, 0.1, 86400)


@record
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


@record
class PipelineSettings:
    dev_to_staging: tuple[StageSettings, ...] = ()
    staging_to_prod: tuple[StageSettings, ...] = ()
    history_limit: int = bounded(20, 1, 10_000)  # promotions `history` lists
    # promotions kept in the store with their stages and artifacts (JUnit)
    keep: int = bounded(500, 1, 10_000_000)
    # characters of a stage's output kept in its history
    output_tail: int = bounded(4000, 0, 100_000_000)
    rollback_timeout: float = bounded(300.0, 0.1, 86400)


@record
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


@record
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


@record
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


def backup_interval(schedule: str | float) -> float | None:
    """Seconds between scheduled backups, or None for ``none``."""
    named = {"none": None, "hourly": 3600.0, "daily": 86400.0}
    return named[schedule] if schedule in named else float(schedule)
