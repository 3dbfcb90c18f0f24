"""The product's one-off HTTP requests, through `requests`, with the project's bounds.

Deploy verification, the pipeline's health and load stages, a rollback's checks and metrics
scrapes GET through `Client` (or `get` for a single request); the alert webhooks POST through
it. Health answers are judged by
the one verdict of `gaia_actors.health`, here (`check_health`, `wait_healthy`) as in the
monitor.

The one exception: the monitor's rounds
---------------------------------------
The HealthMonitor checks every environment at once, every few seconds, and must scale to
hundreds of endpoints. It keeps its own asyncio prober (`gaia_actors.monitoring.probes`),
because that fan-out is CPU-bound on the GIL and `requests` spends most of the budget in its
adapters, urllib3's pool bookkeeping and header handling. Measured on this machine (2 cores,
300 loopback endpoints each answering after 50 ms; `python benchmarks/health_fanout.py`
interleaves both): the asyncio round takes 86-115 ms at 0.07-0.27 ms of client CPU per
check, a `ThreadPoolExecutor(64)` of `requests.get` 455-619 ms at 1.2-1.7 ms per check (kept-
alive sessions included), so 0.14-0.20x the time. The candidates, measured in one run:

=============================================  =========  ===============
client (300 endpoints, 50 ms each)             round      CPU per check
=============================================  =========  ===============
ThreadPoolExecutor(64) + requests.get          431 ms     1.40 ms
64 threads, http.client keep-alive             274 ms     0.28 ms
256 threads, http.client keep-alive            125 ms     0.25 ms
one asyncio loop, streams, keep-alive          66 ms      0.07 ms
=============================================  =========  ===============

Threads over `http.client` cut the CPU, but a bounded pool serialises the waits into waves
and a thread per endpoint costs memory and switching. A request made once per deploy, stage
or scrape costs nothing that matters, and there `requests` is the simpler, better-known
client.
Both paths share the verdict and the same bounds (a connect timeout, a total deadline, a
body bound), so an answer means the same thing whichever fetched it.

Bounds, on every request (`Limits`)
-----------------------------------
- `connect_timeout`: the TCP connect (and TLS handshake).
- `deadline`: the whole request, from its start to the last body byte. `requests`' own
  timeout bounds each socket read, so a server that sends a byte a second holds a request for
  ever; here a watchdog shuts the socket down when the deadline passes, whatever the request
  is doing (reading the head or the body), and the request reports `timeout`.
- `max_body_bytes`: the body is streamed (``stream=True``) and read in pieces; a longer one is
  cut off at the bound and reported `too_large`, its connection dropped.
- Redirects are not followed: a 3xx is an answer, as for Kubernetes' HTTP probes. Proxy
  variables and ``.netrc`` are ignored (``trust_env`` off): the targets are the services this
  daemon runs.

Errors never raise out of `Client.get`: they come back in `Answer.error` (`ErrorKind`), with a
detail; only a malformed URL raises ValueError, since that is a configuration error.

The modules: ``client`` (`Client`, `Limits`, `Answer`), ``watchdog`` (the deadline) and
``health`` (a check judged by the health verdict, a wait until healthy).

"""

from gaia_actors.httpclient.client import Answer, Client, ErrorKind, Limits, get, host_of
from gaia_actors.httpclient.health import check_health, health_verdict, wait_healthy

__all__ = [
    "Answer",
    "Client",
    "ErrorKind",
    "Limits",
    "check_health",
    "get",
    "health_verdict",
    "host_of",
    "wait_healthy",
]
