"""Benchmark: loading traces versus merely parsing them, and versus the obvious approach.

Prints, measured in one run on the same generated traces:

* (b)/(a): ``xraykit.load_file`` against parsing the same bytes with orjson alone (each
  line, and each segment ``Document`` string inside it: the least any loader must do).
  Target ≤ 2.5. The two alternate for ``--rounds`` rounds; the fastest of each counts.
* the same ratio for the same traces written one trace per line (``{"Id": ..., "Segments":
  [...]}``, what ``jq -c '.Traces[]'`` gives): within 1.2 times the ratio above.
* (c)/(b): the obvious ``json.loads`` + ``pandas.json_normalize`` of segments and
  subsegments against ``xraykit.load_file``. Target ≥ 10.
* peak memory of a load, in a fresh process, above the resident set after
  ``import xraykit, pandas``, against the file size. Target ≤ 1.5.

Usage::

    .venv/bin/python benchmarks/bench_load.py              # 50,000 traces, about 150,000 segments
    .venv/bin/python benchmarks/bench_load.py --small      # 2,000 traces (a quick look)
    .venv/bin/python benchmarks/bench_load.py --traces 10000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pandas as pd
from common import alternating, benchmark_file, best_of

import xraykit


def parse_with_orjson(path: Path) -> int:
    """(a) Turn the file's bytes into Python objects, nested documents included."""
    count = 0
    with open(path, "rb") as f:
        for line in f:
            value = orjson.loads(line)
            for trace in value.get("Traces", [value]):
                for segment in trace["Segments"]:
                    orjson.loads(segment["Document"])
                    count += 1
    return count


def trace_per_line_file(path: Path) -> Path:
    """The same traces, one trace object per line (written once, next to ``path``)."""
    out = path.with_name(path.stem + ".trace-per-line.jsonl")
    if not out.exists():
        partial = out.with_suffix(".partial")
        with open(path, "rb") as f, open(partial, "wb") as g:
            for line in f:
                for trace in orjson.loads(line)["Traces"]:
                    g.write(orjson.dumps(trace) + b"\n")
        partial.rename(out)
    return out


def obvious_approach(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(c) What one would write first: json.loads everything, json_normalize the entities."""
    segments, subsegments = [], []
    with open(path) as f:
        for line in f:
            for trace in json.loads(line)["Traces"]:
                for segment in trace["Segments"]:
                    doc = json.loads(segment["Document"])
                    segments.append(doc)
                    stack = [(doc, doc["id"])]
                    while stack:
                        entity, segment_id = stack.pop()
                        for sub in entity.get("subsegments", []):
                            subsegments.append(
                                {**sub, "segment_id": segment_id, "trace_id": doc["trace_id"]}
                            )
                            stack.append((sub, segment_id))
    return (
        pd.json_normalize(segments, max_level=3),
        pd.json_normalize(subsegments, max_level=3),
    )


PEAK = textwrap.dedent(
    """
    import sys
    import xraykit, pandas

    def resident(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) * 1024

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak: a child inherits its parent's from before exec
    before = resident("VmRSS:")
    ts = xraykit.load_file(sys.argv[1])
    print(resident("VmHWM:") - before)
    """
)


def peak_memory(path: Path) -> int:
    """Growth of the peak resident set while loading, in a fresh process (bytes), above what
    the process holds after ``import xraykit, pandas``: the first load's own imports count."""
    out = subprocess.run(
        [sys.executable, "-c", PEAK, str(path)], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", type=int, default=50_000)
    parser.add_argument("--small", action="store_true", help="2,000 traces, a quick look")
    parser.add_argument("--rounds", type=int, default=5, help="timings of (a) and (b), alternated")
    args = parser.parse_args()
    n = 2_000 if args.small else args.traces
    path = benchmark_file(n)
    per_line = trace_per_line_file(path)
    size = path.stat().st_size

    a, b, a2, b2 = alternating(
        args.rounds,
        lambda: parse_with_orjson(path),
        lambda: xraykit.load_file(path),
        lambda: parse_with_orjson(per_line),
        lambda: xraykit.load_file(per_line),
    )
    ts = xraykit.load_file(path)
    c = best_of(1, lambda: obvious_approach(path))
    peak = peak_memory(path)

    print(
        f"data: {len(ts):,} traces, {len(ts.segments):,} segments, "
        f"{len(ts.subsegments):,} subsegments, {size / 1e6:.1f} MB ({path.name})"
    )
    print(f"(a) orjson parse only          {a:8.3f} s   one trace per line {a2:7.3f} s")
    print(f"(b) xraykit.load_file          {b:8.3f} s   one trace per line {b2:7.3f} s")
    print(f"(c) json.loads + json_normalize {c:7.3f} s")
    rows = [
        ("load / orjson parse   (b)/(a)", b / a, "<=", 2.5),
        ("  one trace per line  (b')/(a')", b2 / a2, "<=", 2.5),
        ("  per line / responses", (b2 / a2) / (b / a), "<=", 1.2),
        ("obvious / load        (c)/(b)", c / b, ">=", 10.0),
        ("peak memory / file size", peak / size, "<=", 1.5),
    ]
    for label, value, op, target in rows:
        ok = value <= target if op == "<=" else value >= target
        print(f"{label:32s} {value:6.2f}   target {op} {target:<4}  {'met' if ok else 'NOT MET'}")


if __name__ == "__main__":
    main()
