"""Incidents on record: every failure of an environment, whether the failover agent caused the
restart or the process exited by itself (``incidents`` table).

- ``started``: the first failed check of the run (hung) or the exit (exited);
- ``detected``: when the agent failed the environment over (hung) or the exit was seen;
- ``recovered``: the first check after detection that finds it healthy again (the monitor's
  classifier, so ``success_threshold`` passing checks) in a process other than the failed one
  — recovery is verified by health, and a dying process's last answers do not count;
- ``time_to_detect`` = detected - started and ``time_to_recover`` = recovered - detected, so
  the outage lasted their sum.

An incident ends ``failed`` when the supervisor parks the environment as FAILED.

Incidents outlive the agent: a new generation (after a crash, or in the next daemon) takes
over the newest ``open`` incident of each environment and closes it as above, at the first
passing check of whatever process runs then. Older open incidents of the same environment
are ``superseded`` by it, and those of an environment no longer configured are ``closed``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import peewee

from gaia_actors.actor import GaiaActor
from gaia_actors.errors import StoreError
from gaia_actors.events import IncidentEvent
from gaia_actors.messages import InsertNow, Update, fields_of
from gaia_actors.store.models import Incident
from supervisors import SupervisionError

_STORE_TIMEOUT = 2.0


@dataclass
class OpenIncident:
    cause: str  # hung | error | exited
    started: float
    detected: float
    pid: int | None
    row_id: int | None = None
    failovers: int = 0
    restarts: int = 0
    notes: list[str] = field(default_factory=list)

    def detail(self) -> str:
        parts = [*self.notes]
        if self.restarts:
            parts.append(f"{self.restarts} restart(s) by the supervisor")
        return "; ".join(parts)[-2000:]


@dataclass
class EnvWatch:
    """What the agent tracks for one environment."""

    run: int = 0  # consecutive failed checks of run_pid that count
    run_pid: int | None = None
    status: str = "unknown"
    incident: OpenIncident | None = None
    # The process that was failed over (or exited): its answers prove nothing until the
    # environment has started again. A hung demo, for one, answers its stuck health check
    # with 200 while it shuts down.
    failed_pid: int | None = None
    answered_pid: int | None = None  # a process that has answered a check at least once
    failovers: deque[float] = field(default_factory=deque)  # monotonic times, flap damping
    flap_alerted: bool = False


def incident_rows(env: str = "", limit: int = 20) -> list[dict[str, Any]]:
    """Recent incidents from the store, newest first (the database must be open)."""
    query: Any = Incident.select().order_by(Incident.started.desc())
    if env:
        query = query.where(Incident.env == env)
    rows: list[dict[str, Any]] = list(query.limit(max(1, min(limit, 1000))).dicts())
    return rows


class IncidentBook(GaiaActor):
    """Opens, updates and takes over the incidents of the failover agent's environments."""

    envs: dict[str, EnvWatch]

    def _take_over_open_incidents(self) -> None:
        """Track again the incidents a previous generation or daemon left open."""
        try:
            rows: list[Any] = list(
                Incident.select().where(Incident.status == "open").order_by(Incident.started)
            )
        except peewee.PeeweeException as exc:
            self.log.warning("failover.open_incidents_unread", error=str(exc))
            return
        newest = {row.env: row for row in rows}  # oldest first: the newest per environment wins
        for row in rows:
            if row.env not in self.envs:
                status, note = "closed", "the environment is no longer configured"
            elif newest[row.env] is not row:
                status, note = "superseded", f"superseded by incident #{newest[row.env].id}"
            else:
                self.envs[row.env].incident = OpenIncident(
                    row.cause,
                    row.started,
                    row.detected if row.detected is not None else row.started,
                    None,
                    row_id=row.id,
                    failovers=row.failovers,
                    notes=[*filter(None, [row.detail]), "taken over by a new failover agent"],
                )
                continue
            detail = "; ".join(part for part in (row.detail, note) if part)[-2000:]
            self.tell("store", Update("incidents", row.id, fields_of(status=status, detail=detail)))
        taken = [row.id for row in newest.values() if row.env in self.envs]
        if taken:
            self.log.info("failover.incidents_taken_over", incidents=taken)

    # Incidents

    def _open(
        self, env: str, cause: str, started: float, detected: float, pid: int | None
    ) -> OpenIncident:
        incident = OpenIncident(cause, started, detected, pid)
        row = fields_of(
            env=env,
            cause=cause,
            started=started,
            detected=detected,
            time_to_detect=round(detected - started, 6),
            status="open",
        )
        try:
            incident.row_id = self.ask("store", InsertNow("incidents", row), _STORE_TIMEOUT)
        except (SupervisionError, StoreError) as exc:  # store down, slow or faulty: logged
            self.log.error("failover.incident_not_stored", env=env, error=str(exc))
        self.publish(IncidentEvent.OPENED, level="warning", env=env, cause=cause, pid=pid)
        return incident

    def _update(self, incident: OpenIncident, **values: Any) -> None:
        if incident.row_id is not None:
            self.tell("store", Update("incidents", incident.row_id, fields_of(**values)))
