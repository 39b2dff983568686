"""Benchmark: opening and writing a saved TraceSet versus loading the JSON it came from.

Prints, measured in one run on the same generated traces:

* (b)/(a): ``xraykit.load_file`` of the saved file against ``xraykit.load_file`` of the JSON
  lines. Target ≤ 0.2. The two alternate for ``--rounds`` rounds with nothing else loaded,
  as in a fresh notebook; the fastest of each counts.
* (c)/(a'): ``ts.save`` against the JSON load, alternated in the same way while ``ts`` (the
  TraceSet being saved) is loaded. Target ≤ 0.5.

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
    parser.add_argument("--rounds", type=int, default=5, help="timings of each, alternated")
    args = parser.parse_args()
    n = 2_000 if args.small else args.traces
    path = benchmark_file(n)

    with tempfile.TemporaryDirectory(prefix="xraykit-bench-") as folder:
        saved = Path(folder) / f"{path.stem}.traceset"
        ts = xraykit.load_file(path)
        shape = f"{len(ts):,} traces, {len(ts.segments):,} segments, {len(ts.subsegments):,} subsegments"
        ts.save(saved)
        back = xraykit.load_file(saved)
        if not (back.traces.equals(ts.traces) and back.raw_documents.equals(ts.raw_documents)):
            raise SystemExit(f"{saved.name} does not hold the traces of {path.name}: a bug.")
        del ts, back
        a, b = alternating(
            args.rounds, lambda: xraykit.load_file(path), lambda: xraykit.load_file(saved)
        )
        ts = xraykit.load_file(path)
        a2, c = alternating(args.rounds, lambda: xraykit.load_file(path), lambda: ts.save(saved))
        size = saved.stat().st_size

    print(
        f"data: {shape}; JSON {path.stat().st_size / 1e6:.1f} MB ({path.name}), "
        f"saved {size / 1e6:.1f} MB"
    )
    print(f"(a)  xraykit.load_file(JSON)     {a:8.3f} s")
    print(f"(b)  xraykit.load_file(saved)    {b:8.3f} s")
    print(f"(a') xraykit.load_file(JSON)     {a2:8.3f} s   (with the TraceSet to save loaded)")
    print(f"(c)  ts.save(saved)              {c:8.3f} s")
    rows = [
        ("open saved / load JSON  (b)/(a)", b / a, 0.2),
        ("save / load JSON        (c)/(a')", c / a2, 0.5),
    ]
    for label, value, target in rows:
        verdict = "met" if value <= target else "NOT MET"
        print(f"{label:33s} {value:6.2f}   target <= {target:<4}  {verdict}")


if __name__ == "__main__":
    main()
