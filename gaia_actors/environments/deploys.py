"""The environment actor's release operations: build, deploy and rollback.

Deploy and rollback switch ``current`` and restart the process inside the mailbox (quick),
then wait for healthy in a thread; the asker gets a deferred reply that the verdict
completes (``EnvironmentCore._operation_verdict``): success, or a switch back to the
previous release.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pykka

from gaia_actors import process
from gaia_actors.environments import builds, releases
from gaia_actors.environments.core import START_ERRORS, EnvironmentCore
from gaia_actors.environments.state import Operation, OpKind, Reply
from gaia_actors.errors import EnvironmentFailure, Rejected
from gaia_actors.events import EnvironmentEvent
from gaia_actors.layout import Layout


class ReleaseOperations(EnvironmentCore):
    """Build, deploy and rollback of one environment."""

    def _build(self) -> Reply:
        reply: Reply = pykka.ThreadingFuture()

        def build() -> None:
            try:
                release = self._build_release()
            except Exception as exc:  # noqa: BLE001 - the asker gets the error
                reply.set(EnvironmentFailure(self.env, f"build failed: {exc}"))
                return
            reply.set({"env": self.env, "release": release.id, "path": str(release.path)})

        threading.Thread(target=build, name=f"{self.name}-build", daemon=True).start()
        return reply

    def _build_release(self) -> releases.Release:
        release = builds.build_release(
            self.layout.source,
            self.layout.releases,
            self.config.ignore,
            self.layout.build_argv(),
            timeout=self.config.build_timeout,
            keep_out=(self.settings.state_dir,),
            # A daemon told to stop does not wait for a slow first build to end.
            cancel=self.registry.stopping,
        )
        self._record_release(release, "built")
        return release

    def _record_release(self, release: releases.Release, status: str) -> None:
        self.record(
            "releases",
            ts=time.time(),
            env=self.env,
            release_id=release.id,
            source=release.source,
            content_hash=release.content_hash,
            status=status,
        )

    def _first_release(self) -> None:
        self.new_environment = not releases.list_releases(self.layout.root)
        others = (
            Layout.of(self.settings, env).releases
            for env in self.settings.environments
            if env != self.env
        )
        release, imported = builds.first_release(
            self.layout.source,
            self.layout.releases,
            others,
            self.layout.root.parent,
            ignore=self.config.ignore,
            build_argv=self.layout.build_argv(),
            timeout=self.config.build_timeout,
            # The service's spawn follows the build: its log pump starts during the build.
            meanwhile=lambda: process.start_log_pump(self.layout.log_sink),
            keep_out=(self.settings.state_dir,),
            # A daemon told to stop does not wait for a slow first build to end.
            cancel=self.registry.stopping,
        )
        self._record_release(release, "imported" if imported else "built")
        releases.switch_current(self.layout.root, release.id)
        self.publish_env(EnvironmentEvent.INITIALISED, release=release.id)

    def _deploy(self, release: str, pipeline_id: int | None, timeout: float | None) -> Any:
        self._refuse_if_busy()
        target = self._import(release)
        return self._switch(OpKind.DEPLOY, target, pipeline_id, timeout)

    def _rollback(self, release: str, pipeline_id: int | None) -> Any:
        self._refuse_if_busy()
        target = self._require_release(release or self._previous_release())
        return self._switch(OpKind.ROLLBACK, target, pipeline_id, None)

    def _switch(
        self, kind: OpKind, target: str, pipeline_id: int | None, timeout: float | None
    ) -> Reply:
        previous = self.layout.current_release()
        op = Operation(kind, target, previous, pykka.ThreadingFuture(), pipeline_id=pipeline_id)
        self.now = self.now.began(op)
        self.publish_env(kind.started_event, release=target, previous=previous)
        try:
            releases.switch_current(self.layout.root, target)
            self._restart_process()
        except START_ERRORS as exc:
            # Failing here must not leave the operation pending (every later one would be
            # Busy) nor the environment without a process: switch back at once.
            self._revert_now(op, f"cannot start {target}: {exc}")
            return op.reply
        if timeout is not None:
            self._wait_for_health(timeout)
        return op.reply

    def _revert_now(self, op: Operation, why: str) -> None:
        """Back on the previous release after a switch that could not even start."""
        duration = op.duration()
        self._publish_switch_failed(op, why)
        try:
            if op.previous:
                releases.switch_current(self.layout.root, op.previous)
            self._restart_process()
        except START_ERRORS as exc:
            error = f"{op.kind} of {op.target}: {why}; back on {op.previous}: {exc}"
            self._finish_operation(op, "failed", duration, error)
            self._fail_soon(f"cannot start again after a failed {op.kind}: {exc}")
            return
        error = f"{op.kind} of {op.target} failed ({why}); back on {op.previous}"
        self._finish_operation(op, "reverted", duration, error)

    def _import(self, release: str) -> str:
        if "/" not in release:
            return self._require_release(release)
        path = Path(release)
        if not path.is_dir():
            raise Rejected(f"release directory {release!r} does not exist")
        try:
            return builds.import_release(path, self.layout.releases).id
        except releases.ReleaseError as exc:
            raise Rejected(f"environment {self.env!r}: cannot deploy {release}: {exc}") from None

    def _require_release(self, release: str) -> str:
        """``release`` if this environment has it complete; Rejected (nothing touched) if not."""
        missing = Rejected(f"environment {self.env!r} has no release {release!r}")
        if not releases.valid_id(release):
            raise missing
        try:
            releases.load_release(self.layout.releases / release)
        except releases.ReleaseError:
            raise missing from None
        return release

    def _previous_release(self) -> str:
        current = self.layout.current_release()
        ids = [r.id for r in releases.list_releases(self.layout.root)]  # newest first
        older = ids[ids.index(current) + 1 :] if current in ids else ids
        if not older:
            raise Rejected(f"environment {self.env!r} has no release older than {current!r}")
        return older[0]
