"""Transaction Search: StartTraceRetrieval + ListRetrievedTraces, OTEL and X-Ray formats,
against a botocore Stubber (moto does not have these calls)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

import xraykit
from xraykit.aws.client import RetryPolicy
from xraykit.aws.retrieval import fetch_retrieved, traceset_from_retrieved
from xraykit.exceptions import ArgumentError, ArgumentTypeError, LiveAccessError

boto3 = pytest.importorskip("boto3")
from botocore.stub import ANY, Stubber  # noqa: E402

EPOCH = int(time.time()) // 3600 * 3600 - 3600  # an hour within X-Ray's 30 days
TID = f"{EPOCH:08x}bd862e3fe1be46a994272793"
XTID = f"1-{TID[:8]}-{TID[8:]}"
S0 = EPOCH * 10**9
START = datetime.fromtimestamp(EPOCH, tz=UTC)
END = datetime.fromtimestamp(EPOCH + 3600, tz=UTC)


def otel_span(
    span_id: str, parent: str, kind: str, service: str, **attributes: Any
) -> dict[str, str]:
    """One span as the span log group (and the OTEL TraceFormat) writes it."""
    document = {
        "resource": {"attributes": {"service.name": service, "cloud.provider": "aws"}},
        "scope": {"name": "test", "version": "1"},
        "traceId": TID,
        "spanId": span_id,
        "parentSpanId": parent,
        "flags": 256,
        "name": f"{kind} span",
        "kind": kind,
        "startTimeUnixNano": S0,
        "endTimeUnixNano": S0 + 200_000_000,
        "durationNano": 200_000_000,
        "attributes": attributes,
        "status": {"code": "UNSET"},
    }
    return {"Id": span_id, "Document": json.dumps(document)}


def client_with(stubs: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> tuple[Any, Stubber]:
    client = boto3.client(
        "xray", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    for operation, response, params in stubs:
        stubber.add_response(operation, response, params)
    stubber.activate()
    return client, stubber


def test_otel_traces_are_polled_paged_and_translated() -> None:
    token = "token-1"
    page1 = {
        "RetrievalStatus": "COMPLETE",
        "TraceFormat": "OTEL",
        "Traces": [
            {
                "Id": XTID,
                "Duration": 0.2,
                "Spans": [
                    otel_span(
                        "53995c3f42cd8ad8",
                        "",
                        "SERVER",
                        "orders",
                        **{
                            "http.request.method": "POST",
                            "http.response.status_code": 201,
                            "aws.xray.annotations": ["customer"],
                            "customer": "c-9",
                        },
                    ),
                ],
            }
        ],
        "NextToken": "page-2",
    }
    page2 = {
        "RetrievalStatus": "COMPLETE",
        "TraceFormat": "OTEL",
        "Traces": [
            {
                "Id": XTID,
                "Duration": 0.2,
                "Spans": [
                    otel_span(
                        "6f1c2a3b4c5d6e7f",
                        "53995c3f42cd8ad8",
                        "CLIENT",
                        "orders",
                        **{
                            "rpc.system": "aws-api",
                            "rpc.service": "DynamoDB",
                            "rpc.method": "PutItem",
                            "aws.table_name": "orders",
                        },
                    ),
                ],
            }
        ],
    }
    client, stubber = client_with(
        [
            (
                "start_trace_retrieval",
                {"RetrievalToken": token},
                {"TraceIds": [XTID], "StartTime": START, "EndTime": END},
            ),
            (
                "list_retrieved_traces",
                {"RetrievalStatus": "RUNNING"},
                {"RetrievalToken": token, "TraceFormat": "OTEL"},
            ),
            ("list_retrieved_traces", page1, {"RetrievalToken": token, "TraceFormat": "OTEL"}),
            (
                "list_retrieved_traces",
                page2,
                {"RetrievalToken": token, "TraceFormat": "OTEL", "NextToken": "page-2"},
            ),
        ]
    )
    waits: list[float] = []
    ts = fetch_retrieved(
        [XTID, XTID],
        start=START,
        end=END,
        client=client,
        retry=RetryPolicy(sleep=waits.append, rate=None),
        poll_interval=1.5,
    )
    stubber.assert_no_pending_responses()
    assert waits == [1.5]  # one wait while the retrieval was RUNNING
    assert list(ts.traces.trace_id) == [XTID] and ts.problems.empty
    (segment,) = ts.segments.itertuples()
    assert (segment.name, segment.http_method, segment.http_status) == ("orders", "POST", 201)
    (sub,) = ts.subsegments.itertuples()
    assert (sub.name, sub.namespace, sub.aws_operation, sub.table_name, sub.parent_id) == (
        "DynamoDB",
        "aws",
        "PutItem",
        "orders",
        "53995c3f42cd8ad8",
    )
    assert ts.annotations[["key", "value"]].values.tolist() == [["customer", "c-9"]]


def test_xray_format_documents_load_as_they_are() -> None:
    doc = {
        "id": "70de5b6f19ff9a0a",
        "name": "web",
        "trace_id": "1-581cf771-a006649127e371903a2de979",
        "start_time": 1478293361.271,
        "end_time": 1478293361.449,
    }
    response = {
        "RetrievalStatus": "COMPLETE",
        "TraceFormat": "XRAY",
        "Traces": [
            {
                "Id": doc["trace_id"],
                "Duration": 0.178,
                "Spans": [{"Id": doc["id"], "Document": json.dumps(doc)}],
            }
        ],
    }
    client, stubber = client_with(
        [
            (
                "start_trace_retrieval",
                {"RetrievalToken": "t"},
                {"TraceIds": [doc["trace_id"]], "StartTime": ANY, "EndTime": ANY},
            ),
            ("list_retrieved_traces", response, {"RetrievalToken": "t", "TraceFormat": "XRAY"}),
        ]
    )
    ts = fetch_retrieved(
        [doc["trace_id"]],
        since="2h",
        trace_format="XRAY",
        client=client,
        retry=RetryPolicy(sleep=lambda s: None, rate=None),
    )
    stubber.assert_no_pending_responses()
    assert ts.traces[["trace_id", "root_service", "response_time_s"]].values.tolist() == [
        [doc["trace_id"], "web", 0.178]
    ]


def test_more_than_a_hundred_ids_take_several_retrievals() -> None:
    ids = [f"1-{TID[:8]}-{i:024x}" for i in range(150)]
    empty = {"RetrievalStatus": "COMPLETE", "TraceFormat": "OTEL", "Traces": []}
    client, stubber = client_with(
        [
            (
                "start_trace_retrieval",
                {"RetrievalToken": "a"},
                {"TraceIds": ids[:100], "StartTime": ANY, "EndTime": ANY},
            ),
            ("list_retrieved_traces", empty, {"RetrievalToken": "a", "TraceFormat": "OTEL"}),
            (
                "start_trace_retrieval",
                {"RetrievalToken": "b"},
                {"TraceIds": ids[100:], "StartTime": ANY, "EndTime": ANY},
            ),
            ("list_retrieved_traces", empty, {"RetrievalToken": "b", "TraceFormat": "OTEL"}),
        ]
    )
    ts = fetch_retrieved(ids, client=client, retry=RetryPolicy(sleep=lambda s: None, rate=None))
    stubber.assert_no_pending_responses()
    assert len(ts) == 0


@pytest.mark.parametrize("status", ["FAILED", "CANCELLED", "TIMEOUT"])
def test_a_retrieval_that_does_not_complete_raises(status: str) -> None:
    client, _ = client_with(
        [
            (
                "start_trace_retrieval",
                {"RetrievalToken": "t"},
                {"TraceIds": [XTID], "StartTime": ANY, "EndTime": ANY},
            ),
            (
                "list_retrieved_traces",
                {"RetrievalStatus": status},
                {"RetrievalToken": "t", "TraceFormat": "OTEL"},
            ),
        ]
    )
    with pytest.raises(LiveAccessError, match=status):
        fetch_retrieved([XTID], client=client, retry=RetryPolicy(sleep=lambda s: None, rate=None))


def test_waiting_is_bounded_by_the_timeout() -> None:
    client, _ = client_with(
        [
            (
                "start_trace_retrieval",
                {"RetrievalToken": "t"},
                {"TraceIds": [XTID], "StartTime": ANY, "EndTime": ANY},
            ),
            (
                "list_retrieved_traces",
                {"RetrievalStatus": "SCHEDULED"},
                {"RetrievalToken": "t", "TraceFormat": "OTEL"},
            ),
        ]
    )
    with pytest.raises(LiveAccessError, match="still SCHEDULED"):
        fetch_retrieved(
            [XTID], client=client, timeout=0, retry=RetryPolicy(sleep=lambda s: None, rate=None)
        )


def test_access_denied_names_the_transaction_search_permissions() -> None:
    client = boto3.client(
        "xray", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    stubber.add_client_error("start_trace_retrieval", "AccessDeniedException", "not allowed", 403)
    stubber.activate()
    with pytest.raises(LiveAccessError, match="StartTraceRetrieval"):
        fetch_retrieved([XTID], client=client, retry=RetryPolicy(sleep=lambda s: None, rate=None))


def test_documents_that_are_not_json_are_problems() -> None:
    good = otel_span("53995c3f42cd8ad8", "", "SERVER", "orders")
    response = {
        "RetrievalStatus": "COMPLETE",
        "TraceFormat": "OTEL",
        "Traces": [
            {"Id": XTID, "Spans": [good, {"Id": "x", "Document": "{not json"}, {"Id": "y"}]},
            {"Id": "z"},
        ],
    }
    with pytest.warns(xraykit.XrayKitWarning):
        ts = traceset_from_retrieved([response])
    assert len(ts.segments) == 1 and len(ts.problems) == 3
    assert ts.problems.source.unique().tolist() == ["ListRetrievedTraces"]


def test_arguments_are_checked() -> None:
    with pytest.raises(ArgumentError, match="trace_format"):
        fetch_retrieved([XTID], trace_format="JSON")
    with pytest.raises(ArgumentTypeError, match="trace_ids"):
        fetch_retrieved(XTID)
    with pytest.raises(ArgumentError, match="empty"):
        fetch_retrieved([])
    with pytest.raises(ArgumentTypeError, match="responses"):
        traceset_from_retrieved(["text"])  # type: ignore[list-item]
