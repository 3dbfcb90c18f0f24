"""MetricsCollector (``metrics``): environments' Prometheus metrics in, the daemon's out (issue 8,
part 2).

Scraping: every ``[metrics] interval`` seconds a worker thread fetches every environment's
metrics path at once with the probe engine (kept-alive connections, a connect timeout, a
deadline for the whole response that a trickling server cannot stretch, a bound on the body),
parses each body with prometheus-client's parser, and reports back. The
actor stores the samples (``metric_samples``, batched by the store) and tells the monitor the
service's request and error totals (``ServiceCounters``). Retention: the store prunes
``metric_samples`` older than ``[metrics] retention_days`` with its hourly ``Prune``.

Hostile exposition text never stops a scrape: a malformed line is counted and skipped (the
rest of the body is still read, line by line), a sample with too many or too long labels is
dropped and counted, NaN and infinite values are counted and kept out of the store (SQLite
cannot hold NaN in a NOT NULL column), and samples beyond ``max_samples`` are cut off. Parse
problems are logged when they start and when they stop, not on every scrape.

The daemon's own ``/metrics`` (``[metrics] listen``, loopback only; "" turns it off) serves a
CollectorRegistry fed from health rounds (status gauges, probe latency histograms, checks) and
bus events: actor restarts (``supervisor.restart``), failovers, recoveries and recovery
actions, pipeline and stage durations (``pipeline.*``/``stage.*`` events with a duration).
A busy port is logged as an error and the collector runs on without its endpoint, trying the
port again with a capped backoff (1 s doubling to 30 s): a restarted collector whose hung
predecessor still holds the port gets it back once that one lets go. A listen address that is
not loopback or malformed is a configuration error and is not retried.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from gaia_actors.actor import GaiaActor
from gaia_actors.messages import (
    Event,
    HealthRound,
    ScrapeNow,
    ServiceCounters,
    Subscribe,
    Unsubscribe,
    WatchHealth,
)
from gaia_actors.monitoring.monitor import monitor_restarted
from gaia_actors.monitoring.probes import Prober, ProbeResult, ProbeTarget
from gaia_actors.monitoring.rounds import Finished, Rounds, close_in_background
from gaia_actors.settings import MetricsSettings, Settings
from supervisors import Link

__all__ = [
    "Exporter",
    "Limits",
    "MetricsCollector",
    "ParseReport",
    "Sample",
    "ScrapeResult",
    "parse_exposition",
    "scrape_all",
    "scrape_targets",
]

EVENT_PATTERNS = (
    "supervisor.restart",
    "supervisor.child_started",  # a new monitor: watch it again
    "failover.triggered",
    "incident.recovered",
    "environment.restored",
    "environment.rolled_back",
    "environment.reset",
    "pipeline.*",
    "stage.*",
)
STATUSES = ("healthy", "degraded", "down", "unknown")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_MAX_CONCURRENCY = 64
_OVERDUE_SLACK_S = 20.0
_LISTEN_RETRY_S = (1.0, 30.0)  # first and longest wait before trying a busy port again


@dataclass(frozen=True, slots=True)
class _RetryListen:
    """Internal: try the daemon's /metrics port again."""


# -- parsing (pure) ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one scrape may store."""

    max_samples: int = 10_000
    max_labels: int = 32
    max_label_bytes: int = 4096

    @classmethod
    def of(cls, cfg: MetricsSettings) -> Limits:
        return cls(cfg.max_samples, cfg.max_labels, cfg.max_label_bytes)


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True, slots=True)
class ParseReport:
    """The samples of one body and what was wrong with the rest of it."""

    samples: tuple[Sample, ...]
    parse_errors: int = 0  # malformed lines
    dropped_labels: int = 0  # label sets over the bounds
    nonfinite: int = 0  # NaN or infinite values
    truncated: int = 0  # samples beyond max_samples
    first_error: str = ""

    @property
    def problems(self) -> int:
        return self.parse_errors + self.dropped_labels + self.nonfinite + self.truncated


@dataclass
class _Tally:
    samples: list[Sample] = field(default_factory=list)
    parse_errors: int = 0
    dropped_labels: int = 0
    nonfinite: int = 0
    truncated: int = 0
    first_error: str = ""

    def error(self, problem: str) -> None:
        self.parse_errors += 1
        self.first_error = self.first_error or problem[:200]

    def report(self) -> ParseReport:
        return ParseReport(
            tuple(self.samples),
            self.parse_errors,
            self.dropped_labels,
            self.nonfinite,
            self.truncated,
            self.first_error,
        )


def parse_exposition(text: str, limits: Limits) -> ParseReport:
    """Samples of a Prometheus text body; malformed lines are counted, never raised.

    The whole body is parsed first (so TYPE and HELP lines are checked); when the parser
    gives up on a line, the body is parsed again line by line, skipping the bad ones.
    """
    tally = _Tally()
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as exc:  # noqa: BLE001 - the parser raises assorted errors on bad input
        tally.error(f"{type(exc).__name__}: {exc}")
        _parse_lines(text, limits, tally)
        return tally.report()
    for family in families:
        _keep(family.samples, limits, tally)
    return tally.report()


def _parse_lines(text: str, limits: Limits, tally: _Tally) -> None:
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        try:
            families = list(text_string_to_metric_families(line + "\n"))
        except Exception as exc:  # noqa: BLE001 - as above, one line at a time
            tally.error(f"{type(exc).__name__}: {exc}")
            continue
        for family in families:
            _keep(family.samples, limits, tally)
    tally.parse_errors = max(1, tally.parse_errors - 1)  # the first error was the same line


def _keep(samples: Iterable[Any], limits: Limits, tally: _Tally) -> None:
    for sample in samples:
        labels = tuple(sorted((str(k), str(v)) for k, v in sample.labels.items()))
        value = float(sample.value)
        if len(labels) > limits.max_labels or sum(len(k) + len(v) for k, v in labels) > (
            limits.max_label_bytes
        ):
            tally.dropped_labels += 1
        elif not math.isfinite(value):
            tally.nonfinite += 1
        elif len(tally.samples) >= limits.max_samples:
            tally.truncated += 1
        else:
            tally.samples.append(Sample(str(sample.name), labels, value))


def total(samples: Iterable[Sample], pattern: str) -> float | None:
    """The sum of the samples whose name matches the glob ``pattern``; None when none does."""
    values = [s.value for s in samples if pattern and fnmatch.fnmatchcase(s.name, pattern)]
    return math.fsum(values) if values else None


# -- scraping (worker thread) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    """One environment's scrape: its samples, or why there are none."""

    env: str
    scraped_at: float
    duration: float
    size: int = 0
    error: str = ""
    report: ParseReport | None = None


def scrape_targets(settings: Settings) -> tuple[ProbeTarget, ...]:
    """One raw-body probe target per environment's metrics path (only a 200 is a scrape)."""
    cfg = settings.metrics
    return tuple(
        ProbeTarget(
            env,
            f"http://{e.host}:{e.port}{e.metrics_path}",
            expected_status=frozenset({200}),
            connect_timeout=cfg.connect_timeout,
            read_timeout=cfg.read_timeout,
            max_body_bytes=cfg.max_body_bytes,
            raw_body=True,
        )
        for env, e in settings.environments.items()
    )


def scrape_all(
    prober: Prober, targets: Sequence[ProbeTarget], limits: Limits
) -> tuple[ScrapeResult, ...]:
    """Fetch every target at once (the prober's deadlines and body bound), then parse each."""
    return tuple(_scraped(result, limits) for result in prober.round(targets))


def _scraped(result: ProbeResult, limits: Limits) -> ScrapeResult:
    if not result.ok:
        error = f"{result.error}: {result.detail}" if result.error else f"status {result.status}"
        return ScrapeResult(result.name, result.checked_at, result.latency_s, error=error)
    body = result.body or b""
    report = parse_exposition(body.decode("utf-8", errors="replace"), limits)
    return ScrapeResult(result.name, result.checked_at, result.latency_s, len(body), report=report)


# -- the daemon's own /metrics -----------------------------------------------------------------


class Exporter:
    """The daemon's CollectorRegistry and, when listening, its HTTP endpoint."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.status = Gauge(
            "gaia_environment_status",
            "1 for an environment's current health status, 0 for the others.",
            ["env", "status"],
            registry=reg,
        )
        self.latency = Histogram(
            "gaia_probe_latency_seconds",
            "Health check latency, by environment.",
            ["env"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.checks = Counter(
            "gaia_health_checks", "Health checks, by result.", ["env", "result"], registry=reg
        )
        self.restarts = Counter(
            "gaia_actor_restarts", "Restarts by a supervisor, by actor.", ["child"], registry=reg
        )
        self.failovers = Counter(
            "gaia_failovers", "Environments failed over as hung or down.", ["env"], registry=reg
        )
        self.recoveries = Counter(
            "gaia_recoveries",
            "Incidents that ended healthy again, by cause.",
            ["env", "cause"],
            registry=reg,
        )
        self.recovery_actions = Counter(
            "gaia_recovery_actions",
            "Data restores, rollbacks and resets, by the recovery ladder or an operator.",
            ["env", "action"],
            registry=reg,
        )
        self.pipelines = Histogram(
            "gaia_pipeline_duration_seconds",
            "Promotion pipeline durations, by kind and outcome.",
            ["kind", "status"],
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.stages = Histogram(
            "gaia_stage_duration_seconds",
            "Pipeline stage durations, by stage and outcome.",
            ["stage", "status"],
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.scrapes = Counter(
            "gaia_metrics_scrapes", "Scrapes, by result.", ["env", "result"], registry=reg
        )
        self.parse_problems = Counter(
            "gaia_metrics_parse_problems",
            "Skipped lines and samples of scraped metrics, by kind.",
            ["env", "kind"],
            registry=reg,
        )
        self.server: WSGIServer | None = None
        self.address = ""

    # Feeding

    def observe_round(self, health_round: HealthRound) -> None:
        for report in health_round.reports:
            for status in STATUSES:
                self.status.labels(report.env, status).set(float(report.status == status))
            self.latency.labels(report.env).observe(report.latency_s)
            self.checks.labels(report.env, report.observation).inc()

    def observe_event(self, event: Event) -> None:
        name = event.name
        if name == "supervisor.restart":
            self.restarts.labels(str(event.get("child", ""))).inc()
        elif name == "failover.triggered":
            self.failovers.labels(event.env).inc()
        elif name == "incident.recovered":
            self.recoveries.labels(event.env, str(event.get("cause", ""))).inc()
        elif name.startswith("environment."):
            self.recovery_actions.labels(event.env, name.removeprefix("environment.")).inc()
        elif name.startswith(("pipeline.", "stage.")):
            self._observe_duration(event)

    def _observe_duration(self, event: Event) -> None:
        duration = _duration(event)
        if duration is None:
            return
        kind, _, outcome = event.name.partition(".")
        status = str(event.get("status") or outcome)
        if kind == "pipeline":
            self.pipelines.labels(str(event.get("kind", "")), status).observe(duration)
        else:
            stage = event.get("stage") or event.get("name") or ""
            self.stages.labels(str(stage), status).observe(duration)

    def observe_scrape(self, result: ScrapeResult) -> None:
        self.scrapes.labels(result.env, "error" if result.error else "ok").inc()
        report = result.report
        if report is None:
            return
        for kind in ("parse_errors", "dropped_labels", "nonfinite", "truncated"):
            count = getattr(report, kind)
            if count:
                self.parse_problems.labels(result.env, kind).inc(count)

    # Serving

    def serve(self, listen: str) -> str:
        """Start the endpoint on ``host:port``; returns the bound address. Raises OSError or
        ValueError (not loopback, malformed)."""
        host, port = parse_listen(listen)
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self.server = server
        bound_port = server.server_address[1]
        self.address = f"[{host}]:{bound_port}" if ":" in host else f"{host}:{bound_port}"
        return self.address

    def close(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()


def parse_listen(listen: str) -> tuple[str, int]:
    """``127.0.0.1:9464`` or ``[::1]:9464`` into (host, port); loopback hosts only."""
    host, sep, port_text = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"[metrics] listen = {listen!r}: expected host:port")
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(
                f"[metrics] listen = {listen!r}: the daemon's /metrics has no authentication, "
                "so it listens on a loopback address only"
            )
    return host, int(port_text)


def _duration(event: Event) -> float | None:
    value = event.get("duration")
    if value is None and event.get("ended") is not None and event.get("started") is not None:
        value = float(event.get("ended")) - float(event.get("started"))
    try:
        duration = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return duration if duration is not None and math.isfinite(duration) else None


# -- the actor ---------------------------------------------------------------------------------


@dataclass
class _EnvScrapes:
    """What the collector remembers of one environment's scrapes."""

    scrapes: int = 0
    failures: int = 0
    samples: int = 0
    problems: int = 0
    last: ScrapeResult | None = None
    troubled: bool = False  # the last scrape had an error or parse problems (logged once)


class MetricsCollector(GaiaActor):
    """Scrapes every environment's /metrics on its own schedule (DESIGN.md, MetricsCollector)."""

    def __init__(self, link: Link, settings: Settings) -> None:
        super().__init__(link)
        self.settings = settings
        self.cfg = settings.metrics
        self.limits = Limits.of(self.cfg)
        self.targets = scrape_targets(settings)
        self.envs = {t.name: _EnvScrapes() for t in self.targets}
        self.prober: Prober | None = None
        self.exporter = Exporter()
        self.listen_failures = 0
        waves = -(-len(self.targets) // _MAX_CONCURRENCY)
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
        self.prober = Prober(max_concurrency=_MAX_CONCURRENCY)
        if self.cfg.listen:
            self._listen()
        if self.targets:
            self.rounds.start()

    def on_stop(self) -> None:
        super().on_stop()
        self.tell("bus", Unsubscribe(self.name))

    def on_terminate(self) -> None:
        self.exporter.close()  # free the port for the next generation
        if self.prober is not None:
            self.prober.close()

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
        prober, targets, limits = self.prober, self.targets, self.limits
        assert prober is not None  # rounds start after on_start made it
        return lambda: scrape_all(prober, targets, limits)

    def _round_failed(self, error: str) -> None:
        self.log.error("metrics.round_failed", error=error)
        old, self.prober = self.prober, Prober(max_concurrency=_MAX_CONCURRENCY)
        close_in_background(old, f"{self.name}-close")

    def _on_scrapes(
        self, results: tuple[ScrapeResult, ...], _finished: Finished[tuple[ScrapeResult, ...]]
    ) -> None:
        for result in results:
            self.exporter.observe_scrape(result)
            self._remember(result)
            if result.report is not None:
                self._store(result)

    def _remember(self, result: ScrapeResult) -> None:
        state = self.envs[result.env]
        state.scrapes += 1
        state.last = result
        state.failures += bool(result.error)
        report = result.report
        problems = report.problems if report is not None else 0
        state.problems += problems
        troubled = bool(result.error or problems)
        if troubled and not state.troubled:
            self.log.warning("metrics.scrape_problems", env=result.env, **_problem_fields(result))
        elif state.troubled and not troubled:
            self.log.info("metrics.scrape_recovered", env=result.env)
        state.troubled = troubled

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
                result.scraped_at,
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
