"""Rollback of a promotion's target: the release it had before, and the
data from the promotion's own backup when the data is what broke.

The environment actor already switches back by itself when a deploy does not come up
healthy; what is left here is what it cannot know:

1. Wait until the environment is idle (a deploy that timed out on our side may still run).
2. Code: if ``current`` is not the release from before the promotion, ``Rollback`` to it.
3. Verify: the old release must come up healthy. If it does, the release was the problem.
4. Data: if the old release is unhealthy too, the new release broke the data (a migration):
   restore the backup this promotion took before its deploy, put the old release back if
   the environment had returned to the new one, and verify again.

Every step is bounded by the deadline; a step the environment refuses because it is busy or
restarting (its supervisor restarts it after a failed switch-back) is retried until then.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gaia_actors.errors import Busy, EnvironmentFailure
from gaia_actors.health import BodyRule
from gaia_actors.httpclient import wait_healthy
from gaia_actors.layout import Layout, actor_name
from gaia_actors.messages import GetEnvStatus, RestoreBackup, Rollback
from gaia_actors.pipeline.stage import Outcome, parked
from gaia_actors.replies import EnvStatus, ask_reply
from gaia_actors.settings import Settings
from supervisors import AskTimeout, NotRunning, Registry
from supervisors.records import record

_RETRY = 0.1  # seconds between attempts at an environment that is busy or restarting


@record
class RollbackPlan:
    settings: Settings
    registry: Registry
    env: str
    previous: str  # the release to go back to ("" when unknown: verify only)
    backup: str  # this promotion's backup of the env ("" when it took none)
    pipeline_id: int
    deadline: float  # time.monotonic() value


def roll_back(plan: RollbackPlan, say: Callable[[str], None]) -> Outcome:
    """Put ``plan.env`` back on the release and, when needed, the data it had before."""
    layout = Layout.of(plan.settings, plan.env)
    _wait_idle(plan)
    code = _restore_code(plan, layout, say)
    healthy, why = _verify(plan, layout)
    if healthy:
        what = "code" if code else "verified"
        return _done(plan, layout, what, say)
    if not plan.backup:
        error = (
            f"{plan.env} is unhealthy on {layout.current_release()} ({why}) and this promotion "
            "took no backup to restore"
        )
        return Outcome(False, error, error, detail={"rollback": "failed"})
    say(f"{plan.env} is unhealthy on the old release ({why}): the data broke; restoring")
    _ask(plan, RestoreBackup(plan.backup))
    say(f"restored {plan.env}'s data from backup {plan.backup}")
    code = _restore_code(plan, layout, say) or code
    healthy, why = _verify(plan, layout)
    if not healthy:
        error = f"{plan.env} still unhealthy after restoring backup {plan.backup}: {why}"
        return Outcome(False, error, error, detail={"rollback": "failed"})
    return _done(plan, layout, "code+data" if code else "data", say)


def _done(plan: RollbackPlan, layout: Layout, what: str, say: Callable[[str], None]) -> Outcome:
    release = layout.current_release()
    summary = {
        "code": f"{plan.env} switched back to {release}; healthy",
        "verified": f"{plan.env} is on {release} (the environment had switched back); healthy",
        "data": f"{plan.env} on {release} with its data restored from {plan.backup}; healthy",
        "code+data": f"{plan.env} switched back to {release} and its data restored from "
        f"{plan.backup}; healthy",
    }[what]
    say(summary)
    return Outcome(True, summary, detail={"rollback": what, "release": release})


def _restore_code(plan: RollbackPlan, layout: Layout, say: Callable[[str], None]) -> bool:
    """Switch back to ``plan.previous`` if the environment is elsewhere; True if it switched."""
    current = layout.current_release()
    if not plan.previous or current == plan.previous:
        return False
    say(f"switching {plan.env} from {current} back to {plan.previous}")
    try:
        _ask(plan, Rollback(plan.previous, plan.pipeline_id))
    except EnvironmentFailure as exc:
        say(f"the switch back was not healthy: {exc}")
        _wait_idle(plan)
        return layout.current_release() == plan.previous
    return True


def _verify(plan: RollbackPlan, layout: Layout) -> tuple[bool, str]:
    if plan.previous and layout.current_release() != plan.previous:
        return False, f"on {layout.current_release()}, not on {plan.previous}"
    # A restarted environment first starts its process: give it its own deploy timeout.
    timeout = min(layout.config.deploy_timeout, max(0.5, plan.deadline - time.monotonic()))
    verdict = wait_healthy(layout.health_url, timeout, BodyRule.of(layout.config))
    return verdict.healthy, verdict.reason


def _wait_idle(plan: RollbackPlan) -> None:
    """Until the environment runs and has no deploy, rollback or restore in progress."""
    while True:
        status: EnvStatus | None
        try:
            name, left = actor_name(plan.env), _left(plan)
            status = ask_reply(plan.registry, name, GetEnvStatus(), EnvStatus, left)
        except (NotRunning, AskTimeout):
            status = None
        if status is not None and status.operation is None:
            return
        _pause(plan)


def _ask(plan: RollbackPlan, message: Any) -> Any:
    """Ask the environment, retrying while it is busy or restarting."""
    while True:
        try:
            return plan.registry.ask(actor_name(plan.env), message, timeout=_left(plan))
        except (Busy, NotRunning):
            _pause(plan)


def _left(plan: RollbackPlan) -> float:
    left = plan.deadline - time.monotonic()
    if left <= 0:
        raise EnvironmentFailure(plan.env, "the rollback ran out of time")
    return left


def _pause(plan: RollbackPlan) -> None:
    _left(plan)
    if parked(plan.registry, plan.env):
        raise EnvironmentFailure(plan.env, "parked FAILED: only an operator starts it again")
    # Polling an environment that is restarting under its supervisor: nothing to wait on.
    time.sleep(_RETRY)
