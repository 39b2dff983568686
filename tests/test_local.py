"""The local X-Ray end to end: the real SDK in, boto3 and xraykit.fetch out, on loopback only.

Each test starts its own local X-Ray on free ports (``127.0.0.1:0``) and stops it; nothing
leaves the machine. The SDK runs in a child process (scripts/capture_sdk.py --send-to), so
its global recorder never touches this process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import xraykit
import xraykit.local
from xraykit.exceptions import ArgumentError

ROOT = Path(__file__).resolve().parent.parent
DEADLINE_S = 30


def _wait_for(condition: Any, what: str, seconds: float = DEADLINE_S) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {seconds} s waiting for {what}")


def _settled(xr: xraykit.local.LocalXRay, quiet_s: float = 0.5) -> None:
    """Wait until the daemon has stored everything it received and nothing new arrives."""
    last, since = -1, time.monotonic()
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        stats = xr.stats()
        done = stats["accepted"] + sum(stats["rejected"].values()) + stats["dropped_full"]
        if stats["received"] != last or done < stats["received"]:
            last, since = stats["received"], time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.05)
    pytest.fail("the daemon did not settle")


@pytest.fixture
def xr(tmp_path: Path):
    with xraykit.local.start("127.0.0.1:0", store=tmp_path / "local.sqlite3") as running:
        yield running


def test_start_gives_one_address_for_the_daemon_and_the_api(xr) -> None:
    host, port = xr.daemon_address.split(":")
    assert host == "127.0.0.1" and int(port) > 0
    assert xr.endpoint_url == f"http://127.0.0.1:{port}"
    assert xr.environment() == {"AWS_XRAY_DAEMON_ADDRESS": xr.daemon_address}
    assert xr.stats()["traces"] == 0


def test_another_address_needs_an_explicit_flag() -> None:
    with pytest.raises(ArgumentError, match="allow_remote"):
        xraykit.local.start("0.0.0.0:0", store=":memory:")


@pytest.mark.slow
def test_the_real_sdk_sends_and_fetch_reads_every_trace_back(xr) -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "capture_sdk.py"), "--send-to", xr.daemon_address],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AWS_XRAY_DAEMON_ADDRESS": xr.daemon_address},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    _settled(xr)
    stats = xr.stats()
    assert stats["rejected"] == {} and stats["dropped_full"] == 0, stats

    ts = xraykit.fetch(since="1h", endpoint_url=xr.endpoint_url, progress=False)
    recorded = xraykit.load_sample("sdk-capture")  # the same scenario, recorded once
    assert len(ts) == len(recorded) == xr.stats()["traces"]
    assert len(ts.problems) == 0, ts.problems
    assert set(ts.services) == set(recorded.services)
    # annotations and metadata as the SDK wrote them
    assert {"item_path", "batch_size"} <= set(ts.annotations["key"])
    assert "sku" in set(ts.metadata["key"])
    # the batch job's 40+ subsegments were streamed on their own and are stitched back
    batch = ts.traces.loc[ts.traces.root_service == "orders-batch", "trace_id"]
    assert len(batch) == 1
    items = ts.subsegments[
        (ts.subsegments.trace_id == batch.iloc[0]) & (ts.subsegments.name == "reprice-item")
    ]
    assert len(items) == 40 and items["depth"].min() >= 2
    assert ts.cost is not None and ts.cost.traces_retrieved == len(ts)
    # and what boto3 sees is the same
    summaries = xr.client().get_trace_summaries(
        StartTime=time.time() - 3600, EndTime=time.time() + 60
    )["TraceSummaries"]
    assert {s["Id"] for s in summaries} == set(ts.traces.trace_id)


def test_centralized_sampling_obeys_a_rule_created_through_boto3(xr) -> None:
    """The SDK's centralized sampler, pointed at the local daemon, picks up a new rule."""
    child = r"""
import json, sys, time
from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.core.sampling.sampler import DefaultSampler
address, phase = sys.argv[1], sys.argv[2]
sampler = DefaultSampler()
xray_recorder.configure(service="sampled-app", daemon_address=address, sampler=sampler,
                        context_missing="LOG_ERROR", sampling=True)
sampler.start()
deadline = time.time() + 20
# wait until the rule poller has fetched the local rules once (or the deadline)
while time.time() < deadline and not sampler._cache.rules:
    time.sleep(0.05)
names = [r.name for r in sampler._cache.rules]
decisions = [sampler.should_trace({"service": "sampled-app", "method": "GET", "path": "/api/" + phase})
             for _ in range(200)]
print(json.dumps({"rules": names, "sampled": sum(bool(d) for d in decisions)}))
"""

    def run(phase: str) -> dict[str, Any]:
        out = subprocess.run(
            [sys.executable, "-c", child, xr.daemon_address, phase],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    before = run("before")
    assert before["rules"] == ["Default"]
    xr.client().create_sampling_rule(
        SamplingRule={
            "RuleName": "api-everything",
            "Priority": 1,
            "FixedRate": 1.0,
            "ReservoirSize": 0,
            "ServiceName": "sampled-app",
            "ServiceType": "*",
            "Host": "*",
            "HTTPMethod": "*",
            "URLPath": "/api/*",
            "ResourceARN": "*",
            "Version": 1,
        }
    )
    after = run("after")
    assert "api-everything" in after["rules"]
    # Default: one a second from the reservoir (before any target) plus 5 %; the new rule: all
    assert before["sampled"] < 50
    assert after["sampled"] == 200


def test_traces_survive_a_restart_on_the_same_store(tmp_path: Path) -> None:
    store = tmp_path / "kept.sqlite3"
    shop = xraykit.load_sample("shop")
    ids = list(shop.traces.trace_id.iloc[:20])
    documents = [text for trace_id in ids for text in shop.document_store.trace_texts(trace_id)]
    with xraykit.local.start("127.0.0.1:0", store=store) as first:
        first.client().put_trace_segments(TraceSegmentDocuments=documents[:50])
        first.client().put_trace_segments(TraceSegmentDocuments=documents[50:])
        assert first.stats()["traces"] == 20
    with xraykit.local.start("127.0.0.1:0", store=store) as second:
        assert second.stats()["traces"] == 20
        got = second.client().batch_get_traces(TraceIds=ids[:5])
        assert sorted(t["Id"] for t in got["Traces"]) == sorted(ids[:5])


def test_the_cli_serves_until_interrupted(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "xraykit.cli", "local", "--address", "127.0.0.1:0", "--store",
         str(tmp_path / "cli.sqlite3")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("local X-Ray: daemon on 127.0.0.1:"), first
        endpoint = first.rsplit("API on ", 1)[1].strip()
        import boto3

        client = boto3.client(
            "xray",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        assert client.get_sampling_rules()["SamplingRuleRecords"][0]["SamplingRule"]["RuleName"]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopped: 0 traces stored" in out


def test_the_readme_example_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Your own X-Ray, locally", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "<TraceSet: 1 traces, 1 segments, 1 subsegments" in out.stdout, out.stdout


def test_paged_summaries_count_each_trace_scanned_once() -> None:
    shop = xraykit.load_sample("shop")
    ids = list(shop.traces.trace_id.iloc[:250])
    documents = [text for trace_id in ids for text in shop.document_store.trace_texts(trace_id)]
    start, end = shop.time_span  # type: ignore[misc]
    with xraykit.local.start("127.0.0.1:0", store=":memory:") as xr:
        client = xr.client()
        for i in range(0, len(documents), 100):
            client.put_trace_segments(TraceSegmentDocuments=documents[i : i + 100])
        listed, processed, token = [], 0, {}
        while True:
            page = client.get_trace_summaries(
                StartTime=start.timestamp() - 1, EndTime=end.timestamp() + 1, **token
            )
            listed += [s["Id"] for s in page["TraceSummaries"]]
            processed += page["TracesProcessedCount"]
            if not page.get("NextToken"):
                break
            token = {"NextToken": page["NextToken"]}
    assert sorted(listed) == sorted(ids)
    assert processed == len(ids)  # what a pull is billed for: each trace scanned once
