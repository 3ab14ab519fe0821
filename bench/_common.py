"""Shared helpers for the side-by-side benchmarks.

Each case runs every implementation in the same process on the same input,
alternating rounds so background noise hits all of them alike; the best
round counts.  We report ratios, never absolute targets.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def best_time(fn: Callable[[], object], iterations: int, rounds: int) -> float:
    """Seconds per call: the best of *rounds* rounds of *iterations* calls."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(iterations):
            fn()
        best = min(best, (time.perf_counter() - start) / iterations)
    return best


def compare(
    cases: dict[str, Callable[[], object]], iterations: int, rounds: int = 7
) -> dict[str, float]:
    """Time every case, interleaving their rounds; return seconds per call."""
    results = {name: float("inf") for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            results[name] = min(results[name], best_time(fn, iterations, 1))
    return results


def report(title: str, results: dict[str, float], ours: str = "protomata") -> None:
    """Print time per operation and protomata's speed relative to each peer.

    A ratio above 1 means protomata is that many times faster than the peer.
    """
    print(f"\n{title}")
    base = results[ours]
    unit, scale = ("ms", 1e3) if base > 1e-3 else ("us", 1e6)
    for name, seconds in results.items():
        note = "" if name == ours else f"   speed ratio protomata/{name}: {seconds / base:5.2f}x"
        print(f"  {name:<12} {seconds * scale:10.2f} {unit}/op{note}")
