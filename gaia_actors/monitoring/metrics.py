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

Hostile exposition text never stops a scrape, and its cost is bounded: the body is read line
by line with a linear-time pattern for the text format; a malformed line is counted and
skipped, a sample with too many or too long labels is dropped and counted, NaN and infinite
values are counted and kept out of the store (SQLite cannot hold NaN in a NOT NULL column).
Reading stops at ``max_samples`` kept samples (``truncated``) or after ``max_parse_cpu``
seconds of CPU (``over_budget``), the lines left counted, so neither a huge valid body nor a
huge malformed one costs more than the budget and the samples kept.

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

import concurrent.futures
import fnmatch
import ipaddress
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from gaia_actors import httpclient
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
from gaia_actors.monitoring.rounds import Finished, Rounds
from gaia_actors.settings import MetricsSettings, Settings
from supervisors import Link

__all__ = [
    "Exporter",
    "Limits",
    "MetricsCollector",
    "ParseReport",
    "Sample",
    "ScrapeResult",
    "ScrapeTarget",
    "parse_exposition",
    "scrape",
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

# The Prometheus text exposition format, one sample line: name, optional labels, value,
# optional timestamp. Every alternative is disjoint from its neighbour, so a hostile line
# costs linear time.
_SAMPLE_LINE = re.compile(
    rb"[ \t]*([a-zA-Z_:][a-zA-Z0-9_:]*)"
    rb'(\{(?:[^"}]|"(?:[^"\\\n]|\\.)*")*\})?'
    rb"[ \t]+([^ \t]+)(?:[ \t]+-?[0-9]+)?[ \t]*\r?"
)
_LABEL = re.compile(rb'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\\n]|\\.)*)"[ \t]*,?')
_ESCAPES = {b"\\\\": "\\", b'\\"': '"', b"\\n": "\n"}
_ESCAPE = re.compile(rb'\\[\\"n]')
_VALUE = re.compile(
    rb"[+-]?(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|Inf|inf|NaN|nan)"
)
_MAX_LINE = 64 * 1024  # longer lines are errors without a parse
_BUDGET_EVERY = 256  # lines between looks at the CPU clock


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one scrape may store and cost."""

    max_samples: int = 10_000
    max_labels: int = 32
    max_label_bytes: int = 4096
    max_parse_cpu: float = 0.5  # seconds of this thread's CPU for one body

    @classmethod
    def of(cls, cfg: MetricsSettings) -> Limits:
        return cls(cfg.max_samples, cfg.max_labels, cfg.max_label_bytes, cfg.max_parse_cpu)


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True, slots=True)
class ParseReport:
    """The samples of one body and what was dropped of the rest of it."""

    samples: tuple[Sample, ...]
    parse_errors: int = 0  # malformed lines
    dropped_labels: int = 0  # label sets over the bounds
    nonfinite: int = 0  # NaN or infinite values
    truncated: int = 0  # lines not read: the sample limit was reached
    over_budget: int = 0  # lines not read: the CPU budget ran out
    first_error: str = ""

    @property
    def problems(self) -> int:
        return (
            self.parse_errors + self.dropped_labels + self.nonfinite + self.truncated
            + self.over_budget
        )  # fmt: skip

    @property
    def prometheus(self) -> bool:
        """Whether the body read as Prometheus text at all (some sample, or nothing wrong)."""
        return bool(self.samples) or self.parse_errors == 0


@dataclass
class _Tally:
    samples: list[Sample] = field(default_factory=list)
    parse_errors: int = 0
    dropped_labels: int = 0
    nonfinite: int = 0
    truncated: int = 0
    over_budget: int = 0
    first_error: str = ""

    def error(self, problem: str | Callable[[], str]) -> None:
        """Count a malformed line; ``problem`` (or a callable making it, so that a body of
        bad lines formats one message, not one per line) describes the first."""
        self.parse_errors += 1
        if not self.first_error:
            self.first_error = (problem if isinstance(problem, str) else problem())[:200]

    def report(self) -> ParseReport:
        return ParseReport(
            tuple(self.samples),
            self.parse_errors,
            self.dropped_labels,
            self.nonfinite,
            self.truncated,
            self.over_budget,
            self.first_error,
        )


def parse_exposition(body: bytes | str, limits: Limits) -> ParseReport:
    """Samples of a Prometheus text body, read line by line; never raises.

    A malformed line is counted and skipped. Reading stops, and the lines left are counted,
    when ``max_samples`` samples are kept (``truncated``) or when this thread has spent
    ``max_parse_cpu`` seconds on the body (``over_budget``), so a hostile body costs bounded
    CPU and no more memory than its samples.
    """
    data = body.encode() if isinstance(body, str) else body
    tally = _Tally()
    budget_end = time.thread_time() + limits.max_parse_cpu
    pos, lines = 0, 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        if len(tally.samples) >= limits.max_samples:
            tally.truncated = _sample_lines(data, pos)
            break
        lines += 1
        if lines % _BUDGET_EVERY == 0 and time.thread_time() > budget_end:
            tally.over_budget = _sample_lines(data, pos)
            break
        _parse_line(data[pos:end], limits, tally)
        pos = end + 1
    return tally.report()


def _sample_lines(data: bytes, pos: int) -> int:
    """About how many sample lines are left from ``pos`` (blank lines and comments that
    start their line are not counted), without splitting the rest."""
    newlines = data.count(b"\n", pos)
    skipped = data.count(b"\n#", pos - 1) + data.count(b"\n\n", pos - 1)
    return max(0, newlines + 1 - skipped - data.endswith(b"\n"))


def _parse_line(line: bytes, limits: Limits, tally: _Tally) -> None:
    stripped = line.strip()
    if not stripped or stripped.startswith(b"#"):
        return
    if len(line) > _MAX_LINE:
        tally.error(f"line of {len(line)} bytes exceeds {_MAX_LINE}")
        return
    match = _SAMPLE_LINE.fullmatch(line)
    if match is None or _VALUE.fullmatch(match[3]) is None:
        tally.error(lambda: f"not a sample line: {stripped[:80]!r}")
        return
    labels = _labels(match[2], limits) if match[2] else ()
    if labels is None:
        tally.dropped_labels += 1
        return
    value = float(match[3])
    if not math.isfinite(value):
        tally.nonfinite += 1
        return
    tally.samples.append(Sample(match[1].decode("ascii"), labels, value))


def _labels(text: bytes, limits: Limits) -> tuple[tuple[str, str], ...] | None:
    """The label pairs of ``{...}``, sorted; None when over the bounds."""
    inner, pos = text[1:-1], 0
    pairs: list[tuple[str, str]] = []
    if len(inner) > 2 * limits.max_label_bytes + 4 * limits.max_labels:
        return None
    while pos < len(inner) and inner[pos:].strip():
        match = _LABEL.match(inner, pos)
        if match is None or len(pairs) >= limits.max_labels:
            return None
        value = _ESCAPE.sub(lambda m: _ESCAPES[m[0]].encode(), match[2])
        pairs.append((match[1].decode("ascii"), value.decode("utf-8", "replace")))
        pos = match.end()
    if sum(len(k) + len(v) for k, v in pairs) > limits.max_label_bytes:
        return None
    return tuple(sorted(pairs))


def total(samples: Iterable[Sample], pattern: str) -> float | None:
    """The sum of the samples whose name matches the glob ``pattern``; None when none does."""
    values = [s.value for s in samples if pattern and fnmatch.fnmatchcase(s.name, pattern)]
    return math.fsum(values) if values else None


# -- scraping (worker thread) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScrapeTarget:
    """One environment's metrics URL."""

    env: str
    url: str


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    """One environment's scrape: its samples, or why there are none."""

    env: str
    scraped_at: float
    duration: float
    size: int = 0
    http_status: int | None = None
    error: str = ""
    report: ParseReport | None = None

    @property
    def outcome(self) -> str:
        """The scrape's state in one word or two; a change of it is logged, once."""
        if self.report is not None:
            return "ok" if self.report.prometheus else "not Prometheus text"
        return self.error.partition(":")[0] if self.http_status is None else self.error


def scrape_targets(settings: Settings) -> tuple[ScrapeTarget, ...]:
    """The metrics URL of every environment that has one (``metrics_path = ""``: none)."""
    return tuple(
        ScrapeTarget(env, f"http://{e.host}:{e.port}{e.metrics_path}")
        for env, e in settings.environments.items()
        if e.metrics_path
    )


def scrape_all(
    targets: Sequence[ScrapeTarget], fetch: httpclient.Limits, limits: Limits
) -> tuple[ScrapeResult, ...]:
    """Fetch every target at once, each within the ``fetch`` bounds, and parse each body."""
    workers = min(_MAX_CONCURRENCY, len(targets))
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="scrape") as pool:
        return tuple(pool.map(lambda target: scrape(target, fetch, limits), targets))


def scrape(target: ScrapeTarget, fetch: httpclient.Limits, limits: Limits) -> ScrapeResult:
    """One environment's scrape: only a complete 200 is parsed."""
    scraped_at = time.time()
    answer = httpclient.get(target.url, fetch)
    result = ScrapeResult(
        target.env, scraped_at, answer.elapsed, len(answer.body), http_status=answer.status
    )
    if answer.error is not None:
        return replace(result, error=answer.describe())
    if answer.status != 200:
        return replace(result, error=f"HTTP {answer.status}")
    return replace(result, report=parse_exposition(answer.body, limits))


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
        self.scrapes.labels(result.env, "ok" if result.outcome == "ok" else "error").inc()
        report = result.report
        if report is None:
            return
        for kind in ("parse_errors", "dropped_labels", "nonfinite", "truncated", "over_budget"):
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
