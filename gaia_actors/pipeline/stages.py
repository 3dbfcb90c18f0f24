"""Stage kinds: what one step of a promotion does.

A stage is built from its ``StageSettings`` by :func:`plan` and run by the promotion's
runner thread with a :class:`StageContext`; it answers an :class:`Outcome` or raises
(StageTimeout, StageCancelled, or any error, which fails it). Nothing here touches the
store or the bus: the runner records and reports.

    build    a release from the source tree, deployed to the source environment
    command  an argv in the release directory; JUnit XML results become per-test results
    health   healthy now, and for a soak window
    load     a bounded HTTP load with thresholds on error rate and p95 latency
    backup   a verified backup of the environment's data (the target's is kept for rollback)
    deploy   the release to the target, waiting for healthy (the environment switches back
             by itself when it is not); a target busy with another operation is waited for
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from gaia_actors import process
from gaia_actors.errors import Busy
from gaia_actors.health import BodyRule
from gaia_actors.httpclient import Limits, check_health
from gaia_actors.layout import Layout
from gaia_actors.messages import BuildRelease, Deploy, TakeBackup
from gaia_actors.pipeline import junit
from gaia_actors.pipeline.errors import StageCancelled, StageError, StageTimeout
from gaia_actors.pipeline.load import run_load
from gaia_actors.pipeline.stage import Outcome, Stage, StageContext, parked
from gaia_actors.process.running import no_bytecode_in_tree
from gaia_actors.settings import PROMOTIONS, Settings, StageSettings, expand, python_executable
from supervisors import NotRunning

# Set in a stage command's environment so that a restarted daemon can find (and kill) the
# processes of a stage its predecessor left running when it was SIGKILLed.
STAGE_TOKEN = "GAIA_STAGE"
_RETRY = 0.5  # seconds between deploys refused because the target is busy or restarting


class BuildStage(Stage):
    kind = "build"

    def run(self, ctx: StageContext) -> Outcome:
        built = ctx.ask_abandoning(self.env, BuildRelease())
        promotion = ctx.promotion
        promotion.release, promotion.release_dir = built["release"], Path(built["path"])
        summary = f"built release {promotion.release}"
        if self.config.deploy:
            deployed = ctx.ask(self.env, Deploy(promotion.release, promotion.pipeline_id))
            summary += f"; {self.env} runs it (healthy after {deployed['duration']:.2f}s)"
        return Outcome(True, summary, detail={"release": promotion.release})


class CommandStage(Stage):
    kind = "command"

    def run(self, ctx: StageContext) -> Outcome:
        release_dir = ctx.promotion.release_dir
        if release_dir is None or not release_dir.is_dir():
            raise StageError(f"no release directory to run in ({release_dir})")
        ctx.artifacts.mkdir(parents=True, exist_ok=True)
        report = ctx.artifacts / f"{self.position:02d}-{self.name}.junit.xml"
        report.unlink(missing_ok=True)
        values = substitutions(ctx, report)
        argv = [expand(part, values) for part in self.config.command]
        result = process.run(
            argv,
            release_dir,
            self._environ(ctx, values),
            timeout=max(0.0, ctx.remaining()),
            cancel=ctx.cancel,
            on_line=ctx.on_line,
            output_limit=max(ctx.settings.pipeline.output_tail, 1000),
        )
        written = release_dir / expand(self.config.junit, values) if self.config.junit else report
        tests = junit.parse(written) if written.is_file() else None
        return self._outcome(result, tests)

    def _environ(self, ctx: StageContext, values: dict[str, str]) -> dict[str, str]:
        extra = {key: expand(value, values) for key, value in self.config.environ.items()}
        # Releases are immutable copies: no bytecode written into them; unbuffered output
        # so that the live output of the stage is live.
        return {
            **os.environ,
            **no_bytecode_in_tree(extra),
            "PYTHONUNBUFFERED": "1",
            "GAIA_PIPELINE_ID": str(ctx.promotion.pipeline_id),
            STAGE_TOKEN: ctx.token,
            **extra,
        }

    def _outcome(self, result: process.RunResult, tests: dict[str, Any] | None) -> Outcome:
        counted = f"; {junit.describe(tests)}" if tests else ""
        if result.timed_out:
            error = f"timed out after {self.timeout:g}s; its process group was killed{counted}"
            return _ran(result, tests, False, error, error, timed_out=True)
        if result.cancelled:
            error = "cancelled; its process group was killed"
            return _ran(result, tests, False, error, error, cancelled=True)
        summary = f"exit {result.exit_code} in {result.duration:.2f}s{counted}"
        error = "" if result.ok else f"exit code {result.exit_code}{counted}"
        return _ran(result, tests, result.ok, summary, error)


def _ran(
    result: process.RunResult,
    tests: dict[str, Any] | None,
    ok: bool,
    summary: str,
    error: str,
    **flags: bool,
) -> Outcome:
    """The outcome of a command that ran: its exit code, output and test results."""
    return Outcome(
        ok,
        summary,
        error,
        exit_code=result.exit_code,
        output=result.output_tail,
        tests=tests,
        timed_out=flags.get("timed_out", False),
        cancelled=flags.get("cancelled", False),
    )


class HealthStage(Stage):
    kind = "health"

    def run(self, ctx: StageContext) -> Outcome:
        layout = ctx.layout()
        url, rule = layout.health_url, BodyRule.of(layout.config)
        soak, started = self.config.soak, time.monotonic()
        checks = 0
        while True:
            bound = min(2.0, max(0.2, ctx.remaining()))
            verdict = check_health(url, rule, limits=Limits(bound, bound))
            ok, why = verdict.healthy, verdict.reason
            checks += 1
            soaked = time.monotonic() - started
            if not ok:
                error = f"{self.env} unhealthy after {soaked:.1f}s of a {soak:g}s soak: {why}"
                return Outcome(False, error, error, detail={"checks": checks})
            if soaked >= soak:
                plural = "" if checks == 1 else "s"
                summary = f"{self.env} healthy: {checks} check{plural} over {soak:g}s"
                return Outcome(True, summary, detail={"checks": checks})
            wait = min(self.config.interval, soak - soaked)
            if ctx.remaining() < wait:
                raise StageTimeout(f"the {soak:g}s soak does not fit in {self.timeout:g}s")
            if ctx.cancel.wait(wait):
                raise StageCancelled(f"cancelled after {soaked:.1f}s of a {soak:g}s soak")


class LoadStage(Stage):
    kind = "load"

    def run(self, ctx: StageContext) -> Outcome:
        config, env = self.config, ctx.layout().config
        result = run_load(
            env.host,
            env.port,
            config.path,
            requests=config.requests,
            concurrency=config.concurrency,
            deadline=ctx.deadline,
            cancel=ctx.cancel,
        )
        if ctx.cancel.is_set():
            raise StageCancelled(f"cancelled after {result.sent} requests")
        if not result.complete:
            raise StageTimeout(f"only {result.sent} of {result.planned} requests in time")
        p95 = result.percentile_ms(0.95)
        problems = []
        if result.error_rate > config.max_error_rate:
            problems.append(f"error rate {result.error_rate:.1%} > {config.max_error_rate:.1%}")
        if p95 > config.max_p95_ms:
            problems.append(f"p95 {p95:.1f} ms > {config.max_p95_ms:g} ms")
        detail = {"sent": result.sent, "error_rate": result.error_rate, "p95_ms": round(p95, 3)}
        summary = f"{self.env}: {result.describe()}"
        return Outcome(not problems, summary, "; ".join(problems), detail=detail)


class BackupStage(Stage):
    kind = "backup"

    def run(self, ctx: StageContext) -> Outcome:
        taken = ctx.ask(self.env, TakeBackup("pipeline", ctx.promotion.pipeline_id))
        if not taken["verified"]:
            error = f"backup {taken['backup']} of {self.env} did not verify: {taken['integrity']}"
            return Outcome(False, error, error)
        if self.env == ctx.promotion.target:
            ctx.promotion.backup = taken["backup"]  # what a rollback restores
        summary = f"{self.env}: verified backup {taken['backup']} ({taken['size']} bytes)"
        return Outcome(True, summary, detail={"backup": taken["backup"]})


class DeployStage(Stage):
    kind = "deploy"

    def run(self, ctx: StageContext) -> Outcome:
        promotion = ctx.promotion
        if promotion.release_dir is None:
            raise StageError("no release to deploy")
        promotion.previous = ctx.layout().current_release() or ""
        deployed = self._deploy(ctx, Deploy(str(promotion.release_dir), promotion.pipeline_id))
        summary = (
            f"{self.env} runs {promotion.release} (was {promotion.previous or 'nothing'}); "
            f"healthy after {deployed['duration']:.2f}s"
        )
        return Outcome(True, summary, detail={"previous": promotion.previous})

    def _deploy(self, ctx: StageContext, message: Deploy) -> Any:
        """Deploy, waiting while the target is busy with an operation started elsewhere (an
        operator's deploy or restore, a failure's data check) or its actor restarts, until the
        stage's deadline; not while it is parked FAILED (only an operator starts it). A Busy
        refusal started nothing: if the stage runs out of time that way, the promotion fails
        without a rollback (which could restore its backup over data written since). A deploy
        asked for runs to its end, whatever the promotion's cancel: a rollback must not
        overlap it; a cancel ends only the wait between asks."""
        maybe_started = False  # an actor that stopped mid-ask may have switched ``current``
        said = ""
        while True:
            if parked(ctx.registry, self.env):  # nothing to wait for: an operator starts it
                ctx.promotion.deploy_started = maybe_started
                raise StageError(f"{self.env} is parked FAILED: reset it, then promote again")
            ctx.promotion.deploy_started = True
            try:
                return ctx.ask(self.env, message)
            except Busy as exc:
                ctx.promotion.deploy_started = maybe_started
                reason = str(exc)
            except NotRunning as exc:
                maybe_started = True
                reason = str(exc)
            if reason != said:
                ctx.on_line(f"waiting to deploy: {reason}")
                said = reason
            if ctx.remaining() <= _RETRY:
                raise StageTimeout(f"{self.env} was never free to deploy to ({reason})")
            # Polling an environment busy elsewhere (nothing to wait on), unless stopped.
            if ctx.cancel.wait(_RETRY):
                raise StageCancelled(f"stopped while waiting to deploy to {self.env} ({reason})")


KINDS: dict[str, type[Stage]] = {
    cls.kind: cls
    for cls in (BuildStage, CommandStage, HealthStage, LoadStage, BackupStage, DeployStage)
}


# Where a stage acts when its ``env`` is "": the others test the source before the deploy
# stage and the target from it on.
_DEFAULT_ENV = {"build": "source", "backup": "target", "deploy": "target"}


def plan(settings: Settings, kind: str) -> list[Stage]:
    """The stages of promotion ``kind``, numbered from 1, each with the environment it acts
    on ("source", "target" and the defaults resolved to names)."""
    source, target = PROMOTIONS[kind]
    configs: tuple[StageSettings, ...] = getattr(settings.pipeline, kind)
    deploy_at = next((i for i, c in enumerate(configs) if c.kind == "deploy"), len(configs))
    stages = []
    for i, config in enumerate(configs):
        default = _DEFAULT_ENV.get(config.kind, "source" if i < deploy_at else "target")
        named = {"source": source, "target": target}
        env = named.get(config.env or default, config.env)
        stages.append(KINDS[config.kind](config, i + 1, env))
    return stages


def base_url(layout: Layout) -> str:
    return f"http://{layout.config.host}:{layout.config.port}"


def substitutions(ctx: StageContext, junit_path: Path) -> dict[str, str]:
    layout = ctx.layout()
    return {
        "python": python_executable(),
        "release_dir": str(ctx.promotion.release_dir or ""),
        "release": ctx.promotion.release,
        "url": base_url(layout),
        "env": ctx.env,
        "port": str(layout.config.port),
        "junit": str(junit_path),
        "pipeline_id": str(ctx.promotion.pipeline_id),
    }
