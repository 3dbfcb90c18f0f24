"""Liveness: a bus behind a deep backlog is busy, not hung; a hung one is still replaced.

    python benchmarks/liveness.py [--events 10000] [--ping-timeout 0.5] [--hangs 5]

An in-process tree (the store and the bus, the JSON log file as the daemon writes it) with
``ping_interval`` 0.05 s and the given ``ping_timeout``:

- flood: ``--events`` events told to the bus at once; *drained* is from the first tell to
  the bus answering a query queued behind them. Every ping sent meanwhile waits behind the
  backlog, far past the timeout. Goal: the bus is never replaced and every event is stored.
- hang: an idle bus told ``Hang`` (a handler that blocks for three timeouts), ``--hangs``
  times; *detected* is from the tell to the supervisor giving up on the bus (its registry
  entry leaving ``running``, polled every millisecond). Goal: every sample within
  ``ping_timeout + 2 x ping_interval`` plus 0.1 s of scheduling.
- flood then hang: the same flood with a ``Hang`` behind it. Goal: every event before the
  hang is stored, and the bus is then replaced once.

The exit status is 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from gaia_actors import logs
from gaia_actors.app import start_root
from gaia_actors.messages import Event, Flush, GetState, Hang, fields_of
from gaia_actors.settings import Settings, load
from gaia_actors.store.models import EventRow
from supervisors import Registry

PING_INTERVAL = 0.05
SCHEDULING = 0.1


def settings_for(root: Path, ping_timeout: float) -> Settings:
    config = root / "gaia.toml"
    config.write_text(
        '[logging]\nconsole = "off"\n[store]\nflush_interval = 0.05\n'
        f"[supervision]\nping_interval = {PING_INTERVAL}\nping_timeout = {ping_timeout}\n"
        "max_restarts = 100\n",  # every hang here is a restart: none of them escalates
        encoding="utf-8",
    )
    settings = load(config, environ={"GAIA_STATE_DIR": str(root / "state")})
    logs.configure(settings.logging, root / "gaia.log")
    return settings


def generation(registry: Registry) -> int:
    node = registry.node("bus")
    return node.generation if node is not None else 0


def replaced(registry: Registry, before: int) -> bool:
    """Whether the supervisor has given up on generation ``before`` (hung, restarting)."""
    node = registry.node("bus")
    return node is not None and (node.generation > before or node.state != "running")


def flood(registry: Registry, name: str, count: int) -> float:
    """Tell ``count`` events named ``name``; seconds until the bus has handled them all."""
    began = time.monotonic()
    for i in range(count):
        registry.tell("bus", Event(name, data=fields_of(i=i)))
    registry.ask("bus", GetState(), timeout=600)
    return time.monotonic() - began


def stored(registry: Registry, name: str) -> int:
    registry.ask("store", Flush(), timeout=60)
    return int(EventRow.select().where(EventRow.name == name).count())


def replaced_after(registry: Registry, began: float, before: int, limit: float) -> float:
    """Seconds from ``began`` until the supervisor gives up on generation ``before``; then
    waits for the next generation to run."""
    deadline = began + limit
    while not replaced(registry, before):
        if time.monotonic() > deadline:
            return float("inf")
        time.sleep(0.001)
    detected = time.monotonic() - began
    while not (generation(registry) > before and registry.is_running("bus")):
        if time.monotonic() > deadline:
            return float("inf")
        time.sleep(0.001)
    return detected


def hang(registry: Registry, timeout: float) -> float:
    before = generation(registry)
    began = time.monotonic()
    registry.tell("bus", Hang(seconds=3 * timeout))
    return replaced_after(registry, began, before, 10 * timeout + 30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--ping-timeout", type=float, default=0.5)
    parser.add_argument("--hangs", type=int, default=5)
    args = parser.parse_args()
    timeout = args.ping_timeout
    bound = timeout + 2 * PING_INTERVAL + SCHEDULING
    with tempfile.TemporaryDirectory(
        ignore_cleanup_errors=True
    ) as tmp:  # a hung thread may write on
        registry = Registry()
        root = start_root(settings_for(Path(tmp), timeout), registry, capabilities=())
        try:
            drained = flood(registry, "bench.flood", args.events)
            flood_ok = generation(registry) == 1 and stored(registry, "bench.flood") == args.events
            print(
                f"flood: {args.events} events at ping_timeout {timeout:g} s drained in "
                f"{drained:.2f} s ({drained / timeout:.1f}x the timeout); bus generation "
                f"{generation(registry)}; stored {stored(registry, 'bench.flood')}/{args.events}"
            )
            times = [hang(registry, timeout) for _ in range(args.hangs)]
            hang_ok = max(times) <= bound
            print(
                f"hang: detected median {statistics.median(times):.3f} s, max {max(times):.3f} s "
                f"(bound ping_timeout + 2 x ping_interval = {bound - SCHEDULING:.2f} s)"
            )
            before = generation(registry)
            began = time.monotonic()
            for i in range(args.events):
                registry.tell("bus", Event("bench.before_hang", data=fields_of(i=i)))
            registry.tell("bus", Hang(seconds=3 * timeout))
            replaced = replaced_after(registry, began, before, 600)
            kept = stored(registry, "bench.before_hang")
            both_ok = kept == args.events and generation(registry) == before + 1
            print(
                f"flood then hang: replaced {replaced:.2f} s after the first tell; stored "
                f"{kept}/{args.events} events told before the hang; bus generation "
                f"{before} -> {generation(registry)}"
            )
        finally:
            root.stop(block=True, timeout=30)
            logs.shutdown()
    ok = flood_ok and hang_ok and both_ok
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
