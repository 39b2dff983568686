"""Tests for xraykit.aws against moto in server mode on 127.0.0.1.

moto stores and returns segment documents faithfully but has no pagination, no filter
expressions, no sampling rules, groups, service-graph content or Transaction Search; a WSGI
middleware in front of it adds pagination, faults and latency, and a botocore Stubber or
recorded responses (tests/data/live_*.json) cover the APIs moto lacks.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import math
import os
import random
import re
import threading
import urllib.request
import warnings
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from xraykit import aws
from xraykit.aws import cache as aws_cache
from xraykit.aws import client as aws_client
from xraykit.aws import errors as aws_errors
from xraykit.aws import pull as aws_pull
from xraykit.aws import summaries as aws_summaries
from xraykit.aws import windows as aws_windows
from xraykit.exceptions import (
    FilterExpressionError,
    LiveAccessError,
    MissingDependencyError,
    XrayKitWarning,
)

DATA = Path(__file__).parent / "data"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account


# --------------------------------------------------------------------------------------
# a moto server behind a fault-injecting, paginating WSGI middleware


class FaultInjector:
    """WSGI middleware around moto: pagination, injected faults and latency, a call log.

    ``rules`` is a list of callables ``rule(path, nth_call_to_path, request) -> (status, error)``
    or None (``request`` is the decoded JSON body); the first that answers wins and moto
    never sees the request.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.rules: list[Any] = []
            self.latency = 0.0
            self.page_size: int | None = None
            self.log: list[dict[str, Any]] = []
            self.counts: Counter[str] = Counter()
            self.account_header: str | None = None

    def calls(self, path: str, status: int | None = None) -> int:
        return sum(
            1 for e in self.log if e["path"] == path and (status is None or e["status"] == status)
        )

    def injected(self) -> int:
        return sum(1 for e in self.log if e["injected"])

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        import time

        path = environ.get("PATH_INFO", "")
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size) if size else b""
        environ["wsgi.input"] = io.BytesIO(body)
        with self.lock:
            self.counts[path] += 1
            nth = self.counts[path]
            rules = list(self.rules)
            latency = self.latency
        if latency:
            time.sleep(latency)
        request = json.loads(body) if body.startswith(b"{") else {}
        for rule in rules:
            fault = rule(path, nth, request)
            if fault is not None:
                status, error = fault
                payload = json.dumps({"__type": error, "message": f"injected {error}"}).encode()
                with self.lock:
                    self.log.append(
                        {"path": path, "status": status, "injected": True, "request": body}
                    )
                start_response(
                    f"{status} Injected",
                    [
                        ("Content-Type", "application/json"),
                        ("x-amzn-ErrorType", error),
                        ("Content-Length", str(len(payload))),
                    ],
                )
                return [payload]
        if path == "/TraceSummaries" and self.page_size:
            return self._paged(environ, start_response, request, body)
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            captured["status"] = int(status.split()[0])
            captured["headers"] = headers
            return lambda data: None

        chunks = b"".join(self.app(environ, capture))
        entry = {"path": path, "status": captured["status"], "injected": False, "request": body}
        if path == "/Traces" and captured["status"] == 200:
            entry["returned"] = [t["Id"] for t in json.loads(chunks)["Traces"]]
        with self.lock:
            self.log.append(entry)
        start_response(f"{captured['status']} OK", captured["headers"])
        return [chunks]

    def _paged(self, environ: dict[str, Any], start_response: Any, request: dict[str, Any],
               body: bytes) -> Any:  # fmt: skip
        """Serve moto's single page of summaries in pages of ``page_size`` with NextToken."""
        token = request.pop("NextToken", None)
        inner = dict(environ)
        raw = json.dumps(request).encode()
        inner["wsgi.input"] = io.BytesIO(raw)
        inner["CONTENT_LENGTH"] = str(len(raw))
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            captured["status"] = status
            return lambda data: None

        full = json.loads(b"".join(self.app(inner, capture)))
        offset = int(token or 0)
        assert self.page_size is not None
        page = full["TraceSummaries"][offset : offset + self.page_size]
        answer: dict[str, Any] = {
            "TraceSummaries": page,
            "TracesProcessedCount": len(page),
            "ApproximateTime": full.get("ApproximateTime"),
        }
        if offset + self.page_size < len(full["TraceSummaries"]):
            answer["NextToken"] = str(offset + self.page_size)
        payload = json.dumps(answer).encode()
        with self.lock:
            self.log.append({"path": "/TraceSummaries", "status": 200, "injected": False,
                             "request": body})  # fmt: skip
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(payload)))])  # fmt: skip
        return [payload]


@pytest.fixture(scope="session")
def moto_server() -> Any:
    """moto on 127.0.0.1 behind a FaultInjector; yields (url, injector)."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        os.environ.setdefault(key, value)
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    injector = FaultInjector(DomainDispatcherApplication(create_backend_app))
    server = make_server(
        "127.0.0.1", 0, injector, threaded=True, request_handler=MotoRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", injector
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def moto(moto_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A clean moto (state wiped, no faults) and credentials for it."""
    url, injector = moto_server
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"))
    injector.reset()
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    return url, injector


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the real user cache; forget per-process memos between tests."""
    monkeypatch.setenv("XRAYKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(aws_pull, "_DESTINATION_CACHE", {})
    monkeypatch.setattr(aws_client, "_IDENTITY_CACHE", {})


def xray_client(url: str, pool: int = 20) -> Any:
    return boto3.client(
        "xray",
        endpoint_url=url,
        region_name=REGION,
        config=Config(retries={"total_max_attempts": 1}, max_pool_connections=pool),
    )


@pytest.fixture
def destination(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """Answer the trace segment destination check without a call.

    fetch asks for it concurrently with the first summaries page; a Stubber needs its calls
    in a fixed order, so tests that stub the client settle the answer here.
    """
    answer = {"transaction_search": False}
    monkeypatch.setattr(aws_pull, "_uses_transaction_search",
                        lambda conn, caller: answer["transaction_search"])  # fmt: skip
    return answer


@pytest.fixture
def delays() -> list[float]:
    return []


@pytest.fixture
def policy(delays: list[float]) -> aws.RetryPolicy:
    """Retries that record their delays instead of sleeping."""
    return aws.RetryPolicy(sleep=delays.append, seed=3, rate=None)


NOW = datetime.now(UTC).replace(microsecond=0)


def trace_id(when: datetime, n: int) -> str:
    return f"1-{int(when.timestamp()):08x}-{n:024x}"


def make_trace(when: datetime, n: int, *, account: str | None = None,
               status: int = 200) -> list[dict[str, Any]]:  # fmt: skip
    """One trace: a root segment with an HTTP subsegment and a downstream segment."""
    start = when.timestamp() + (n % 50) / 1000
    tid = trace_id(when, n)
    root: dict[str, Any] = {
        "id": f"{n:016x}",
        "trace_id": tid,
        "name": "orders-api",
        "origin": "AWS::ECS::Container",
        "start_time": start,
        "end_time": start + 0.2,
        "http": {"request": {"method": "GET", "url": f"https://shop.example/orders/{n}"},
                 "response": {"status": status}},
        "annotations": {"tier": "gold" if n % 2 else "silver"},
        "subsegments": [
            {"id": f"a{n:015x}", "name": "inventory", "start_time": start + 0.01,
             "end_time": start + 0.15, "namespace": "remote", "traced": True,
             "http": {"request": {"method": "GET", "url": "http://inventory/items"},
                      "response": {"status": 200}}},
        ],
    }  # fmt: skip
    if status >= 500:
        root["fault"] = True
    down: dict[str, Any] = {
        "id": f"b{n:015x}",
        "trace_id": tid,
        "parent_id": f"a{n:015x}",
        "name": "inventory",
        "start_time": start + 0.02,
        "end_time": start + 0.14,
    }
    if account:
        root["aws"] = {"account_id": account}
    return [root, down]


def put_traces(client: Any, count: int, *, when: datetime | None = None, first: int = 1,
               account: str | None = None) -> list[str]:  # fmt: skip
    """Store ``count`` traces in moto; return their ids."""
    when = when or NOW - timedelta(minutes=30)
    documents, ids = [], []
    for n in range(first, first + count):
        documents.extend(json.dumps(d) for d in make_trace(when, n, account=account))
        ids.append(trace_id(when, n))
    for i in range(0, len(documents), 50):
        answer = client.put_trace_segments(TraceSegmentDocuments=documents[i : i + 50])
        assert answer["UnprocessedTraceSegments"] == []
    return ids


def requested_ids(injector: FaultInjector) -> list[list[str]]:
    return [json.loads(e["request"])["TraceIds"] for e in injector.log if e["path"] == "/Traces"]


def returned_ids(injector: FaultInjector) -> Counter[str]:
    return Counter(i for e in injector.log if e["path"] == "/Traces" for i in e.get("returned", []))


# --------------------------------------------------------------------------------------
# the pull


def test_fetch_returns_every_trace_once_with_summaries_and_cost(moto: Any, policy: Any) -> None:
    url, injector = moto
    client = xray_client(url)
    ids = put_traces(client, 23)
    ts = aws.fetch(since="2h", client=client, cache=False, progress=False, retry=policy)
    assert sorted(ts.traces["trace_id"]) == sorted(ids)
    assert set(ts.segments["name"]) == {"orders-api", "inventory"}
    assert len(ts.segments) == 46
    assert list(ts.summaries["trace_id"].sort_values()) == sorted(ids)
    assert ts.problems.empty
    # chunks of at most 5 ids, each id asked for exactly once
    chunks = requested_ids(injector)
    assert max(len(c) for c in chunks) == 5
    assert len(chunks) == math.ceil(23 / 5)
    assert Counter(i for c in chunks for i in c) == Counter(ids)
    assert ts.cost.traces_retrieved == 23
    assert ts.cost.api_calls == {"GetTraceSummaries": 1, "BatchGetTraces": 5,
                                 "GetTraceSegmentDestination": 1}  # fmt: skip
    assert ts.cost.retries == 0


def test_fetch_matches_loading_the_same_documents(moto: Any, policy: Any) -> None:
    """A live pull gives the same frames as loading the documents from a file."""
    import xraykit

    url, _ = moto
    client = xray_client(url)
    put_traces(client, 4)
    ts = aws.fetch(since="2h", client=client, cache=False, progress=False, retry=policy)
    docs = [d for n in range(1, 5) for d in make_trace(NOW - timedelta(minutes=30), n)]
    offline = xraykit.from_documents(docs)
    key = ["trace_id"]
    pd.testing.assert_frame_equal(
        ts.traces.sort_values(key).reset_index(drop=True),
        offline.traces.sort_values(key).reset_index(drop=True),
    )


def test_windows_are_at_most_six_hours_and_cover_the_range(moto: Any, policy: Any) -> None:
    url, injector = moto
    client = xray_client(url)
    start = NOW - timedelta(hours=14)
    put_traces(client, 3, when=NOW - timedelta(hours=13))
    put_traces(client, 2, when=NOW - timedelta(hours=1), first=100)
    ts = aws.fetch(start=start, end=NOW, client=client, cache=False, progress=False,
                    retry=policy)  # fmt: skip
    assert len(ts) == 5
    bodies = [json.loads(e["request"]) for e in injector.log if e["path"] == "/TraceSummaries"]
    windows = [(b["StartTime"], b["EndTime"]) for b in bodies]
    assert len(windows) == 3
    assert all(0 < e - s <= 6 * 3600 for s, e in windows)
    assert windows[0][1] == NOW.timestamp()  # newest first
    assert sorted(windows)[0][0] == start.timestamp()
    ordered = sorted(windows)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ordered))
    assert all(b["TimeRangeType"] == "TraceId" for b in bodies)
    assert all("FilterExpression" not in b for b in bodies)


def test_pagination_and_call_count_bound(moto: Any, policy: Any) -> None:
    url, injector = moto
    client = xray_client(url)
    ids = put_traces(client, 37)
    injector.page_size = 8
    ts = aws.fetch(since="2h", client=client, cache=False, progress=False, retry=policy,
                    concurrency=4)  # fmt: skip
    assert sorted(ts.traces["trace_id"]) == sorted(ids)
    pages = injector.calls("/TraceSummaries")
    assert pages == math.ceil(37 / 8)
    tokens = [json.loads(e["request"]).get("NextToken") for e in injector.log
              if e["path"] == "/TraceSummaries"]  # fmt: skip
    assert tokens == [None, "8", "16", "24", "32"]
    calls = injector.calls("/Traces") + pages
    assert calls <= math.ceil(len(ids) / 5) + pages + injector.injected()
    assert ts.cost.traces_scanned == 37


def test_max_traces_stops_early(moto: Any, policy: Any) -> None:
    url, injector = moto
    client = xray_client(url)
    put_traces(client, 30)
    injector.page_size = 10
    ts = aws.fetch(since="2h", client=client, cache=False, progress=False, retry=policy,
                    max_traces=12)  # fmt: skip
    assert len(ts) == 12
    assert len(ts.summaries) == 12
    assert injector.calls("/TraceSummaries") == 2
    assert sum(len(c) for c in requested_ids(injector)) == 12


@pytest.mark.parametrize("concurrency", [1, 8])
def test_throttles_and_5xx_bursts_lose_and_duplicate_nothing(
    moto: Any, policy: Any, delays: list[float], concurrency: int
) -> None:
    url, injector = moto
    client = xray_client(url)
    ids = put_traces(client, 60)
    rng = random.Random(11)
    lock = threading.Lock()

    def throttle_30_percent(path: str, nth: int, request: Any) -> Any:
        with lock:
            hit = path in ("/Traces", "/TraceSummaries") and rng.random() < 0.3
        return (429, "ThrottledException") if hit else None

    def burst_of_503(path: str, nth: int, request: Any) -> Any:
        return (503, "ServiceUnavailable") if path == "/Traces" and 3 <= nth <= 6 else None

    def one_500_on_summaries(path: str, nth: int, request: Any) -> Any:
        return (500, "InternalFailure") if path == "/TraceSummaries" and nth == 1 else None

    injector.rules = [one_500_on_summaries, burst_of_503, throttle_30_percent]
    ts = aws.fetch(since="2h", client=client, cache=False, progress=False,
                    retry=policy, concurrency=concurrency)  # fmt: skip
    assert sorted(ts.traces["trace_id"]) == sorted(ids)
    assert ts.traces["trace_id"].is_unique
    assert ts.problems.empty
    assert returned_ids(injector) == Counter(ids)  # each trace retrieved exactly once
    injected = injector.injected()
    assert injected >= 8
    pages = injector.calls("/TraceSummaries", 200)
    total = injector.calls("/Traces") + injector.calls("/TraceSummaries")
    assert total <= math.ceil(len(ids) / 5) + pages + injected
    assert ts.cost.retries == injected == len(delays)
    assert ts.cost.throttles == sum(1 for e in injector.log if e["status"] == 429)


def test_backoff_grows_exponentially_with_jitter(moto: Any, delays: list[float]) -> None:
    url, injector = moto
    client = xray_client(url)
    put_traces(client, 1)
    injector.rules = [
        lambda p, n, r: (429, "ThrottledException") if p == "/Traces" and n <= 5 else None
    ]
    policy = aws.RetryPolicy(sleep=delays.append, seed=0, rate=None, base_delay=1.0,
                              max_delay=8.0)  # fmt: skip
    ts = aws.fetch(since="2h", client=client, cache=False, progress=False, retry=policy)
    assert len(ts) == 1
    assert len(delays) == 5
    ceilings = [1, 2, 4, 8, 8]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert sum(delays) > 2  # full jitter, yet not all zero: the delays do grow


def test_a_trace_that_keeps_failing_lands_in_problems(moto: Any, delays: list[float]) -> None:
    url, injector = moto
    client = xray_client(url)
    ids = put_traces(client, 10)
    bad = ids[7]
    injector.rules = [
        lambda p, n, r: (503, "ServiceUnavailable") if bad in r.get("TraceIds", []) else None
    ]
    policy = aws.RetryPolicy(sleep=delays.append, seed=1, rate=None, max_attempts=3)
    with pytest.warns(XrayKitWarning, match="could not be fetched"):
        ts = aws.fetch(since="2h", client=client, cache=False, progress=False, retry=policy,
                        concurrency=2)  # fmt: skip
    chunk = next(c for c in requested_ids(injector) if bad in c)
    assert sorted(ts.traces["trace_id"]) == sorted(set(ids) - set(chunk))
    assert sorted(ts.problems["location"]) == sorted(chunk)
    assert set(ts.problems["source"]) == {"BatchGetTraces"}
    assert ts.problems["reason"].str.contains("ServiceUnavailable").all()
    assert ts.problems["reason"].str.contains("after 3 attempts").all()


def test_unprocessed_ids_are_asked_for_again_and_only_them(
    moto: Any, policy: Any, delays: list[float], destination: Any
) -> None:
    """moto answers unknown ids in UnprocessedTraceIds: a stand-in for X-Ray's busy answer."""
    url, _injector = moto
    client = xray_client(url)
    ids = put_traces(client, 3)
    ghost = trace_id(NOW - timedelta(minutes=30), 999)
    summaries = {"TraceSummaries": [{"Id": i} for i in [*ids, ghost]], "TracesProcessedCount": 4}
    with Stubber(client) as stub:
        stub.add_response("get_trace_summaries", summaries)
        first = {"Traces": [{"Id": i, "Segments": [{"Id": "x", "Document": json.dumps(
            make_trace(NOW - timedelta(minutes=30), n)[0])}]} for n, i in enumerate(ids[:2], 1)],
            "UnprocessedTraceIds": [ids[2], ghost]}  # fmt: skip
        stub.add_response("batch_get_traces", first, {"TraceIds": [*ids, ghost]})
        second = {"Traces": [{"Id": ids[2], "Segments": [{"Id": "y", "Document": json.dumps(
            make_trace(NOW - timedelta(minutes=30), 3)[0])}]}],
            "UnprocessedTraceIds": [ghost]}  # fmt: skip
        stub.add_response("batch_get_traces", second, {"TraceIds": [ids[2], ghost]})
        stub.add_response("batch_get_traces", {"Traces": [], "UnprocessedTraceIds": [ghost]},
                          {"TraceIds": [ghost]})  # fmt: skip
        small = aws.RetryPolicy(sleep=delays.append, seed=0, rate=None, max_attempts=3)
        with pytest.warns(XrayKitWarning, match="1 trace"):
            ts = aws.fetch(since="2h", client=client, cache=False, progress=False, retry=small)
        stub.assert_no_pending_responses()
    assert sorted(ts.traces["trace_id"]) == sorted(ids)
    assert ts.problems["location"].tolist() == [ghost]
    assert "UnprocessedTraceIds after 3 attempts" in ts.problems["reason"].iloc[0]


def test_filter_expression_and_group_are_sent_unchanged(policy: Any) -> None:
    client = boto3.client("xray", region_name=REGION, aws_access_key_id="k",
                          aws_secret_access_key="s")  # fmt: skip
    expression = 'service("orders-api") { fault } AND annotation.tier = "gold"'
    begin = NOW - timedelta(hours=3)
    with Stubber(client) as stub:
        stub.add_response(
            "get_trace_summaries",
            {"TraceSummaries": [], "TracesProcessedCount": 120},
            {
                "StartTime": begin,
                "EndTime": begin + timedelta(hours=1),
                "TimeRangeType": "Event",
                "FilterExpression": f'group.name = "checkout" AND ({expression})',
            },
        )
        frame = aws.fetch_summaries(
            start=begin, end=begin + timedelta(hours=1), filter_expression=expression,
            group="checkout", time_range_type="Event", client=client, retry=policy,
        )  # fmt: skip
        stub.assert_no_pending_responses()
    assert frame.empty and "trace_id" in frame
    assert frame.attrs["cost"].traces_scanned == 120


def test_before_send_hook_sees_the_filter_expression_body(policy: Any) -> None:
    """The request body on the wire carries the expression byte for byte."""
    from botocore.awsrequest import AWSResponse

    client = boto3.client("xray", region_name=REGION, aws_access_key_id="k",
                          aws_secret_access_key="s",
                          config=Config(retries={"total_max_attempts": 1}))  # fmt: skip
    bodies: list[dict[str, Any]] = []

    class Raw(io.BytesIO):
        def stream(self, **kwargs: Any) -> Any:
            yield self.getvalue()

    def answer(request: Any, **kwargs: Any) -> Any:
        bodies.append(json.loads(request.body))
        payload = json.dumps({"TraceSummaries": [], "TracesProcessedCount": 0}).encode()
        return AWSResponse(request.url, 200, {}, Raw(payload))

    client.meta.events.register("before-send.xray.GetTraceSummaries", answer)
    aws.fetch_summaries(since="1h", filter_expression='http.status = 429', client=client,
                         retry=policy)  # fmt: skip
    assert bodies[0]["FilterExpression"] == "http.status = 429"


def test_interrupt_returns_what_was_fetched(moto: Any, policy: Any, tmp_path: Path) -> None:
    url, injector = moto
    client = xray_client(url)
    ids = put_traces(client, 20)
    calls = {"n": 0}

    def ctrl_c(request: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt

    client.meta.events.register("before-send.xray.BatchGetTraces", ctrl_c)
    with pytest.warns(XrayKitWarning, match="Interrupted: returning the 10 traces"):
        ts = aws.fetch(account_id=ACCOUNT, since="2h", client=client, cache=True, cache_dir=tmp_path, progress=False,
                        retry=policy, concurrency=1)  # fmt: skip
    assert len(ts) == 10
    assert len(ts.summaries) == 20
    # the next call resumes: only the ten missing traces are retrieved
    client.meta.events.unregister("before-send.xray.BatchGetTraces", ctrl_c)
    injector.reset()
    again = aws.fetch(account_id=ACCOUNT, since="2h", client=client, cache=True, cache_dir=tmp_path,
                       progress=False, retry=policy)  # fmt: skip
    assert sorted(again.traces["trace_id"]) == sorted(ids)
    assert sum(len(c) for c in requested_ids(injector)) == 10
    assert again.cost.cached_traces == 10
    assert again.cost.traces_retrieved == 10


def test_progress_bar_counts_traces(moto: Any, policy: Any, capsys: Any) -> None:
    url, _ = moto
    client = xray_client(url)
    put_traces(client, 12)
    ts = aws.fetch(since="2h", client=client, cache=False, progress=True, retry=policy)
    assert len(ts) == 12
    err = capsys.readouterr().err
    assert "BatchGetTraces" in err and "12/12" in err


def test_rate_cap_spaces_calls_evenly() -> None:
    clock = {"t": 0.0}
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock["t"] += seconds

    policy = aws.RetryPolicy(rate=10.0, burst=2, sleep=sleep, clock=lambda: clock["t"])
    bucket = aws_client._TokenBucket(policy)
    for _ in range(12):
        sleep(bucket.reserve())
    # two calls use the burst, the other ten wait 0.1 s each
    assert clock["t"] == pytest.approx(1.0)
    bucket.throttled()
    assert bucket.rate == 5.0
    bucket.succeeded()
    assert bucket.rate == 6.0


def test_throttles_halve_the_rate(moto: Any, delays: list[float]) -> None:
    url, injector = moto
    client = xray_client(url)
    put_traces(client, 5)
    injector.rules = [
        lambda p, n, r: (429, "ThrottledException") if p == "/Traces" and n <= 3 else None
    ]
    clock = {"t": 0.0}

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        clock["t"] += seconds

    # no backoff delay: every recorded wait is the token bucket's
    policy = aws.RetryPolicy(rate=40.0, burst=1, base_delay=0.0, sleep=sleep,
                              clock=lambda: clock["t"])  # fmt: skip
    ts = aws.fetch(since="2h", client=client, cache=False, progress=False, retry=policy)
    assert len(ts) == 5
    assert ts.cost.throttles == 3
    # at a steady 40 calls/s no wait would exceed 1/40 s; after three halvings they do
    assert max(delays) > 2 / 40


# --------------------------------------------------------------------------------------
# the cache


def test_cache_reuses_a_settled_window_without_any_call(moto: Any, policy: Any,
                                                        tmp_path: Path) -> None:  # fmt: skip
    url, injector = moto
    client = xray_client(url)
    when = NOW - timedelta(hours=2)
    ids = put_traces(client, 8, when=when)
    window = {"start": when - timedelta(minutes=5), "end": when + timedelta(minutes=30)}
    first = aws.fetch(
        account_id=ACCOUNT,
        **window,
        client=client,
        cache_dir=tmp_path,
        progress=False,
        retry=policy,
    )
    assert len(first) == 8
    injector.reset()
    second = aws.fetch(account_id=ACCOUNT, **window, client=client, cache_dir=tmp_path, progress=False,
                        retry=policy)  # fmt: skip
    assert injector.log == []  # no call at all, not even STS (asked once per process)
    assert sorted(second.traces["trace_id"]) == sorted(ids)
    pd.testing.assert_frame_equal(
        first.traces.sort_values("trace_id").reset_index(drop=True),
        second.traces.sort_values("trace_id").reset_index(drop=True),
    )
    pd.testing.assert_frame_equal(first.summaries, second.summaries)
    assert second.cost.cached_traces == 8 and second.cost.billable_traces == 0
    # a different query over the same window lists again, but retrieves nothing
    third = aws.fetch(account_id=ACCOUNT, **window, client=client, cache_dir=tmp_path, progress=False,
                       retry=policy, time_range_type="Event")  # fmt: skip
    assert injector.calls("/TraceSummaries") == 1 and injector.calls("/Traces") == 0
    assert len(third) == 8
    # cache=False bypasses it
    injector.reset()
    aws.fetch(**window, client=client, cache=False, progress=False, retry=policy)
    assert injector.calls("/Traces") == 2


def test_cache_layout_is_keyed_by_account_and_region_and_holds_no_secret(
    moto: Any, policy: Any, tmp_path: Path
) -> None:
    url, _ = moto
    client = xray_client(url)
    when = NOW - timedelta(hours=3)
    put_traces(client, 3, when=when)
    aws.fetch(account_id=ACCOUNT, start=when - timedelta(minutes=1), end=when + timedelta(minutes=10),
               client=client, cache_dir=tmp_path, progress=False, retry=policy)  # fmt: skip
    folder = tmp_path / "xray" / "123456789012" / REGION
    assert (folder / "traces" / "index.parquet").exists()
    assert len(list((folder / "summaries").glob("*.parquet"))) == 1
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"testing" not in data and b"aws_secret" not in data.lower()


def test_open_window_is_not_cached_but_its_traces_are(moto: Any, policy: Any,
                                                      tmp_path: Path) -> None:  # fmt: skip
    url, injector = moto
    client = xray_client(url)
    put_traces(client, 6)
    aws.fetch(
        account_id=ACCOUNT,
        since="1h",
        client=client,
        cache_dir=tmp_path,
        progress=False,
        retry=policy,
    )
    assert not list(tmp_path.rglob("summaries/*.parquet"))
    injector.reset()
    again = aws.fetch(account_id=ACCOUNT, since="1h", client=client, cache_dir=tmp_path, progress=False,
                       retry=policy)  # fmt: skip
    assert len(again) == 6
    assert injector.calls("/TraceSummaries") == 1 and injector.calls("/Traces") == 0


def test_in_progress_traces_are_fetched_again(moto: Any, policy: Any, tmp_path: Path) -> None:
    url, injector = moto
    client = xray_client(url)
    when = NOW - timedelta(minutes=20)
    put_traces(client, 2, when=when)
    # moto lists a trace once its last-started segment ended; an earlier segment in progress
    tid = trace_id(when, 50)
    docs = [
        {"id": "c" * 16, "trace_id": tid, "name": "batch", "start_time": when.timestamp(),
         "in_progress": True},
        {"id": "d" * 16, "trace_id": tid, "name": "worker", "parent_id": "c" * 16,
         "start_time": when.timestamp() + 1, "end_time": when.timestamp() + 2},
    ]  # fmt: skip
    client.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs])
    first = aws.fetch(account_id=ACCOUNT, since="1h", client=client, cache_dir=tmp_path, progress=False,
                       retry=policy)  # fmt: skip
    assert first.traces.set_index("trace_id").loc[tid, "is_partial"]
    injector.reset()
    aws.fetch(
        account_id=ACCOUNT,
        since="1h",
        client=client,
        cache_dir=tmp_path,
        progress=False,
        retry=policy,
    )
    assert requested_ids(injector) == [[tid]]


def test_cache_dir_defaults_to_env_then_user_cache(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:  # fmt: skip
    import platformdirs

    monkeypatch.setenv("XRAYKIT_CACHE_DIR", str(tmp_path))
    assert aws_cache._cache_root(None) == tmp_path
    assert aws_cache._cache_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("XRAYKIT_CACHE_DIR")
    assert aws_cache._cache_root(None) == Path(platformdirs.user_cache_dir("xraykit"))


def moto_session(url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 session whose X-Ray and STS clients both reach moto (botocore's endpoint env)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    return boto3.Session(region_name=REGION)


def test_caller_identity_is_asked_once(moto: Any, policy: Any, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    url, injector = moto
    put_traces(xray_client(url), 1)
    session = moto_session(url, monkeypatch)
    for _ in range(3):
        ts = aws.fetch(since="1h", session=session, cache_dir=tmp_path, progress=False,
                        retry=policy)  # fmt: skip
        assert len(ts) == 1
    sts = [e for e in injector.log if b"GetCallerIdentity" in e["request"]]
    assert len(sts) == 1 and sts[0]["path"] == "/"  # STS's own endpoint, not X-Ray's paths
    assert (tmp_path / "xray" / ACCOUNT / REGION / "traces" / "index.parquet").exists()


def test_refused_identity_lookup_warns_and_pulls_without_the_cache(
    moto: Any, policy: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, injector = moto
    put_traces(xray_client(url), 4)
    injector.rules = [lambda p, n, r: (403, "AccessDenied") if p == "/" else None]
    with pytest.warns(
        XrayKitWarning, match=r"(?s)STS GetCallerIdentity could not tell.*account_id="
    ):
        ts = aws.fetch(since="1h", session=moto_session(url, monkeypatch), cache_dir=tmp_path,
                        progress=False, retry=policy)  # fmt: skip
    assert len(ts) == 4 and ts.problems.empty
    assert not list(tmp_path.rglob("*.parquet"))  # nothing cached under a guessed account


def test_a_client_without_account_id_pulls_without_the_cache(moto: Any, policy: Any,
                                                            tmp_path: Path) -> None:  # fmt: skip
    url, injector = moto
    client = xray_client(url)
    put_traces(client, 2)
    with pytest.warns(XrayKitWarning, match=r"client=.*account_id="):
        ts = aws.fetch(since="1h", client=client, cache_dir=tmp_path, progress=False,
                        retry=policy)  # fmt: skip
    assert len(ts) == 2
    assert not [e for e in injector.log if b"GetCallerIdentity" in e["request"]]
    assert not list(tmp_path.rglob("*.parquet"))
    with pytest.raises(ValueError, match="`account_id` must be a 12-digit"):
        aws.fetch(since="1h", client=client, account_id="1234", progress=False)


# --------------------------------------------------------------------------------------
# summaries, cost


def test_summaries_frame_from_a_recorded_response() -> None:
    response = json.loads((DATA / "live_trace_summaries.json").read_text())
    frame = aws.summaries_frame(response["TraceSummaries"])
    assert len(frame) == len(response["TraceSummaries"]) == 3
    first = frame.iloc[0]
    assert first["trace_id"] == "1-6633a1b0-5e1f9d3c2a7b4e8f90a1b2c3"
    assert first["start"] == pd.Timestamp("2024-05-02 14:25:20.512", tz="UTC")
    assert first["duration_s"] == 1.334 and first["response_time_s"] == 1.301
    assert bool(first["has_fault"]) and not bool(first["has_throttle"])
    assert first["http_status"] == 502 and first["http_method"] == "POST"
    assert first["users"] == "alice"
    assert first["entry_point_name"] == "checkout-api"
    assert first["service_names"] == "DynamoDB,checkout-api,payments"
    assert first["account_ids"] == "111111111111,222222222222"
    assert first["service_count"] == 3
    assert first["fault_root_cause_service"] == "payments"
    assert first["fault_root_cause_entity"] == "payments > charge-card"
    assert first["fault_root_cause_exception"] == "CardGatewayTimeout"
    assert first["response_time_root_cause_coverage"] == 0.82
    assert first["revision"] == 2
    assert frame["annotation.cart_value"].dtype == "float64"
    assert frame["annotation.tier"].tolist()[:2] == ["gold", "silver"]
    assert str(frame["annotation.retry"].dtype) == "boolean"
    assert str(frame["http_status"].dtype) == "Int64"
    assert str(frame["start"].dtype) == "datetime64[us, UTC]"
    second = frame.iloc[1]
    assert pd.isna(second["fault_root_cause_service"]) and second["fault_root_cause_count"] == 0
    assert bool(frame.iloc[2]["is_partial"])


def test_summary_root_cause_paths_match_the_analysis_columns() -> None:
    response = json.loads((DATA / "live_trace_summaries.json").read_text())
    frame = aws.summaries_frame(response["TraceSummaries"])
    paths = aws.summary_root_cause_paths(frame, "fault")
    assert list(paths.columns) == [
        "trace_id", "cause_index", "service_name", "service_type", "account_id", "inferred",
        "entity_index", "entity_count", "entity_name", "entity_id", "remote", "coverage",
        "exception_name", "exception_message", "service_index", "client_impacting",
    ]  # fmt: skip
    assert paths["entity_name"].tolist() == ["checkout-api", "payments", "charge-card"]
    assert paths["service_name"].tolist() == ["checkout-api", "payments", "payments"]
    assert paths["entity_index"].tolist() == [0, 1, 2]
    assert paths["entity_count"].tolist() == [3, 3, 3]
    assert paths["exception_message"].iloc[2] == "gateway did not answer in 1 s"
    assert bool(paths["client_impacting"].all())
    assert aws.summary_root_cause_paths(frame, "error")["trace_id"].tolist() == [
        "1-6633a1c0-77aa88bb99cc00dd11ee22ff"
    ]
    slow = aws.summary_root_cause_paths(frame, "responsetime")
    assert slow["coverage"].tolist() == [0.95, 0.82]
    with pytest.raises(ValueError, match="`kind` must be one of"):
        aws.summary_root_cause_paths(frame, "slow")


def test_empty_summaries_frame_has_every_column() -> None:
    frame = aws.summaries_frame([])
    assert frame.empty and list(frame.columns) == list(aws_summaries._SUMMARY_COLUMNS)


def test_cost_estimate_adds_and_prints() -> None:
    a = aws.CostEstimate(traces_scanned=10, traces_retrieved=5, api_calls={"BatchGetTraces": 1})
    b = aws.CostEstimate(traces_scanned=1, api_calls={"BatchGetTraces": 2, "GetTraceSummaries": 1})
    total = a + b
    assert total.billable_traces == 16
    assert total.api_calls == {"BatchGetTraces": 3, "GetTraceSummaries": 1}
    assert "free" in str(total) and "<table>" in total._repr_html_()
    assert aws.CostEstimate(traces_retrieved=1_000_000).usd == 0.5


# --------------------------------------------------------------------------------------
# the APIs moto lacks: service graph, sampling rules, groups, Transaction Search


def stubbed_client() -> Any:
    return boto3.client("xray", region_name=REGION, aws_access_key_id="k",
                        aws_secret_access_key="s")  # fmt: skip


def test_fetch_sampling_rules_and_groups_from_recorded_responses(policy: Any) -> None:
    rules = json.loads((DATA / "live_sampling_rules.json").read_text())
    groups = json.loads((DATA / "live_groups.json").read_text())
    client = stubbed_client()
    with Stubber(client) as stub:
        first = {
            **rules,
            "SamplingRuleRecords": rules["SamplingRuleRecords"][:1],
            "NextToken": "p2",
        }
        stub.add_response("get_sampling_rules", first, {})
        rest = {"SamplingRuleRecords": rules["SamplingRuleRecords"][1:]}
        stub.add_response("get_sampling_rules", rest, {"NextToken": "p2"})
        stub.add_response("get_groups", groups, {})
        frame = aws.fetch_sampling_rules(client=client, retry=policy)
        found = aws.fetch_groups(client=client, retry=policy)
    assert frame["rule_name"].tolist() == ["checkout-errors", "health-checks", "Default"]
    assert frame["priority"].tolist() == [10, 20, 10000]
    assert frame.loc[0, "attributes"] == {"tier": "gold"}
    assert str(frame["created_at"].dtype) == "datetime64[us, UTC]"
    assert found["group_name"].tolist() == ["Default", "slow-checkout"]
    assert found.loc[1, "filter_expression"] == 'service("checkout-api") AND responsetime > 2'
    assert bool(found.loc[1, "insights_enabled"]) and not bool(found.loc[0, "insights_enabled"])


def test_fetch_service_graph_uses_the_service_graph_module(policy: Any) -> None:
    response = json.loads((DATA / "live_service_graph.json").read_text())
    client = stubbed_client()
    with Stubber(client) as stub:
        page1 = {**response, "Services": response["Services"][:2], "NextToken": "n"}
        stub.add_response("get_service_graph", page1)
        stub.add_response("get_service_graph", {**response, "Services": response["Services"][2:]})
        graph = aws.fetch_service_graph(start=NOW - timedelta(hours=1), end=NOW,
                                         group="slow-checkout", client=client, retry=policy)  # fmt: skip
        stub.assert_no_pending_responses()
    names = set(graph.nodes["name"])
    assert {"checkout-api", "payments", "DynamoDB"} <= names


def test_transaction_search_accounts_use_trace_retrieval(policy: Any, destination: Any) -> None:
    destination["transaction_search"] = True
    client = stubbed_client()
    when = NOW - timedelta(minutes=30)
    ids = [trace_id(when, n) for n in range(1, 8)]
    spans = {i: make_trace(when, n) for n, i in enumerate(ids, 1)}
    with Stubber(client) as stub:
        stub.add_response(
            "get_trace_summaries",
            {"TraceSummaries": [{"Id": i} for i in ids], "TracesProcessedCount": 7},
        )
        stub.add_response("start_trace_retrieval", {"RetrievalToken": "tok-1"})
        stub.add_response("list_retrieved_traces", {"RetrievalStatus": "RUNNING"},
                          {"RetrievalToken": "tok-1", "TraceFormat": "XRAY"})  # fmt: skip
        pages = [ids[:4], ids[4:]]
        for k, page in enumerate(pages):
            answer: dict[str, Any] = {
                "RetrievalStatus": "COMPLETE",
                "TraceFormat": "XRAY",
                "Traces": [
                    {"Id": i, "Duration": 0.2, "Spans": [
                        {"Id": d["id"], "Document": json.dumps(d)} for d in spans[i]]}
                    for i in page
                ],
            }  # fmt: skip
            expected: dict[str, Any] = {"RetrievalToken": "tok-1", "TraceFormat": "XRAY"}
            if k == 0:
                answer["NextToken"] = "more"
            else:
                expected["NextToken"] = "more"
            stub.add_response("list_retrieved_traces", answer, expected)
        ts = aws.fetch(since="2h", client=client, cache=False, progress=False, retry=policy)
        stub.assert_no_pending_responses()
    assert sorted(ts.traces["trace_id"]) == sorted(ids)
    assert len(ts.segments) == 14
    assert ts.cost.api_calls["StartTraceRetrieval"] == 1
    assert "BatchGetTraces" not in ts.cost.api_calls


@pytest.mark.parametrize(
    ("answer", "expected"),
    [({"Destination": "CloudWatchLogs", "Status": "ACTIVE"}, True),
     ({"Destination": "CloudWatchLogs", "Status": "PENDING"}, False),
     ({"Destination": "XRay", "Status": "ACTIVE"}, False),
     (None, False)],
)  # fmt: skip
def test_trace_segment_destination_check(policy: Any, answer: Any, expected: bool) -> None:
    client = stubbed_client()
    with Stubber(client) as stub:
        if answer is None:  # older endpoints, narrow policies: classic X-Ray
            stub.add_client_error(
                "get_trace_segment_destination", "AccessDeniedException", "no", 403
            )
        else:
            stub.add_response("get_trace_segment_destination", answer)
        conn = aws_client.connect(client=client)
        caller = aws_client._Caller(client, policy)
        assert aws_pull._uses_transaction_search(conn, caller) is expected
        # asked once per credentials and endpoint
        assert aws_pull._uses_transaction_search(conn, caller) is expected
        stub.assert_no_pending_responses()


# --------------------------------------------------------------------------------------
# errors


def test_no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for key in (
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(LiveAccessError, match=r"No AWS credentials.*profile=.*load_sample"):
        aws.fetch(region=REGION, cache=False, progress=False)


def test_unknown_profile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(LiveAccessError, match=r"'nope'.*aws configure"):
        aws.fetch(profile="nope", region=REGION, progress=False)


def test_no_region(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for key in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(LiveAccessError, match=r"No AWS region.*region='us-east-1'.*AWS_REGION"):
        aws.fetch(cache=False, progress=False)


@pytest.mark.parametrize(
    ("operation", "code", "message", "pattern"),
    [
        ("get_trace_summaries", "AccessDeniedException",
         "User: arn:aws:iam::1:user/x is not authorized to perform: xray:GetTraceSummaries",
         r"xray:GetTraceSummaries.*AWSXrayReadOnlyAccess"),
        ("get_trace_summaries", "ExpiredTokenException", "The security token included expired",
         r"expired.*aws sso login"),
        ("get_trace_summaries", "UnrecognizedClientException", "The security token is invalid",
         r"did not accept these credentials.*get-caller-identity"),
        ("get_trace_summaries", "InvalidRequestException", "Invalid filter expression",
         r"rejected the filter expression 'responsetime > 5'.*correct it"),
    ],
)  # fmt: skip
def test_aws_errors_say_how_to_fix_them(policy: Any, destination: Any, operation: str, code: str,
                                        message: str, pattern: str) -> None:  # fmt: skip
    client = stubbed_client()
    with Stubber(client) as stub:
        stub.add_client_error(operation, code, message, 400)
        with pytest.raises(LiveAccessError, match=pattern) as info:
            aws.fetch(since="1h", client=client, cache=False, progress=False, retry=policy,
                       filter_expression="responsetime > 5" if "filter" in message else None)  # fmt: skip
    if code == "InvalidRequestException":
        assert isinstance(info.value, FilterExpressionError)


def test_access_denied_on_batch_get_traces_names_that_action(moto: Any, policy: Any) -> None:
    url, injector = moto
    client = xray_client(url)
    put_traces(client, 3)
    injector.rules = [lambda p, n, r: (403, "AccessDeniedException") if p == "/Traces" else None]
    with pytest.raises(LiveAccessError, match=r"'xray:BatchGetTraces'.*AWSXrayReadOnlyAccess"):
        aws.fetch(since="2h", client=client, cache=False, progress=False, retry=policy)


def test_unreachable_endpoint(policy: Any) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = xray_client(f"http://127.0.0.1:{port}")
    with pytest.raises(LiveAccessError, match=r"could not be reached.*HTTPS_PROXY"):
        aws.fetch(since="1h", client=client, cache=False, progress=False, retry=policy)


def test_invalid_filter_expression_is_caught_before_any_call(policy: Any) -> None:
    client = stubbed_client()
    with (
        Stubber(client) as stub,
        pytest.raises(LiveAccessError, match="no API call was made") as info,
    ):
        aws.fetch(since="1h", filter_expression="responsetime >", client=client,
                   cache=False, progress=False, retry=policy)  # fmt: skip
        stub.assert_no_pending_responses()
    assert isinstance(info.value, FilterExpressionError)


def test_bad_arguments_are_reported() -> None:
    with pytest.raises(ValueError, match="`since` must be a duration"):
        aws.fetch(since="yesterday")
    with pytest.raises(ValueError, match="`time_range_type` must be one of"):
        aws.fetch(time_range_type="trace")
    with pytest.raises(ValueError, match="`max_traces` must be a positive int"):
        aws.fetch(max_traces=0)
    with pytest.raises(ValueError, match="`start` must be before `end`"):
        aws.fetch(start="2024-05-02", end="2024-05-01")
    with pytest.raises(LiveAccessError, match="must not be empty"):
        aws.fetch(filter_expression="  ")


def test_missing_boto3_names_the_aws_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(MissingDependencyError, match=r"xraykit\[aws\]"):
        aws.fetch(since="1h", progress=False)


def test_import_xraykit_live_does_not_import_boto3() -> None:
    import subprocess
    import sys

    code = "import sys, xraykit.aws; print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_old_start_warns_about_retention() -> None:
    with pytest.warns(XrayKitWarning, match="30 days"):
        aws_windows._resolve_window(None, "2020-01-01", "2020-01-02")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("1h30m", 5400), ("2d", 172800), ("1w", 604800), ("0.5h", 1800),
     (60, 60), (timedelta(minutes=2), 120)],
)  # fmt: skip
def test_parse_since(text: Any, seconds: float) -> None:
    assert aws.parse_since(text).total_seconds() == seconds


def test_time_windows_cover_without_gaps() -> None:
    start = pd.Timestamp("2024-05-01 00:00", tz="UTC")
    end = start + pd.Timedelta(hours=20, minutes=5)
    windows = aws.time_windows(start, end)
    assert len(windows) == 4
    assert windows[0][1] == end and windows[-1][0] == start
    assert all(b - a <= aws.MAX_WINDOW for a, b in windows)
    assert all(windows[i][0] == windows[i + 1][1] for i in range(3))


def test_no_warnings_leak_from_a_clean_pull(moto: Any, policy: Any) -> None:
    url, _ = moto
    client = xray_client(url)
    put_traces(client, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ts = aws.fetch(since="2h", client=client, cache=False, progress=False, retry=policy)
    assert len(ts) == 2
    assert re.fullmatch(r"1-[0-9a-f]{8}-[0-9a-f]{24}", ts.traces["trace_id"].iloc[0])


@pytest.mark.parametrize(
    ("operation", "remedy"),
    [
        ("BatchGetTraces", r"attaching the managed policy AWSXrayReadOnlyAccess"),
        ("StartTraceRetrieval", r"AWSXrayReadOnlyAccess does not grant.*transaction_search=True"),
        ("ListRetrievedTraces", r"AWSXrayReadOnlyAccess does not grant.*transaction_search=True"),
        ("GetTraceSegmentDestination", r"does not grant.*read_only_policy\(transaction_search"),
    ],
)
def test_access_denied_names_the_policy_that_grants_the_action(operation: str,
                                                              remedy: str) -> None:  # fmt: skip
    from botocore.exceptions import ClientError

    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, operation)
    error = aws_errors.translate_error(denied, operation, {})
    assert f"'xray:{operation}'" in str(error)
    assert re.search(remedy, str(error))
    if operation != "BatchGetTraces":
        from xraykit.aws.policies import read_only_policy

        actions = read_only_policy(transaction_search=True)["Statement"][0]["Action"]
        assert f"xray:{operation}" in actions  # the remedy really grants it


def test_cost_estimate_says_the_free_tier_is_not_applied() -> None:
    from xraykit.sampling import PRICES

    cost = aws.CostEstimate(traces_scanned=600_000, traces_retrieved=600_000)
    price = PRICES["retrieved or scanned"]["usd_per_million"]
    assert cost.usd == pytest.approx(1.2 * price)
    assert cost.usd_after_free_tier() == pytest.approx(0.2 * price)
    assert cost.usd_after_free_tier(already_read=2_000_000) == cost.usd
    assert "before the free tier" in str(cost) and "not applied" in cost._repr_html_()
    with pytest.raises(ValueError, match="`already_read` must be a count"):
        cost.usd_after_free_tier(already_read=-1)
