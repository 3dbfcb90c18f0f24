"""MetricsCollector (``metrics``): environments' Prometheus metrics in, the daemon's out.

Scraping: every ``[metrics] interval`` seconds a worker thread fetches the metrics path of
every environment that has one (``metrics_path = ""`` has none) at once, each through
`gaia_actors.httpclient` (a connect timeout, a deadline for the whole response that a
trickling server cannot stretch, a bound on the body), parses each body, and reports back. The
actor stores the samples (``metric_samples``, batched by the store) and tells the monitor the
service's request and error totals (``ServiceCounters``). Retention: the store prunes
``metric_samples`` older than ``[metrics] retention_days`` with its hourly ``Prune``.

A scrape's outcome is ``ok``, ``not Prometheus text`` (a 200 whose body has no sample and
malformed lines: an HTML page, a JSON document), ``HTTP <status>`` or why there was no answer
(``refused``, ``timeout``, ...). It is logged when it changes, with the HTTP status, not on
every scrape: a service without a metrics endpoint is one warning, not one per interval. A
failed scrape is the collector's problem, never an error of the service: nothing of it reaches
the monitor's error rate or the service's error totals.

A body is parsed by ``exposition``, within bounds of samples and CPU.

The daemon's own ``/metrics`` (``exporter``) listens on ``[metrics] listen`` (loopback only; ""
turns it off), fed with the health rounds and bus events this actor subscribes to. A busy port
is logged as an error and the collector runs on without its endpoint, trying the port again
with a capped backoff (1 s doubling to 30 s): a restarted collector whose hung predecessor
still holds the port gets it back once that one lets go. A listen address that is not loopback
or malformed is a configuration error and is not retried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gaia_actors import httpclient
from gaia_actors.actor import GaiaActor
from gaia_actors.events import (
    AlertRouterEvent,
    EnvironmentEvent,
    FailoverEvent,
    IncidentEvent,
    PipelineEvent,
    StageEvent,
    SupervisorEvent,
)
from gaia_actors.messages import (
    Event,
    HealthRound,
    ScrapeNow,
    ServiceCounters,
    Subscribe,
    Unsubscribe,
    WatchHealth,
)
from gaia_actors.monitoring.exporter import Exporter
from gaia_actors.monitoring.exposition import Limits, total
from gaia_actors.monitoring.monitor import monitor_restarted
from gaia_actors.monitoring.rounds import Finished, Rounds
from gaia_actors.monitoring.scrape import MAX_CONCURRENCY, ScrapeResult, scrape_all, scrape_targets
from gaia_actors.settings import Settings
from supervisors import Link
from supervisors.records import record

__all__ = ["MetricsCollector"]

EVENT_PATTERNS = (
    SupervisorEvent.RESTART,
    SupervisorEvent.CHILD_STARTED,  # a new monitor: watch it again
    FailoverEvent.TRIGGERED,
    IncidentEvent.RECOVERED,
    EnvironmentEvent.RESTORED,
    EnvironmentEvent.ROLLED_BACK,
    EnvironmentEvent.RESET,
    PipelineEvent.ALL,
    StageEvent.ALL,
    AlertRouterEvent.ALL,
)
_OVERDUE_SLACK_S = 20.0
_LISTEN_RETRY_S = (1.0, 30.0)  # first and longest wait before trying a busy port again


@record
class _RetryListen:
    """Internal: try the daemon's /metrics port again."""


# -- the actor ---------------------------------------------------------------------------------


@dataclass
class _EnvScrapes:
    """What the collector remembers of one environment's scrapes."""

    scrapes: int = 0
    failures: int = 0
    samples: int = 0
    problems: int = 0
    last: ScrapeResult | None = None
    # The last scrape's outcome and whether its body had problems: logged when it changes.
    state: tuple[str, bool] | None = None


class MetricsCollector(GaiaActor):
    """Scrapes every environment's metrics path on its own schedule."""

    def __init__(self, link: Link, settings: Settings) -> None:
        super().__init__(link)
        self.settings = settings
        self.cfg = settings.metrics
        self.limits = Limits.of(self.cfg)
        self.fetch = httpclient.Limits(
            self.cfg.connect_timeout, self.cfg.read_timeout, self.cfg.max_body_bytes
        )
        self.targets = scrape_targets(settings)
        self.envs = {t.env: _EnvScrapes() for t in self.targets}
        self.exporter = Exporter()
        self.listen_failures = 0
        waves = -(-len(self.targets) // MAX_CONCURRENCY)
        self.rounds: Rounds[tuple[ScrapeResult, ...]] = Rounds(
            self,
            interval=self.cfg.interval,
            overdue_after=waves * (self.cfg.connect_timeout + self.cfg.read_timeout)
            + _OVERDUE_SLACK_S,
            prepare=self._prepare,
            on_result=self._on_scrapes,
            on_failure=self._round_failed,
        )

    def on_start(self) -> None:
        self.tell("bus", Subscribe(self.name, EVENT_PATTERNS))
        self.tell("monitor", WatchHealth(self.name))
        if self.cfg.listen:
            self._listen()
        if self.targets:
            self.rounds.start()

    def on_stop(self) -> None:
        super().on_stop()
        self.tell("bus", Unsubscribe(self.name))

    def on_terminate(self) -> None:
        self.exporter.close()  # free the port for the next generation

    def receive(self, message: Any) -> Any:
        if self.rounds.handle(message):
            return None
        match message:
            case ScrapeNow():
                if self.targets:
                    self.rounds.request()
            case _RetryListen():
                self._listen()
            case HealthRound():
                self.exporter.observe_round(message)
            case Event():
                if monitor_restarted(message):
                    self.tell("monitor", WatchHealth(self.name))
                self.exporter.observe_event(message)
            case _:
                return self.unhandled(message)
        return None

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            **self.rounds.state(),
            "listen": self.exporter.address,
            "listen_failures": self.listen_failures,
            "environments": {env: _scrape_state(s) for env, s in self.envs.items()},
        }

    def _listen(self) -> None:
        try:
            address = self.exporter.serve(self.cfg.listen)
        except (OSError, ValueError) as exc:
            retry = isinstance(exc, OSError)
            first, longest = _LISTEN_RETRY_S
            delay = min(longest, first * 2**self.listen_failures)
            self.listen_failures += 1
            if self.listen_failures == 1 or not retry:
                self.log.error(
                    "metrics.listen_failed",
                    listen=self.cfg.listen,
                    error=str(exc),
                    retry_in=delay if retry else None,
                    hint='set [metrics] listen to a free loopback host:port, or "" to turn it off',
                )
            if retry:
                self.after(delay, _RetryListen())
            return
        self.log.info("metrics.listening", address=address, failures=self.listen_failures)
        self.listen_failures = 0

    # Scrapes

    def _prepare(self) -> Callable[[], tuple[ScrapeResult, ...]]:
        targets, fetch, limits = self.targets, self.fetch, self.limits
        return lambda: scrape_all(targets, fetch, limits)

    def _round_failed(self, error: str) -> None:
        self.log.error("metrics.round_failed", error=error)

    def _on_scrapes(
        self, results: tuple[ScrapeResult, ...], _finished: Finished[tuple[ScrapeResult, ...]]
    ) -> None:
        for result in results:
            self.exporter.observe_scrape(result)
            self._remember(result)
            if result.report is not None and result.report.prometheus:
                self._store(result)

    def _remember(self, result: ScrapeResult) -> None:
        state = self.envs[result.env]
        state.scrapes += 1
        state.last = result
        state.failures += result.outcome != "ok"
        report = result.report
        problems = report.problems if report is not None else 0
        state.problems += problems
        # Once per change of state, not per scrape: a service without a metrics endpoint
        # answers 404 every interval, and that is one fact.
        new = (result.outcome, bool(problems))
        if new not in (state.state, ("ok", False)):
            self.log.warning(
                "metrics.scrape_problems",
                env=result.env,
                outcome=result.outcome,
                http_status=result.http_status,
                **_problem_fields(result),
            )
        elif new != state.state and state.state is not None:
            self.log.info("metrics.scrape_recovered", env=result.env)
        state.state = new

    def _store(self, result: ScrapeResult) -> None:
        report = result.report
        assert report is not None
        self.envs[result.env].samples += len(report.samples)
        for sample in report.samples:
            self.record(
                "metric_samples",
                ts=result.scraped_at,
                env=result.env,
                name=sample.name,
                labels=dict(sample.labels),
                value=sample.value,
            )
        self.tell(
            "monitor",
            ServiceCounters(
                result.env,
                total(report.samples, self.cfg.requests_metric),
                total(report.samples, self.cfg.errors_metric),
            ),
        )


def _problem_fields(result: ScrapeResult) -> dict[str, Any]:
    report = result.report
    if report is None:
        return {"error": result.error}
    return {
        "parse_errors": report.parse_errors,
        "dropped_labels": report.dropped_labels,
        "nonfinite": report.nonfinite,
        "truncated": report.truncated,
        "over_budget": report.over_budget,
        "first_error": report.first_error,
    }


def _scrape_state(state: _EnvScrapes) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "scrapes": state.scrapes,
        "failures": state.failures,
        "samples": state.samples,
        "problems": state.problems,
    }
    last = state.last
    if last is not None:
        fields["last_scrape"] = last.scraped_at
        fields["last_bytes"] = last.size
        fields["last_ms"] = round(last.duration * 1000, 3)
        fields.update(_problem_fields(last))
    return fields
