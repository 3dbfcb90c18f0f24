"""The checks that span fields or sections, run once every value has its type: unique ports,
promotions between configured environments, health rules, schedules, alert receivers."""

from __future__ import annotations

import re
import urllib.parse

from gaia_actors.errors import ConfigError
from gaia_actors.settings.alerts import (
    RECEIVER_FIELDS,
    RECEIVER_REQUIRED,
    SECRET,
    ReceiverSettings,
)
from gaia_actors.settings.conversion import number_text
from gaia_actors.settings.fields import SCHEDULE_SECONDS
from gaia_actors.settings.sections import (
    EnvironmentSettings,
    ImproveSettings,
    ImproveTargetSettings,
    Settings,
    StageSettings,
)
from gaia_actors.settings.templates import check_templates


def check(settings: Settings, where: str) -> None:
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
        check_templates(where, f"environments.{name}", env)
    _check_pipeline(settings, where)
    _check_improve(settings.improve, where)
    check_templates(where, "improve", settings.improve)
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
    if stage.kind == "load" and not stage.path.startswith("/"):
        raise ConfigError(
            where, f"{key}.path", f"expected a path starting with /, got {stage.path!r}"
        )
    if stage.kind == "health" and stage.soak >= stage.timeout:
        raise ConfigError(
            where,
            f"{key}.soak",
            f"a {stage.soak:g}s soak does not fit in the stage's {stage.timeout:g}s timeout",
        )
    _check_stage_fields(where, key, stage)
    check_templates(where, key, stage)


# The keys only one kind of stage reads; the others read none of them.
STAGE_FIELDS: dict[str, tuple[str, ...]] = {
    "build": ("deploy",),
    "command": ("command", "environ", "junit"),
    "health": ("soak", "interval"),
    "load": ("path", "requests", "concurrency", "max_error_rate", "max_p95_ms"),
}


def _check_stage_fields(where: str, key: str, stage: StageSettings) -> None:
    """A key another kind of stage reads is refused: this kind would ignore it silently."""
    defaults = StageSettings(kind=stage.kind)
    own = STAGE_FIELDS.get(stage.kind, ())
    for kind, names in STAGE_FIELDS.items():
        for name in names if kind != stage.kind else ():
            if getattr(stage, name) != getattr(defaults, name):
                raise ConfigError(
                    where,
                    f"{key}.{name}",
                    f"a key of a {kind} stage, not of a {stage.kind} stage"
                    + (f"; its own keys: {', '.join(own)}" if own else ""),
                )


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
        f"expected {', '.join(named)} or a number of seconds from {number_text(low)} to "
        f"{number_text(high)}, "
        f"got {schedule!r}",
    )


IMPROVE_SCHEDULES = ("none", "hourly", "daily", "on-commit")
_IMPROVE_DEFAULTS = ImproveSettings()


def _check_improve(improve: ImproveSettings, where: str) -> None:
    _check_schedule(where, "improve.schedule", improve.schedule, IMPROVE_SCHEDULES)
    _check_test_command(where, "improve", improve)
    for name in ("exclude", "fix_exclude"):
        _check_gitignore_patterns(where, improve, name)
    for name, target in improve.targets.items():
        if not target.path:
            raise ConfigError(where, f"improve.targets.{name}.path", "expected a non-empty path")
        key = f"improve.targets.{name}.schedule"
        _check_schedule(where, key, target.schedule, IMPROVE_SCHEDULES)
        _check_test_command(where, f"improve.targets.{name}", target)


def _check_test_command(
    where: str, key: str, improve: ImproveSettings | ImproveTargetSettings
) -> None:
    if improve.tests == "command" and not improve.test_command:
        raise ConfigError(
            where, f"{key}.test_command", "tests = 'command' needs a non-empty argv to run"
        )


def _check_gitignore_patterns(where: str, improve: ImproveSettings, name: str) -> None:
    """Patterns the walk and the fixes' scope read as ``.gitignore`` lines: one git would
    refuse (a lone backslash) is refused here, not by a cycle or a scan halfway through. The
    defaults are valid, so a config that keeps them (and a command line reading it) does not
    import the pattern library."""
    patterns: tuple[str, ...] = getattr(improve, name)
    if patterns == getattr(_IMPROVE_DEFAULTS, name):
        return
    try:
        import pathspec
    except ImportError:
        return  # a daemon start refuses, naming the missing module
    try:
        pathspec.GitIgnoreSpec.from_lines(patterns)
    except ValueError as exc:
        raise ConfigError(where, f"improve.{name}", str(exc)) from None


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


def check_receiver_url(where: str, key: str, receiver: ReceiverSettings) -> None:
    """A webhook's URL, checked once its ``${NAME}`` are replaced (the whole URL may be the
    secret, so it is never printed); one that still holds an unset variable is not sent to."""
    if receiver.kind not in ("webhook", "slack", "discord") or SECRET.search(receiver.url):
        return
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
