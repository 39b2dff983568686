"""Benchmark: a 1,000,000-trace dataset queried out of core, against loading it into memory.

Writes generated traces as a partitioned dataset, chunk by chunk (never all in memory),
cached under ``benchmarks/data/``. Then, each in a child process whose peak resident memory
(``VmHWM``, read by the child itself) is measured:

* (a) ``open_dataset(path).percentiles(by="service")``: DuckDB over the stored request rows;
* (b) ``open_dataset(path).query(SELECTIVE)``: the expression pushed down as SQL, only the
  matching traces loaded;
* (c) the whole set loaded into memory (``to_traceset()``), then ``analysis.percentiles`` and
  ``ts.query`` on it.

Prints the time and peak memory of each and the ratios (a)/(c) and (b)/(c). Target: (a) and
(b) under 1 GB. When loading everything does not fit (``--memory-traces``, by default the
whole set), (c) runs on that many traces and its time and memory (above what the imports
take) are scaled up linearly to the whole set, and the output says so.

Usage::

    .venv/bin/python benchmarks/bench_dataset.py                 # 1,000,000 traces
    .venv/bin/python benchmarks/bench_dataset.py --small         # 20,000 traces (a quick look)
    .venv/bin/python benchmarks/bench_dataset.py --memory-traces 100000
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import DATA

from xraykit import analysis
from xraykit.dataset import DatasetWriter, open_dataset
from xraykit.samples.generate import generate_traces
from xraykit.traceset import from_responses

#: A selective filter: the pricing back end faulted (about one trace in 200).
SELECTIVE = 'service("pricing") { fault }'
CHUNK = 20_000


def build(n_traces: int, seed: int = 0) -> Path:
    """The dataset of ``n_traces`` generated traces, written CHUNK traces at a time."""
    path = DATA / f"dataset-{n_traces}-{seed}"
    if (path / "_done").exists():
        return path
    if path.exists():
        shutil.rmtree(path)
    writer = DatasetWriter(path, documents=False)
    batch: list[dict] = []
    count, chunk, started = 0, 0, time.perf_counter()
    for response in generate_traces(n_traces, seed=seed):
        batch.append(response)
        count += len(response["Traces"])
        if count >= CHUNK:
            _write(writer, batch, chunk)
            batch, count, chunk = [], 0, chunk + 1
            done = chunk * CHUNK
            rate = done / (time.perf_counter() - started)
            print(f"  written {done:,} of {n_traces:,} traces ({rate:,.0f} a second)", flush=True)
    if batch:
        _write(writer, batch, chunk)
    (path / "_done").write_text("complete\n")
    return path


def _write(writer: DatasetWriter, batch: list[dict], chunk: int) -> None:
    ts = from_responses(batch, on_error="ignore")
    key = f"chunk-{chunk:05d}"
    writer.write(ts, key)
    writer.mark_done(key, {"traces": len(ts)})


# -- the children -------------------------------------------------------------------------------


def child(task: str, path: str, limit: int | None) -> dict:
    """Run one measured task; return what it found and how long each step took."""
    out: dict = {"import_mb": _peak_mb()}  # Python, pandas, Arrow and xraykit loaded
    started = time.perf_counter()
    if task == "percentiles":
        with open_dataset(path, memory_limit="512MB") as ds:
            table = ds.percentiles(by="service")
        out["rows"] = len(table)
        out["requests"] = int(table["count"].sum())
    elif task == "query":
        with open_dataset(path, memory_limit="512MB") as ds:
            found = ds.query(SELECTIVE)
        out["matches"] = len(found)
    else:  # everything in memory
        with open_dataset(path, memory_limit=None) as ds:
            ts = ds.to_traceset(limit=limit)
        out["load_s"] = time.perf_counter() - started
        out["traces"] = len(ts)
        step = time.perf_counter()
        table = analysis.percentiles(ts, level="service", by="service")
        out["percentiles_s"] = time.perf_counter() - step
        out["requests"] = int(table["count"].sum())
        step = time.perf_counter()
        out["matches"] = len(ts.query(SELECTIVE))
        out["query_s"] = time.perf_counter() - step
    out["seconds"] = time.perf_counter() - started
    out["peak_mb"] = _peak_mb()
    return out


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB.

    Not ``ru_maxrss``: Linux carries the parent's peak over ``fork`` and ``exec`` into the
    child's, so a child started by a large parent would report the parent's size.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: kilobytes


def measure(task: str, path: Path, limit: int | None = None) -> dict:
    """Run ``task`` in a child process (it reports its own peak resident memory)."""
    command = [sys.executable, __file__, "--child", task, str(path)]
    if limit is not None:
        command += ["--limit", str(limit)]
    run = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if run.returncode != 0:
        raise SystemExit(f"the {task} child failed ({run.returncode})")
    return json.loads(run.stdout.strip().splitlines()[-1])


def available_memory_mb() -> float:
    """MemAvailable from /proc/meminfo (Linux); infinite elsewhere (nothing is scaled)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", type=int, default=1_000_000)
    parser.add_argument("--small", action="store_true", help="20,000 traces, a quick look")
    parser.add_argument("--memory-traces", type=int, default=None,
                        help="load only this many traces for (c) and scale up")  # fmt: skip
    parser.add_argument("--child", nargs=2, metavar=("TASK", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.limit)))
        return

    n = 20_000 if args.small else args.traces
    print(f"Dataset of {n:,} generated traces (about 3 segments each):")
    started = time.perf_counter()
    path = build(n)
    size = sum(p.stat().st_size for p in path.rglob("*.parquet")) / 1e6
    print(f"  ready in {time.perf_counter() - started:,.0f} s; {size:,.0f} MB of Parquet at {path}")

    a = measure("percentiles", path)
    b = measure("query", path)
    memory_traces = args.memory_traces
    if memory_traces is None:
        # loading everything takes about 8.5 KB of memory per trace (8.4 GB for 1,000,000);
        # where that does not fit, measure a part and scale it up (the output says so)
        fits = int(available_memory_mb() / 0.0085 * 0.8)
        if fits < n:
            memory_traces = max(10_000, min(200_000, fits))
            print(f"  {available_memory_mb():,.0f} MB available: the in-memory baseline loads "
                  f"{memory_traces:,} traces and is scaled up")  # fmt: skip
    part = memory_traces if memory_traces and memory_traces < n else None
    c = measure("memory", path, part)
    scale = n / c["traces"]
    note = "" if part is None else f"  (measured on {c['traces']:,} traces, scaled ×{scale:g})"
    # scaled: what the traces took, times the scale, on top of what the imports took
    c_mb = c["import_mb"] + (c["peak_mb"] - c["import_mb"]) * scale
    c_load = c["load_s"] * scale
    c_pct = (c["load_s"] + c["percentiles_s"]) * scale
    c_query = (c["load_s"] + c["query_s"]) * scale

    print(f"\n(a) dataset percentiles(by='service'): {a['seconds']:7.2f} s, peak {a['peak_mb']:6.0f} MB"
          f"  ({a['rows']} groups, {a['requests']:,} requests)")  # fmt: skip
    print(f"(b) dataset query({SELECTIVE!r}): {b['seconds']:7.2f} s, peak {b['peak_mb']:6.0f} MB"
          f"  ({b['matches']:,} traces)")  # fmt: skip
    print(f"(c) everything in memory: load {c_load:7.2f} s, + percentiles {c['percentiles_s'] * scale:.2f} s,"
          f" + query {c['query_s'] * scale:.2f} s; peak {c_mb:6.0f} MB{note}")  # fmt: skip
    if part is None and (a["requests"] != c["requests"] or b["matches"] != c["matches"]):
        raise SystemExit("the dataset and the in-memory TraceSet disagree")
    print(f"\n(a)/(c) time {a['seconds'] / c_pct:.3f}, memory {a['peak_mb'] / c_mb:.3f}"
          f"   (c = load + percentiles)")  # fmt: skip
    print(f"(b)/(c) time {b['seconds'] / c_query:.3f}, memory {b['peak_mb'] / c_mb:.3f}"
          f"   (c = load + query)")  # fmt: skip
    ok = a["peak_mb"] < 1024 and b["peak_mb"] < 1024
    print(f"Target: (a) and (b) under 1 GB peak: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
