"""Benchmark: segment documents ingested per second by the local X-Ray's daemon.

One :class:`~xraykit.local.daemon.Daemon` on a loopback port (port 0), storing into
``Store(":memory:")``; one sender, another process, sends generated segment documents
(:func:`xraykit.samples.generate.generate_traces`) as fast as it can, one datagram each.
Prints documents stored per second, from the first datagram sent until the last document
stored (target ≥ 10,000/s; X-Ray's own regional quota is 2,600/s), and checks that every
document sent is accounted for: stored, rejected or counted as dropped. With the background
indexer of a running local X-Ray following the store (:mod:`xraykit.local.mirror`: it parses
what arrives, debounced, for fast queries) as the server runs it, and how long after the last
document it caught up; with the default buffer of 10,000 documents (a sender faster than the
writer loses the oldest, counted) and with a buffer that holds the whole burst (the writer's
own pace); then the latter without the indexer, for comparison.

Usage::

    .venv/bin/python benchmarks/bench_local.py                 # 50,000 documents, ~15 s
    .venv/bin/python benchmarks/bench_local.py --documents 5000
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import orjson
from common import benchmark_file

from xraykit.local.daemon import Daemon
from xraykit.local.mirror import Indexer, Mirror
from xraykit.local.store import Store

HEADER = b'{"format":"json","version":1}\n'

SENDER = textwrap.dedent(
    """
    import socket, sys
    port = int(sys.argv[2])
    datagrams = open(sys.argv[1], "rb").read().split(b"\\n\\x00")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sys.stdout.write("ready\\n"); sys.stdout.flush(); sys.stdin.readline()
    send = sock.sendto
    address = ("127.0.0.1", port)
    for data in datagrams:
        send(data, address)
    """
)


def documents(count: int) -> list[bytes]:
    """``count`` segment documents (JSON bytes) from generated traces."""
    docs: list[bytes] = []
    with open(benchmark_file(count // 3 + 100), "rb") as f:
        for line in f:
            for trace in orjson.loads(line)["Traces"]:
                for segment in trace["Segments"]:
                    docs.append(segment["Document"].encode())
                    if len(docs) == count:
                        return docs
    return docs


def run(count: int, buffer_documents: int, index: bool) -> dict[str, float]:
    docs = documents(count)
    store = Store(":memory:")
    indexer = Indexer(Mirror(store)).start() if index else None
    if indexer is not None:
        indexer.warm.wait(30)
    daemon = Daemon(store, ("127.0.0.1", 0), buffer_documents=buffer_documents)
    daemon.start()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "datagrams"
        path.write_bytes(b"\n\x00".join(HEADER + d for d in docs))
        sender = subprocess.Popen(
            [sys.executable, "-c", SENDER, str(path), str(daemon.address[1])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert sender.stdout is not None and sender.stdin is not None
        sender.stdout.readline()
        start = time.perf_counter()
        sender.stdin.write(b"go\n")
        sender.stdin.flush()
        sender.wait(timeout=60)
        sent_time = time.perf_counter() - start
        daemon.stop()
        elapsed = time.perf_counter() - start
        caught_up = float("nan")
        if indexer is not None:
            indexer.wait_current(600)
            caught_up = time.perf_counter() - start - elapsed
            indexer.stop()
    stats = daemon.stats()
    rejected = sum(stats["rejected"].values())
    dropped = stats["dropped_full"] + stats["dropped_socket"]
    stored = stats["accepted"]
    store.close()
    return {
        "sent": len(docs),
        "send_s": sent_time,
        "elapsed_s": elapsed,
        "accepted": stored,
        "rejected": rejected,
        "dropped_full": stats["dropped_full"],
        "dropped_socket": stats["dropped_socket"],
        "unaccounted": len(docs) - stored - rejected - dropped,
        "caught_up_s": caught_up,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=50_000)
    args = parser.parse_args()
    failed = False
    runs = (
        (10_000, "default buffer", True),
        (args.documents, "buffer holding all", True),
        (args.documents, "buffer holding all", False),
    )
    for buffer, label, index in runs:
        r = run(args.documents, buffer, index)
        rate = r["accepted"] / r["elapsed_s"]
        indexing = (
            f"indexer following, caught up {r['caught_up_s']:.2f} s after the last document"
            if index
            else "no indexer"
        )
        print(
            f"local daemon, {label} ({buffer:,}), {indexing}: {r['sent']:,} documents sent in "
            f"{r['send_s']:.2f} s by one sender; {r['accepted']:,} stored in "
            f"{r['elapsed_s']:.2f} s = {rate:,.0f} documents/s (target ≥ 10,000/s)"
        )
        print(
            f"  rejected {r['rejected']:,}, dropped (buffer full) {r['dropped_full']:,}, dropped "
            f"by the kernel {r['dropped_socket']:,}, unaccounted {r['unaccounted']:,} (must be 0)"
        )
        failed |= r["unaccounted"] != 0
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
