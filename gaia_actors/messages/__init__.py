"""Every message that crosses between actors: frozen, slotted dataclasses.

Messages are grouped as commands (do something), queries (answer something) and events
(something happened). ``@message`` makes a class a message and registers it by name, so the
control socket and the REPL can build one from a name and ``key=value`` strings
(``build("GetHealth", {"env": "prod"})``).

One module per area: ``store``, ``bus``, ``environments``, ``monitoring``, ``pipeline``,
``improve``, and ``common`` for what every actor answers; ``base`` holds the mechanism and
``conversion`` the field conversions.

A name is imported from its area's module on first use (PEP 562), so a process that needs a
few messages (a command line) does not build every class. The registry is complete wherever it
is read: ``message_types`` and ``build`` import every area first.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from gaia_actors.messages import base
from supervisors.lazy import lazy_names

if TYPE_CHECKING:
    from gaia_actors.messages.base import (
        ENV_FIELD,
        EnvName,
        FieldInfo,
        Fields,
        describe,
        fields_of,
        message,
        to_dict,
        unknown_environment,
    )
    from gaia_actors.messages.bus import Event, Subscribe, Unsubscribe
    from gaia_actors.messages.common import Crash, GetState, Hang, Progress
    from gaia_actors.messages.environments import (
        BuildRelease,
        Deploy,
        Fail,
        GetEnvStatus,
        GetLogs,
        KillProcess,
        ResetData,
        RestoreBackup,
        Rollback,
        TakeBackup,
    )
    from gaia_actors.messages.improve import (
        AnalyseBatch,
        AnalysisDone,
        BatchOverdue,
        BatchResult,
        CycleEnded,
        FilesFound,
        GetCycleStatus,
        PhaseFinished,
        PhaseStarted,
        ReleaseProcess,
        RunCycle,
        ScheduleTick,
        WorkerReady,
    )
    from gaia_actors.messages.monitoring import (
        CheckNow,
        GetHealth,
        GetIncidents,
        HealthReport,
        HealthRound,
        Route,
        RouteDone,
        ScrapeNow,
        ServiceCounters,
        WatchHealth,
    )
    from gaia_actors.messages.pipeline import (
        CancelPipeline,
        GetPipelineHistory,
        GetPipelineStatus,
        Promote,
    )
    from gaia_actors.messages.store import Flush, Insert, InsertNow, Prune, Update

# Each public name and the module that defines it.
_HOMES: dict[str, str] = {
    "AnalyseBatch": "gaia_actors.messages.improve",
    "AnalysisDone": "gaia_actors.messages.improve",
    "BatchOverdue": "gaia_actors.messages.improve",
    "BatchResult": "gaia_actors.messages.improve",
    "BuildRelease": "gaia_actors.messages.environments",
    "CancelPipeline": "gaia_actors.messages.pipeline",
    "CheckNow": "gaia_actors.messages.monitoring",
    "Crash": "gaia_actors.messages.common",
    "CycleEnded": "gaia_actors.messages.improve",
    "Deploy": "gaia_actors.messages.environments",
    "ENV_FIELD": "gaia_actors.messages.base",
    "EnvName": "gaia_actors.messages.base",
    "Event": "gaia_actors.messages.bus",
    "Fail": "gaia_actors.messages.environments",
    "FieldInfo": "gaia_actors.messages.base",
    "Fields": "gaia_actors.messages.base",
    "FilesFound": "gaia_actors.messages.improve",
    "Flush": "gaia_actors.messages.store",
    "GetCycleStatus": "gaia_actors.messages.improve",
    "GetEnvStatus": "gaia_actors.messages.environments",
    "GetHealth": "gaia_actors.messages.monitoring",
    "GetIncidents": "gaia_actors.messages.monitoring",
    "GetLogs": "gaia_actors.messages.environments",
    "GetPipelineHistory": "gaia_actors.messages.pipeline",
    "GetPipelineStatus": "gaia_actors.messages.pipeline",
    "GetState": "gaia_actors.messages.common",
    "Hang": "gaia_actors.messages.common",
    "HealthReport": "gaia_actors.messages.monitoring",
    "HealthRound": "gaia_actors.messages.monitoring",
    "Insert": "gaia_actors.messages.store",
    "InsertNow": "gaia_actors.messages.store",
    "KillProcess": "gaia_actors.messages.environments",
    "PhaseFinished": "gaia_actors.messages.improve",
    "PhaseStarted": "gaia_actors.messages.improve",
    "Progress": "gaia_actors.messages.common",
    "Promote": "gaia_actors.messages.pipeline",
    "Prune": "gaia_actors.messages.store",
    "ReleaseProcess": "gaia_actors.messages.improve",
    "ResetData": "gaia_actors.messages.environments",
    "RestoreBackup": "gaia_actors.messages.environments",
    "Rollback": "gaia_actors.messages.environments",
    "Route": "gaia_actors.messages.monitoring",
    "RouteDone": "gaia_actors.messages.monitoring",
    "RunCycle": "gaia_actors.messages.improve",
    "ScheduleTick": "gaia_actors.messages.improve",
    "ScrapeNow": "gaia_actors.messages.monitoring",
    "ServiceCounters": "gaia_actors.messages.monitoring",
    "Subscribe": "gaia_actors.messages.bus",
    "TakeBackup": "gaia_actors.messages.environments",
    "Unsubscribe": "gaia_actors.messages.bus",
    "Update": "gaia_actors.messages.store",
    "WatchHealth": "gaia_actors.messages.monitoring",
    "WorkerReady": "gaia_actors.messages.improve",
    "describe": "gaia_actors.messages.base",
    "fields_of": "gaia_actors.messages.base",
    "message": "gaia_actors.messages.base",
    "to_dict": "gaia_actors.messages.base",
    "unknown_environment": "gaia_actors.messages.base",
}
# The areas: importing each registers its messages.
_AREAS = tuple(sorted(set(_HOMES.values()) - {base.__name__}))


def _import_areas() -> None:
    for area in _AREAS:
        importlib.import_module(area)


def message_types() -> dict[str, type[Any]]:
    """All registered message classes by name (every area's among them)."""
    _import_areas()
    return base.message_types()


def build(name: str, fields: Mapping[str, Any], environments: Collection[str] | None = None) -> Any:
    """``base.build`` with every area's messages registered: any of them can be built by name."""
    _import_areas()
    return base.build(name, fields, environments)


__getattr__, __dir__ = lazy_names(__name__, globals(), _HOMES)


__all__ = [
    "ENV_FIELD",
    "AnalyseBatch",
    "AnalysisDone",
    "BatchOverdue",
    "BatchResult",
    "BuildRelease",
    "CancelPipeline",
    "CheckNow",
    "Crash",
    "CycleEnded",
    "Deploy",
    "EnvName",
    "Event",
    "Fail",
    "FieldInfo",
    "Fields",
    "FilesFound",
    "Flush",
    "GetCycleStatus",
    "GetEnvStatus",
    "GetHealth",
    "GetIncidents",
    "GetLogs",
    "GetPipelineHistory",
    "GetPipelineStatus",
    "GetState",
    "Hang",
    "HealthReport",
    "HealthRound",
    "Insert",
    "InsertNow",
    "KillProcess",
    "PhaseFinished",
    "PhaseStarted",
    "Progress",
    "Promote",
    "Prune",
    "ReleaseProcess",
    "ResetData",
    "RestoreBackup",
    "Rollback",
    "Route",
    "RouteDone",
    "RunCycle",
    "ScheduleTick",
    "ScrapeNow",
    "ServiceCounters",
    "Subscribe",
    "TakeBackup",
    "Unsubscribe",
    "Update",
    "WatchHealth",
    "WorkerReady",
    "build",
    "describe",
    "fields_of",
    "message",
    "message_types",
    "to_dict",
    "unknown_environment",
]
