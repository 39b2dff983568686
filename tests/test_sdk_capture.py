"""The sdk-capture sample and the script that records it from the real aws-xray-sdk."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import xraykit

ROOT = Path(__file__).resolve().parent.parent
CAPTURE = ROOT / "sample_traces" / "sdk-capture.capture.gz"
HEADER = '{"format":"json","version":1}'


def _packets(path: Path) -> list[tuple[str, dict[str, Any]]]:
    lines = gzip.decompress(path.read_bytes()).decode().split("\n")
    assert len(lines) % 2 == 0, "every packet is a header line and a document line"
    return [(lines[i], json.loads(lines[i + 1])) for i in range(0, len(lines), 2)]


def _walk(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = [doc]
    for sub in doc.get("subsegments", []):
        out.extend(_walk(sub))
    return out


def check_capture(path: Path) -> None:
    """What the SDK sends, as moto-and-sdk.md Part B describes it."""
    packets = _packets(path)
    assert {header for header, _ in packets} == {HEADER}
    docs = [doc for _, doc in packets]
    entities = [e for d in docs for e in _walk(d)]
    for doc in docs:
        assert re.fullmatch(r"1-[0-9a-f]{8}-[0-9a-f]{24}", doc["trace_id"])
        assert doc["in_progress"] is False  # always present, never true
    for entity in entities:
        assert re.fullmatch(r"[0-9a-f]{16}", entity["id"])
    segments = [d for d in docs if d.get("type") != "subsegment"]
    streamed = [d for d in docs if d.get("type") == "subsegment"]
    # the batch segment streamed its finished subsegments first, children before parents
    assert len(streamed) > 30
    batch = next(i for i, (_, d) in enumerate(packets) if d["name"] == "orders-batch")
    assert all(i < batch for i, (_, d) in enumerate(packets) if d.get("type") == "subsegment")
    assert all(d["parent_id"] and d["trace_id"] == docs[batch]["trace_id"] for d in streamed)
    names = Counter(d["name"] for d in segments)
    assert names["orders-api"] >= 6 and names["inventory-svc"] == 4
    # statuses from the hand-instrumented downstream, and their flags
    downstream = {
        d["http"]["response"]["status"]: d for d in segments if d["name"] == "inventory-svc"
    }
    assert set(downstream) == {200, 404, 429, 500}
    assert downstream[429].get("throttle") and downstream[429].get("error")
    assert downstream[500].get("fault") and "error" not in downstream[200]
    # requests sends lower-case methods; botocore subsegments are named after the endpoint
    remote = [e for e in entities if e.get("namespace") == "remote" and "http" in e]
    assert remote and {e["http"]["request"]["method"] for e in remote} == {"get"}
    assert {"dynamodb", "sqs"} <= {e["name"] for e in entities if e.get("namespace") == "aws"}
    assert any(e.get("sql", {}).get("database_type") == "sqlite3" for e in entities)
    # the exception raised in charge-card: recorded there, referenced by id on the segment
    bare = [d for d in segments if isinstance(d.get("cause"), str)]
    assert bare
    exception_ids = {
        x["id"]
        for e in entities
        if isinstance(e.get("cause"), dict)
        for x in e["cause"]["exceptions"]
    }
    assert all(d["cause"] in exception_ids for d in bare)
    # an incoming trace header: a segment whose parent is not in the capture
    ids = {e["id"] for e in entities}
    assert any(d.get("parent_id") and d["parent_id"] not in ids for d in segments)


def test_committed_capture_is_what_the_sdk_sends() -> None:
    check_capture(CAPTURE)


def test_committed_capture_loads_cleanly() -> None:
    traces = xraykit.load_file(CAPTURE)
    assert traces.problems.empty
    assert len(traces) == len({d["trace_id"] for _, d in _packets(CAPTURE)})
    batch = traces.traces.set_index("root_service").loc["orders-batch"]
    assert batch["subsegment_count"] > 30
    assert traces.subsegments["streamed"].sum() > 30
    assert set(traces.subsegments["http_method"].dropna()) <= {"GET", "POST", "PUT"}


@pytest.mark.slow
def test_capture_script_records_a_fresh_capture(tmp_path: Path) -> None:
    out = tmp_path / "fresh.capture.gz"
    # a separate process: patch_all() must not touch the test process
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "capture_sdk.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    check_capture(out)
    assert gzip.decompress(out.read_bytes()) != gzip.decompress(CAPTURE.read_bytes())
