"""Tests of xraykit.analysis on hand-built traces with known answers, and on the shop sample."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import xraykit
from xraykit import analysis

DATA = Path(__file__).parent / "data"
T0 = 1700000000.0
FAULT = "1-65538000-aaaaaaaaaaaaaaaaaaaaaaa1"
THROTTLED = "1-65538000-aaaaaaaaaaaaaaaaaaaaaaa2"
SLOW = "1-65538000-aaaaaaaaaaaaaaaaaaaaaaa3"


def load(name: str) -> xraykit.TraceSet:
    return xraykit.load_file(DATA / f"analysis_{name}.json")


# -- tiny trace builder for synthetic sets --------------------------------------------------------

_counter = iter(range(1, 10**9))


def _id() -> str:
    return f"{next(_counter):016x}"


def web_trace(
    start: float,
    *,
    db_s: float,
    own_s: float = 0.05,
    status: int = 200,
    db_fault: bool = False,
    user: str = "u1",
    tier: str = "free",
) -> list[dict[str, Any]]:
    """A web segment calling a SQL database (no inferred segment) for ``db_s`` seconds."""
    trace_id = f"1-{int(T0 + start):08x}-{next(_counter):024x}"
    sub: dict[str, Any] = {
        "id": _id(),
        "name": "db@host",
        "namespace": "remote",
        "start_time": T0 + start + own_s / 2,
        "end_time": T0 + start + own_s / 2 + db_s,
        "sql": {"url": "postgresql://host/db", "database_type": "PostgreSQL"},
    }
    if db_fault:
        sub["fault"] = True
    seg: dict[str, Any] = {
        "name": "web",
        "id": _id(),
        "trace_id": trace_id,
        "origin": "AWS::EC2::Instance",
        "start_time": T0 + start,
        "end_time": T0 + start + own_s + db_s,
        "user": user,
        "http": {
            "request": {"method": "GET", "url": "https://x.example/a"},
            "response": {"status": status},
        },
        "annotations": {"tier": tier},
        "subsegments": [sub],
    }
    if status >= 500:
        seg["fault"] = True
    return [seg]


def build(traces: list[list[dict[str, Any]]]) -> xraykit.TraceSet:
    return xraykit.from_documents([doc for trace in traces for doc in trace])


# -- root causes --------------------------------------------------------------------------------


def test_fault_root_cause_follows_the_chain_to_the_inferred_downstream(three):
    paths = analysis.root_cause_paths(three, "fault")
    assert list(paths["trace_id"].unique()) == [FAULT]
    assert paths["entity_name"].tolist() == [
        "frontend",
        "orders-api",
        "orders-api",
        "DynamoDB",
        "DynamoDB",
    ]
    assert paths["entity_id"].tolist() == [
        "f000000000000001",
        "a000000000000001",
        "b000000000000001",
        "c000000000000001",
        "d000000000000001",
    ]
    assert paths["service_index"].tolist() == [0, 0, 1, 1, 2]
    assert paths["service_type"].tolist()[-1] == "AWS::DynamoDB::Table"
    assert paths["inferred"].tolist() == [False, False, False, False, True]
    assert paths["remote"].tolist() == [False, True, False, True, False]
    assert paths["entity_index"].tolist() == [0, 1, 2, 3, 4]
    assert set(paths["entity_count"]) == {5}
    assert paths["exception_name"].tolist()[3] == "InternalServerError"
    assert paths["client_impacting"].all()
    assert paths["coverage"].isna().all()


def test_root_cause_paths_columns_follow_the_contract(three):
    paths = analysis.root_cause_paths(three, "fault")
    contract = [
        "trace_id",
        "cause_index",
        "service_name",
        "service_type",
        "account_id",
        "inferred",
        "entity_index",
        "entity_count",
        "entity_name",
        "entity_id",
        "remote",
        "coverage",
        "exception_name",
        "exception_message",
    ]
    assert list(paths.columns[: len(contract)]) == contract
    empty = analysis.root_cause_paths(load("slow_sql"), "fault")
    assert empty.empty and list(empty.columns) == list(paths.columns)


def test_error_root_cause_lists_retries_once_and_is_not_client_impacting(three):
    paths = analysis.root_cause_paths(three, "error")
    assert paths["trace_id"].unique().tolist() == [THROTTLED]
    assert paths["cause_index"].unique().tolist() == [0]  # two throttled retries, one cause
    assert paths["entity_name"].tolist() == ["frontend", "SQS", "SQS"]
    assert paths["entity_id"].tolist()[1] == "a100000000000001"  # the first retry
    assert paths["service_index"].tolist() == [0, 0, 1]
    assert paths["inferred"].tolist()[-1]
    assert paths["exception_name"].tolist()[1] == "ThrottlingException"
    assert not paths["client_impacting"].any()


def test_fault_below_a_non_faulting_segment_explains_the_faulting_root():
    # API Gateway returns 502 because the function raised; the Lambda service segment is 200
    tid = "1-65538000-bbbbbbbbbbbbbbbbbbbbbbb1"
    docs = [
        {
            "name": "api/prod",
            "id": "1000000000000001",
            "trace_id": tid,
            "origin": "AWS::ApiGateway::Stage",
            "start_time": T0,
            "end_time": T0 + 1,
            "fault": True,
            "http": {"response": {"status": 502}},
            "subsegments": [
                {
                    "id": "1000000000000002",
                    "name": "Lambda",
                    "namespace": "aws",
                    "start_time": T0 + 0.01,
                    "end_time": T0 + 0.99,
                    "http": {"response": {"status": 200}},
                }
            ],
        },
        {
            "name": "fn",
            "id": "2000000000000001",
            "trace_id": tid,
            "origin": "AWS::Lambda",
            "parent_id": "1000000000000002",
            "start_time": T0 + 0.02,
            "end_time": T0 + 0.98,
            "http": {"response": {"status": 200}},
        },
        {
            "name": "fn",
            "id": "3000000000000001",
            "trace_id": tid,
            "origin": "AWS::Lambda::Function",
            "parent_id": "2000000000000001",
            "start_time": T0 + 0.03,
            "end_time": T0 + 0.97,
            "fault": True,
            "cause": {
                "exceptions": [{"id": "e300000000000001", "type": "KeyError", "message": "'sku'"}]
            },
            "subsegments": [
                {
                    "id": "3000000000000002",
                    "name": "handler",
                    "start_time": T0 + 0.04,
                    "end_time": T0 + 0.96,
                    "fault": True,
                    "cause": "e300000000000001",
                }
            ],
        },
    ]
    paths = analysis.root_cause_paths(xraykit.from_documents(docs), "fault")
    assert paths["entity_name"].tolist() == ["api/prod", "Lambda", "fn", "fn", "handler"]
    assert paths["service_type"].tolist() == [
        "AWS::ApiGateway::Stage",
        "AWS::ApiGateway::Stage",
        "AWS::Lambda",
        "AWS::Lambda::Function",
        "AWS::Lambda::Function",
    ]
    assert paths["service_index"].tolist() == [0, 0, 1, 2, 2]
    # the handler's bare-string cause is followed to the exception it names
    assert paths["exception_name"].tolist()[-1] == "KeyError"
    assert paths["client_impacting"].all()
    table = analysis.root_causes(xraykit.from_documents(docs), "fault")
    assert table[["service_name", "entity_path", "exception_name", "traces"]].values.tolist() == [
        ["fn", "fn > handler", "KeyError", 1]
    ]


def test_response_time_root_cause_is_the_largest_own_time_on_the_critical_path(three):
    paths = analysis.root_cause_paths(three, "responsetime")
    slow = paths.loc[paths["trace_id"] == SLOW]
    assert slow["entity_name"].tolist() == [
        "frontend",
        "inventory",
        "inventory",
        "stock@db.internal",
        "stock@db.internal",
    ]
    assert slow["service_type"].tolist()[-1] == "Database::SQL"
    assert slow["coverage"].tolist() == pytest.approx([1.0, 0.7, 0.68, 0.6, 0.6], abs=1e-6)
    assert slow["client_impacting"].all()
    assert set(paths["trace_id"]) == {FAULT, THROTTLED, SLOW}
    only_slow = analysis.root_cause_paths(three, "responsetime", threshold_s=1.5)
    assert set(only_slow["trace_id"]) == {SLOW}


def test_root_causes_counts_the_service_path_and_exception(three):
    faults = analysis.root_causes(three, "fault")
    assert faults[
        ["service_name", "service_type", "entity_path", "exception_name"]
    ].values.tolist() == [["Orders", "AWS::DynamoDB::Table", "DynamoDB", "InternalServerError"]]
    assert faults[["traces", "client_impacting"]].values.tolist() == [[1, 1]]
    assert faults["share"].tolist() == pytest.approx([1 / 3])
    slow = analysis.root_causes(three, "responsetime", threshold_s=1.5)
    assert slow["mean_coverage"].tolist() == pytest.approx([0.6], abs=1e-6)


def test_unknown_root_cause_kind_is_rejected(three):
    with pytest.raises(ValueError, match="`kind` must be one of"):
        analysis.root_cause_paths(three, "latency")  # type: ignore[arg-type]


def test_root_cause_kinds_are_xrays_filter_words(three):
    assert analysis.ROOT_CAUSE_KINDS == ("fault", "error", "responsetime")
    for kind in analysis.ROOT_CAUSE_KINDS:
        assert isinstance(analysis.root_cause_paths(three, kind), pd.DataFrame)


def test_entity_outcome_follows_the_status_rule_when_a_flag_is_left_out():
    # a document with a 5xx / 429 but no flags: X-Ray's rule completes them
    tid = "1-65538000-bbbbbbbbbbbbbbbbbbbbbbb2"
    docs = [
        {
            "name": "web",
            "id": "8000000000000001",
            "trace_id": tid,
            "start_time": T0,
            "end_time": T0 + 1,
            "http": {"response": {"status": 503}},
            "subsegments": [
                {
                    "id": "8000000000000002",
                    "name": "call",
                    "namespace": "remote",
                    "start_time": T0 + 0.1,
                    "end_time": T0 + 0.5,
                    "http": {"response": {"status": 429}},
                }
            ],
        }
    ]
    tree = analysis.entities_frame(xraykit.from_documents(docs)).set_index("name")
    assert tree.loc["web", ["fault", "error", "throttle"]].tolist() == [True, False, False]
    call = tree.loc[tree["remote"]].iloc[0]
    assert [call["fault"], call["error"], call["throttle"]] == [False, True, True]
    paths = analysis.root_cause_paths(xraykit.from_documents(docs), "fault")
    assert paths["entity_name"].tolist() == ["web"]


# -- critical path ----------------------------------------------------------------------------


def test_critical_path_of_a_sequential_trace(three):
    path = analysis.critical_path(three, SLOW)
    assert path["name"].tolist() == [
        "frontend",
        "payments",
        "payments",
        "inventory",
        "inventory",
        "stock@db.internal",
        "stock@db.internal",
    ]
    assert path["critical_s"].tolist() == pytest.approx(
        [0.2, 0.04, 0.36, 0.04, 0.16, 0.0, 1.2], abs=1e-6
    )
    assert path["depth"].tolist() == [0, 1, 2, 1, 2, 3, 4]
    assert path["share"].sum() == pytest.approx(1.0)
    assert path["start"].iloc[0] == pd.Timestamp(T0 + 20, unit="s", tz="UTC")


def test_critical_path_clips_a_parallel_child_to_what_still_blocked_the_parent():
    tid = "1-65538000-ccccccccccccccccccccccc1"
    docs = [
        {
            "name": "web",
            "id": "4000000000000001",
            "trace_id": tid,
            "start_time": T0,
            "end_time": T0 + 1.0,
            "subsegments": [
                {
                    "id": "4000000000000002",
                    "name": "A",
                    "start_time": T0 + 0.1,
                    "end_time": T0 + 0.9,
                },
                {
                    "id": "4000000000000003",
                    "name": "B",
                    "start_time": T0 + 0.2,
                    "end_time": T0 + 0.95,
                },
                {
                    "id": "4000000000000004",
                    "name": "C",
                    "start_time": T0 + 0.3,
                    "end_time": T0 + 0.4,
                },
            ],
        }
    ]
    path = analysis.critical_path(xraykit.from_documents(docs), tid)
    assert path["name"].tolist() == ["web", "A", "B"]  # C ran inside B: never blocking
    assert path["critical_s"].tolist() == pytest.approx([0.15, 0.1, 0.75], abs=1e-6)
    seconds = (path["end"] - path["start"]).dt.total_seconds()
    assert seconds.tolist() == pytest.approx([1.0, 0.1, 0.75], abs=1e-6)


def test_critical_path_prefers_the_detailed_one_of_children_ending_together():
    # Lambda's Invocation subsegment spans the handler, whose own subsegments hold the detail
    tid = "1-65538000-ccccccccccccccccccccccc2"
    docs = [
        {
            "name": "fn",
            "id": "6000000000000001",
            "trace_id": tid,
            "origin": "AWS::Lambda::Function",
            "start_time": T0,
            "end_time": T0 + 1.0,
            "subsegments": [
                {
                    "id": "6000000000000002",
                    "name": "Invocation",
                    "start_time": T0 + 0.01,
                    "end_time": T0 + 0.995,
                },
                {
                    "id": "6000000000000003",
                    "name": "handler",
                    "start_time": T0 + 0.012,
                    "end_time": T0 + 0.99,
                    "subsegments": [
                        {
                            "id": "6000000000000004",
                            "name": "query",
                            "start_time": T0 + 0.1,
                            "end_time": T0 + 0.9,
                        }
                    ],
                },
            ],
        }
    ]
    path = analysis.critical_path(xraykit.from_documents(docs), tid)
    assert path["name"].tolist() == ["fn", "Invocation", "handler", "query"]
    assert path["critical_s"].tolist() == pytest.approx([0.02, 0.002, 0.178, 0.8], abs=1e-6)


def test_critical_path_unknown_trace(three):
    with pytest.raises(LookupError, match=r"No trace with id '1-00000000-0+'") as info:
        analysis.critical_path(three, "1-00000000-000000000000000000000000")
    assert not isinstance(info.value, KeyError)  # KeyError would quote the whole message


def test_critical_path_share_credits_downstreams(three):
    shares = analysis.critical_path_share(three.select([SLOW]))
    got = dict(zip(shares["service"], shares["share"], strict=True))
    assert got == pytest.approx(
        {"stock@db.internal": 0.6, "payments": 0.18, "frontend": 0.14, "inventory": 0.08},
        abs=1e-6,
    )
    assert shares["service"].iloc[0] == "stock@db.internal"
    everything = analysis.critical_path_share(three)
    assert everything["share"].sum() == pytest.approx(1.0)
    assert everything["mean_share"].sum() == pytest.approx(1.0)
    assert int(everything.loc[everything["service"] == "frontend", "traces"].item()) == 3


# -- percentiles, SLA, throttles, impacted users --------------------------------------------------


def test_percentiles_by_service_and_by_edge(three):
    by_service = analysis.percentiles(three).set_index("service")
    assert by_service.loc["frontend", "count"] == 3
    assert by_service.loc["frontend", "p50_s"] == pytest.approx(1.0)
    assert by_service.loc["jobs", "count"] == 3
    assert by_service.loc["stock@db.internal", "service_type"] == "Database::SQL"
    # node vs edge: inventory works 1.36 s, its caller waits 1.40 s
    assert by_service.loc["inventory", "p99_s"] == pytest.approx(1.36)
    by_edge = analysis.percentiles(three, level="edge").set_index("edge")
    assert by_edge.loc["frontend → inventory", "p99_s"] == pytest.approx(1.4)
    assert by_edge.loc["client → frontend", "count"] == 3


def test_percentiles_by_url_and_annotation_keeps_missing_values(three):
    table = analysis.percentiles(
        three, level="trace", by=["url", "annotation.tier"], percentiles=(50,)
    )
    assert list(table.columns) == ["url", "annotation.tier", "count", "mean_s", "p50_s"]
    assert table["count"].sum() == 3
    gold = table.loc[table["annotation.tier"] == "gold"]
    assert gold["url"].tolist() == ["https://shop.example.com/orders/42"]
    checkout = table.loc[table["url"] == "https://shop.example.com/checkout"]
    assert checkout["annotation.tier"].isna().all()
    assert checkout["p50_s"].tolist() == pytest.approx([2.0])


def test_percentiles_level_measures_and_by_groups(three):
    everything = analysis.percentiles(three, level="trace")
    assert list(everything.columns) == ["count", "mean_s", "p50_s", "p90_s", "p99_s"]
    assert everything["count"].tolist() == [3]
    entry = analysis.percentiles(three, level="trace", by="service")
    assert entry[["service", "count"]].values.tolist() == [["frontend", 3]]
    by_status = analysis.percentiles(three, level="service", by=["service", "status"])
    assert list(by_status.columns[:3]) == ["service", "service_type", "status"]
    assert by_status["count"].sum() == analysis.percentiles(three)["count"].sum()
    per_edge = analysis.percentiles(three, level="edge", by="method")
    assert list(per_edge.columns[:2]) == ["edge", "method"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": "region"}, "`by` entries must be among"),
        ({"by": "edge"}, "pass level='edge'"),
        ({"level": "edge", "by": "service"}, "pass level='service'"),
        ({"by": "annotation."}, "`by` entries must be among"),
        ({"level": "node"}, "`level` must be one of"),
    ],
)
def test_percentiles_rejects_bad_groupings(three, kwargs, message):
    with pytest.raises(xraykit.ArgumentError, match=message):
        analysis.percentiles(three, **kwargs)


def test_sla_shares_per_service_and_over_time(three):
    table = analysis.sla(three, 0.75).set_index("service")
    assert table.loc["frontend", ["count", "within"]].tolist() == [3, 1]
    assert table.loc["frontend", "share"] == pytest.approx(1 / 3)
    assert table.loc["payments", "share"] == 1.0
    assert table.loc["inventory", "share"] == 0.0
    over_time = analysis.sla(three, 0.75, level="trace", freq="10s")
    assert over_time["within"].tolist() == [0, 1, 0]
    assert over_time["time"].is_monotonic_increasing
    edges = analysis.sla(three, 1.39, level="edge").set_index("edge")
    assert edges.loc["frontend → inventory", "share"] == 0.0
    with pytest.raises(ValueError, match="positive number of seconds"):
        analysis.sla(three, 0)
    with pytest.raises(ValueError, match="`level` must be one of"):
        analysis.sla(three, 1.0, level="user")  # type: ignore[arg-type]


def test_throttles_names_caller_callee_and_operation(three):
    table = analysis.throttles(three)
    assert table[["caller", "callee", "callee_type", "operation"]].values.tolist() == [
        ["frontend", "jobs", "AWS::SQS::Queue", "SendMessage"]
    ]
    assert table[["calls", "throttled", "traces"]].values.tolist() == [[3, 2, 1]]
    assert table["throttle_rate"].tolist() == pytest.approx([2 / 3])
    per_minute = analysis.throttles(three, freq="1min")
    assert per_minute["throttled"].sum() == 2
    assert "time" in per_minute


def test_impacted_users_by_kind(three):
    faults = analysis.impacted_users(three)
    assert faults[["user", "traces", "impacted"]].values.tolist() == [["alice", 1, 1]]
    slow = analysis.impacted_users(three, kind="responsetime", threshold_s=0.7)
    assert slow["user"].tolist() == ["alice", "carol"]
    # bob's SQS calls were throttled, retried, and his request answered 200: not impacted
    assert three.traces.set_index("user").loc["bob", "has_throttle"]
    assert analysis.impacted_users(three, kind="throttle").empty
    tiers = analysis.impacted_users(three, user="annotation.tier")
    assert tiers["annotation.tier"].tolist() == ["gold"]
    assert tiers["first_impacted"].tolist() == [pd.Timestamp(T0, unit="s", tz="UTC")]
    with pytest.raises(xraykit.ArgumentError, match="needs `threshold_s`"):
        analysis.impacted_users(three, kind="responsetime")
    with pytest.raises(xraykit.ArgumentError, match="`user` must be 'user'"):
        analysis.impacted_users(three, user="tier")
    with pytest.raises(xraykit.ArgumentError, match="`kind` must be one of"):
        analysis.impacted_users(three, kind="slow")  # type: ignore[arg-type]


def test_throttle_impact_is_what_the_client_saw():
    ts = build(
        [
            web_trace(0, db_s=0.01, user="erin", status=429),
            web_trace(1, db_s=0.01, user="erin"),
            web_trace(2, db_s=0.01, user="finn"),
        ]
    )
    users = analysis.impacted_users(ts, kind="throttle")
    assert users[["user", "traces", "impacted"]].values.tolist() == [["erin", 2, 1]]
    frame = analysis.requests_frame(ts)
    assert frame["throttle"].tolist() == [True, False, False]
    assert frame["throttled_inside"].tolist() == [True, False, False]


def test_trace_level_throttle_is_the_roots_not_anywhere(shop):
    frame = analysis.requests_frame(shop)
    anywhere = int(shop.traces["has_throttle"].sum())
    assert anywhere > 0  # the payment provider throttles payments
    assert frame["throttled_inside"].sum() == anywhere
    root_429 = shop.traces["http_status"].eq(429).fillna(False)
    assert frame["throttle"].sum() == root_429.sum() < anywhere


def test_users_share_counts_every_trace_of_the_user():
    ts = build(
        [web_trace(i, db_s=0.01, user="dana", status=500 if i < 2 else 200) for i in range(5)]
    )
    users = analysis.impacted_users(ts)
    assert users[["user", "traces", "impacted", "impacted_share"]].values.tolist() == [
        ["dana", 5, 2, 0.4]
    ]


# -- compare ----------------------------------------------------------------------------------


def test_compare_ranks_the_slowed_dependency_above_its_caller():
    before = build([web_trace(i, db_s=0.02, own_s=0.08) for i in range(40)])
    after = build([web_trace(100 + i, db_s=0.2, own_s=0.08) for i in range(20)])
    table = analysis.compare(before, after)
    assert table["service"].tolist() == ["db@host", "web"]
    top = table.iloc[0]
    assert top["driver"] in {"p50_s", "p90_s", "p99_s"}
    assert top["change"] == pytest.approx(math.log2(10), abs=1e-4)
    assert table.iloc[1]["change"] == pytest.approx(math.log2(0.28 / 0.1), abs=1e-4)
    assert table[["count_a", "count_b"]].values.tolist() == [[40, 20], [40, 20]]


def test_compare_rates_use_a_one_point_floor_and_small_groups_rank_last():
    before = build([web_trace(i, db_s=0.02) for i in range(50)])
    after = build(
        [web_trace(100 + i, db_s=0.02, status=500 if i < 5 else 200) for i in range(50)]
        + [web_trace(200, db_s=0.02, user="x", tier="new")]
    )
    table = analysis.compare(before, after, level="trace", by="annotation.tier")
    assert table["annotation.tier"].tolist() == ["free", "new"]
    free = table.iloc[0]
    assert free["driver"] == "fault_rate"
    assert free["fault_rate_b"] == pytest.approx(5 / 50)
    assert free["change"] == pytest.approx(math.log2((0.1 + 0.01) / 0.01))
    new = table.iloc[1]
    assert (new["count_a"], new["count_b"]) == (0, 1)


def test_compare_does_not_modify_its_inputs(three):
    before = {name: frame.copy() for name, frame in three.frames.items()}
    analysis.compare(three, three, level="edge")
    analysis.root_cause_paths(three, "fault")
    analysis.critical_path_share(three)
    for name, frame in three.frames.items():
        pd.testing.assert_frame_equal(frame, before[name])


def test_compare_of_identical_sets_has_no_change(three):
    table = analysis.compare(three, three)
    assert np.allclose(table["score"].to_numpy(dtype=float), 0.0)


def test_compare_at_the_trace_level_without_grouping_is_one_row():
    before = build([web_trace(i, db_s=0.02) for i in range(10)])
    after = build([web_trace(100 + i, db_s=0.02, status=500) for i in range(10)])
    table = analysis.compare(before, after, level="trace")
    assert table[["count_a", "count_b", "fault_rate_a", "fault_rate_b"]].values.tolist() == [
        [10, 10, 0.0, 1.0]
    ]
    assert table["driver"].tolist() == ["fault_rate"]


def test_empty_traceset_gives_empty_answers():
    empty = xraykit.TraceSet()
    assert analysis.root_cause_paths(empty, "fault").empty
    assert analysis.root_cause_paths(empty, "responsetime").empty
    assert analysis.critical_path_share(empty).empty
    assert analysis.percentiles(empty).empty
    assert analysis.throttles(empty).empty
    assert analysis.impacted_users(empty).empty


# -- the shop sample ----------------------------------------------------------------------------


def _windows(shop: xraykit.TraceSet) -> tuple[xraykit.TraceSet, xraykit.TraceSet]:
    """The hour before the incident (minutes 0-38) and the incident (minutes 40-58)."""
    tr = shop.traces
    hour = tr["start"].min().floor("h")
    minutes = (tr["start"] - hour).dt.total_seconds() / 60
    before = shop.select(tr.loc[minutes < 38, "trace_id"])
    incident = shop.select(tr.loc[(minutes >= 40) & (minutes < 58), "trace_id"])
    return before, incident


def test_shop_incident_ranks_the_slowed_database_first(shop):
    before, incident = _windows(shop)
    by_service = analysis.compare(before, incident)
    top = by_service.iloc[0]
    assert top["service_type"] == "Database::SQL"
    assert top["service"].startswith("inventory@")
    assert top["p90_s_b"] > 5 * top["p90_s_a"]
    by_edge = analysis.compare(before, incident, level="edge")
    assert by_edge["edge"].iloc[0].startswith("inventory → inventory@")


def test_shop_root_causes_blame_the_database_timeouts(shop):
    _, incident = _windows(shop)
    faults = analysis.root_causes(incident, "fault")
    assert faults["service_type"].iloc[0] == "Database::SQL"
    assert faults["exception_name"].iloc[0] == "org.postgresql.util.PSQLException"
    paths = analysis.root_cause_paths(incident, "fault")
    first = paths.loc[paths["trace_id"] == paths["trace_id"].iloc[0]]
    assert first["entity_index"].tolist() == list(range(len(first)))
    assert first["service_index"].is_monotonic_increasing


def test_shop_throttles_are_the_payment_api(shop):
    table = analysis.throttles(shop)
    assert table[["caller", "callee"]].values.tolist()[0] == ["payments", "api.paygate.example"]
    assert (table["throttled"] <= table["calls"]).all()


def test_shop_percentiles_count_every_trace(shop):
    by_status = analysis.percentiles(shop, level="trace", by="status")
    assert by_status["count"].sum() == len(shop)
    shares = analysis.critical_path_share(shop)
    assert shares["share"].sum() == pytest.approx(1.0)


# -- every public function on awkward sets ------------------------------------------------------


AWKWARD = ("empty", "one-trace", "sdk-capture", "in-progress")


@pytest.fixture(scope="module")
def awkward(shop) -> dict[str, xraykit.TraceSet]:
    return {
        "empty": xraykit.TraceSet(),
        "one-trace": shop.select(shop.traces["trace_id"].iloc[:1]),
        "sdk-capture": xraykit.load_sample("sdk-capture"),
        "in-progress": xraykit.load_file(DATA / "in_progress.json"),  # NaT ends
    }


def _first_id(ts: xraykit.TraceSet) -> str:
    return str(ts.traces["trace_id"].iloc[0]) if len(ts) else "1-00000000-000000000000000000000000"


ANALYSES = {
    "compare": lambda ts: analysis.compare(ts, ts),
    "compare by edge": lambda ts: analysis.compare(ts, ts, level="edge"),
    "compare trace by status": lambda ts: analysis.compare(ts, ts, level="trace", by="status"),
    "critical_path": lambda ts: analysis.critical_path(ts, _first_id(ts)),
    "critical_path_share": analysis.critical_path_share,
    "impacted_users": analysis.impacted_users,
    "impacted_users responsetime": lambda ts: analysis.impacted_users(
        ts, kind="responsetime", threshold_s=0.1
    ),
    "percentiles": analysis.percentiles,
    "percentiles by edge": lambda ts: analysis.percentiles(ts, level="edge"),
    "percentiles by status": lambda ts: analysis.percentiles(ts, level="trace", by="status"),
    "percentiles of all traces": lambda ts: analysis.percentiles(ts, level="trace"),
    "requests_frame": analysis.requests_frame,
    "requests_frame edge": lambda ts: analysis.requests_frame(ts, level="edge"),
    "entities_frame": analysis.entities_frame,
    "root_cause_paths": lambda ts: analysis.root_cause_paths(ts, "error"),
    "root_causes": analysis.root_causes,
    "root_causes responsetime": lambda ts: analysis.root_causes(ts, "responsetime"),
    "sla": lambda ts: analysis.sla(ts, 0.5),
    "sla per minute": lambda ts: analysis.sla(ts, 0.5, freq="1min"),
    "sla by edge per minute": lambda ts: analysis.sla(ts, 0.5, level="edge", freq="1min"),
    "throttles": analysis.throttles,
    "throttles per minute": lambda ts: analysis.throttles(ts, freq="1min"),
}


def test_every_public_analysis_is_exercised_on_awkward_sets():
    covered = {name.split(" ")[0] for name in ANALYSES}
    assert covered == {name for name in analysis.__all__ if callable(getattr(analysis, name))}


@pytest.mark.parametrize("case", sorted(ANALYSES))
@pytest.mark.parametrize("which", AWKWARD)
def test_analyses_answer_on_awkward_sets(awkward, which, case):
    ts = awkward[which]
    if case == "critical_path" and which == "empty":
        with pytest.raises(LookupError, match="No trace with id"):
            ANALYSES[case](ts)
        return
    out = ANALYSES[case](ts)
    assert isinstance(out, pd.DataFrame)
    for column in ("time", "start", "end", "first_impacted", "last_impacted"):
        if column in out:
            assert str(out[column].dtype) == "datetime64[us, UTC]", column
    if which == "empty":
        assert out.empty


# -- arguments of the wrong kind are named on entry ------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda ts: analysis.compare(ts, ts.traces),
            xraykit.ArgumentTypeError,
            "`after` must be a TraceSet .* but a DataFrame was passed",
        ),
        (lambda ts: analysis.percentiles(ts.traces), TypeError, "`ts` must be a TraceSet"),
        (
            lambda ts: analysis.sla(ts, "1"),
            TypeError,
            "`threshold_s` must be a positive number of seconds such as 0.5, but '1' was passed",
        ),
        (lambda ts: analysis.sla(ts, float("nan")), ValueError, "positive number of seconds"),
        (
            lambda ts: analysis.sla(ts, 1.0, freq="banana"),
            ValueError,
            "`freq` must be a pandas frequency such as '1min', .* but 'banana' was passed",
        ),
        (lambda ts: analysis.sla(ts, 1.0, freq="MS"), ValueError, "`freq` must be"),
        (lambda ts: analysis.throttles(ts, freq=5), ValueError, "but 5 was passed"),
        (
            lambda ts: analysis.impacted_users(ts, kind="responsetime", threshold_s="2"),
            TypeError,
            "`threshold_s` must be",
        ),
        (
            lambda ts: analysis.root_cause_paths(ts, "responsetime", threshold_s=-1),
            ValueError,
            "`threshold_s` must be",
        ),
    ],
)
def test_bad_arguments_are_named_on_entry(three, call, error, message):
    with pytest.raises(error, match=message):
        call(three)


@pytest.mark.timeout(60)
def test_segments_that_are_each_others_parents_do_not_hang_any_analysis() -> None:
    """A hostile file: segment a under b's subsegment, b under a's. Every walk must end."""
    tid = "1-6553f100-000000000000000000000001"

    def segment(name: str, own: str, sub: str, parent: str) -> dict:
        return {
            "name": name, "id": own, "trace_id": tid, "parent_id": parent, "fault": True,
            "start_time": 1700000000, "end_time": 1700000002,
            "subsegments": [{"name": f"s{name}", "id": sub, "fault": True,
                             "start_time": 1700000000.1, "end_time": 1700000001}],
        }  # fmt: skip

    loop = xraykit.from_documents(
        [
            segment("a", "a000000000000001", "a00000000000000a", "b00000000000000b"),
            segment("b", "b000000000000001", "b00000000000000b", "a00000000000000a"),
        ]
    )
    entities = analysis.entities_frame(loop)
    assert len(entities) >= 4 and (entities["depth"] >= 0).all()
    assert len(analysis.critical_path(loop, tid)) > 0
    assert len(analysis.root_causes(loop, "fault")) > 0
    analysis.critical_path_share(loop)
    assert len(loop.query('rootcause.fault.service { name = "a" } OR fault')) == 1


@pytest.mark.parametrize("name", ["shop", "cross-account", "lambda-cold-starts", "three"])
def test_the_python_walk_and_the_vectorised_walk_give_the_same_paths(
    name: str, three: xraykit.TraceSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Critical and root-cause paths are walked in Python for small inputs, with pandas for
    large ones; both must give the same rows, whichever a set's size picks."""
    from xraykit.analysis import critical_paths, root_cause

    ts = three if name == "three" else xraykit.load_sample(name)
    results = {}
    for limit in (0, 10**9):  # 0: always the vectorised walk; 10**9: always the Python one
        monkeypatch.setattr(critical_paths, "_WALK_MAX", limit)
        monkeypatch.setattr(root_cause, "_WALK_MAX", limit)
        results[limit] = (
            analysis.critical_path_share(ts),
            *(analysis.root_cause_paths(ts, kind) for kind in analysis.ROOT_CAUSE_KINDS),
        )
    assert len(results[0][0]) > 0 and sum(len(f) for f in results[0][1:]) > 0
    for vectorised, walked in zip(results[0], results[10**9], strict=True):
        pd.testing.assert_frame_equal(vectorised, walked)
