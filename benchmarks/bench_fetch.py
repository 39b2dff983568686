"""Benchmark: xraykit.fetch against the plain sequential boto3 loop, with 50 ms per call.

A moto server on 127.0.0.1 sits behind a WSGI middleware that adds ``--latency`` seconds to
every request (a stand-in for the round trip to AWS). Both contenders pull the same traces
from the same endpoint:

* the loop a user would write: ``GetTraceSummaries`` (every page), then one
  ``batch_get_traces`` call per 5 ids, one after another;
* ``xraykit.fetch(..., cache=False, progress=False)`` with its defaults.

Prints the speed ratio and both call counts (the target: ≥ 5× faster, with no more calls
than ⌈ids/5⌉ + pages + retries). Run::

    python benchmarks/bench_fetch.py            # 1,000 traces
    python benchmarks/bench_fetch.py --small    # 200 traces, a quick look
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any


class Latency:
    """WSGI middleware: sleep before every request and count requests per path.

    ``POST /bench/latency/<seconds>`` sets the delay and clears the counts;
    ``GET /bench/counts`` answers the counts as JSON.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.delay = 0.0
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/bench/"):
            if path.startswith("/bench/latency/"):
                with self.lock:
                    self.delay = float(path.rsplit("/", 1)[1])
                    self.counts.clear()
            with self.lock:
                body = json.dumps(self.counts).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        with self.lock:
            self.counts[path] += 1
        if self.delay:
            time.sleep(self.delay)
        return self.app(environ, start_response)


def serve() -> None:
    """Run moto behind the middleware on 127.0.0.1 until stdin closes; print the port."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    middleware = Latency(DomainDispatcherApplication(create_backend_app))
    server = make_server(
        "127.0.0.1", 0, middleware, threaded=True, request_handler=MotoRequestHandler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_port, flush=True)
    sys.stdin.read()  # the parent closes stdin (or exits): stop
    server.shutdown()


class Endpoint:
    """moto in its own process, as AWS would be: no GIL shared with the client."""

    def __init__(self) -> None:
        import subprocess

        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        port = self.process.stdout.readline().strip()
        if not port.isdigit():
            self.close()
            raise RuntimeError(f"the moto server did not start (it printed {port!r})")
        self.url = f"http://127.0.0.1:{port}"

    def _ask(self, path: str, method: str) -> dict[str, int]:
        import urllib.request

        request = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(request, timeout=30) as answer:
            return dict(json.loads(answer.read()))

    def set_latency(self, seconds: float) -> None:
        self._ask(f"/bench/latency/{seconds}", "POST")

    def counts(self) -> dict[str, int]:
        return self._ask("/bench/counts", "GET")

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except Exception:
            self.process.kill()
            self.process.wait()


def seed(client: Any, count: int) -> list[str]:
    """Store ``count`` two-segment traces from half an hour ago; return their ids."""
    when = datetime.now(UTC) - timedelta(minutes=30)
    epoch = int(when.timestamp())
    documents, ids = [], []
    for n in range(count):
        trace_id = f"1-{epoch:08x}-{n:024x}"
        start = epoch + (n % 600) / 1000
        ids.append(trace_id)
        documents.append(json.dumps({
            "id": f"{n:016x}", "trace_id": trace_id, "name": "orders-api", "start_time": start,
            "end_time": start + 0.2, "http": {"request": {"method": "GET", "url": "https://x/o"},
                                             "response": {"status": 200}},
            "subsegments": [{"id": f"a{n:015x}", "name": "inventory", "start_time": start + 0.01,
                             "end_time": start + 0.15, "namespace": "remote"}],
        }))  # fmt: skip
        documents.append(json.dumps({
            "id": f"b{n:015x}", "trace_id": trace_id, "parent_id": f"a{n:015x}",
            "name": "inventory", "start_time": start + 0.02, "end_time": start + 0.14,
        }))  # fmt: skip
    for i in range(0, len(documents), 100):
        client.put_trace_segments(TraceSegmentDocuments=documents[i : i + 100])
    return ids


def sequential(client: Any, start: datetime, end: datetime) -> int:
    """The plain loop: every page of summaries, then one batch_get_traces per 5 ids."""
    ids: list[str] = []
    for page in client.get_paginator("get_trace_summaries").paginate(StartTime=start, EndTime=end):
        ids.extend(s["Id"] for s in page["TraceSummaries"])
    traces = []
    for i in range(0, len(ids), 5):
        traces.extend(client.batch_get_traces(TraceIds=ids[i : i + 5])["Traces"])
    return len(traces)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=1000, help="traces to pull (default 1000)")
    parser.add_argument("--small", action="store_true", help="200 traces, a quick look")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added per call")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    count = 200 if args.small else args.traces

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, "testing")
    import boto3

    from xraykit.aws import fetch

    endpoint = Endpoint()
    try:
        client = boto3.client("xray", endpoint_url=endpoint.url, region_name="us-east-1")
        ids = seed(client, count)
        end = datetime.now(UTC)
        start = end - timedelta(hours=1)

        endpoint.set_latency(args.latency)
        t0 = time.perf_counter()
        got = sequential(client, start, end)
        plain_s = time.perf_counter() - t0
        counts = endpoint.counts()
        pages = counts.get("/TraceSummaries", 0)
        plain_calls = pages + counts.get("/Traces", 0)

        endpoint.set_latency(args.latency)
        t0 = time.perf_counter()
        ts = fetch(start=start, end=end, client=client, cache=False, progress=False)
        fetch_s = time.perf_counter() - t0
        counts = endpoint.counts()
        fetch_calls = counts.get("/TraceSummaries", 0) + counts.get("/Traces", 0)
        other = sum(counts.values()) - fetch_calls
    finally:
        endpoint.close()

    if got != count or len(ts) != count:
        print(f"FAILED: expected {count} traces, the loop got {got} and fetch got {len(ts)}")
        return 1
    bound = math.ceil(len(ids) / 5) + pages + ts.cost.retries
    ratio = plain_s / fetch_s
    print(f"bench_fetch: {count} traces, {args.latency * 1000:.0f} ms added per call")
    print(f"  sequential loop : {plain_s:7.2f} s, {plain_calls} calls")
    print(f"  xraykit.fetch   : {fetch_s:7.2f} s, {fetch_calls} calls "
          f"(+{other} Transaction Search check; bound ⌈ids/5⌉ + pages + retries = {bound})")  # fmt: skip
    print(f"  speed ratio     : {ratio:.1f}x (target >= 5x)")
    ok = ratio >= 5 and fetch_calls <= bound
    print("  OK" if ok else "  BELOW TARGET")
    return 0


if __name__ == "__main__":
    sys.exit(main())
