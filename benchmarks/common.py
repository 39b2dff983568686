"""Shared benchmark data: generated traces cached on disk, and a timed load.

Every benchmark compares two timings taken in the same run on the same data, so a slow or
busy machine moves both alike; the printed ratio is what counts.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xraykit.samples.generate import generate_traces, write_responses

DATA = Path(__file__).resolve().parent / "data"


def benchmark_file(n_traces: int, seed: int = 0) -> Path:
    """Return a JSON-lines file of BatchGetTraces responses with ``n_traces`` traces.

    Generated once per (size, seed) and cached under ``benchmarks/data/`` (git-ignored).
    """
    DATA.mkdir(exist_ok=True)
    path = DATA / f"traces-{n_traces}-{seed}.jsonl"
    if not path.exists():
        partial = path.with_suffix(".partial")
        write_responses(generate_traces(n_traces, seed=seed), partial)
        partial.rename(path)
    return path


def best_of(runs: int, func: Callable[[], object]) -> float:
    """The fastest of ``runs`` timings of ``func()``, in seconds (garbage collected first)."""
    times = []
    for _ in range(runs):
        gc.collect()
        t = time.perf_counter()
        func()
        times.append(time.perf_counter() - t)
    return min(times)


def alternating(rounds: int, *funcs: Callable[[], object]) -> list[float]:
    """The fastest timing of each of ``funcs``, run in turn for ``rounds`` rounds (seconds).

    Taking turns puts the timings that a ratio compares in the same stretches of time, so a
    busy spell of the machine slows both rather than one of them.
    """
    times: list[list[float]] = [[] for _ in funcs]
    for _ in range(rounds):
        for own, func in zip(times, funcs, strict=True):
            own.append(best_of(1, func))
    return [min(own) for own in times]
