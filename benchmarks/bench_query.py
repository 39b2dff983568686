"""Benchmark: evaluating filter expressions versus loading the same traces.

Target (DESIGN.md): evaluating a mixed filter expression over a loaded TraceSet takes at
most 0.3x the time of ``xraykit.load_file`` on the same generated data. Both are measured in
this one run, so a slow or busy machine changes both alike; the printed ratios are what
matter. Two expressions are timed:

- ``simple``: keywords on the trace, string operators, an annotation, precedence;
- ``mixed``: the same plus ``service()`` and ``edge()`` blocks, which need the service graph's
  node and edge rows (computed once per evaluation).

Usage::

    .venv/bin/python benchmarks/bench_query.py            # 50,000 traces
    .venv/bin/python benchmarks/bench_filters.py --small    # about 2,000, a quick look
    .venv/bin/python benchmarks/bench_query.py --traces 10000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xraykit.query import evaluate, parse

TARGET = 0.3

SIMPLE = (
    '(responsetime > 0.05 OR fault OR http.status = 404) AND http.url CONTAINS "/items/" '
    'AND !partial OR annotation.template = "search" AND http.method = "GET" OR throttle'
)
MIXED = (
    f"{SIMPLE} OR "
    'service("pricing") { fault OR responsetime > 0.03 } AND !service("items") { throttle } '
    'OR edge(id(type: "AWS::ECS::Container"), "prices") { error }'
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=50_000, help="number of traces")
    parser.add_argument("--small", action="store_true", help="about 2,000 traces, a quick look")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n = 2_000 if args.small else args.traces

    from common import alternating, benchmark_file

    import xraykit

    path = benchmark_file(n, seed=args.seed)
    ts = xraykit.load_file(path)
    parse(MIXED)  # the parser is built once per process; not part of an evaluation
    # load and evaluations take turns, so that a busy spell of the machine slows all alike
    load_s, *eval_s = alternating(
        5,
        lambda: xraykit.load_file(path),
        *(lambda e=e: evaluate(ts, e) for e in (SIMPLE, MIXED)),
    )
    print(
        f"data: {path.name}: {len(ts):,} traces, {len(ts.segments):,} segments, "
        f"{len(ts.subsegments):,} subsegments, {len(ts.annotations):,} annotations"
    )
    print(f"load_file: {load_s:.3f} s")
    for label, expression, seconds in (("simple", SIMPLE, eval_s[0]), ("mixed", MIXED, eval_s[1])):
        matched = int(evaluate(ts, expression).sum())
        ratio = seconds / load_s
        verdict = "ok" if ratio <= TARGET else "above target"
        print(
            f"{label:>6}: {seconds:.3f} s, {matched:,} matches, ratio {ratio:.3f} "
            f"(target <= {TARGET}) {verdict}"
        )
    return 0  # ratios are printed, never asserted


if __name__ == "__main__":
    raise SystemExit(main())
