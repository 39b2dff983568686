"""The local X-Ray's responses: TraceSummary records and service / trace graphs, checked
against botocore's model and read back by xraykit's own readers."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import botocore.parsers
import botocore.session
import numpy as np
import pandas as pd
import pytest

import xraykit
from xraykit.analysis import ROOT_CAUSE_KINDS, root_cause_paths, root_causes
from xraykit.aws.summaries import summaries_frame, summary_root_cause_paths
from xraykit.exceptions import ArgumentError, ArgumentTypeError
from xraykit.graph import service_graph, service_graph_from_response
from xraykit.local.graph_response import service_graph_response, trace_graph_response
from xraykit.local.summaries import trace_summaries

MODEL = botocore.session.get_session().get_service_model("xray")


def assert_shape(value: Any, shape: Any, where: str = "") -> None:
    """Every key a member of botocore's shape, every value of the member's type."""
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict), where
        unknown = set(value) - set(shape.members)
        assert not unknown, f"{where}: {unknown} not in {shape.name}"
        for key, item in value.items():
            assert_shape(item, shape.members[key], f"{where}.{key}")
    elif kind == "list":
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            assert_shape(item, shape.member, f"{where}[{i}]")
    elif kind == "map":
        assert isinstance(value, dict), where
        for key, item in value.items():
            assert isinstance(key, str), where
            assert_shape(item, shape.value, f"{where}[{key}]")
    elif kind in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {value!r}"
    elif kind in ("double", "float", "timestamp"):
        assert isinstance(value, int | float) and not isinstance(value, bool), where
        assert math.isfinite(value), f"{where}: {value!r}"
    elif kind == "boolean":
        assert isinstance(value, bool), where
    else:
        assert isinstance(value, str), f"{where}: {value!r}"


def parse(operation: str, response: dict[str, Any]) -> dict[str, Any]:
    """What boto3 returns for this JSON body (times become datetimes)."""
    parser = botocore.parsers.create_parser("rest-json")
    http = {"body": json.dumps(response).encode(), "headers": {}, "status_code": 200}
    return parser.parse(http, MODEL.operation_model(operation).output_shape)


def _text(series: pd.Series) -> pd.Series:
    return series.astype(object).where(series.notna(), "").astype(str).reset_index(drop=True)


# -- summaries ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cross() -> xraykit.TraceSet:
    return xraykit.load_sample("cross-account")


@pytest.fixture(scope="module")
def shop_summaries(shop: xraykit.TraceSet) -> list[dict[str, Any]]:
    return trace_summaries(shop)


def test_summaries_have_the_model_shape(shop_summaries, three):
    output = MODEL.operation_model("GetTraceSummaries").output_shape
    for summaries in (shop_summaries, trace_summaries(three)):
        assert_shape({"TraceSummaries": summaries}, output)
        json.dumps(summaries, allow_nan=False)  # plain JSON, no NaN


@pytest.mark.parametrize("name", ["shop", "three", "cross"])
def test_summaries_round_trip_through_summaries_frame(name, request, shop_summaries):
    ts = request.getfixturevalue(name)
    summaries = shop_summaries if name == "shop" else trace_summaries(ts)
    frame, traces = summaries_frame(summaries), ts.traces
    assert frame["trace_id"].tolist() == traces["trace_id"].tolist()
    assert (frame["start"] == traces["start"]).all()
    for column in ("duration_s", "response_time_s"):
        np.testing.assert_allclose(frame[column], traces[column], rtol=0, atol=0)
    for column in ("has_fault", "has_error", "has_throttle", "is_partial"):
        assert frame[column].tolist() == traces[column].tolist(), column
    assert frame["http_status"].equals(traces["http_status"])
    for column in ("http_method", "http_url", "user_agent", "client_ip"):
        assert _text(frame[column]).equals(_text(traces[column])), column
    assert _text(frame["entry_point_name"]).equals(_text(traces["root_service"]))
    assert _text(frame["entry_point_type"]).equals(_text(traces["root_origin"]))
    assert frame["service_count"].tolist() == traces["service_count"].tolist()
    # one user per trace in these samples: Users lists it
    assert _text(frame["users"]).equals(_text(traces["user"]))


def test_summaries_flags_and_users_of_hand_made_traces(three):
    summaries = {s["Id"]: s for s in trace_summaries(three)}
    traces = three.traces.set_index("trace_id")
    assert {k for k, s in summaries.items() if s["HasThrottle"]} == set(
        traces.index[traces["has_throttle"]]
    )
    alice = [s for s in summaries.values() if s["Users"]]
    assert alice and alice[0]["Users"][0]["UserName"] == "alice"
    assert alice[0]["Users"][0]["ServiceIds"][0]["Name"] == "frontend"


@pytest.mark.parametrize("name", ["three", "shop"])
@pytest.mark.parametrize("kind", ROOT_CAUSE_KINDS)
def test_root_causes_round_trip(name, kind, request, shop_summaries):
    ts = request.getfixturevalue(name)
    summaries = shop_summaries if name == "shop" else trace_summaries(ts)
    key = ["trace_id", "cause_index", "entity_index"]
    expected = root_cause_paths(ts, kind).sort_values(key, ignore_index=True)
    got = summary_root_cause_paths(summaries_frame(summaries), kind)
    got = got.sort_values(key, ignore_index=True)
    assert len(got) == len(expected) > 0
    columns = [c for c in expected.columns if c != "entity_id"]
    if kind == "responsetime":  # X-Ray's response-time entities carry no exceptions
        columns = [c for c in columns if not c.startswith("exception")]
        assert got["exception_name"].isna().all()
    for column in columns:
        if expected[column].dtype == "float64":
            np.testing.assert_allclose(got[column], expected[column], equal_nan=True)
        else:
            assert _text(got[column]).equals(_text(expected[column])), column


@pytest.mark.parametrize("kind", ["fault", "error"])
def test_summaries_count_the_causes_root_causes_counts(shop, shop_summaries, kind):
    """What X-Ray's console tallies from the summaries equals xraykit.analysis.root_causes."""
    paths = summary_root_cause_paths(summaries_frame(shop_summaries), kind)
    cause = paths["trace_id"] + "#" + paths["cause_index"].astype(str)
    last = paths["service_index"] == paths.groupby(cause)["service_index"].transform("max")
    tail = paths.loc[last].groupby(cause[last])
    tally = pd.DataFrame(
        {
            "trace_id": tail["trace_id"].first(),
            "service_name": tail["service_name"].first(),
            "service_type": tail["service_type"].first(),
            "entity_path": tail["entity_name"].agg(" > ".join),
            "exception_name": paths.groupby(cause)["exception_name"].last(),
        }
    )
    keys = ["service_name", "service_type", "entity_path", "exception_name"]
    got = tally.groupby(keys, dropna=False)["trace_id"].nunique().rename("traces")
    expected = root_causes(shop, kind).set_index(keys)["traces"]
    assert len(expected) > 1
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_dtype=False)


def test_fault_root_cause_names_the_exception(three):
    faulty = [s for s in trace_summaries(three) if s["FaultRootCauses"]]
    assert faulty
    cause = faulty[0]["FaultRootCauses"][0]
    path = [e for service in cause["Services"] for e in service["EntityPath"]]
    expected = root_cause_paths(three, "fault")
    expected = expected.loc[expected["trace_id"] == faulty[0]["Id"]]
    assert [e["Name"] for e in path] == expected["entity_name"].tolist()
    # an inferred downstream has no exception of its own: the caller's subsegment has it
    assert cause["Services"][-1]["Inferred"] and "Exceptions" not in path[-1]
    deepest = [e["Exceptions"][0] for e in path if "Exceptions" in e][-1]
    assert deepest == {"Name": "InternalServerError", "Message": "Internal server error"}
    expected = expected.iloc[-1]
    assert cause["ClientImpacting"] == bool(expected["client_impacting"])


def test_annotations_keep_type_value_and_service(shop, shop_summaries):
    ann = shop.annotations.drop_duplicates(["trace_id", "key"])
    by_id = {s["Id"]: s for s in shop_summaries}
    kinds = {"string": "StringValue", "number": "NumberValue", "boolean": "BooleanValue"}
    for row in ann.sample(200, random_state=1).itertuples(index=False):
        item = by_id[row.trace_id]["Annotations"][row.key][0]
        value = item["AnnotationValue"][kinds[row.value_type]]
        assert value == row.value
        assert item["ServiceIds"], row
    frame = summaries_frame(shop_summaries).set_index("trace_id")
    tiers = ann.loc[ann["key"] == "customer_tier"]
    assert (frame.loc[tiers["trace_id"], "annotation.customer_tier"] == tiers["value"].values).all()
    assert frame["annotation.is_retry"].dtype == "boolean"


def test_boto3_parses_summaries_and_the_frame_reads_them(three):
    summaries = trace_summaries(three)
    parsed = parse("GetTraceSummaries", {"TraceSummaries": summaries})["TraceSummaries"]
    assert isinstance(parsed[0]["StartTime"], datetime)
    read, raw = summaries_frame(parsed), summaries_frame(summaries)
    causes = ["fault_root_causes", "error_root_causes", "response_time_root_causes"]
    pd.testing.assert_frame_equal(read.drop(columns=causes), raw.drop(columns=causes))
    for column in causes:  # the same JSON, members in the model's order
        assert [json.loads(t) for t in read[column].dropna()] == [
            json.loads(t) for t in raw[column].dropna()
        ]


def test_summaries_of_nothing_and_wrong_arguments(shop):
    assert trace_summaries(shop.select([])) == []
    assert trace_summaries(shop.select(shop.traces.trace_id[:3]), groups={"slow": "duration > 1"})
    with pytest.raises(ArgumentTypeError):
        trace_summaries(shop.traces)
    with pytest.raises(ArgumentTypeError):
        trace_summaries(shop, groups=["slow"])  # type: ignore[arg-type]


# -- graphs ---------------------------------------------------------------------------


def assert_same_graph(back: Any, graph: Any) -> None:
    """Nodes and edges agree on everything the response carries."""
    nodes = graph.nodes.sort_values("node_id", ignore_index=True)
    read = back.nodes.sort_values("node_id", ignore_index=True)
    edge_key = ["source", "target", "edge_type"]
    edges = graph.edges.sort_values(edge_key, ignore_index=True)
    read_edges = back.edges.sort_values(edge_key, ignore_index=True)
    assert read["node_id"].tolist() == nodes["node_id"].tolist()
    assert read_edges[edge_key].values.tolist() == edges[edge_key].values.tolist()
    exact = [
        "ok_count",
        "error_count",
        "throttle_count",
        "fault_count",
        "total_count",
        "response_time_histogram",
    ]
    for mine, theirs in ((read, nodes), (read_edges, edges)):
        for column in exact:
            assert mine[column].tolist() == theirs[column].tolist(), column
        for column in ("total_response_time_s", "mean_response_time_s"):
            np.testing.assert_allclose(mine[column], theirs[column], rtol=1e-12, equal_nan=True)
        # percentiles come back from the two-digit histogram: close where there are many
        many = (theirs["total_count"] >= 100).to_numpy()
        for q in (50, 90, 99):
            column = f"p{q}_response_time_s"
            np.testing.assert_allclose(mine[column][many], theirs[column][many], rtol=0.1)
        for column in ("start", "end"):  # float seconds: within a microsecond
            gap = (mine[column] - theirs[column]).abs().dropna()
            assert (gap <= pd.Timedelta(1, "us")).all(), column
            assert mine[column].isna().tolist() == theirs[column].isna().tolist()
    for column in ("name", "type", "account_id", "root", "inferred", "reference_id"):
        assert _text(read[column]).equals(_text(nodes[column])), column
    assert read_edges["event_age_histogram"].tolist() == edges["event_age_histogram"].tolist()
    np.testing.assert_allclose(
        read_edges["mean_event_age_s"], edges["mean_event_age_s"], rtol=0.05, equal_nan=True
    )


@pytest.mark.parametrize("name", ["shop", "cross"])
def test_service_graph_round_trip(name, request):
    graph = service_graph(request.getfixturevalue(name))
    response = service_graph_response(graph, graph.start, graph.end)
    assert_shape(response, MODEL.operation_model("GetServiceGraph").output_shape)
    json.dumps(response, allow_nan=False)
    back = service_graph_from_response(response)
    assert back.origin == "GetServiceGraph"
    assert_same_graph(back, graph)
    # what boto3 returns (datetimes) reads the same
    assert_same_graph(service_graph_from_response(parse("GetServiceGraph", response)), graph)


def test_service_graph_has_a_client_per_root_and_links(shop):
    graph = service_graph(shop)
    response = service_graph_response(graph, None, None)
    services = response["Services"]
    clients = [s for s in services if s["Type"] == "client"]
    targets = graph.edges.loc[graph.edges["source"] == "client", "target"]
    assert len(clients) == len(targets) >= 1
    by_ref = {s["ReferenceId"]: s for s in services}
    assert len(by_ref) == len(services)
    for client in clients:
        (edge,) = client["Edges"]
        assert by_ref[edge["ReferenceId"]]["Name"] == client["Name"]
        assert by_ref[edge["ReferenceId"]]["Root"]
    links = [e for s in services for e in s["Edges"] if e.get("EdgeType") == "link"]
    assert len(links) == 1 and links[0]["ReceivedEventAgeHistogram"]
    api = next(s for s in services if s["Name"] == "shop-api/prod" and s["Type"] != "client")
    stats = api["SummaryStatistics"]
    assert (
        stats["OkCount"]
        + stats["ErrorStatistics"]["TotalCount"]
        + stats["FaultStatistics"]["TotalCount"]
        == stats["TotalCount"]
    )


@pytest.mark.parametrize(
    "start",
    [1741078800, datetime(2025, 3, 4, 9, 0, tzinfo=UTC), pd.Timestamp("2025-03-04 09:00Z")],
)
def test_service_graph_window(cross, start):
    graph = service_graph(cross)
    response = service_graph_response(graph, start, 1741082400.5)
    assert response["StartTime"] == 1741078800.0 and response["EndTime"] == 1741082400.5
    back = service_graph_from_response(response)
    assert back.start == pd.Timestamp("2025-03-04 09:00Z")
    assert graph.start is not None
    assert service_graph_response(graph, None, None)["StartTime"] == pytest.approx(
        graph.start.timestamp(), abs=1e-6
    )


def test_trace_graph_round_trip(shop):
    ids = shop.traces.loc[shop.traces.has_fault, "trace_id"][:3]
    graph = service_graph(shop.select(ids))
    response = trace_graph_response(graph)
    assert set(response) == {"Services"}
    assert_shape(response, MODEL.operation_model("GetTraceGraph").output_shape)
    back = service_graph_from_response(response)
    assert back.origin == "GetTraceGraph"
    assert_same_graph(back, graph)


def test_graph_response_refuses_what_is_not_a_graph(shop):
    with pytest.raises(ArgumentTypeError):
        trace_graph_response(shop)
    graph = service_graph(shop)
    with pytest.raises(ArgumentTypeError):
        service_graph_response(graph, [1, 2], None)
    with pytest.raises(ArgumentError):
        service_graph_response(graph, "not a time", None)
    assert service_graph_response(graph, np.int64(5), "1970-01-01T00:01:00Z")["EndTime"] == 60.0


EDGE_CASES = [
    "in_progress.json",
    "filters_traces.json",
    "graph_sqs_link.json",
    "graph_accounts.json",
    "graph_downstream_fault.json",
    "graph_lambda.json",
    "streamed_subsegments.jsonl",
    "inferred_segment.json",
    "bare_string_cause.json",
    "throttle_429.json",
]


@pytest.mark.parametrize("name", EDGE_CASES)
def test_edge_case_files(data_dir, name):
    ts = xraykit.load_file(data_dir / name, on_error="ignore")
    summaries = trace_summaries(ts)
    assert_shape(
        {"TraceSummaries": summaries}, MODEL.operation_model("GetTraceSummaries").output_shape
    )
    frame = summaries_frame(summaries)
    assert frame["trace_id"].tolist() == ts.traces["trace_id"].tolist()
    assert frame["is_partial"].tolist() == ts.traces["is_partial"].tolist()
    np.testing.assert_allclose(frame["duration_s"], ts.traces["duration_s"], equal_nan=True)
    # an unfinished trace has no duration yet: the members are left out, not NaN
    unfinished = set(ts.traces.loc[ts.traces["duration_s"].isna(), "trace_id"])
    assert {s["Id"] for s in summaries if "Duration" not in s} == unfinished
    assert all(s["IsPartial"] for s in summaries if s["Id"] in unfinished)
    graph = service_graph(ts)
    assert_same_graph(service_graph_from_response(service_graph_response(graph, None, None)), graph)


def test_an_empty_graph(shop):
    graph = service_graph(shop.select([]))
    response = service_graph_response(graph, 0, 60)
    assert (response["StartTime"], response["EndTime"]) == (0.0, 60.0)
    assert response["ContainsOldGroupVersions"] is False
    assert all(s["Type"] == "client" and not s["Edges"] for s in response["Services"])
    back = service_graph_from_response(response)
    assert len(back.edges) == 0 and set(back.nodes["node_id"]) <= {"client"}
