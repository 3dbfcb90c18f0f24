"""Scraping: every environment's metrics path fetched at once (worker threads), each body parsed.

Each fetch goes through ``gaia_actors.httpclient``: a connect timeout, a deadline for the whole
response that a trickling server cannot stretch, a bound on the body.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Sequence
from dataclasses import replace

from gaia_actors import httpclient
from gaia_actors.monitoring.exposition import Limits, ParseReport, parse_exposition
from gaia_actors.settings import Settings
from supervisors.records import record

MAX_CONCURRENCY = 64


@record
class ScrapeTarget:
    """One environment's metrics URL."""

    env: str
    url: str


@record
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
    workers = min(MAX_CONCURRENCY, len(targets))
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
