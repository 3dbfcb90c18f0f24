"""Settings: one TOML file validated into frozen dataclasses, with ``GAIA_*`` overrides.

Every error names the file, the key and what was expected (``ConfigError``); the CLI turns
it into exit code 2 before any state is touched. Overrides: ``GAIA_STATE_DIR``,
``GAIA_DATABASE_URL``, and ``GAIA_<SECTION>__<KEY>`` for any single key, with ``__``
between levels (``GAIA_MONITOR__INTERVAL=5``, ``GAIA_ENVIRONMENTS__PROD__PORT=9080``); the
value is read as a TOML value when it parses as one, else as a string.

The modules: ``sections`` (the dataclasses, and ``alerts`` for ``[alerts]``), ``fields`` (what a
field declares: its range, its placeholders), ``loading`` (the file and the overrides),
``conversion`` (TOML values into typed dataclasses), ``validation`` (the checks across fields)
and ``templates`` (command templates).
"""

from gaia_actors.settings.alerts import (
    RECEIVER_FIELDS,
    RECEIVER_KINDS,
    RECEIVER_REQUIRED,
    SECRET_FIELDS,
    SMTP_PORTS,
    AlertSettings,
    ReceiverSettings,
)
from gaia_actors.settings.fields import (
    BUILD_PLACEHOLDERS,
    DEFAULT_RANGE,
    ENV_PLACEHOLDERS,
    IMPROVE_BUILD_PLACEHOLDERS,
    IMPROVE_PLACEHOLDERS,
    PLACEHOLDERS,
    RANGE,
    SCHEDULE_SECONDS,
    STAGE_PLACEHOLDERS,
    bounded,
)
from gaia_actors.settings.loading import DEFAULT_CONFIG, load, python_executable, with_secrets
from gaia_actors.settings.sections import (
    BalancerSettings,
    ControlSettings,
    DaemonSettings,
    EnvironmentSettings,
    FailoverSettings,
    ImproveSettings,
    ImproveTargetSettings,
    LoggingSettings,
    MetricsSettings,
    MonitorSettings,
    PipelineSettings,
    Settings,
    StageSettings,
    StoreSettings,
    SupervisionSettings,
    backup_interval,
)
from gaia_actors.settings.templates import expand
from gaia_actors.settings.validation import IMPROVE_SCHEDULES, PROMOTIONS

__all__ = [
    "BUILD_PLACEHOLDERS",
    "DEFAULT_CONFIG",
    "DEFAULT_RANGE",
    "ENV_PLACEHOLDERS",
    "IMPROVE_BUILD_PLACEHOLDERS",
    "IMPROVE_PLACEHOLDERS",
    "IMPROVE_SCHEDULES",
    "PLACEHOLDERS",
    "PROMOTIONS",
    "RANGE",
    "RECEIVER_FIELDS",
    "RECEIVER_KINDS",
    "RECEIVER_REQUIRED",
    "SCHEDULE_SECONDS",
    "SECRET_FIELDS",
    "SMTP_PORTS",
    "STAGE_PLACEHOLDERS",
    "AlertSettings",
    "BalancerSettings",
    "ControlSettings",
    "DaemonSettings",
    "EnvironmentSettings",
    "FailoverSettings",
    "ImproveSettings",
    "ImproveTargetSettings",
    "LoggingSettings",
    "MetricsSettings",
    "MonitorSettings",
    "PipelineSettings",
    "ReceiverSettings",
    "Settings",
    "StageSettings",
    "StoreSettings",
    "SupervisionSettings",
    "backup_interval",
    "bounded",
    "expand",
    "load",
    "python_executable",
    "with_secrets",
]
