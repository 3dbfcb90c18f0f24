"""The environment actor's answer to lost data: a database deleted or emptied under the
running service is restored from the newest verified backup (``restore_on_data_loss``), with
the rows of deleted databases rescued from the running process first.

The data-loss watch looks every ``data_check_interval`` (``CheckData``), and a failure
(``Fail``, from the failover agent) looks first too: a service declared down because its
database was deleted under it is a data loss, not a failure for the recovery ladder, whose
restore would stop the process first and lose those rows.
"""

from __future__ import annotations

from gaia_actors.environments import alerts, recovery
from gaia_actors.environments.dataops import DataOperations
from gaia_actors.environments.notices import nothing_to_salvage
from gaia_actors.environments.state import OpKind
from gaia_actors.errors import Rejected
from gaia_actors.events import EnvironmentEvent
from gaia_actors.messages import Fail


class DataLossOperations(DataOperations):
    """Looks for lost data, and restores it."""

    def _fail(self, reason: str, cause: str) -> None:
        if self._restoring_lost_data(Fail(reason, cause)):
            return  # the restore restarts the service on its data: the failure is dealt with
        self._fail_now(reason, cause)

    def _fail_now(self, reason: str, cause: str) -> None:
        self.publish_env(EnvironmentEvent.FAILING, level="error", reason=reason, cause=cause)
        self._fail_with_data(f"{cause}: {reason}")

    def _check_data(self, failing: Fail | None = None) -> None:
        if self.now.operation is not None or not self.now.started.running():
            return
        if lost := self.watch.look():
            self._on_data_loss(lost, failing)

    def _restoring_lost_data(self, failing: Fail) -> bool:
        """Look for lost databases now, before failing: a service declared down because its
        database was deleted under it is a data loss (its rows rescued from the running
        process), not a failure for the ladder, which would stop the process first. True
        when a restore of the lost data has begun (``failing`` goes on if it cannot)."""
        if self.now.operation is not None:
            return False  # a deploy or restore under way: the failure is its verdict
        self._check_data(failing)
        return self.now.operation is not None

    def _on_data_loss(self, lost: list[str], failing: Fail | None) -> None:
        restoring = self.config.restore_on_data_loss
        noticed = self.watch.noticed(lost)
        alerts.data_loss(self.registry, self.name, self.env, lost, restoring)
        if not restoring:
            return
        op = self._begin(OpKind.RESTORE)

        def chosen(outcome: object) -> None:
            if isinstance(outcome, Rejected):
                self._fail_operation(outcome)
                self.publish_env(EnvironmentEvent.RESTORE_FAILED, level="error", error=str(outcome))
                if failing is not None:
                    self._fail_now(failing.reason, failing.cause)
                return
            name, skipped = self._chosen(outcome)
            self.watch.restoring(noticed, name)
            restore = lambda: recovery.restore_data(self.layout, name, skipped)  # noqa: E731
            self._replace(op, restore, "data loss: " + "; ".join(lost), lost=True)

        self._run_job("restore", lambda: self._choose_backup(None), chosen, nothing_to_salvage)
