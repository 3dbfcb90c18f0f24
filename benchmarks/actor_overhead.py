"""Tell throughput and ask rate: bare Pykka against the same work through gaia_actors.

Ours = name resolution in the registry + typed ``match`` dispatch in a GaiaActor + a live
supervision tree (liveness pings running). Both sides run in this one process, alternating,
best of ``--repeat`` runs each, so machine noise hits both alike.

    python benchmarks/actor_overhead.py [--tells 200000] [--asks 20000] [--repeat 5]
    python benchmarks/actor_overhead.py --ops   # "ops/sec: N": our tell rate, for `improve`

Goal: ours >= 0.8x bare Pykka for both.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import pykka

from gaia_actors.actor import GaiaActor
from gaia_actors.messages import message
from supervisors import ChildSpec, Link, Registry, Supervisor


@message
class Add:
    """Benchmark command."""

    amount: int


@message
class Total:
    """Benchmark query."""


class BareCounter(pykka.ThreadingActor):
    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Add):
            self.total += message.amount
            return None
        if isinstance(message, Total):
            return self.total
        return None


class Counter(GaiaActor):
    def __init__(self, link: Link) -> None:
        super().__init__(link)
        self.total = 0

    def receive(self, message: Any) -> Any:
        match message:
            case Add(amount=amount):
                self.total += amount
            case Total():
                return self.total
            case _:
                return self.unhandled(message)
        return None


def bare_tells(ref: pykka.ActorRef[Any], n: int) -> float:
    msg = Add(1)
    start = time.perf_counter()
    for _ in range(n):
        ref.tell(msg)
    ref.ask(Total(), timeout=60)
    return n / (time.perf_counter() - start)


def bare_asks(ref: pykka.ActorRef[Any], n: int) -> float:
    msg = Total()
    start = time.perf_counter()
    for _ in range(n):
        ref.ask(msg, timeout=5)
    return n / (time.perf_counter() - start)


def our_tells(registry: Registry, n: int) -> float:
    msg = Add(1)
    start = time.perf_counter()
    for _ in range(n):
        registry.tell("counter", msg)
    registry.ask("counter", Total(), timeout=60)
    return n / (time.perf_counter() - start)


def our_asks(registry: Registry, n: int) -> float:
    msg = Total()
    start = time.perf_counter()
    for _ in range(n):
        registry.ask("counter", msg, timeout=5)
    return n / (time.perf_counter() - start)


def tell_rate(tells: int, repeat: int) -> float:
    """Our tells per second through a live tree: the median of ``repeat`` runs."""
    registry = Registry()
    root = Supervisor.start_root("root", [ChildSpec("counter", Counter.start)], registry)
    try:
        return statistics.median(our_tells(registry, tells) for _ in range(max(1, repeat)))
    finally:
        root.stop(block=True, timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tells", type=int, help="per run (default 200,000; 50,000 with --ops)")
    parser.add_argument("--asks", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--ops",
        action="store_true",
        help="quick: only our tell rate, printed as 'ops/sec: N' (the improvement cycle's "
        "benchmark): the median of --repeat runs",
    )
    args = parser.parse_args()
    if args.ops:
        print(f"ops/sec: {tell_rate(args.tells or 50_000, args.repeat):.0f}")
        return
    args.tells = args.tells or 200_000

    bare = BareCounter.start()
    registry = Registry()
    root = Supervisor.start_root("root", [ChildSpec("counter", Counter.start)], registry)
    results: dict[str, list[float]] = {
        k: [] for k in ("bare_tell", "our_tell", "bare_ask", "our_ask")
    }
    try:
        for _ in range(args.repeat):
            results["bare_tell"].append(bare_tells(bare, args.tells))
            results["our_tell"].append(our_tells(registry, args.tells))
            results["bare_ask"].append(bare_asks(bare, args.asks))
            results["our_ask"].append(our_asks(registry, args.asks))
    finally:
        bare.stop()
        root.stop(block=True, timeout=10)
    # Runs alternate, so each round's ratio compares two runs made moments apart; the median
    # ratio is the figure least moved by whatever else the machine is doing.
    print(f"{'':12}{'bare pykka':>14}{'gaia_actors':>14}{'ratio':>8}{'ratio range':>16}")
    for kind in ("tell", "ask"):
        bare_runs, our_runs = results[f"bare_{kind}"], results[f"our_{kind}"]
        ratios = sorted(o / b for o, b in zip(our_runs, bare_runs, strict=True))
        b, o = statistics.median(bare_runs), statistics.median(our_runs)
        spread = f"{ratios[0]:.2f}-{ratios[-1]:.2f}"
        ratio = statistics.median(ratios)
        print(f"{kind + ' msg/s':12}{b:>14,.0f}{o:>14,.0f}{ratio:>8.2f}{spread:>16}")
    print(
        f"(medians of {args.repeat} alternating rounds; {args.tells} tells and {args.asks} asks"
        " per run; goal: ratio >= 0.80)"
    )


if __name__ == "__main__":
    main()
