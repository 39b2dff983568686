"""GetTraceSummaries on the local X-Ray answers every expression of the filter test table as
``ts.query`` does on the same traces (issue 13, proof 3), through boto3 on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from test_query import DATA, TABLE

import xraykit
import xraykit.local

# the window the table's traces lie in (their ids and documents are of 2023-11-14 22:13 UTC)
START, END = 1_700_000_000, 1_700_003_600


@pytest.fixture(scope="module")
def local() -> Iterator[Any]:
    with xraykit.local.start("127.0.0.1:0", store=":memory:") as xr:
        yield xr


@pytest.fixture(scope="module")
def served(local: Any) -> Iterator[tuple[Any, xraykit.TraceSet]]:
    documents = json.loads(DATA.read_text())
    ts = xraykit.from_documents(documents, source=DATA.name)
    client = local.client()
    put = client.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in documents])
    assert put["UnprocessedTraceSegments"] == []
    # the groups the table's expressions name, as X-Ray would hold them
    client.create_group(GroupName="slow", FilterExpression="responsetime > 3")
    yield client, ts


def _summary_ids(client: Any, expression: str) -> list[str]:
    ids: list[str] = []
    token: dict[str, str] = {}
    while True:
        page = client.get_trace_summaries(
            StartTime=START, EndTime=END, FilterExpression=expression, **token
        )
        ids += [s["Id"] for s in page["TraceSummaries"]]
        if not page.get("NextToken"):
            return ids
        token = {"NextToken": page["NextToken"]}


# group.arn names an ARN another account's X-Ray gave its group; a local group gets its own
SERVED = [(e, want) for e, want in TABLE if "group.arn" not in e]


def test_the_table_is_served_almost_whole() -> None:
    assert len(SERVED) >= len(TABLE) - 1


@pytest.mark.parametrize(("expression", "expected"), SERVED, ids=[e for e, _ in SERVED])
def test_summaries_match_ts_query(served: Any, expression: str, expected: list[int]) -> None:
    client, ts = served
    ids = _summary_ids(client, expression)
    assert len(ids) == len(set(ids)), "a trace listed twice"
    want = set(ts.query(expression, groups={"slow": "responsetime > 3"}).traces.trace_id)
    assert set(ids) == want
    assert sorted(int(t[-2:]) for t in ids) == expected


@pytest.mark.parametrize("expression", [e for e, _ in SERVED])
def test_the_mirror_answers_as_the_per_window_path(
    served: Any, local: Any, expression: str
) -> None:
    client, _ = served
    operations = local._api.operations
    with_mirror = client.get_trace_summaries(
        StartTime=START, EndTime=END, FilterExpression=expression
    )
    operations.use_mirror = False
    try:
        per_window = client.get_trace_summaries(
            StartTime=START, EndTime=END, FilterExpression=expression
        )
    finally:
        operations.use_mirror = True
    assert with_mirror["TraceSummaries"] == per_window["TraceSummaries"]
