"""Tests of xraykit.local.api: the local X-Ray API through boto3, on loopback (port 0)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import xraykit
import xraykit.local
from xraykit.aws.summaries import summaries_frame
from xraykit.exceptions import ArgumentError
from xraykit.graph import service_graph_from_response
from xraykit.local.api import MAX_BODY, ApiServer
from xraykit.local.operations import PAGE_SIZE
from xraykit.local.store import Store

boto3 = pytest.importorskip("boto3")
botocore_config = pytest.importorskip("botocore.config")
botocore_exceptions = pytest.importorskip("botocore.exceptions")

DATA = Path(__file__).parent / "data"
FILTER_DOCS: list[dict[str, Any]] = json.loads((DATA / "filters_traces.json").read_text())
# the nine traces' ids carry 1700000000; their documents run to about 1700001000
WINDOW = {"StartTime": 1_699_999_000, "EndTime": 1_700_009_000}
SHOP_WINDOW = {"StartTime": 1_741_078_000, "EndTime": 1_741_078_000 + 6 * 3600}

# expression -> compared with ts.query on the same documents
TABLE = [
    "ok",
    "!ok",
    "fault",
    "error",
    "throttle",
    "partial",
    "inferred",
    "responsetime > 1",
    "duration >= 5 AND duration <= 8",
    "http.status = 404",
    'http.method = "POST"',
    'http.url CONTAINS "search"',
    'user = "alice"',
    'user = "dave"',
    'annotation.tier = "gold"',
    "annotation.age > 26",
    "annotation.vip = false",
    'service("orders-api")',
    'service("orders-api") { fault }',
    'edge("web", "orders-api") { error }',
    'service(id(type: "AWS::Lambda::Function")) { fault }',
    'rootcause.fault.service { name = "orders-api" }',
    'availabilityzone = "us-east-1b"',
    '!service("orders-api") AND ok',
]


@pytest.fixture
def store() -> Iterator[Store]:
    with Store(":memory:") as db:
        yield db


@pytest.fixture
def server(store: Store) -> Iterator[ApiServer]:
    with ApiServer(store, ("127.0.0.1", 0)) as api:
        yield api


def make_client(server: ApiServer) -> Any:
    return boto3.client(
        "xray",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=botocore_config.Config(retries={"total_max_attempts": 1}, read_timeout=30),
    )


@pytest.fixture
def client(server: ApiServer) -> Any:
    return make_client(server)


@pytest.fixture(scope="module")
def shop() -> xraykit.TraceSet:
    return xraykit.load_sample("shop")


def put(client: Any, documents: list[Any]) -> None:
    texts = [d if isinstance(d, str) else json.dumps(d) for d in documents]
    for i in range(0, len(texts), 500):
        answer = client.put_trace_segments(TraceSegmentDocuments=texts[i : i + 500])
        assert answer["UnprocessedTraceSegments"] == []


def all_summaries(client: Any, **kwargs: Any) -> list[dict[str, Any]]:
    pages = client.get_paginator("get_trace_summaries").paginate(**kwargs)
    return [s for page in pages for s in page["TraceSummaries"]]


def error_of(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(botocore_exceptions.ClientError) as caught:
        call(**kwargs)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def raw_request(
    server: ApiServer, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    host, port = server.address
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for key, value in headers.items():
            connection.putheader(key, value)
        connection.endheaders(body or None)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


# --- traces ---------------------------------------------------------------------------


def test_put_then_batch_get_traces(client: Any) -> None:
    put(client, FILTER_DOCS)
    ids = sorted({d["trace_id"] for d in FILTER_DOCS})
    unknown = "1-6553f100-ffffffffffffffffffffffff"
    answer = client.batch_get_traces(TraceIds=[*ids[:4], unknown])
    assert sorted(t["Id"] for t in answer["Traces"]) == ids[:4]
    assert answer["UnprocessedTraceIds"] == [unknown]
    sent = {d["id"]: d for d in FILTER_DOCS if d["trace_id"] in ids[:4]}
    for trace in answer["Traces"]:
        assert trace["LimitExceeded"] is False
        assert trace["Duration"] >= 0
        for segment in trace["Segments"]:
            assert json.loads(segment["Document"]) == sent[segment["Id"]]
    got = [s["Document"] for t in answer["Traces"] for s in t["Segments"]]
    ts = xraykit.from_documents(got)
    assert sorted(ts.traces.trace_id) == ids[:4]


def test_batch_get_traces_stitches_streamed_subsegments(client: Any) -> None:
    lines = (DATA / "streamed_subsegments.jsonl").read_text().splitlines()
    put(client, [line for line in lines if line.strip()])
    expected = xraykit.load_file(DATA / "streamed_subsegments.jsonl", on_error="ignore")
    trace_id = expected.traces.trace_id.iloc[0]
    answer = client.batch_get_traces(TraceIds=[trace_id])
    documents = [json.loads(s["Document"]) for s in answer["Traces"][0]["Segments"]]
    # every streamed subsegment is under its parent, but the one whose parent never came
    alone = [d["id"] for d in documents if d.get("type") == "subsegment"]
    assert alone == ["c0000000000000ff"]
    assert len(documents) == 2
    back = xraykit.from_documents([json.dumps(d) for d in documents], on_error="ignore")
    pairs = ["subsegment_id", "parent_id", "segment_id"]
    got = back.subsegments[pairs].sort_values("subsegment_id").reset_index(drop=True)
    want = expected.subsegments[pairs].sort_values("subsegment_id").reset_index(drop=True)
    assert got.equals(want)
    assert len(got) == 4


def test_more_than_five_ids_is_an_invalid_request(client: Any) -> None:
    ids = [f"1-6553f100-{n:024d}" for n in range(6)]
    code, message = error_of(client.batch_get_traces, TraceIds=ids)
    assert code == "InvalidRequestException"
    assert "5" in message


def test_put_reports_rejected_documents(client: Any) -> None:
    good = json.dumps(FILTER_DOCS[0])
    answer = client.put_trace_segments(TraceSegmentDocuments=[good, "not json", '{"id": "x"}'])
    unprocessed = answer["UnprocessedTraceSegments"]
    assert len(unprocessed) == 2
    assert all(u["Message"] and u["ErrorCode"] for u in unprocessed)


# --- summaries --------------------------------------------------------------------------


@pytest.mark.parametrize("expression", TABLE)
def test_summaries_agree_with_query(client: Any, expression: str) -> None:
    put(client, FILTER_DOCS)
    ts = xraykit.from_documents(FILTER_DOCS)
    got = all_summaries(client, FilterExpression=expression, **WINDOW)
    expected = sorted(ts.query(expression).traces.trace_id)
    assert sorted(s["Id"] for s in got) == expected


def test_summaries_shape(client: Any) -> None:
    put(client, FILTER_DOCS)
    page = client.get_trace_summaries(FilterExpression="fault", **WINDOW)
    assert page["TracesProcessedCount"] == 9
    assert page["TraceSummaries"]
    for summary in page["TraceSummaries"]:
        assert summary["HasFault"] is True
        assert summary["Id"].startswith("1-6553f100-")
    summaries = summaries_frame(all_summaries(client, **WINDOW))
    assert len(summaries) == 9


def test_paging_returns_every_id_once(client: Any, shop: xraykit.TraceSet) -> None:
    part = shop.select(shop.traces.trace_id[: PAGE_SIZE * 3 + 17])
    put(client, list(part.raw_documents.document))
    pages = list(client.get_paginator("get_trace_summaries").paginate(**SHOP_WINDOW))
    assert len(pages) == 4
    ids = [s["Id"] for page in pages for s in page["TraceSummaries"]]
    assert len(ids) == len(set(ids)) == len(part.traces)
    assert sorted(ids) == sorted(part.traces.trace_id)
    starts = [s["StartTime"] for page in pages for s in page["TraceSummaries"]]
    assert starts == sorted(starts, reverse=True)  # the most recent first, as X-Ray
    expression = 'service("payments") OR http.status >= 400'
    got = [s["Id"] for s in all_summaries(client, FilterExpression=expression, **SHOP_WINDOW)]
    assert len(got) == len(set(got))
    assert sorted(got) == sorted(part.query(expression).traces.trace_id)


def test_later_pages_list_what_the_first_page_found(client: Any, shop: xraykit.TraceSet) -> None:
    by_start = shop.traces.sort_values("start").trace_id
    ids = list(by_start[100 : 110 + PAGE_SIZE])
    put(client, list(shop.select(ids).raw_documents.document))
    first = client.get_trace_summaries(**SHOP_WINDOW)
    # older traces arriving between pages would fall on the next page: it lists the snapshot
    put(client, list(shop.select(by_start[:30]).raw_documents.document))
    second = client.get_trace_summaries(NextToken=first["NextToken"], **SHOP_WINDOW)
    got = [s["Id"] for s in first["TraceSummaries"] + second["TraceSummaries"]]
    assert sorted(got) == sorted(ids)
    assert "NextToken" not in second
    code, _ = error_of(
        client.get_trace_summaries,
        NextToken=first["NextToken"],
        FilterExpression="ok",
        **SHOP_WINDOW,
    )
    assert code == "InvalidRequestException"


def test_time_range_types_and_sampling(client: Any) -> None:
    put(client, FILTER_DOCS)
    for kind in ("TraceId", "Event", "Service"):
        got = all_summaries(client, TimeRangeType=kind, **WINDOW)
        assert len(got) == 9
    # by id the traces are at 1700000000; by event they run from 1700000100
    late = {"StartTime": 1_700_000_050, "EndTime": 1_700_009_000}
    assert all_summaries(client, TimeRangeType="TraceId", **late) == []
    assert len(all_summaries(client, TimeRangeType="Event", **late)) == 9
    sampled = all_summaries(
        client, Sampling=True, SamplingStrategy={"Name": "FixedRate", "Value": 0.0}, **WINDOW
    )
    assert sampled == []
    everything = all_summaries(
        client, Sampling=True, SamplingStrategy={"Name": "FixedRate", "Value": 1.0}, **WINDOW
    )
    assert len(everything) == 9


def test_window_over_six_hours_is_refused(client: Any) -> None:
    code, message = error_of(
        client.get_trace_summaries, StartTime=1_700_000_000, EndTime=1_700_000_000 + 6 * 3600 + 1
    )
    assert code == "InvalidRequestException"
    assert "6 hours" in message
    client.get_trace_summaries(StartTime=1_700_000_000, EndTime=1_700_000_000 + 6 * 3600)


def test_bad_filter_expression_and_token(client: Any) -> None:
    code, message = error_of(client.get_trace_summaries, FilterExpression="user = alice", **WINDOW)
    assert code == "InvalidRequestException"
    assert "not in quotes" in message
    code, message = error_of(client.get_trace_summaries, NextToken="garbage!", **WINDOW)
    assert code == "InvalidRequestException"
    assert "NextToken" in message


# --- graphs -----------------------------------------------------------------------------

COUNTS = ["ok_count", "error_count", "throttle_count", "fault_count", "total_count"]


def test_service_graph_equals_service_graph_of_the_traces(
    client: Any, shop: xraykit.TraceSet
) -> None:
    put(client, list(shop.raw_documents.document))
    response = client.get_service_graph(**SHOP_WINDOW)
    back = service_graph_from_response(response)
    expected = xraykit.service_graph(shop)
    nodes = ["node_id", *COUNTS]
    got_nodes = back.nodes[nodes].sort_values("node_id").reset_index(drop=True)
    want_nodes = expected.nodes[nodes].sort_values("node_id").reset_index(drop=True)
    assert got_nodes.astype(str).equals(want_nodes.astype(str))
    edges = ["source", "target", *COUNTS]
    got_edges = back.edges[edges].sort_values(["source", "target"]).reset_index(drop=True)
    want_edges = expected.edges[edges].sort_values(["source", "target"]).reset_index(drop=True)
    assert got_edges.astype(str).equals(want_edges.astype(str))


def test_trace_graph(client: Any) -> None:
    empty = client.get_service_graph(**WINDOW)
    assert empty["Services"] == []
    assert (
        client.get_trace_graph(TraceIds=["1-6553f100-ffffffffffffffffffffffff"])["Services"] == []
    )
    put(client, FILTER_DOCS)
    trace_id = "1-6553f100-000000000000000000000002"
    response = client.get_trace_graph(TraceIds=[trace_id])
    names = {s["Name"] for s in response["Services"]}
    assert {"web", "orders-api"} <= names


# --- groups -----------------------------------------------------------------------------


def test_groups_crud_and_group_name_in_filters(client: Any) -> None:
    put(client, FILTER_DOCS)
    created = client.create_group(GroupName="slow", FilterExpression="responsetime > 3")["Group"]
    assert created["GroupARN"].startswith("arn:aws:xray:us-east-1:000000000000:group/slow/")
    assert client.get_group(GroupName="slow")["Group"] == created
    assert client.get_group(GroupARN=created["GroupARN"])["Group"] == created
    assert [g["GroupName"] for g in client.get_groups()["Groups"]] == ["slow"]
    ts = xraykit.from_documents(FILTER_DOCS)
    slow = sorted(ts.query("responsetime > 3").traces.trace_id)
    got = all_summaries(client, FilterExpression='group.name = "slow"', **WINDOW)
    assert sorted(s["Id"] for s in got) == slow
    arn = f'group.arn = "{created["GroupARN"]}"'
    assert sorted(s["Id"] for s in all_summaries(client, FilterExpression=arn, **WINDOW)) == slow

    updated = client.update_group(GroupName="slow", FilterExpression="fault")["Group"]
    assert updated["FilterExpression"] == "fault"
    got = all_summaries(client, FilterExpression='group.name = "slow"', **WINDOW)
    assert sorted(s["Id"] for s in got) == sorted(ts.query("fault").traces.trace_id)
    graph = client.get_service_graph(GroupName="slow", **WINDOW)
    assert {s["Name"] for s in graph["Services"]} >= {"web"}

    code, _ = error_of(client.create_group, GroupName="slow")
    assert code == "InvalidRequestException"
    code, message = error_of(client.create_group, GroupName="bad", FilterExpression="fault AND")
    assert code == "InvalidRequestException" and message
    client.delete_group(GroupName="slow")
    assert client.get_groups()["Groups"] == []
    code, _ = error_of(client.get_group, GroupName="slow")
    assert code == "InvalidRequestException"
    code, message = error_of(
        client.get_trace_summaries, FilterExpression='group.name = "slow"', **WINDOW
    )
    assert code == "InvalidRequestException" and "slow" in message


# --- sampling ---------------------------------------------------------------------------


def test_sampling_routes(client: Any) -> None:
    rules = client.get_sampling_rules()["SamplingRuleRecords"]
    assert "Default" in {r["SamplingRule"]["RuleName"] for r in rules}
    rule = {
        "RuleName": "checkout",
        "ResourceARN": "*",
        "Priority": 10,
        "FixedRate": 0.5,
        "ReservoirSize": 4,
        "ServiceName": "*",
        "ServiceType": "*",
        "Host": "*",
        "HTTPMethod": "*",
        "URLPath": "/checkout",
        "Version": 1,
    }
    client.create_sampling_rule(SamplingRule=rule)
    names = {
        r["SamplingRule"]["RuleName"] for r in client.get_sampling_rules()["SamplingRuleRecords"]
    }
    assert names == {"Default", "checkout"}
    targets = client.get_sampling_targets(
        SamplingStatisticsDocuments=[
            {
                "RuleName": "checkout",
                "ClientID": "0" * 24,
                "Timestamp": time.time(),
                "RequestCount": 10,
                "SampledCount": 5,
                "BorrowCount": 0,
            }
        ]
    )
    assert [t["RuleName"] for t in targets["SamplingTargetDocuments"]] == ["checkout"]
    code, _ = error_of(client.delete_sampling_rule, RuleName="Default")
    assert code == "InvalidRequestException"
    client.delete_sampling_rule(RuleName="checkout")


def test_the_sdk_sampling_connector_reads_rules_and_targets(server: ApiServer) -> None:
    connector_module = pytest.importorskip("aws_xray_sdk.core.sampling.connector")
    connector = connector_module.ServiceConnector()
    connector.setup_xray_client(server.address[0], server.address[1], None)
    rules = connector.fetch_sampling_rules()
    assert [r.name for r in rules] == ["Default"]
    rules[0].increment_request_count()
    targets, _modified = connector.fetch_sampling_target(rules)
    assert targets["Default"]["quota"] >= 1


# --- HTTP, errors, throttling ------------------------------------------------------------


def test_throttling(store: Store) -> None:
    with ApiServer(store, ("127.0.0.1", 0), rate_limit=1) as api:
        client = make_client(api)
        codes = []
        for _ in range(10):
            try:
                client.get_groups()
                codes.append("ok")
            except botocore_exceptions.ClientError as error:
                codes.append(error.response["Error"]["Code"])
        assert codes[0] == "ok"
        assert "ThrottledException" in codes
        assert api.stats()["throttled"] == codes.count("ThrottledException")
        time.sleep(1.1)
        client.get_groups()


def test_concurrent_puts_and_queries(server: ApiServer) -> None:
    clients = [make_client(server) for _ in range(4)]
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            client = clients[n]
            put(client, FILTER_DOCS[n::4])
            for _ in range(3):
                client.get_trace_summaries(FilterExpression="ok OR fault", **WINDOW)
                client.batch_get_traces(TraceIds=[FILTER_DOCS[n]["trace_id"]])
        except BaseException as error:  # collected: a thread's failure must fail the test
            failures.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    got = all_summaries(clients[0], **WINDOW)
    assert len(got) == 9


@pytest.mark.parametrize(
    ("body", "headers", "status", "words"),
    [
        (b"not json", {}, 400, "not JSON"),
        (b"[1, 2]", {}, 400, "JSON object"),
        (b"\xff\xfe\x00garbage", {}, 400, "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, {}, 400, "not JSON"),
        (b'{"TraceIds": "1-6553f100-000000000000000000000001"}', {}, 400, "list of strings"),
        (b'{"StartTime": "yesterday", "EndTime": 1}', {"path": "/TraceSummaries"}, 400, "number"),
        (b"{}", {"Content-Length": None}, 411, "Content-Length"),
        (b"{}", {"Content-Length": str(MAX_BODY + 1)}, 413, "bytes"),
        (b"{}", {"Content-Length": "-4"}, 400, "Content-Length"),
        (b"{}", {"path": "/NoSuchOperation"}, 404, "No operation"),
    ],
)
def test_garbage_is_an_invalid_request_and_the_server_keeps_serving(
    server: ApiServer, client: Any, body: bytes, headers: dict[str, Any], status: int, words: str
) -> None:
    path = headers.pop("path", "/Traces")
    sent = {"Content-Type": "application/json", "Content-Length": str(len(body)), **headers}
    sent = {k: v for k, v in sent.items() if v is not None}
    code, answer_headers, data = raw_request(server, "POST", path, body, sent)
    assert code == status
    assert answer_headers["x-amzn-ErrorType"] in (
        "InvalidRequestException",
        "UnknownOperationException",
    )
    assert words in json.loads(data)["message"]
    assert b"Traceback" not in data
    assert client.get_groups()["Groups"] == []


def test_an_oversized_body_through_boto3(client: Any) -> None:
    code, message = error_of(client.put_trace_segments, TraceSegmentDocuments=["x" * (2 << 20)])
    assert code == "InvalidRequestException" and str(MAX_BODY) in message
    assert client.get_groups()["Groups"] == []


def test_other_methods_and_broken_requests(server: ApiServer, client: Any) -> None:
    code, headers, _ = raw_request(server, "GET", "/Traces", b"", {})
    assert code == 404 and headers["x-amzn-ErrorType"] == "UnknownOperationException"
    with socket.create_connection(server.address, timeout=10) as sock:
        sock.sendall(b"\x00\x01 garbage garbage\r\n\r\n")
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/") and b"Traceback" not in reply
    with socket.create_connection(server.address, timeout=10) as sock:
        sock.sendall(b"POST /Traces HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
    assert client.get_groups()["Groups"] == []


def test_loopback_only_unless_allowed(store: Store) -> None:
    with pytest.raises(ArgumentError, match="allow_remote"):
        ApiServer(store, ("0.0.0.0", 0))
    with pytest.raises(ArgumentError, match="rate_limit"):
        ApiServer(store, ("127.0.0.1", 0), rate_limit=0)
    api = ApiServer(store, ("0.0.0.0", 0), allow_remote=True)
    try:
        assert api.endpoint_url == f"http://127.0.0.1:{api.address[1]}"
    finally:
        api.stop()


# --- encryption -----------------------------------------------------------------------


def test_encryption_config_defaults_to_none_and_takes_a_kms_key(client: Any) -> None:
    config = client.get_encryption_config()["EncryptionConfig"]
    assert config == {"Type": "NONE", "Status": "ACTIVE"}
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    put_answer = client.put_encryption_config(Type="KMS", KeyId=key)["EncryptionConfig"]
    assert put_answer == {"Type": "KMS", "KeyId": key, "Status": "ACTIVE"}
    assert client.get_encryption_config()["EncryptionConfig"] == put_answer
    # back to X-Ray's default encryption: a key sent with NONE is not kept
    client.put_encryption_config(Type="NONE", KeyId="alias/ignored")
    assert client.get_encryption_config()["EncryptionConfig"] == {
        "Type": "NONE",
        "Status": "ACTIVE",
    }


def test_encryption_config_errors_in_x_rays_shape(client: Any) -> None:
    code, message = error_of(client.put_encryption_config, Type="AES")
    assert code == "InvalidRequestException"
    assert "'AES'" in message and "[NONE, KMS]" in message
    code, message = error_of(client.put_encryption_config, Type="KMS")
    assert code == "InvalidRequestException" and "KeyId is required" in message
    code, _ = error_of(client.put_encryption_config, Type="KMS", KeyId="alias/has space")
    assert code == "InvalidRequestException"
    # nothing was changed by the refused requests
    assert client.get_encryption_config()["EncryptionConfig"]["Type"] == "NONE"


def test_encryption_config_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "local.sqlite3"
    with xraykit.local.start("127.0.0.1:0", store=path) as xr:
        xr.client().put_encryption_config(Type="KMS", KeyId="alias/course")
    with xraykit.local.start("127.0.0.1:0", store=path) as xr:
        config = xr.client().get_encryption_config()["EncryptionConfig"]
    assert config == {"Type": "KMS", "KeyId": "alias/course", "Status": "ACTIVE"}
