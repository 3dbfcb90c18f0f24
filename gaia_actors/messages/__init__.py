"""Every message that crosses between actors: frozen, slotted dataclasses.

Messages are grouped as commands (do something), queries (answer something) and events
(something happened). ``@message`` makes a class a message and registers it by name, so the
control socket and the REPL can build one from a name and ``key=value`` strings
(``build("GetHealth", {"env": "prod"})``).

One module per area: ``store``, ``bus``, ``environments``, ``monitoring``, ``pipeline``,
``improve``, and ``common`` for what every actor answers; ``base`` holds the mechanism and
``conversion`` the field conversions. Importing this package registers every message.
"""

from gaia_actors.messages.base import (
    ENV_FIELD,
    EnvName,
    FieldInfo,
    Fields,
    build,
    describe,
    fields_of,
    message,
    message_types,
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
