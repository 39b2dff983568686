"""Benchmark: computing the service graph versus loading the same traces.

Target (DESIGN.md): ``xraykit.service_graph`` takes at most 0.3× the time of
``xraykit.load_file`` on the same generated data. Both are measured in this one run, so a
slow or busy machine changes both alike; the printed ratio is what matters. Also printed:
``graph_frames`` (the node and edge rows that filter expressions and the latency tables
use, computed in one pass).

Usage::

    .venv/bin/python benchmarks/bench_servicegraph.py            # 50,000 traces
    .venv/bin/python benchmarks/bench_servicegraph.py --small    # about 2,000, a quick look
    .venv/bin/python benchmarks/bench_servicegraph.py --traces 10000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xraykit.graph import graph_frames, service_graph

TARGET = 0.3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=50_000, help="number of traces")
    parser.add_argument("--small", action="store_true", help="about 2,000 traces, a quick look")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n = 2_000 if args.small else args.traces

    from common import alternating, benchmark_file

    import xraykit

    path = benchmark_file(n, seed=args.seed)
    ts = xraykit.load_file(path)
    # load and graph take turns, so that a busy spell of the machine slows both alike
    load_s, graph_s, rows_s = alternating(
        5,
        lambda: xraykit.load_file(path),
        lambda: service_graph(ts),
        lambda: graph_frames(ts),
    )
    graph = service_graph(ts)

    ratio = graph_s / load_s
    print(
        f"data: {path.name}: {len(ts):,} traces, {len(ts.segments):,} segments, "
        f"{len(ts.subsegments):,} subsegments -> {len(graph.nodes)} nodes, "
        f"{len(graph.edges)} edges"
    )
    print(f"load_file:            {load_s:8.3f} s")
    print(f"graph_frames:         {rows_s:8.3f} s  ({rows_s / load_s:.3f}x load)")
    print(f"service_graph:        {graph_s:8.3f} s")
    verdict = "OK" if ratio <= TARGET else "ABOVE TARGET"
    print(f"ratio service_graph / load: {ratio:.3f} (target <= {TARGET}) {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
