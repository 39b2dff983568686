"""Tests of xraykit.graph: X-Ray's service-graph rules on hand-built traces with known
graphs (tests/data/graph_*.json), a recorded GetServiceGraph response, and every sample."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

import xraykit
from xraykit import status
from xraykit.exceptions import ArgumentError, ArgumentTypeError, TraceParseError
from xraykit.graph import (
    CLIENT,
    EDGE_CALL_COLUMNS,
    EDGE_COLUMNS,
    NODE_COLUMNS,
    NODE_SEGMENT_COLUMNS,
    ServiceGraph,
    edge_calls,
    graph_frames,
    node_segments,
    service_graph,
    service_graph_from_response,
    traces_for_edge,
    traces_for_node,
)

DATA = Path(__file__).parent / "data"
A, B = "111111111111", "222222222222"


def documents(name: str) -> list[dict]:
    return json.loads((DATA / f"graph_{name}.json").read_text())


def load(name: str) -> xraykit.TraceSet:
    return xraykit.from_documents(documents(name), on_error="raise")


def counts(graph: ServiceGraph, frame: str = "nodes") -> dict:
    """{key: (ok, error, throttle, fault, total)} of the nodes or edges of a graph."""
    table = getattr(graph, frame)
    cols = ["ok_count", "error_count", "throttle_count", "fault_count", "total_count"]
    if frame == "nodes":
        keys = table["node_id"]
    else:
        keys = list(zip(table["source"], table["target"], table["edge_type"], strict=True))
    return dict(
        zip(keys, (tuple(int(v) for v in row) for row in table[cols].to_numpy()), strict=True)
    )


# -- the six known graphs -----------------------------------------------------------------------


def test_linear_chain_has_exact_nodes_and_edges():
    graph = service_graph(load("chain"))
    assert counts(graph) == {
        CLIENT: (0, 0, 0, 0, 0),
        "web|AWS::EC2::Instance|": (2, 0, 0, 0, 2),
        "orders|AWS::ECS::Container|": (2, 0, 0, 0, 2),
        "inventory|AWS::EC2::Instance|": (2, 0, 0, 0, 2),
    }
    assert counts(graph, "edges") == {
        (CLIENT, "web|AWS::EC2::Instance|", ""): (2, 0, 0, 0, 2),
        ("web|AWS::EC2::Instance|", "orders|AWS::ECS::Container|", ""): (2, 0, 0, 0, 2),
        ("orders|AWS::ECS::Container|", "inventory|AWS::EC2::Instance|", ""): (2, 0, 0, 0, 2),
    }
    nodes = graph.nodes.set_index("node_id")
    assert nodes.loc["web|AWS::EC2::Instance|", "root"]
    assert not nodes.loc["orders|AWS::ECS::Container|", "root"]
    assert nodes.loc["web|AWS::EC2::Instance|", "mean_response_time_s"] == pytest.approx(
        0.5, abs=1e-5
    )


def test_traced_downstream_replaces_the_inferred_node():
    occ = node_segments(load("chain"))
    # the "orders"/"inventory" remote subsegments have real segments: no derived nodes
    assert not occ["derived"].any()
    assert set(occ["type"]) == {"AWS::EC2::Instance", "AWS::ECS::Container"}


def test_fan_out_derives_inferred_nodes_from_raw_sdk_documents():
    ts = load("fanout")
    graph = service_graph(ts)
    api = "api|AWS::ECS::Container|"
    assert counts(graph) == {
        CLIENT: (0, 0, 0, 0, 0),
        api: (3, 0, 0, 0, 3),
        "users|AWS::EC2::Instance|": (3, 0, 0, 0, 3),
        # the Python SDK names the subsegment "dynamodb": same node as X-Ray's "DynamoDB"
        "carts|AWS::DynamoDB::Table|": (2, 1, 1, 0, 3),
        "api.example.com|remote|": (2, 1, 0, 0, 3),
        "shop@db.internal|Database::SQL|": (3, 0, 0, 0, 3),
        # from a streamed subsegment (its own document) of the api segment
        "SNS|AWS::SNS|": (3, 0, 0, 0, 3),
    }
    edges = counts(graph, "edges")
    assert {(s, t) for s, t, _ in edges} == {(CLIENT, api)} | {
        (api, n) for n in graph.nodes["node_id"] if n not in (CLIENT, api)
    }
    occ = node_segments(ts)
    derived = occ[occ["derived"]]
    assert set(derived["node_id"]) == {
        "carts|AWS::DynamoDB::Table|",
        "api.example.com|remote|",
        "shop@db.internal|Database::SQL|",
        "SNS|AWS::SNS|",
    }
    assert derived["inferred"].all() and not derived["root"].any()
    # a "local" subsegment (load-cart) is not a node
    assert "load-cart" not in set(occ["name"])


def test_lambda_pair_and_inferred_segment_from_batch_get_traces():
    ts = load("lambda")
    graph = service_graph(ts)
    stage = "shop-api/prod|AWS::ApiGateway::Stage|"
    service, function = "checkout|AWS::Lambda|", "checkout|AWS::Lambda::Function|"
    table = "orders|AWS::DynamoDB::Table|"
    assert counts(graph) == {
        CLIENT: (0, 0, 0, 0, 0),
        stage: (1, 0, 0, 1, 2),
        service: (1, 0, 0, 1, 2),
        function: (1, 0, 0, 1, 2),
        # one node per call: the inferred segment is used, not counted twice
        table: (2, 0, 0, 0, 2),
    }
    assert set(counts(graph, "edges")) == {
        (CLIENT, stage, ""),
        (stage, service, ""),
        (service, function, ""),  # function segment's parent_id is the service segment
        (function, table, ""),
    }
    occ = node_segments(ts)
    assert not occ["derived"].any()
    # named after the table, although the inferred segment is named "DynamoDB"
    assert set(occ.loc[occ["inferred"], "name"]) == {"orders"}


def test_raw_and_processed_documents_give_the_same_graph():
    docs = documents("lambda")
    raw = [d for d in docs if not d.get("inferred")]
    assert len(raw) < len(docs)
    processed = service_graph(load("lambda"))
    derived = service_graph(xraykit.from_documents(raw, on_error="raise"))
    cols = ["node_id", "ok_count", "fault_count", "total_count", "mean_response_time_s"]
    pd.testing.assert_frame_equal(processed.nodes[cols], derived.nodes[cols])
    pd.testing.assert_frame_equal(
        processed.edges.drop(columns=["response_time_histogram", "event_age_histogram"]),
        derived.edges.drop(columns=["response_time_histogram", "event_age_histogram"]),
    )


def test_sqs_link_is_a_link_edge_from_the_queue_to_the_consumer():
    ts = load("sqs_link")
    graph = service_graph(ts)
    queue, consumer = "jobs|AWS::SQS::Queue|", "worker|AWS::Lambda|"
    edges = graph.edges.set_index(["source", "target"])
    link = edges.loc[(queue, consumer)]
    assert link["edge_type"] == "link"
    assert link["total_count"] == 1
    # consumer's AWS::Lambda segment starts 2.15 s, SendMessage ended at 0.15 s
    assert link["mean_event_age_s"] == pytest.approx(2.0, abs=1e-5)
    assert pd.isna(link["mean_response_time_s"])
    assert [e for e in graph.edges["edge_type"] if e] == ["link"]
    # the consumer starts its own trace but is reached by the link: no client edge to it
    assert list(graph.edges.loc[graph.edges["source"] == CLIENT, "target"]) == [
        "web|AWS::EC2::Instance|"
    ]
    assert ("worker|AWS::Lambda|", "worker|AWS::Lambda::Function|") in edges.index
    calls = edge_calls(ts)
    row = calls[calls["edge_type"] == "link"].iloc[0]
    assert row["linked_trace_id"] == ts.traces["trace_id"].iloc[0] or row["linked_trace_id"] in set(
        ts.traces["trace_id"]
    )
    assert row["linked_trace_id"] != row["trace_id"]


def test_linked_consumer_is_a_root_reached_by_its_link():
    ts = load("sqs_link")
    occ, calls = graph_frames(ts)
    consumer = occ[(occ["name"] == "worker") & (occ["type"] == "AWS::Lambda")]
    assert len(consumer) == 1
    assert consumer["root"].item() and consumer["linked"].item()
    # the consumer trace's root segment, as the traces frame names it
    roots = ts.traces.set_index("trace_id")["root_segment_id"]
    assert consumer["entity_id"].item() == roots[consumer["trace_id"].item()]
    # reached by the link edge only: no client edge, one link edge
    into = calls[calls["target_entity_id"] == consumer["entity_id"].item()]
    assert list(into["edge_type"]) == ["link"]
    assert service_graph(ts).nodes.set_index("node_id").loc["worker|AWS::Lambda|", "root"]
    # only segments are linked, never the function segment below the consumer
    assert int(occ["linked"].sum()) == 1


def test_graph_frames_is_node_segments_and_edge_calls_and_sees_edits():
    ts = load("fanout")
    nodes, calls = graph_frames(ts)
    pd.testing.assert_frame_equal(nodes, node_segments(ts))
    pd.testing.assert_frame_equal(calls, edge_calls(ts))
    # nothing is cached: an edit of a frame in place shows in the next call
    ts.segments.loc[ts.segments["name"] == "users", "name"] = "accounts"
    again, _ = graph_frames(ts)
    assert "accounts|AWS::EC2::Instance|" in set(again["node_id"])
    assert "users|AWS::EC2::Instance|" not in set(again["node_id"])


def test_reused_ids_in_other_traces_give_the_same_graph_per_trace():
    # ids are unique within a trace only: the same documents under another trace id
    docs = documents("chain")
    twin = copy.deepcopy(docs)
    for doc in twin:
        doc["trace_id"] = doc["trace_id"].replace("1-6553f100-", "1-6553f1ff-")
    single = service_graph(xraykit.from_documents(docs, on_error="raise"))
    double = service_graph(xraykit.from_documents(docs + twin, on_error="raise"))
    assert {k: tuple(2 * c for c in v) for k, v in counts(single).items()} == counts(double)
    assert {k: tuple(2 * c for c in v) for k, v in counts(single, "edges").items()} == counts(
        double, "edges"
    )


def test_two_accounts_make_separate_nodes_and_inherit_the_callers_account():
    graph = service_graph(load("accounts"))
    assert counts(graph) == {
        CLIENT: (0, 0, 0, 0, 0),
        f"front|AWS::ECS::Container|{A}": (2, 0, 0, 0, 2),
        f"auth|AWS::ECS::Container|{A}": (2, 0, 0, 0, 2),
        f"ledger|AWS::ECS::Container|{B}": (2, 0, 0, 0, 2),
        f"auth|AWS::ECS::Container|{B}": (2, 0, 0, 0, 2),
        f"ledger|AWS::DynamoDB::Table|{B}": (2, 0, 0, 0, 2),
    }
    assert (f"ledger|AWS::ECS::Container|{B}", f"auth|AWS::ECS::Container|{B}", "") in counts(
        graph, "edges"
    )
    assert set(graph.nodes["account_id"]) == {"", A, B}


def test_downstream_fault_with_successful_root_and_slower_edge():
    graph = service_graph(load("downstream_fault"))
    shop, pricing = "shop|AWS::EC2::Instance|", "pricing|AWS::EC2::Instance|"
    assert counts(graph) == {
        CLIENT: (0, 0, 0, 0, 0),
        shop: (3, 0, 0, 0, 3),
        pricing: (2, 0, 0, 1, 3),
    }
    assert counts(graph, "edges") == {
        (CLIENT, shop, ""): (3, 0, 0, 0, 3),
        (shop, pricing, ""): (2, 0, 0, 1, 3),
    }
    nodes = graph.nodes.set_index("node_id")
    edge = graph.edges.set_index(["source", "target"]).loc[(shop, pricing)]
    # the edge is measured by the caller's subsegment (0.25 s), the node by its segment (0.1 s)
    assert edge["mean_response_time_s"] == pytest.approx(0.25, abs=1e-5)
    assert nodes.loc[pricing, "mean_response_time_s"] == pytest.approx(0.1, abs=1e-5)


# -- frames, statistics and histograms ----------------------------------------------------------------


def test_frames_have_the_contract_columns_and_dtypes():
    ts = load("fanout")
    occ, calls, graph = node_segments(ts), edge_calls(ts), service_graph(ts)
    assert {c: str(t) for c, t in occ.dtypes.items()} == NODE_SEGMENT_COLUMNS
    assert {c: str(t) for c, t in calls.dtypes.items()} == EDGE_CALL_COLUMNS
    assert {c: str(t) for c, t in graph.nodes.dtypes.items()} == NODE_COLUMNS
    assert {c: str(t) for c, t in graph.edges.dtypes.items()} == EDGE_COLUMNS
    assert list(graph.nodes["reference_id"]) == list(range(len(graph.nodes)))


def test_empty_traceset_gives_an_empty_graph_with_all_columns():
    empty = xraykit.from_documents([])
    graph = service_graph(empty)
    assert graph.nodes.empty and graph.edges.empty
    assert list(graph.nodes.columns) == list(NODE_COLUMNS)
    assert list(edge_calls(empty).columns) == list(EDGE_CALL_COLUMNS)
    assert "0 nodes" in repr(graph)


def test_percentiles_and_histograms():
    graph = service_graph(load("downstream_fault"))
    edge = graph.edges.set_index(["source", "target"]).loc[
        ("shop|AWS::EC2::Instance|", "pricing|AWS::EC2::Instance|")
    ]
    assert edge["p50_response_time_s"] == pytest.approx(0.25, abs=1e-5)
    assert edge["response_time_histogram"] == [(0.25, 3)]
    for _, row in graph.nodes.iterrows():
        assert sum(c for _, c in row["response_time_histogram"]) == row["total_count"]


def test_flags_are_completed_from_the_http_status():
    docs = documents("downstream_fault")
    for doc in docs:  # drop the flags; keep the statuses
        for key in ("fault", "error", "throttle"):
            doc.pop(key, None)
            for sub in doc.get("subsegments", []):
                sub.pop(key, None)
    graph = service_graph(xraykit.from_documents(docs, on_error="raise"))
    assert counts(graph)["pricing|AWS::EC2::Instance|"] == (2, 0, 0, 1, 3)


T0 = 1700000000.0


def segment(trace: str, id_: str, name: str, start: float, end: float | None, **extra) -> dict:
    """A segment document (in progress when ``end`` is None)."""
    doc = {"trace_id": trace, "id": id_, "name": name, "start_time": T0 + start, **extra}
    if end is None:
        doc["in_progress"] = True
    else:
        doc["end_time"] = T0 + end
    return doc


def trace_id(n: int) -> str:
    return f"1-6553f100-{n:024x}"


def test_an_in_progress_only_set_gives_a_graph_with_tz_aware_times():
    ts = xraykit.load_file(DATA / "in_progress.json")
    partial = ts.trace(ts.traces.loc[ts.traces["is_partial"], "trace_id"].item())
    occ, calls = graph_frames(partial)
    assert str(occ["end"].dtype) == str(calls["end"].dtype) == "datetime64[us, UTC]"
    assert occ["end"].isna().all() and occ["start"].notna().all()
    assert not occ["ok"].any()  # no outcome yet
    graph = service_graph(partial)
    assert {c: str(t) for c, t in graph.nodes.dtypes.items()} == NODE_COLUMNS
    assert {c: str(t) for c, t in graph.edges.dtypes.items()} == EDGE_COLUMNS
    nodes = graph.nodes.set_index("node_id")
    assert counts(graph) == {
        "client": (0, 0, 0, 0, 0),
        "checkout||": (0, 0, 0, 0, 0),
        "payments|remote|": (0, 0, 0, 0, 0),
    }
    assert nodes.loc["checkout||", "in_progress_count"] == 1
    assert nodes.loc["checkout||", "start"] == pd.Timestamp("2020-10-12 21:16:17.100", tz="UTC")
    assert pd.isna(nodes.loc["checkout||", "end"])
    assert pd.isna(nodes.loc["checkout||", "mean_response_time_s"])
    assert counts(graph, "edges") == {
        ("client", "checkout||", ""): (0, 0, 0, 0, 0),
        ("checkout||", "payments|remote|", ""): (0, 0, 0, 0, 0),
    }
    assert graph.edges["in_progress_count"].tolist() == [1, 1]
    assert "3 nodes, 2 edges" in repr(graph)


def test_in_progress_requests_are_outside_the_buckets_and_the_mean():
    docs = [
        segment(trace_id(1), "a000000000000001", "api", 0, 0.2),
        segment(trace_id(2), "a000000000000002", "api", 1, 1.4),
        segment(trace_id(3), "a000000000000003", "api", 2, None),
    ]
    graph = service_graph(xraykit.from_documents(docs, on_error="raise"))
    api = graph.nodes.set_index("node_id").loc["api||"]
    assert (api["ok_count"], api["total_count"], api["in_progress_count"]) == (2, 2, 1)
    assert api["total_response_time_s"] == pytest.approx(0.6, abs=1e-5)
    assert api["mean_response_time_s"] == pytest.approx(0.3, abs=1e-5)  # total / total_count
    assert sum(c for _, c in api["response_time_histogram"]) == 2
    client = graph.edges.set_index(["source", "target"]).loc[("client", "api||")]
    assert (client["total_count"], client["in_progress_count"]) == (2, 1)
    assert client["mean_response_time_s"] == pytest.approx(0.3, abs=1e-5)


def test_root_is_exactly_the_traces_root_segment_with_one_client_edge():
    tid = trace_id(7)
    docs = [  # a second entry point (a batch job started later), and a caller missing from the data
        segment(tid, "b000000000000001", "web", 0, 0.5, http={"response": {"status": 200}}),
        segment(tid, "b000000000000002", "batch", 0.2, 0.9),
        segment(tid, "b000000000000003", "orphan", 0.3, 0.4, parent_id="c000000000000009"),
    ]
    ts = xraykit.from_documents(docs, on_error="raise")
    occ, calls = graph_frames(ts)
    assert ts.traces["root_segment_id"].item() == "b000000000000001"
    assert occ.loc[occ["root"], "entity_id"].tolist() == ["b000000000000001"]
    client = calls[calls["source"] == CLIENT]
    assert client[["target", "entity_id"]].values.tolist() == [["web||", "b000000000000001"]]
    nodes = service_graph(ts).nodes.set_index("node_id")
    assert nodes["root"].to_dict() == {
        "client": False,
        "batch||": False,
        "orphan||": False,
        "web||": True,
    }


def test_the_arguments_are_not_modified():
    ts = load("lambda")
    before = {name: frame.copy() for name, frame in ts.frames.items()}
    service_graph(ts)
    for name, frame in ts.frames.items():
        pd.testing.assert_frame_equal(frame, before[name])


# -- traces behind nodes and edges -----------------------------------------------------------------------


def test_traces_for_node_and_edge():
    ts = xraykit.from_documents(documents("chain") + documents("downstream_fault"))
    shop_ids = set(load("downstream_fault").traces["trace_id"])
    assert set(traces_for_node(ts, "pricing").traces["trace_id"]) == shop_ids
    assert set(traces_for_node(ts, "pricing|AWS::EC2::Instance|").traces["trace_id"]) == shop_ids
    assert len(traces_for_node(ts, "pricing", type="AWS::Lambda")) == 0
    assert len(traces_for_node(ts, "client")) == len(ts)
    assert set(traces_for_edge(ts, "shop", "pricing").traces["trace_id"]) == shop_ids
    assert len(traces_for_edge(ts, "pricing", "shop")) == 0
    assert len(traces_for_edge(ts, "client", "web")) == 2


def test_traces_for_a_link_edge_include_the_producer():
    ts = load("sqs_link")
    hit = traces_for_edge(ts, "jobs", "worker", edge_type="link")
    assert set(hit.traces["trace_id"]) == set(ts.traces["trace_id"])
    assert len(traces_for_edge(ts, "jobs", "worker", edge_type="")) == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda x: service_graph(x),
        lambda x: graph_frames(x),
        lambda x: node_segments(x),
        lambda x: edge_calls(x),
        lambda x: traces_for_node(x, "web"),
        lambda x: traces_for_edge(x, "client", "web"),
    ],
)
def test_a_frame_instead_of_a_traceset_says_what_to_pass(call):
    frame = load("chain").traces
    with pytest.raises(ArgumentTypeError, match="`ts` must be a TraceSet"):
        call(frame)
    with pytest.raises(TypeError):  # the builtin a user would catch
        call([])


def test_outcome_flags_are_xraykits_one_status_rule():
    ts = xraykit.load_sample("shop")
    occ = node_segments(ts)
    real = occ[~occ["derived"]]
    segs = ts.segments.set_index("segment_id").loc[real["entity_id"]]
    expected = status.flags(
        segs["http_status"], fault=segs["fault"], error=segs["error"], throttle=segs["throttle"]
    )
    assert (real["fault"].to_numpy() == expected.fault).all()
    assert (real["error"].to_numpy() == expected.error).all()
    assert (real["throttle"].to_numpy() == expected.throttle).all()
    assert bool(real["fault"].any()) and bool(real["error"].any())


def test_traces_for_node_lambda_name_is_shared_by_two_nodes():
    ts = load("lambda")
    assert len(traces_for_node(ts, "checkout")) == 2
    assert len(traces_for_node(ts, "checkout", type="AWS::Lambda::Function")) == 2


# -- GetServiceGraph responses ----------------------------------------------------------------------------


@pytest.fixture
def response() -> dict:
    return json.loads((DATA / "graph_get_service_graph.json").read_text())


def test_recorded_get_service_graph_response(response):
    graph = service_graph_from_response(response)
    assert graph.origin == "GetServiceGraph"
    assert graph.window_s == 600
    acct = "123456789012"
    assert set(graph.nodes["node_id"]) == {
        CLIENT,
        f"shop-api/prod|AWS::ApiGateway::Stage|{acct}",
        "shop-checkout|AWS::Lambda|",
        f"shop-checkout|AWS::Lambda::Function|{acct}",
        f"orders|AWS::DynamoDB::Table|{acct}",
        f"order-events|AWS::SQS::Queue|{acct}",
        "order-worker|AWS::Lambda|",
        f"order-worker|AWS::Lambda::Function|{acct}",
        "api.paygate.example|remote|",
    }
    nodes = graph.nodes.set_index("node_id")
    assert tuple(
        nodes.loc[
            "api.paygate.example|remote|",
            ["ok_count", "error_count", "throttle_count", "fault_count", "total_count"],
        ]
    ) == (1130, 62, 58, 8, 1200)
    assert nodes.loc["api.paygate.example|remote|", "mean_response_time_s"] == pytest.approx(
        0.185, abs=1e-5
    )
    assert nodes.loc["api.paygate.example|remote|", "inferred"]
    assert nodes.loc[f"shop-api/prod|AWS::ApiGateway::Stage|{acct}", "root"]
    assert not nodes.loc[f"shop-checkout|AWS::Lambda::Function|{acct}", "inferred"]
    p50, p99 = nodes.loc[
        "api.paygate.example|remote|", ["p50_response_time_s", "p99_response_time_s"]
    ]
    assert 0.1 < p50 < p99 < 1
    edges = graph.edges.set_index(["source", "target"])
    link = edges.loc[(f"order-events|AWS::SQS::Queue|{acct}", "order-worker|AWS::Lambda|")]
    assert link["edge_type"] == "link"
    assert 0.2 < link["mean_event_age_s"] < 1
    assert pd.isna(link["mean_response_time_s"])
    assert sum(c for _, c in link["event_age_histogram"]) == 1200
    client = edges.loc[(CLIENT, f"shop-api/prod|AWS::ApiGateway::Stage|{acct}")]
    assert client["total_count"] == 1200
    assert (
        graph.nodes[["ok_count", "error_count", "fault_count"]].sum(axis=1)
        == graph.nodes["total_count"]
    ).all()


def test_boto3_datetimes_and_pages_give_the_same_graph(response):
    graph = service_graph_from_response(response)
    boto = copy.deepcopy(response)

    def as_datetime(obj):
        for key in ("StartTime", "EndTime"):
            if key in obj:
                obj[key] = dt.datetime.fromtimestamp(obj[key], tz=dt.UTC)

    as_datetime(boto)
    for service in boto["Services"]:
        as_datetime(service)
        for edge in service.get("Edges", []):
            as_datetime(edge)
    pages = [dict(boto, Services=boto["Services"][:4]), dict(boto, Services=boto["Services"][4:])]
    for other in (service_graph_from_response(boto), service_graph_from_response(pages)):
        pd.testing.assert_frame_equal(other.nodes, graph.nodes)
        pd.testing.assert_frame_equal(other.edges, graph.edges)
        assert other.start == graph.start and other.end == graph.end


def test_trace_graph_response_and_computed_graph_compare_alike():
    computed = service_graph(load("downstream_fault"))
    services = []
    for ref, row in computed.nodes.iterrows():
        service = {"ReferenceId": ref, "Name": row["name"], "Type": row["type"], "Edges": []}
        if row["node_id"] != CLIENT:
            service["SummaryStatistics"] = {
                "OkCount": int(row["ok_count"]),
                "ErrorStatistics": {
                    "ThrottleCount": int(row["throttle_count"]),
                    "TotalCount": int(row["error_count"]),
                },
                "FaultStatistics": {"TotalCount": int(row["fault_count"])},
                "TotalCount": int(row["total_count"]),
                "TotalResponseTime": float(row["total_response_time_s"]),
            }
        services.append(service)
    refs = dict(zip(computed.nodes["node_id"], range(len(services)), strict=True))
    for _, edge in computed.edges.iterrows():
        services[refs[edge["source"]]]["Edges"].append(
            {
                "ReferenceId": refs[edge["target"]],
                "SummaryStatistics": {
                    "OkCount": int(edge["ok_count"]),
                    "FaultStatistics": {"TotalCount": int(edge["fault_count"])},
                    "TotalCount": int(edge["total_count"]),
                    "TotalResponseTime": float(edge["total_response_time_s"]),
                },
            }
        )
    graph = service_graph_from_response({"Services": services})
    assert graph.origin == "GetTraceGraph"
    cols = ["node_id", "ok_count", "fault_count", "total_count", "mean_response_time_s"]
    pd.testing.assert_frame_equal(graph.nodes[cols], computed.nodes[cols])
    cols = ["source", "target", "edge_type", "total_count", "fault_count", "mean_response_time_s"]
    pd.testing.assert_frame_equal(graph.edges[cols], computed.edges[cols])


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ({"Traces": []}, "page 0"),
        ({"Services": [{"Name": "x"}]}, "Services[0]"),
        (
            {"Services": [{"ReferenceId": 0, "Name": "x", "Edges": [{"ReferenceId": 9}]}]},
            "Edges[0]",
        ),
        (
            {"Services": [{"ReferenceId": 0, "ResponseTimeHistogram": [{"Value": 1}]}]},
            "ReferenceId 0",
        ),
    ],
)
def test_malformed_responses_raise_trace_parse_errors(bad, where):
    with pytest.raises(TraceParseError) as info:
        service_graph_from_response(bad)
    assert where in info.value.location
    assert "Expected" in str(info.value) or "points at" in str(info.value)


# -- ServiceGraph object -------------------------------------------------------------------------------------


def test_service_graph_object_exports_dot_and_rejects_unknown_formats(tmp_path):
    graph = service_graph(load("chain"))
    assert graph.ts is not None
    assert graph.to_dot().startswith("digraph service_map")
    path = graph.save(tmp_path / "map.dot")
    assert path.read_text().startswith("digraph")
    assert graph.save(tmp_path / "map.gv").read_text() == path.read_text()
    with pytest.raises(ArgumentError, match="`format` must be one of"):
        graph.save(tmp_path / "map.bmp")
    assert len(graph.node("orders")) == 1
    assert "ServiceGraph from traces: 4 nodes, 3 edges" in repr(graph)


@pytest.mark.dot
def test_service_graph_renders_svg_and_png(tmp_path):
    graph = service_graph(load("lambda"))
    assert graph.save(tmp_path / "map.svg").read_text().lstrip().startswith("<?xml")
    assert graph.save(tmp_path / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert graph.save(tmp_path / "map", format="pdf").read_bytes()[:4] == b"%PDF"
    bundle = graph._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"]
    assert not hasattr(graph, "_repr_svg_")  # the bundle (with its fallback) is the only display


def test_without_dot_a_notebook_shows_how_to_install_it(monkeypatch, tmp_path):
    graph = service_graph(load("chain"))
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no `dot` to be found
    bundle = graph._repr_mimebundle_()
    assert set(bundle) == {"text/plain"}
    text = bundle["text/plain"]
    assert text.startswith(repr(graph))
    assert "`dot` program, which was not found" in text
    assert "apt-get install graphviz" in text and "conda install" in text
    # what IPython's display machinery (a notebook's output cell) makes of it: no traceback
    formatter = pytest.importorskip("IPython.core.formatters").DisplayFormatter()
    data, _ = formatter.format(graph)
    assert "image/svg+xml" not in data
    assert "apt-get install graphviz" in data["text/plain"]


# -- every shipped sample -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", xraykit.sample_names())
def test_sample_graph_is_consistent(name):
    ts = xraykit.load_sample(name)
    graph = service_graph(ts)
    occ, calls = node_segments(ts), edge_calls(ts)
    # every segment is one node occurrence; node counts sum to their occurrences
    assert int((~occ["derived"]).sum()) == len(ts.segments)
    per_node = occ.groupby("node_id").size()
    nodes = graph.nodes.set_index("node_id")
    counted = (
        nodes.loc[per_node.index, "total_count"] + nodes.loc[per_node.index, "in_progress_count"]
    )
    assert (counted == per_node).all()
    # the root occurrences are exactly the traces' root segments, one per trace
    roots = list(
        zip(occ.loc[occ["root"], "trace_id"], occ.loc[occ["root"], "entity_id"], strict=True)
    )
    assert len(roots) == len(set(roots)) == len(ts)
    assert set(zip(ts.traces["trace_id"], ts.traces["root_segment_id"], strict=True)) == set(roots)
    # one client call per trace whose root is not reached by a link (a linked consumer has
    # the link edge from the queue instead)
    client = calls[calls["source"] == CLIENT]
    entry = occ["root"] & ~occ["linked"]
    assert len(client) == int(entry.sum()) > 0
    assert client["trace_id"].is_unique
    assert set(zip(client["trace_id"], client["entity_id"], strict=True)) == set(
        zip(occ.loc[entry, "trace_id"], occ.loc[entry, "entity_id"], strict=True)
    )
    assert set(client["target"]) == set(occ.loc[entry, "node_id"])
    links = calls[calls["edge_type"] == "link"]
    assert set(zip(links["trace_id"], links["target_entity_id"], strict=True)) == set(
        zip(occ.loc[occ["linked"], "trace_id"], occ.loc[occ["linked"], "entity_id"], strict=True)
    )
    # every edge joins two nodes; status buckets add up
    assert set(graph.edges["source"]) | set(graph.edges["target"]) <= set(graph.nodes["node_id"])
    for frame in (graph.nodes, graph.edges):
        assert (
            frame[["ok_count", "error_count", "fault_count"]].sum(axis=1) == frame["total_count"]
        ).all()
        assert (frame["throttle_count"] <= frame["error_count"]).all()
    assert int(graph.edges["total_count"].sum()) == len(calls)


def test_link_edge_without_any_subsegment():
    """A linked consumer in a set with no subsegment at all (an OTLP consumer span with a link,
    exported alone) gives its link edge instead of indexing past the empty subsegment arrays."""
    span = {"name": "GET /", "kind": 2, "traceId": "6759e988bd862e3fe1be46a994272793",
            "spanId": "53995c3f42cd8ad8", "startTimeUnixNano": "1733270000000000000",
            "endTimeUnixNano": "1733270000250000000"}  # fmt: skip
    consumer = {**span, "name": "consume", "kind": 5, "traceId": "6759e989bd862e3fe1be46a994272794",
                "spanId": "63995c3f42cd8ad8", "startTimeUnixNano": "1733270001000000000",
                "endTimeUnixNano": "1733270001250000000",
                "links": [{"traceId": span["traceId"], "spanId": span["spanId"]}]}  # fmt: skip
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]}
    request = {
        "resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": [span, consumer]}]}]
    }
    ts = xraykit.from_otlp(request, validate_trace_ids=False)
    assert len(ts) == 2 and len(ts.subsegments) == 0
    edges = xraykit.service_graph(ts).edges
    link = edges[edges.edge_type == "link"]
    assert link[["source", "target"]].values.tolist() == [["web||", "consume||"]]
    assert len(ts.query('service("web")')) == 1
