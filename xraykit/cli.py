"""The ``xraykit`` command: look at trace files from a terminal.

Subcommands:

``xraykit samples``
    list the shipped samples.
``xraykit info FILE_OR_SAMPLE``
    load a file (any supported format) or a sample and print counts, time span, services
    and any problems.
``xraykit query FILE_OR_SAMPLE EXPRESSION``
    print the traces matching an X-Ray filter expression.
``xraykit local [--address A] [--store FILE]``
    run a local X-Ray (daemon, X-Ray API, store) until Ctrl-C.
``xraykit save FILE_OR_SAMPLE OUT``
    convert to a saved TraceSet (one zip of Arrow tables and the compressed documents) that opens fast.

Exit status: 0 on success, 1 when the input had unreadable records (``info``), 2 on a usage
error or an input that cannot be loaded.

Examples
--------
>>> from xraykit.cli import main
>>> main(["info", "shop"])  # doctest: +ELLIPSIS
shop: 2481 traces, 15184 segments, 17679 subsegments
...
0
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from xraykit.exceptions import TraceFileNotFoundError, XrayKitError
from xraykit.local import start as local_start
from xraykit.samples import load_sample, sample_names
from xraykit.traceset import TraceSet, load_file

__all__ = ["main"]


def _load(source: str) -> TraceSet:
    """A path if it exists, else a sample name."""
    if Path(source).exists():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # problems are printed by the command itself
            return load_file(source)
    if source in sample_names():
        return load_sample(source)
    raise TraceFileNotFoundError(
        f"{source!r} is neither a file nor a sample. Samples: {', '.join(sample_names())}."
    )


def _info(ts: TraceSet, name: str) -> int:
    print(
        f"{name}: {len(ts)} traces, {len(ts.segments)} segments, {len(ts.subsegments)} subsegments"
    )
    span = ts.time_span
    if span is not None:
        print(f"time span: {span[0]:%Y-%m-%d %H:%M:%S} to {span[1]:%Y-%m-%d %H:%M:%S} UTC")
        traces = ts.traces
        print(
            f"faults: {int(traces.has_fault.sum())}, errors: {int(traces.has_error.sum())}, "
            f"throttled: {int(traces.has_throttle.sum())}, in progress: {int(traces.is_partial.sum())}"
        )
        print(f"services: {', '.join(ts.services)}")
    if len(ts.problems):
        print(f"{len(ts.problems)} problem(s):")
        with pd.option_context("display.max_colwidth", 120, "display.width", 200):
            print(ts.problems.head(20).to_string(index=False))
        return 1
    return 0


def _serve(
    address: str | None, store: str | None, allow_remote: bool, rate_limit: float | None
) -> int:
    """Run a local X-Ray in the foreground until Ctrl-C (or SIGTERM)."""
    try:
        xr = local_start(address, store=store, allow_remote=allow_remote, rate_limit=rate_limit)
    except (XrayKitError, OSError) as exc:
        print(f"xraykit: the local X-Ray could not start: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with xr:
        print(f"local X-Ray: daemon on {xr.daemon_address} (UDP), API on {xr.endpoint_url}")
        print(f"  export AWS_XRAY_DAEMON_ADDRESS={xr.daemon_address}")
        print(f'  boto3.client("xray", endpoint_url="{xr.endpoint_url}", region_name="us-east-1")')
        print(f'  xraykit.fetch(since="1h", endpoint_url="{xr.endpoint_url}")')
        print("Ctrl-C stops it.", flush=True)
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
        stats = xr.stats()
    print(f"stopped: {stats['traces']} traces stored")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="xraykit", description="Look at AWS X-Ray trace files.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("samples", help="list the shipped samples")
    info = sub.add_parser("info", help="counts, time span, services and problems of a file")
    info.add_argument("source", help="a trace file or a sample name")
    query = sub.add_parser("query", help="traces matching an X-Ray filter expression")
    query.add_argument("source", help="a trace file or a sample name")
    query.add_argument("expression", help="e.g. 'service(\"payments\") { fault }'")
    save = sub.add_parser("save", help="convert to a saved TraceSet, which opens fast")
    save.add_argument("source", help="a trace file or a sample name")
    save.add_argument("out", help="the file to write")
    local = sub.add_parser("local", help="run a local X-Ray: daemon, X-Ray API and store")
    local.add_argument(
        "--address", default=None, help="AWS_XRAY_DAEMON_ADDRESS syntax (default 127.0.0.1:2000)"
    )
    local.add_argument(
        "--store", default=None, help="SQLite file, or :memory: (default: the user data folder)"
    )
    local.add_argument(
        "--allow-remote", action="store_true", help="listen beyond loopback (no authentication)"
    )
    local.add_argument(
        "--rate-limit", type=float, default=None, help="API requests per second before throttling"
    )
    args = parser.parse_args(argv)

    if args.command == "samples":
        print("\n".join(sample_names()))
        return 0
    if args.command == "local":
        return _serve(args.address, args.store, args.allow_remote, args.rate_limit)
    try:
        ts = _load(args.source)
        if args.command == "info":
            return _info(ts, args.source)
        if args.command == "query":
            found = ts.query(args.expression)
            columns = [
                "trace_id",
                "start",
                "response_time_s",
                "http_status",
                "root_service",
                "http_url",
            ]
            with pd.option_context("display.width", 200, "display.max_rows", 50):
                print(
                    found.traces[columns].to_string(index=False)
                    if len(found)
                    else "no trace matches"
                )
            print(f"{len(found)} of {len(ts)} traces match")
            return 0
        print(ts.save(args.out))
        return 0
    except (XrayKitError, FileNotFoundError) as exc:
        print(f"xraykit: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
