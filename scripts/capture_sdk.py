"""Record what the real aws-xray-sdk sends to the X-Ray daemon, as a daemon capture.

Usage::

    .venv/bin/python scripts/capture_sdk.py                       # sample_traces/sdk-capture.capture.gz
    .venv/bin/python scripts/capture_sdk.py --out /tmp/cap.gz     # anywhere else
    .venv/bin/python scripts/capture_sdk.py --send-to 127.0.0.1:2000   # to a running daemon

Everything runs in this process and on 127.0.0.1 only:

* a UDP listener stands in for the daemon (``AWS_XRAY_DAEMON_ADDRESS`` points at it) and
  keeps every packet in arrival order;
* moto's ``ThreadedMotoServer`` plays DynamoDB and SQS;
* ``inventory-svc``, a plain ``http.server`` instrumented by hand (it continues the trace
  from the incoming ``X-Amzn-Trace-Id`` header), answers 200, 404, 429 or 500;
* ``orders-api``, a Flask app with ``XRayMiddleware`` and ``patch_all()``, is driven through
  Flask's test client: it calls inventory-svc with ``requests`` (lower-case methods in the
  documents), DynamoDB and SQS with boto3, sqlite3, raises an exception inside a
  subsegment (so the segment's ``cause`` is a bare exception id), and continues an incoming
  trace header;
* ``orders-batch``, a segment with more than 30 subsegments, makes the SDK stream finished
  subsegments as separate packets, children before parents.

The recorder is configured with ``sampling=False, context_missing="LOG_ERROR",
plugins=("ECSPlugin",)``; never the EC2 plugin, which would call the instance-metadata
address. The output is a gzip file of packets joined by newlines; each packet is the
header line ``{"format":"json","version":1}``, a newline and the document, exactly as sent.
It is not reproducible (ids and times are real), which is why the result is committed.
"""

from __future__ import annotations

import argparse
import gzip
import http.server
import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

OUT = Path(__file__).resolve().parent.parent / "sample_traces" / "sdk-capture.capture.gz"
HEADER = b'{"format":"json","version":1}'


class UdpDaemon:
    """A stand-in X-Ray daemon on 127.0.0.1 that records packets in arrival order."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.packets: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            self.packets.append(data)

    def close(self, settle: float = 0.5) -> list[bytes]:
        """Wait ``settle`` seconds without traffic, stop, and return the packets."""
        seen = -1
        while seen != len(self.packets):
            seen = len(self.packets)
            time.sleep(settle)
        self._stop.set()
        self._thread.join()
        self.sock.close()
        return self.packets


class _Inventory(http.server.BaseHTTPRequestHandler):
    """inventory-svc: answers by path and records its own segment from the trace header."""

    STATUS: ClassVar[dict[str, int]] = {
        "/items/missing": 404,
        "/items/busy": 429,
        "/items/broken": 500,
    }

    def do_GET(self) -> None:  # the name http.server dispatches to
        from aws_xray_sdk.core import xray_recorder
        from aws_xray_sdk.core.models.trace_header import TraceHeader
        from aws_xray_sdk.core.utils import stacktrace

        header = TraceHeader.from_header_str(self.headers.get("X-Amzn-Trace-Id", ""))
        segment = xray_recorder.begin_segment(
            "inventory-svc", traceid=header.root, parent_id=header.parent, sampling=1
        )
        status = self.STATUS.get(self.path, 200)
        body = json.dumps({"path": self.path, "status": status}).encode()
        segment.put_http_meta("method", "GET")
        port = self.server.server_address[1]  # type: ignore[index]  # a (host, port) tuple for AF_INET
        segment.put_http_meta("url", f"http://127.0.0.1:{port}{self.path}")
        segment.put_http_meta("user_agent", self.headers.get("User-Agent", ""))
        segment.put_http_meta("client_ip", self.client_address[0])
        segment.put_annotation("item_path", self.path)
        if status == 500:
            try:
                raise RuntimeError("inventory database is unavailable")
            except RuntimeError as exc:
                segment.add_exception(exc, stacktrace.get_stacktrace(limit=10))
        segment.apply_status_code(status)
        segment.put_http_meta("status", status)
        segment.put_http_meta("content_length", len(body))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        xray_recorder.end_segment()

    def log_message(self, format: str, *args: Any) -> None:  # keep stderr quiet
        pass


@contextmanager
def inventory_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Inventory)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def make_app(inventory: str, moto: str, queue_url: str) -> Any:
    """The instrumented Flask app ``orders-api``."""
    import boto3
    import requests
    from aws_xray_sdk.core import xray_recorder
    from aws_xray_sdk.ext.flask.middleware import XRayMiddleware
    from flask import Flask, jsonify

    app = Flask("orders-api")
    app.logger.disabled = True  # the /checkout exception is intended; keep stderr quiet
    XRayMiddleware(app, xray_recorder)
    dynamodb = boto3.client("dynamodb", endpoint_url=moto, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=moto, region_name="us-east-1")

    @app.get("/items/<item>")
    def get_item(item: str) -> Any:
        xray_recorder.current_segment().set_user(f"cust-{len(item):04d}")
        answer = requests.get(f"{inventory}/items/{item}", timeout=5)
        dynamodb.get_item(TableName="orders", Key={"order_id": {"S": item}})
        xray_recorder.put_annotation("item", item)
        xray_recorder.put_metadata("inventory_answer", answer.json(), "inventory")
        status = {200: 200, 404: 404, 429: 503, 500: 502}[answer.status_code]
        return jsonify(item=item, inventory=answer.status_code), status

    @app.post("/orders")
    def post_order() -> Any:
        segment = xray_recorder.current_segment()
        segment.set_user("cust-0042")
        segment.put_annotation("cart_value", 74.5)
        segment.put_annotation("is_retry", False)
        segment.put_annotation("customer_tier", "premium")
        segment.put_metadata("order", {"lines": [{"sku": "SKU-1", "qty": 2}], "total": 74.5})
        dynamodb.put_item(
            TableName="orders", Item={"order_id": {"S": "ord-1"}, "total": {"N": "74.5"}}
        )
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"order_id": "ord-1"}))
        with xray_recorder.in_subsegment("price-order") as sub:
            sub.put_annotation("lines", 1)
        return jsonify(order_id="ord-1"), 201

    @app.post("/checkout")
    def checkout() -> Any:
        with xray_recorder.in_subsegment("charge-card"):
            raise ValueError("card declined by issuer")

    @app.get("/report")
    def report() -> Any:
        import sqlite3

        db = sqlite3.connect(":memory:")
        db.execute("CREATE TABLE sales (sku TEXT, qty INTEGER)")
        db.executemany("INSERT INTO sales VALUES (?, ?)", [("SKU-1", 2), ("SKU-2", 5)])
        rows = db.execute("SELECT sku, SUM(qty) FROM sales GROUP BY sku").fetchall()
        db.close()
        return jsonify(rows=rows)

    return app


def run_batch(items: int = 40) -> None:
    """A batch job with more than 30 subsegments, so the SDK streams them."""
    import sqlite3

    from aws_xray_sdk.core import xray_recorder

    segment = xray_recorder.begin_segment("orders-batch")
    segment.put_annotation("batch_size", items)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE prices (sku TEXT, price REAL)")
    with xray_recorder.in_subsegment("reprice-all"):
        for i in range(items):
            with xray_recorder.in_subsegment("reprice-item") as sub:
                sub.put_metadata("sku", f"SKU-{i}")
                db.execute("INSERT INTO prices VALUES (?, ?)", (f"SKU-{i}", 1.5 * i))
    db.close()
    xray_recorder.end_segment()


def capture(out: Path) -> int:
    """Run the scenario and write the capture to ``out``; return the number of packets."""
    daemon = UdpDaemon()
    run_scenario(daemon.address)
    packets = daemon.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(b"\n".join(packets))
    return len(packets)


def run_scenario(daemon_address: str) -> None:
    """Run the instrumented apps once, the SDK sending to ``daemon_address``."""
    os.environ.update(
        AWS_XRAY_DAEMON_ADDRESS=daemon_address,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    import boto3
    from aws_xray_sdk.core import patch_all, xray_recorder

    with moto_server() as moto, inventory_server() as inventory:
        # resources first, before anything is patched, so their set-up is not traced
        dynamodb = boto3.client("dynamodb", endpoint_url=moto, region_name="us-east-1")
        dynamodb.create_table(
            TableName="orders",
            KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        queue_url = boto3.client("sqs", endpoint_url=moto, region_name="us-east-1").create_queue(
            QueueName="order-events"
        )["QueueUrl"]

        xray_recorder.configure(
            service="orders-api",
            sampling=False,
            context_missing="LOG_ERROR",
            plugins=("ECSPlugin",),
            daemon_address=daemon_address,
        )
        patch_all()
        app = make_app(inventory, moto, queue_url)
        client = app.test_client()
        for item in ("5", "missing", "busy", "broken"):
            client.get(f"/items/{item}")
        client.post("/orders")
        client.post("/checkout")
        client.get(
            "/report",
            headers={
                "X-Amzn-Trace-Id": f"Root=1-{int(time.time()):08x}-{os.urandom(12).hex()};"
                "Parent=53995c3f42cd8ad8;Sampled=1",
                "X-Forwarded-For": "203.0.113.7",
            },
        )
        run_batch()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write (default {OUT})")
    parser.add_argument(
        "--send-to",
        metavar="HOST:PORT",
        help="send to this daemon (e.g. xraykit's local X-Ray) instead of recording a capture",
    )
    args = parser.parse_args(argv)
    if args.send_to:
        run_scenario(args.send_to)
        print(f"sent the scenario to {args.send_to}")
        return 0
    count = capture(args.out)
    print(f"wrote {count} packets to {args.out}")
    return 0 if count else 1


if __name__ == "__main__":
    sys.exit(main())
