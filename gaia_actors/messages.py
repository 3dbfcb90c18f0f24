"""Every message that crosses between actors: frozen, slotted dataclasses.

Messages are grouped as commands (do something), queries (answer something) and events
(something happened). ``@message`` makes a class a message and registers it by name, so the
control socket and the REPL can build one from a name and ``key=value`` strings
(``build("GetHealth", {"env": "prod"})``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import types
import typing
from collections.abc import Callable, Collection, Mapping
from typing import Annotated, Any, Literal, TypeVar, dataclass_transform

from gaia_actors.errors import InvalidMessage

T = TypeVar("T")
_REGISTRY: dict[str, type[Any]] = {}


@dataclass_transform(frozen_default=True)
def message(cls: type[T]) -> type[T]:
    """Make ``cls`` a frozen, slotted dataclass and register it by its class name."""
    made = dataclasses.dataclass(frozen=True, slots=True)(cls)
    _REGISTRY[made.__name__] = made
    return made


def message_types() -> dict[str, type[Any]]:
    """All registered message classes by name."""
    return dict(_REGISTRY)


@dataclasses.dataclass(frozen=True, slots=True)
class FieldInfo:
    name: str
    type: str
    required: bool
    default: str


def describe(cls: type[Any]) -> list[FieldInfo]:
    """The fields of a message class, for `help MESSAGE` and the control protocol."""
    hints = typing.get_type_hints(cls)
    infos = []
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = (
            "" if required else repr(f.default if f.default is not dataclasses.MISSING else "")
        )
        infos.append(FieldInfo(f.name, _type_name(hints[f.name]), required, default))
    return infos


# A command argument with this name holds an environment's name, as does a message field
# declared ``EnvName``: given the configured environments, binding a command or building a
# message checks it ('' means all or none).
ENV_FIELD = "env"
_ENVIRONMENT = "environment"
EnvName = Annotated[str, _ENVIRONMENT]


def unknown_environment(name: Any, environments: Collection[str]) -> str | None:
    """Why ``name`` is not one of ``environments``, or None when it is (or is empty)."""
    if not isinstance(name, str) or name == "" or name in environments:
        return None
    known = ", ".join(environments) or "none configured"
    return f"no environment {name!r}; environments: {known}"


def build(name: str, fields: Mapping[str, Any], environments: Collection[str] | None = None) -> Any:
    """Build message ``name`` from JSON values or strings, converting to the field types;
    with ``environments``, an ``EnvName`` field must name one of them."""
    cls = _REGISTRY.get(name)
    if cls is None:
        raise InvalidMessage(name, f"unknown message; known: {', '.join(sorted(_REGISTRY))}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in fields:
        if key not in known:
            raise InvalidMessage(
                name, f"unknown field; fields are: {', '.join(known) or 'none'}", key
            )
    values = {key: convert(name, key, value, hints[key]) for key, value in fields.items()}
    if environments is not None:
        _check_environments(cls, values, environments)
    missing = [
        k
        for k, f in known.items()
        if k not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise InvalidMessage(
            name, f"missing required field (type {_type_name(hints[missing[0]])})", missing[0]
        )
    return cls(**values)


def _check_environments(
    cls: type[Any], values: Mapping[str, Any], environments: Collection[str]
) -> None:
    for key, hint in typing.get_type_hints(cls, include_extras=True).items():
        if _ENVIRONMENT in getattr(hint, "__metadata__", ()):
            problem = unknown_environment(values.get(key), environments)
            if problem is not None:
                raise InvalidMessage(cls.__name__, problem, key)


def to_dict(msg: Any) -> dict[str, Any]:
    """A JSON-friendly view of a message (for the log, the store and the control socket)."""
    return {f.name: _jsonable(getattr(msg, f.name)) for f in dataclasses.fields(msg)}


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__, **to_dict(value)}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def convert(message_name: str, field: str, value: Any, target: Any) -> Any:
    """Convert one field value to ``target``; raise InvalidMessage naming field and type."""
    try:
        return _convert(value, target)
    except (TypeError, ValueError) as exc:
        raise InvalidMessage(
            message_name, f"expected {_type_name(target)}, got {value!r} ({exc})", field
        ) from None


def _convert(value: Any, target: Any) -> Any:
    origin = typing.get_origin(target)
    args = typing.get_args(target)
    if target is Any:
        return value
    if origin in (types.UnionType, typing.Union):
        return _convert_union(value, args)
    if origin is Literal:
        if value in args:
            return value
        raise ValueError(f"not one of {', '.join(map(str, args))}")
    if origin is tuple:
        return _convert_tuple(value, args)
    if target in SCALAR_CONVERTERS:
        return SCALAR_CONVERTERS[target](value)
    if isinstance(value, target):
        return value
    raise TypeError(f"cannot convert to {_type_name(target)}")


def _convert_union(value: Any, args: tuple[Any, ...]) -> Any:
    is_none = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
    if is_none and type(None) in args:
        return None
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _convert(value, arg)
        except (TypeError, ValueError) as exc:
            errors.append(str(exc))
    raise ValueError("; ".join(errors))


def _convert_tuple(value: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    if isinstance(value, str):
        stripped = value.strip()
        value = (
            _json_list(stripped)
            if stripped.startswith("[")
            else [v for v in stripped.split(",") if v]
        )
    if not isinstance(value, list | tuple):
        raise TypeError("expected a list")
    item = args[0] if args else Any
    return tuple(_convert(v, item) for v in value)


def _json_list(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("a list nested too deeply") from None


# One strict conversion per scalar type, shared by messages and command arguments.


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true/false")


# What every store and peer takes as an integer (SQLite's INTEGER, a C long).
INT_RANGE = (-(2**63), 2**63 - 1)


def _to_int(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError("not an integer")
    if not isinstance(value, int | float | str):
        raise TypeError("not an integer")
    number = int(value)
    if not INT_RANGE[0] <= number <= INT_RANGE[1]:
        raise ValueError("out of range: at most 19 digits")
    return number


def _to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError("not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _to_str(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError("not a string")
    return str(value)


SCALAR_CONVERTERS: dict[Any, Callable[[Any], Any]] = {
    bool: _to_bool,
    int: _to_int,
    float: _to_float,
    str: _to_str,
}


def _type_name(target: Any) -> str:
    origin = typing.get_origin(target)
    if origin in (types.UnionType, typing.Union):
        return " | ".join(_type_name(a) for a in typing.get_args(target))
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(target))
    if origin is tuple:
        return f"list of {_type_name(typing.get_args(target)[0])}"
    if target is type(None):
        return "none"
    return getattr(target, "__name__", str(target))


def _now() -> float:
    return time.time()


Fields = tuple[tuple[str, Any], ...]


def fields_of(**values: Any) -> Fields:
    """Freeze keyword values into the immutable pairs messages carry."""
    return tuple(sorted(values.items()))


# --- Fault injection and introspection (every actor) ---------------------------------------


@message
class Crash:
    """Command: raise inside the actor so its supervisor sees a crash (fault injection)."""

    reason: str = "injected crash"


@message
class Hang:
    """Command: block the actor's mailbox for ``seconds`` (fault injection, bounded)."""

    seconds: float = 10.0


@message
class GetState:
    """Query: the actor's own view of its state, as a JSON-friendly mapping."""


# --- Store --------------------------------------------------------------------------------


@message
class Insert:
    """Command: queue one row for ``table``; written in a batch shortly after."""

    table: str
    values: Fields


@message
class InsertNow:
    """Query: write one row now (after everything queued) and answer its id.

    ``reply_by`` is set by ``ask`` (the monotonic time its asker stops waiting): a write that
    reaches a hung or busy store after that is dropped, so an ask that timed out was not
    written behind its asker's back, and a retry cannot write it twice."""

    table: str
    values: Fields
    reply_by: float | None = None


@message
class Update:
    """Command/query: update the row ``row_id`` of ``table`` (after everything queued).
    Asked, it is dropped after ``reply_by`` as ``InsertNow`` is; told, it is always applied."""

    table: str
    row_id: int
    values: Fields
    reply_by: float | None = None


@message
class Flush:
    """Query: write everything queued now; answers the number of rows written."""


@message
class Prune:
    """Command: delete rows older than each table's retention."""


# --- Bus ----------------------------------------------------------------------------------


@message
class Event:
    """Event: something happened. ``name`` is dotted (``health.changed``)."""

    name: str
    level: str = "info"
    actor: str = ""
    env: str = ""
    data: Fields = ()
    ts: float = dataclasses.field(default_factory=_now)
    logged: bool = False  # already in the log (sent late, after its sender logged it)

    def get(self, key: str, default: Any = None) -> Any:
        return next((v for k, v in self.data if k == key), default)

    def as_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"event": self.name, "level": self.level, "ts": self.ts}
        if self.actor:
            record["actor"] = self.actor
        if self.env:
            record["env"] = self.env
        record.update((k, _jsonable(v)) for k, v in self.data)
        return record


@message
class Subscribe:
    """Command: deliver events whose name matches a glob in ``patterns`` to actor ``subscriber``."""

    subscriber: str
    patterns: tuple[str, ...] = ("*",)


@message
class SubscribeSink:
    """Command: deliver matching events to an in-process callable (the control socket's streams).

    The sink must not block; it is called in the bus's thread.
    """

    key: str
    sink: Callable[[Event], None]
    patterns: tuple[str, ...] = ("*",)


@message
class Unsubscribe:
    """Command: stop delivering events to ``subscriber`` (an actor name or a sink key)."""

    subscriber: str


# --- Environments (environment.<env>) -----------------------------------------------------


@message
class GetEnvStatus:
    """Query: the environment's process, release, data and recovery state."""


@message
class Fail:
    """Command: declare the environment failed (hung or down); its supervisor takes over."""

    reason: str
    cause: str = "down"  # down | hung | exited


@message
class KillProcess:
    """Command: SIGKILL the environment's process group (fault injection)."""


@message
class BuildRelease:
    """Query: build a release from the configured source tree; answers its id and path."""


@message
class Deploy:
    """Query: deploy ``release`` (an id in this environment or a path to a release directory)."""

    release: str
    pipeline_id: int | None = None
    timeout: float | None = None


@message
class Rollback:
    """Query: switch back to ``release`` (default: the previous one) and wait for healthy."""

    release: str = ""
    pipeline_id: int | None = None


@message
class TakeBackup:
    """Query: take a verified online backup of the environment's databases now."""

    reason: str = "manual"
    pipeline_id: int | None = None


@message
class RestoreBackup:
    """Query: restore ``backup`` (default: the newest that verifies), keeping the replaced data;
    ``undo`` puts back the data the last restore or reset replaced instead."""

    backup: str = ""
    undo: bool = False


@message
class ResetData:
    """Query: move the data aside and start empty (only where reset_on_error is true)."""


@message
class GetLogs:
    """Query: the last ``lines`` lines of the environment process's output."""

    lines: int = 50


# --- Monitoring (monitor, metrics, failover, balancer) ------------------------------------


@message
class GetHealth:
    """Query: health snapshots (one environment, or all when ``env`` is empty)."""

    env: EnvName = ""


@message
class CheckNow:
    """Command: run a health round now instead of waiting for the schedule."""


@message
class ScrapeNow:
    """Command: scrape every environment's /metrics now."""


@message
class GetIncidents:
    """Query: recent incidents with time to detect and time to recover."""

    env: EnvName = ""
    limit: int = 20


@message
class Route:
    """Query: pick the environment that should serve the next request of ``pool``."""

    pool: tuple[str, ...] = ()


@message
class RouteDone:
    """Command: a request routed to ``env`` finished (lowers its in-flight load)."""

    env: str


@message
class WatchHealth:
    """Command: after every health round, tell actor ``subscriber`` a HealthRound."""

    subscriber: str


@message
class HealthReport:
    """One environment after one check (part of a HealthRound)."""

    env: str
    status: str  # healthy | degraded | down | unknown
    previous: str
    observation: str  # pass | warn | fail: the check on its own, before thresholds
    consecutive_failures: int
    failing_since: float | None  # checked_at of the first failed check of the current run
    latency_s: float
    http_status: int | None
    checked_at: float
    reason: str = ""
    pid: int | None = None
    alive: bool | None = None  # None: no pid file, so nobody knows
    uptime_s: float | None = None  # of the process, from /proc
    verified: bool = False  # the process passed its environment's start-up health check


@message
class HealthRound:
    """Event: one health round's reports, told to the monitor's watchers (not the bus): one
    per check, in the order the checks started (an environment re-checked has several)."""

    reports: tuple[HealthReport, ...]
    started: float
    duration: float


@message
class ServiceCounters:
    """Command: an environment's own request and error totals, from its last scrape."""

    env: str
    requests: float | None
    errors: float | None
    scraped_at: float


# --- Pipeline (pipeline) ------------------------------------------------------------------


@message
class Promote:
    """Query: start a promotion (dev: dev->staging, staging: staging->prod, all: both).

    Answers at once with the first pipeline id, or Busy naming the promotion that holds one
    of its environments. ``watcher`` (in-process callers such as the control socket) gets
    every stage's start and end, with ``output`` also the running stage's output lines, and
    a last ``run.ended``; it is called from worker threads and must not block.
    """

    what: Literal["dev", "staging", "all"]
    trigger: str = "operator"
    watcher: Callable[[dict[str, Any]], None] | None = None
    output: bool = False


@message
class CancelPipeline:
    """Query: cancel running promotion ``pipeline_id``; its stage's process group is killed."""

    pipeline_id: int


@message
class GetPipelineStatus:
    """Query: running promotions with their current stage (and its last ``lines`` of output)."""

    lines: int = 0


@message
class GetPipelineHistory:
    """Query: recent promotions, or (with ``pipeline_id``) one promotion stage by stage."""

    pipeline_id: int | None = None
    limit: int = 20


# --- Improve (improve, improve.worker.<i>) ------------------------------------------------


@message
class RunCycle:
    """Query: start an improvement cycle on ``target`` ("" = the configured one); answers its id.

    ``apply`` writes the cycle's verified patch of mechanical fixes to the target. Busy while a
    cycle runs. ``watcher`` (in-process callers such as the control socket) gets phase starts
    and ends, analysis progress and a last ``cycle.ended``; it is called from the engine's
    thread and must not block.
    """

    target: str = ""
    apply: bool = False
    watcher: Callable[[dict[str, Any]], None] | None = None


@message
class GetCycleStatus:
    """Query: the running cycle's phase, analysis progress and phase timings, or the last one's."""


@message
class AnalyseBatch:
    """Command: analyse ``paths`` (relative to ``root``); the worker tells ``improve`` a
    BatchResult."""

    cycle_id: int
    batch_id: int
    root: str
    paths: tuple[str, ...]
    markers: tuple[str, ...] = ("TODO", "FIXME", "XXX", "HACK")
    max_function_lines: int = 60
    max_bytes: int = 2_097_152


@message
class BatchResult:
    """Command: a worker's results for one batch (``results`` holds frozen FileResults)."""

    cycle_id: int
    batch_id: int
    worker: str
    generation: int
    results: tuple[Any, ...] = ()
    seconds: float = 0.0
    error: str = ""


@message
class WorkerReady:
    """Command: a worker started; the engine re-queues what an earlier incarnation held.

    ``incarnation`` is unique per actor started (a generation count restarts at 1 when the
    workers' own supervisor is restarted)."""

    worker: str
    generation: int
    incarnation: str = ""


@message
class AnalysisDone:
    """Command (a worker's own): its analysis process answered, or died (``lost``)."""

    batch_id: int
    results: tuple[Any, ...] = ()
    seconds: float = 0.0
    error: str = ""
    lost: bool = False


@message
class BatchOverdue:
    """Command (a worker's own): batch ``batch_id`` ran past the batch timeout."""

    batch_id: int


@message
class FilesFound:
    """Command (the engine's walk thread): candidate files of cycle ``cycle_id``, in walk order;
    ``done`` ends the walk (``error`` says why it stopped early)."""

    cycle_id: int
    paths: tuple[str, ...] = ()
    sizes: tuple[int, ...] = ()
    skipped: tuple[Any, ...] = ()  # SkippedFile: left out by the walk, with the reason
    done: bool = False
    error: str = ""
    tree: Any = None  # with ``done``: the tree's state (TreeState) when the walk began


@message
class PhaseStarted:
    """Command (the engine's cycle thread): phase ``phase`` of cycle ``cycle_id`` began."""

    cycle_id: int
    phase: str


@message
class PhaseFinished:
    """Command (the engine's cycle thread): phase ``phase`` ended after ``seconds``."""

    cycle_id: int
    phase: str
    seconds: float
    summary: Fields = ()


@message
class CycleEnded:
    """Command (the engine's cycle thread): cycle ``cycle_id`` is over and stored."""

    cycle_id: int
    status: str  # succeeded | failed
    seconds: float
    error: str = ""


@message
class ReleaseProcess:
    """Command: the analysis is over for now; a worker stops its analysis process (a later
    batch starts a new one)."""


@message
class ScheduleTick:
    """Command (the engine's own timer): start the scheduled cycles that are due."""
