"""Tests of xraykit.local.mirror: the parsed in-memory copy of the store answers
GetTraceSummaries exactly as the per-window path does (ids and summaries), after updates,
deletions, restarts and merges, and its indexer thread follows the store and stops."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import xraykit
import xraykit.local
from xraykit.local import mirror as mirror_module
from xraykit.local.mirror import MAX_CHUNKS, Indexer, Mirror
from xraykit.local.operations import Operations
from xraykit.local.store import Store

# the shop sample's trace ids run from 1741078809 to 1741082399 (one hour); the tests take
# its first twelve minutes (about 500 traces)
FIRST, LAST = 1_741_078_800, 1_741_078_800 + 720
WHOLE = {"StartTime": FIRST, "EndTime": LAST}
# windows that cut between SQS producers (checkout) and their linked consumers (order-worker)
WINDOWS = [
    {"StartTime": FIRST + i * 240 + 7, "EndTime": FIRST + (i + 1) * 240 + 3} for i in range(3)
]
EXPRESSIONS = [
    None,
    "fault",
    "!ok",
    "responsetime > 1",
    "inferred",
    'annotation.customer_tier = "gold"',
    'edge("order-events", "order-worker")',
    'edge("client", "order-worker")',
    'service("order-worker") { fault }',
    'service(id(name: "order-worker", type: "AWS::Lambda"))',
    'rootcause.fault.service { name = "payments" }',
    'group.name = "slow"',
]
GROUPS = {"GroupName": "slow", "FilterExpression": "responsetime > 1"}


@pytest.fixture(scope="module")
def shop_documents() -> list[str]:
    shop = xraykit.load_sample("shop")
    early = shop.traces.trace_id[shop.traces.trace_id.str[2:10].map(lambda h: int(h, 16)) < LAST]
    return shop.select(early).raw_documents["document"].tolist()


@pytest.fixture(scope="module")
def shop_traces(shop_documents: list[str]) -> int:
    return len(xraykit.from_documents(shop_documents))


@pytest.fixture
def store(shop_documents: list[str]) -> Iterator[Store]:
    with Store(":memory:") as db:
        for i in range(0, len(shop_documents), 300):  # several revisions
            assert not db.put(shop_documents[i : i + 300]).rejected
        yield db


def pair(store: Store) -> tuple[Operations, Operations]:
    """Operations answering from the mirror, and from the store per window."""
    fast, slow = Operations(store, index=False), Operations(store, index=False)
    slow.use_mirror = False
    if store.group("slow") is None:
        fast.create_group(GROUPS)
    return fast, slow


def every_summary(ops: Operations, body: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    request = dict(body)
    while True:
        page = ops.get_trace_summaries(request)
        out += page["TraceSummaries"]
        if "NextToken" not in page:
            return out
        request["NextToken"] = page["NextToken"]


def body_of(window: dict[str, Any], expression: str | None, **extra: Any) -> dict[str, Any]:
    body = {**window, **extra}
    if expression is not None:
        body["FilterExpression"] = expression
    return body


def assert_same(fast: Operations, slow: Operations, body: dict[str, Any]) -> list[str]:
    got, want = every_summary(fast, body), every_summary(slow, body)
    assert [s["Id"] for s in got] == [s["Id"] for s in want]
    assert got == want
    return [s["Id"] for s in got]


@pytest.mark.parametrize("expression", EXPRESSIONS, ids=str)
def test_the_mirror_and_the_per_window_path_agree(
    store: Store, expression: str | None, shop_traces: int
) -> None:
    fast, slow = pair(store)
    whole = assert_same(fast, slow, body_of(WHOLE, expression))
    parts: list[str] = []
    for window in WINDOWS:
        parts += assert_same(fast, slow, body_of(window, expression))
    for extra in ({"TimeRangeType": "Event"}, {"Sampling": True}):
        assert_same(fast, slow, body_of(WINDOWS[2], expression, **extra))
    assert len(fast.mirror) == shop_traces
    assert set(parts) <= set(whole)


def test_linked_traces_depend_on_their_window(store: Store) -> None:
    # the consumer of an SQS message has a link edge only with its producer in the window:
    # a window holding consumers without their producers finds fewer link edges
    fast, slow = pair(store)
    expression = 'edge("order-events", "order-worker")'
    whole = set(assert_same(fast, slow, body_of(WHOLE, expression)))
    cut = set()
    for window in WINDOWS:
        cut |= set(assert_same(fast, slow, body_of(window, expression)))
    assert whole and cut < whole


def test_a_later_document_shows_the_traces_new_state(store: Store) -> None:
    fast, slow = pair(store)
    trace_id = "1-67c6c23c-00000000000000000000feed"
    segment = {
        "trace_id": trace_id,
        "id": "00000000000000a1",
        "name": "late-api",
        "start_time": 1_741_079_100.0,
        "in_progress": True,
    }
    store.put([segment])
    body = body_of(WHOLE, 'service("late-api")')
    assert assert_same(fast, slow, body) == [trace_id]
    assert every_summary(fast, body)[0]["IsPartial"] is True
    assert not assert_same(fast, slow, body_of(WHOLE, 'service("late-api") { fault }'))
    # the segment completes with a fault, and a subsegment streamed on its own arrives
    store.put([{**segment, "in_progress": False, "end_time": 1_741_079_102.0, "fault": True}])
    store.put(
        [
            {
                "type": "subsegment",
                "trace_id": trace_id,
                "parent_id": "00000000000000a1",
                "id": "00000000000000b2",
                "name": "late-call",
                "start_time": 1_741_079_100.5,
                "end_time": 1_741_079_101.0,
                "annotations": {"stage": "late"},
            }
        ]
    )
    assert assert_same(fast, slow, body_of(WHOLE, 'service("late-api") { fault }')) == [trace_id]
    assert assert_same(fast, slow, body_of(WHOLE, 'annotation.stage = "late"')) == [trace_id]
    summary = every_summary(fast, body)[0]
    assert summary["IsPartial"] is False and summary["HasFault"] is True
    assert summary["Annotations"]["stage"][0]["AnnotationValue"] == {"StringValue": "late"}
    assert summary["Duration"] == 2.0


def test_deletion_by_retention(shop_documents: list[str]) -> None:
    with Store(":memory:", retention_days=30) as store:
        old, new = shop_documents[:400], shop_documents[400:]
        store.put(old, received=0.0)
        store.put(new, received=40 * 86400.0)
        fast, slow = pair(store)
        before = assert_same(fast, slow, body_of(WHOLE, "!ok"))
        gone = store.purge(now=35 * 86400.0)
        assert gone > 0
        after = assert_same(fast, slow, body_of(WHOLE, "!ok"))
        assert set(after) < set(before)
        kept = set(store.trace_ids(FIRST, LAST))
        assert set(after) <= kept and len(fast.mirror) == len(kept)
        assert assert_same(fast, slow, body_of(WHOLE, None)) == store.trace_ids(FIRST, LAST)[::-1]


def test_restart_from_a_store_file(shop_documents: list[str], tmp_path: Path) -> None:
    path = tmp_path / "local.sqlite3"
    with Store(path) as store:
        store.put(shop_documents)
        fast, _ = pair(store)
        before = {e: every_summary(fast, body_of(WHOLE, e)) for e in EXPRESSIONS[:8]}
    with Store(path) as store:  # a new process: the mirror is built from the file
        fast, slow = pair(store)
        for expression, summaries in before.items():
            assert every_summary(fast, body_of(WHOLE, expression)) == summaries
            assert_same(fast, slow, body_of(WHOLE, expression))


def test_small_changes_make_few_chunks_and_merges_keep_answers(
    shop_documents: list[str],
) -> None:
    with Store(":memory:") as store:
        fast, slow = pair(store)
        for i in range(0, len(shop_documents), 60):  # a sync after every small put
            store.put(shop_documents[i : i + 60])
            fast.mirror.sync()
            assert len(fast.mirror._state.chunks) <= MAX_CHUNKS
        assert fast.mirror.stats["syncs"] >= 20
        # an early trace sent again makes its first chunk partly dead
        store.put(shop_documents[:5])
        for expression in EXPRESSIONS[:7]:
            assert_same(fast, slow, body_of(WHOLE, expression))
        while fast.mirror.compact():  # what the indexer does when idle
            pass
        assert 1 <= len(fast.mirror._state.chunks) <= 3
        assert fast.mirror.stats["compactions"] >= 1
        for expression in EXPRESSIONS:
            assert_same(fast, slow, body_of(WHOLE, expression))


def test_a_store_above_the_cap_is_answered_per_window(store: Store) -> None:
    fast, slow = pair(store)
    fast.mirror = Mirror(store, max_traces=100)
    assert fast.mirror.matches(store.trace_ids(FIRST, LAST), "fault", {}) is None
    assert len(fast.mirror) == 0 and "off" in repr(fast.mirror)
    for expression in ("fault", 'edge("order-events", "order-worker")'):
        assert_same(fast, slow, body_of(WHOLE, expression))


def test_a_window_the_mirror_lacks_is_answered_per_window(store: Store) -> None:
    mirror = Mirror(store)
    assert mirror.matches(["1-67c6c23c-0000000000000000000f00d0"], "fault", {}) is None
    assert mirror.summaries(["1-67c6c23c-0000000000000000000f00d0"]) is None
    ids = store.trace_ids(FIRST, LAST)[:3]
    assert [s["Id"] for s in mirror.summaries(ids) or []] == ids


def test_the_journal_is_lost_the_mirror_reads_everything(
    store: Store, monkeypatch: pytest.MonkeyPatch, shop_documents: list[str]
) -> None:
    fast, slow = pair(store)
    fast.mirror.sync()
    rebuilds = fast.mirror.stats["rebuilds"]
    monkeypatch.setattr("xraykit.local.store.JOURNAL_IDS", 3)
    late = json.loads(shop_documents[0])
    store.put([{**late, "fault": True, "end_time": late["start_time"] + 1}])
    store.put(shop_documents[1:40])
    assert store.changes(fast.mirror.revision) is None
    assert_same(fast, slow, body_of(WHOLE, "fault"))
    assert fast.mirror.stats["rebuilds"] == rebuilds + 1


def test_the_indexer_follows_the_store_and_stops(
    shop_documents: list[str], shop_traces: int
) -> None:
    store = Store(":memory:")
    mirror = Mirror(store)
    indexer = Indexer(mirror, quiet=0.01, max_lag=0.05, precompute=50).start()
    assert indexer.warm.wait(30)
    store.put(shop_documents)
    assert indexer.wait_current(60) and len(mirror) == shop_traces
    assert indexer.wait_settled(60)
    assert len(mirror._summaries) >= 50  # the most recent traces were summarized
    store.put(shop_documents[:10])
    assert indexer.wait_current(60)
    thread = indexer._thread
    assert thread is not None and thread.is_alive()
    store.close()  # the thread ends with the store
    thread.join(10)
    assert not thread.is_alive()
    indexer.stop()


def test_a_running_local_xray_stops_its_indexer(shop_documents: list[str]) -> None:
    with xraykit.local.start("127.0.0.1:0", store=":memory:") as xr:
        client = xr.client()
        for i in range(0, 600, 200):
            client.put_trace_segments(TraceSegmentDocuments=shop_documents[i : i + 200])
        ids = [s["Id"] for s in client.get_trace_summaries(**WHOLE)["TraceSummaries"]]
        assert ids and ids == xr.store.trace_ids(FIRST, LAST)[::-1][: len(ids)]
    names = [t.name for t in threading.enumerate()]
    assert "xraykit-local-indexer" not in names


def test_module_constants_are_sane() -> None:
    assert mirror_module.MAX_TRACES >= 100_000  # the benchmark fits
    assert mirror_module.PRECOMPUTE <= mirror_module.SUMMARY_CACHE
