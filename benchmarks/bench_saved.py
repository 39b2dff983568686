"""Benchmark: opening and writing a saved TraceSet versus loading the JSON it came from.

Prints, measured in one run on the same generated traces:

* (b)/(a): ``xraykit.load_file`` of the saved file against ``xraykit.load_file`` of the JSON
  lines. Target ≤ 0.2.
* (c)/(a): ``ts.save`` against the same JSON load. Target ≤ 0.5.

The three alternate for ``--rounds`` rounds; the fastest of each counts.

Usage::

    .venv/bin/python benchmarks/bench_saved.py              # 50,000 traces, about 150,000 segments
    .venv/bin/python benchmarks/bench_saved.py --small      # 2,000 traces (a quick look)
    .venv/bin/python benchmarks/bench_saved.py --traces 10000
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import alternating, benchmark_file

import xraykit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", type=int, default=50_000)
    parser.add_argument("--small", action="store_true", help="2,000 traces, a quick look")
    parser.add_argument("--rounds", type=int, default=5, help="timings of (a), (b), (c), alternated")
    args = parser.parse_args()
    n = 2_000 if args.small else args.traces
    path = benchmark_file(n)

    with tempfile.TemporaryDirectory(prefix="xraykit-bench-") as folder:
        saved = Path(folder) / f"{path.stem}.traceset"
        ts = xraykit.load_file(path)
        ts.save(saved)
        back = xraykit.load_file(saved)
        if not (back.traces.equals(ts.traces) and len(back.raw_documents) == len(ts.raw_documents)):
            raise SystemExit(f"{saved.name} does not hold the traces of {path.name}: a bug.")
        del back
        a, b, c = alternating(
            args.rounds,
            lambda: xraykit.load_file(path),
            lambda: xraykit.load_file(saved),
            lambda: ts.save(saved),
        )
        size = saved.stat().st_size

    print(
        f"data: {len(ts):,} traces, {len(ts.segments):,} segments, "
        f"{len(ts.subsegments):,} subsegments; JSON {path.stat().st_size / 1e6:.1f} MB "
        f"({path.name}), saved {size / 1e6:.1f} MB"
    )
    print(f"(a) xraykit.load_file(JSON)     {a:8.3f} s")
    print(f"(b) xraykit.load_file(saved)    {b:8.3f} s")
    print(f"(c) ts.save(saved)              {c:8.3f} s")
    rows = [
        ("open saved / load JSON  (b)/(a)", b / a, 0.2),
        ("save / load JSON        (c)/(a)", c / a, 0.5),
    ]
    for label, value, target in rows:
        print(f"{label:32s} {value:6.2f}   target <= {target:<4}  {'met' if value <= target else 'NOT MET'}")


if __name__ == "__main__":
    main()
