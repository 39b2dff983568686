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

import xraykit
from xraykit.simulate import simulate_traces, write_responses

DATA = Path(__file__).resolve().parent / "data"


def benchmark_file(n_traces: int, seed: int = 0) -> Path:
    """Return a JSON-lines file of BatchGetTraces responses with ``n_traces`` traces.

    Generated once per (size, seed) and cached under ``benchmarks/data/`` (git-ignored).
    """
    DATA.mkdir(exist_ok=True)
    path = DATA / f"traces-{n_traces}-{seed}.jsonl"
    if not path.exists():
        partial = path.with_suffix(".partial")
        write_responses(simulate_traces(n_traces, seed=seed), partial)
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


def time_load(path: Path, runs: int = 3) -> tuple[float, xraykit.TraceSet]:
    """Seconds of ``xraykit.load_file(path)`` (best of ``runs``) and the loaded TraceSet."""
    result: list[xraykit.TraceSet] = []

    def load() -> None:
        result[:] = [xraykit.load_file(path)]

    seconds = best_of(runs, load)
    return seconds, result[0]
