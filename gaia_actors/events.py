"""Every event name the product publishes, one small class per family.

Publishers and subscribers import these names; nothing else spells an event name. An event
(``messages.Event``) carries its name, a level, the publishing actor, an ``env`` where one
applies, and the fields named in the comment beside each name. The bus logs every event under
its name, stores it in the ``events`` table and hands it to the subscribers whose globs match
(``ALL`` in each family is that family's glob). The supervisor's names live with the generic
``supervisors`` package and are re-exported here, so this module lists them all.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from supervisors.events import SupervisorEvent

__all__ = [
    "DATA_OPERATION_REPLACED",
    "OPERATION_DONE",
    "OPERATION_FAILED",
    "OPERATION_REVERTED",
    "OPERATION_STARTED",
    "AlertEvent",
    "AlertRouterEvent",
    "CycleProgress",
    "EnvironmentEvent",
    "FailoverEvent",
    "HealthEvent",
    "ImproveEvent",
    "IncidentEvent",
    "PipelineEvent",
    "RunProgress",
    "StageEvent",
    "StoreEvent",
    "SupervisorEvent",
    "matches",
]


def matches(name: str, *patterns: str) -> bool:
    """Whether the event ``name`` matches one of the globs (``health.*``), as the bus routes it."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


class EnvironmentEvent:
    """One environment's process, releases and data (published by its actor and its ladder)."""

    ALL: Final = "environment.*"

    INITIALISED: Final = "environment.initialised"  # its first release is in place; ``release``
    STARTED: Final = "environment.started"  # process up; ``pid``, ``release``, ``adopted``
    HEALTHY: Final = "environment.healthy"  # passed its start-up check; ``release``, ``pid``
    UNHEALTHY: Final = "environment.unhealthy"  # failed its start-up check; ``reason``
    EXITED: Final = "environment.exited"  # the process died; ``pid``, ``code``, ``uptime``
    STOPPED: Final = "environment.stopped"  # stopped on purpose; ``release``
    DETACHED: Final = "environment.detached"  # left running as the daemon stops; ``pid``
    FAILING: Final = "environment.failing"  # the actor is about to fail; ``reason``, ``cause``
    FAILED: Final = "environment.failed"  # parked by its supervisor (alert); ``error``
    BLOCKED: Final = "environment.blocked"  # waits for a cause to clear (alert); ``reason``
    UNBLOCKED: Final = "environment.unblocked"  # the cause cleared; ``previous_error``
    STALE_PROCESS: Final = "environment.stale_process"  # adopted a process of another release
    CONFIG_CHANGED: Final = "environment.config_changed"  # adopted a process run differently
    STRAY_STOPPED: Final = "environment.stray_stopped"  # stopped a process it did not own
    REPAIRED: Final = "environment.repaired"  # its releases directory was repaired
    RELEASES_PRUNED: Final = "environment.releases_pruned"  # old releases removed; ``removed``
    DEPLOY_STARTED: Final = "environment.deploy_started"  # ``release``, ``previous``
    DEPLOYED: Final = "environment.deployed"  # healthy on the new release; ``duration``
    DEPLOY_FAILED: Final = "environment.deploy_failed"  # ``reason`` or ``error``
    DEPLOY_REVERTED: Final = "environment.deploy_reverted"  # failed, back on ``previous``
    ROLLBACK_STARTED: Final = "environment.rollback_started"  # ``release``, ``previous``
    ROLLED_BACK: Final = "environment.rolled_back"  # by an operator or by the ladder
    ROLLBACK_FAILED: Final = "environment.rollback_failed"  # ``reason`` or ``error``
    ROLLBACK_REVERTED: Final = "environment.rollback_reverted"  # failed, back on ``previous``
    BACKUP: Final = "environment.backup"  # a backup was taken; ``backup``, ``size``, ``verified``
    BACKUP_FAILED: Final = "environment.backup_failed"  # ``error``
    NOTHING_TO_BACK_UP: Final = "environment.nothing_to_back_up"  # no data yet; ``note``
    RESTORED: Final = "environment.restored"  # data replaced from a backup; the backup's detail
    RESTORE: Final = "environment.restore"  # healthy again after a restore
    RESTORE_FAILED: Final = "environment.restore_failed"  # ``error``
    RESTORE_FINISHED: Final = "environment.restore_finished"  # an interrupted restore completed
    RESET: Final = "environment.reset"  # data reset to empty; healthy again after it
    RESET_FAILED: Final = "environment.reset_failed"  # ``error``
    UNDONE: Final = "environment.undone"  # the data a restore or reset replaced is back
    UNDO: Final = "environment.undo"  # healthy again after an undo
    UNDO_FAILED: Final = "environment.undo_failed"  # ``error``
    RESCUE_FAILED: Final = "environment.rescue_failed"  # deleted rows could not be rescued


# By operation kind (deploy, rollback, restore, reset, undo): what an operation publishes as it
# starts, succeeds, fails, or fails and is switched back to the previous release.
OPERATION_STARTED: Final[Mapping[str, str]] = MappingProxyType(
    {"deploy": EnvironmentEvent.DEPLOY_STARTED, "rollback": EnvironmentEvent.ROLLBACK_STARTED}
)
OPERATION_DONE: Final[Mapping[str, str]] = MappingProxyType(
    {
        "deploy": EnvironmentEvent.DEPLOYED,
        "rollback": EnvironmentEvent.ROLLED_BACK,
        "restore": EnvironmentEvent.RESTORE,
        "reset": EnvironmentEvent.RESET,
        "undo": EnvironmentEvent.UNDO,
    }
)
OPERATION_FAILED: Final[Mapping[str, str]] = MappingProxyType(
    {
        "deploy": EnvironmentEvent.DEPLOY_FAILED,
        "rollback": EnvironmentEvent.ROLLBACK_FAILED,
        "restore": EnvironmentEvent.RESTORE_FAILED,
        "reset": EnvironmentEvent.RESET_FAILED,
        "undo": EnvironmentEvent.UNDO_FAILED,
    }
)
OPERATION_REVERTED: Final[Mapping[str, str]] = MappingProxyType(
    {"deploy": EnvironmentEvent.DEPLOY_REVERTED, "rollback": EnvironmentEvent.ROLLBACK_REVERTED}
)
# By data operation: published once the data is replaced, before the process starts on it.
DATA_OPERATION_REPLACED: Final[Mapping[str, str]] = MappingProxyType(
    {
        "restore": EnvironmentEvent.RESTORED,
        "reset": EnvironmentEvent.RESET,
        "undo": EnvironmentEvent.UNDONE,
    }
)


class HealthEvent:
    """The health monitor's verdicts."""

    ALL: Final = "health.*"

    CHANGED: Final = "health.changed"  # ``old`` -> ``new`` status, ``reason``, ``response_ms``


class FailoverEvent:
    """The failover controller acting on a failed environment."""

    ALL: Final = "failover.*"

    TRIGGERED: Final = "failover.triggered"  # told the environment to fail; ``cause``, ``pid``


class IncidentEvent:
    """An outage, from detection to recovery (also a row in ``incidents``)."""

    ALL: Final = "incident.*"

    OPENED: Final = "incident.opened"  # ``cause``, ``pid``
    RECOVERED: Final = "incident.recovered"  # ``time_to_detect``, ``time_to_recover``


class AlertEvent:
    """What an operator must hear about; the alert router delivers these to receivers."""

    ALL: Final = "alert.*"

    FAILED: Final = "alert.failed"  # an environment is parked; ``error``, ``action``
    FLAPPING: Final = "alert.flapping"  # failovers too often, left to supervision
    DEGRADED: Final = "alert.degraded"  # an environment answers, badly; ``reason``
    DATA_LOSS: Final = "alert.data_loss"  # databases gone or damaged; ``lost``, ``action``
    DATA_REPLACED: Final = "alert.data_replaced"  # data restored or reset; ``kind``, ``undo``
    IMPROVE_REGRESSED: Final = "alert.improve_regressed"  # a cycle fell behind the one before


class AlertRouterEvent:
    """The alert router and its receivers: alerts raised from the events above, silences, and
    the notifications sent (``receiver``, ``notification``, ``attempts``)."""

    ALL: Final = "alerts.*"

    FIRING: Final = "alerts.firing"  # raised and stored; ``key``, ``alert``, ``summary``
    RESOLVED: Final = "alerts.resolved"  # its condition ended; ``key``, ``alert``
    SILENCED: Final = "alerts.silenced"  # held back by a silence; ``key``, ``silence``
    SILENCE_ADDED: Final = "alerts.silence_added"  # ``id``, ``alert``, ``reason``, ``expires``
    SILENCE_ENDED: Final = "alerts.silence_ended"  # lifted or expired; ``id``, ``alert``
    NOTIFICATION_SENT: Final = "alerts.notification_sent"  # the receiver's ``answer``
    DELIVERY_FAILED: Final = "alerts.delivery_failed"  # an attempt failed; ``error``, ``retry_in``
    DELIVERY_ABANDONED: Final = "alerts.delivery_abandoned"  # given up; ``error``


class StoreEvent:
    """The store's own troubles with its database file."""

    ALL: Final = "store.*"

    DEGRADED: Final = "store.degraded"  # writes fail; rows are held; ``error``, ``path``
    RECOVERED: Final = "store.recovered"  # writes work again; ``seconds``, ``lost``
    FILE_REPLACED: Final = "store.file_replaced"  # the file vanished; a new one is created
    SET_ASIDE: Final = "store.set_aside"  # a corrupt file was moved away; ``moved_to``


class PipelineEvent:
    """A promotion through the pipeline (``pipeline_id``, ``kind``, ``release``)."""

    ALL: Final = "pipeline.*"

    STARTED: Final = "pipeline.started"
    FINISHED: Final = "pipeline.finished"  # every blocking stage passed
    FAILED: Final = "pipeline.failed"  # ``status``, ``error``
    CANCELLING: Final = "pipeline.cancelling"  # an operator cancelled it; ``stage``


class StageEvent:
    """One stage of a promotion (``pipeline_id``, ``stage``, ``kind``, ``status``)."""

    ALL: Final = "stage.*"

    STARTED: Final = "stage.started"
    FINISHED: Final = "stage.finished"  # passed
    WARNED: Final = "stage.warned"  # failed, but it does not block
    SKIPPED: Final = "stage.skipped"
    FAILED: Final = "stage.failed"  # failed, timed out or was cancelled; ``error``
    OUTPUT: Final = "stage.output"  # a line of the running stage (to a watching client only)


class ImproveEvent:
    """The improvement engine's cycles (``cycle_id``)."""

    ALL: Final = "improve.*"

    CYCLE_STARTED: Final = "improve.cycle.started"  # ``target``, ``apply``, ``trigger``
    CYCLE_FINISHED: Final = "improve.cycle.finished"  # ``status``, ``seconds``
    CYCLE_FAILED: Final = "improve.cycle.failed"  # ``status``, ``error``
    CYCLE_INTERRUPTED: Final = "improve.cycle.interrupted"  # ``reason``
    PHASE_STARTED: Final = "improve.phase.started"  # ``phase``
    PHASE_FINISHED: Final = "improve.phase.finished"  # ``phase``, ``seconds``
    BATCH_REQUEUED: Final = "improve.batch.requeued"  # a worker lost it; ``worker``, ``reason``
    SCHEDULE_FAILED: Final = "improve.schedule.failed"  # a scheduled cycle could not start
    BENCHMARK_REGRESSION: Final = "improve.benchmark.regression"  # ``ops_per_sec``
    PATCH_APPLIED: Final = "improve.patch.applied"  # ``files``, ``branch``
    FIX_ROLLED_BACK: Final = "improve.fix.rolled_back"  # tests failed after it; ``reason``


class CycleProgress:
    """The updates a client watching an improvement cycle receives (not on the bus)."""

    CYCLE_STARTED: Final = "cycle.started"  # ``target``, ``apply``
    PHASE_STARTED: Final = "phase.started"  # ``phase``
    PHASE_FINISHED: Final = "phase.finished"  # ``phase``, ``seconds``, ``summary``
    ANALYSIS_PROGRESS: Final = "analysis.progress"  # files and batches done so far
    BATCH_REQUEUED: Final = "batch.requeued"  # ``batch_id``, ``worker``, ``reason``
    CYCLE_ENDED: Final = "cycle.ended"  # the last update; ``status``, ``error``


class RunProgress:
    """The last update a client watching a promotion receives; before it come the pipeline's
    and the stages' own events (and ``StageEvent.OUTPUT``)."""

    RUN_ENDED: Final = "run.ended"  # ``status``, ``pipeline_ids``
