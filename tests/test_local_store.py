"""The local X-Ray's SQLite store: documents, time windows, retention, restarts, groups, rules."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from xraykit.exceptions import ArgumentError, ArgumentTypeError
from xraykit.local.store import MAX_DOCUMENT_BYTES, PutResult, Store

EPOCH = 1_700_000_000


def trace_id(i: int, epoch: int = EPOCH) -> str:
    return f"1-{epoch:08x}-{i:024x}"


def doc(i: int, *, epoch: int = EPOCH, start: float | None = None, **extra: object) -> dict:
    """A complete segment of trace ``i`` (id ``i``) starting at ``start`` (default: ``epoch``)."""
    begin = float(epoch if start is None else start)
    body: dict = {
        "trace_id": trace_id(i, epoch),
        "id": f"{i:016x}",
        "name": f"svc-{i % 3}",
        "start_time": begin,
        "end_time": begin + 0.5,
    }
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
def store():
    s = Store(":memory:")
    yield s
    s.close()


def test_put_keeps_texts_as_sent_and_dicts_as_json(store):
    text = json.dumps(doc(1), indent=1)
    result = store.put([text, doc(2), json.dumps(doc(3)).encode()])
    assert result == PutResult(3, [])
    assert store.count() == 3
    texts = store.documents([trace_id(1), trace_id(2), trace_id(99)])
    assert list(texts) == [trace_id(1), trace_id(2)]  # the unknown trace is left out
    assert texts[trace_id(1)] == [text]
    assert json.loads(texts[trace_id(2)][0]) == doc(2)


BAD = [
    ("not json", "not JSON"),
    (b"\xff\xfe{}", "not JSON"),
    ("[1, 2]", "not a document"),
    (42, "not a document"),
    ({"set": {1, 2}}, "not JSON"),
    (doc(5, id="XYZ"), "bad id"),
    (doc(5, trace_id="1-abc-def"), "bad trace_id"),
    (doc(5, name=""), "no name"),
    (doc(5, start_time="yesterday"), "bad start_time"),
    (doc(5, start_time=True), "bad start_time"),
    (doc(5, end_time=None) | {"end_time": "later"}, "bad end_time"),
    (doc(5, type="subsegment"), "subsegment without parent_id"),
    (doc(5, metadata={"x": "y" * MAX_DOCUMENT_BYTES}), "too large"),
    (json.dumps(doc(5, metadata={"x": "y" * MAX_DOCUMENT_BYTES})), "too large"),
]


@pytest.mark.parametrize(("bad", "reason"), BAD)
def test_a_bad_document_is_rejected_with_its_reason_and_costs_nothing_else(store, bad, reason):
    result = store.put([doc(1), bad, doc(2)])
    assert result.accepted == 2
    assert [r for _, r in result.rejected] == [reason]
    assert store.count() == 2


def test_rejections_name_the_id_when_there_is_one(store):
    result = store.put([doc(7, trace_id="nope"), "{}"])
    assert result.rejected == [(f"{7:016x}", "bad trace_id"), (None, "bad id")]


def test_a_complete_document_replaces_an_in_progress_one_not_the_reverse(store):
    running = doc(1, end_time=None, in_progress=True, annotations={"v": "running"})
    done = doc(1, annotations={"v": "done"})
    store.put([running])
    store.put([done])
    store.put([running])  # arrives late: the complete one stays
    (text,) = store.documents([trace_id(1)])[trace_id(1)]
    assert json.loads(text)["annotations"] == {"v": "done"}
    assert store.count() == 1


def test_trace_ids_by_trace_id_time_sorted_by_first_start(store):
    store.put([doc(1, start=EPOCH + 5), doc(2, start=EPOCH + 1), doc(3, epoch=EPOCH + 100)])
    assert store.trace_ids(EPOCH, EPOCH + 10) == [trace_id(2), trace_id(1)]
    assert store.trace_ids(EPOCH + 50, EPOCH + 200) == [trace_id(3, EPOCH + 100)]
    assert store.trace_ids(EPOCH + 1, EPOCH + 99) == []


def test_trace_ids_by_event_time_look_at_every_document(store):
    late_sub = doc(
        2,
        start=EPOCH + 300,
        id="00000000000000ff",
        type="subsegment",
        parent_id=f"{2:016x}",
    )
    store.put([doc(1), doc(2), late_sub])
    window = (EPOCH + 299, EPOCH + 301)
    assert store.trace_ids(*window) == []
    assert store.trace_ids(*window, time_range_type="Event") == [trace_id(2)]
    assert store.trace_ids(*window, time_range_type="Service") == [trace_id(2)]
    # a document that only ends in the window counts
    assert store.trace_ids(EPOCH + 0.4, EPOCH + 0.6, time_range_type="Event") == [
        trace_id(1),
        trace_id(2),
    ]
    with pytest.raises(ArgumentError, match="time_range_type"):
        store.trace_ids(0, 1, time_range_type="Edge")


def test_traceset_stitches_a_subsegment_sent_on_its_own(store):
    sub = doc(
        1, id="00000000000000aa", name="db", type="subsegment", parent_id=f"{1:016x}", start=EPOCH
    )
    store.put([sub])
    store.put([doc(1), doc(2)])
    ts = store.traceset([trace_id(1)])
    assert ts.traces["trace_id"].tolist() == [trace_id(1)]
    row = ts.subsegments.set_index("subsegment_id").loc["00000000000000aa"]
    assert row["segment_id"] == f"{1:016x}" and bool(row["streamed"])
    assert len(store.traceset().traces) == 2


def test_a_file_store_survives_a_restart_in_wal_mode(tmp_path):
    path = tmp_path / "sub" / "local.sqlite3"
    store = Store(path)
    store.put([doc(i) for i in range(20)])
    store.save_group({"GroupName": "g", "GroupARN": "arn:g", "FilterExpression": "fault"})
    store.save_rule({"RuleName": "r", "FixedRate": 0.1})
    store.close()
    store.close()  # twice is fine
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = Store(path)
    assert again.count() == 20
    assert again.trace_ids(EPOCH, EPOCH) == sorted(trace_id(i) for i in range(20))
    group = again.group("arn:g")
    assert group is not None and group["FilterExpression"] == "fault"
    assert again.rules() == [{"RuleName": "r", "FixedRate": 0.1}]
    again.close()


def test_retention_purges_by_arrival_time(tmp_path):
    store = Store(tmp_path / "s.sqlite3", retention_days=30)
    store.put([doc(1)], received=1_000_000.0)
    store.put([doc(2)], received=1_000_000.0 + 10 * 86400)
    assert store.purge(now=1_000_000.0 + 29 * 86400) == 0
    assert store.purge(now=1_000_000.0 + 31 * 86400) == 1
    assert store.trace_ids(EPOCH, EPOCH) == [trace_id(2)]
    store.close()
    # opening purges too: these documents arrived decades ago
    with Store(tmp_path / "s.sqlite3") as reopened:
        assert reopened.count() == 0


def test_revision_moves_when_documents_change(store):
    first = store.revision
    store.put(["junk"])
    assert store.revision == first
    store.put([doc(1)], received=0.0)
    second = store.revision
    assert second > first
    store.purge(now=0.0)
    assert store.revision == second
    store.purge(now=100 * 86400.0)
    assert store.revision > second


def test_a_document_arriving_later_keeps_its_trace(store):
    store.put([doc(1)], received=0.0)
    store.put([doc(1, id="00000000000000bb", parent_id=f"{1:016x}")], received=40 * 86400.0)
    assert store.purge(now=45 * 86400.0) == 0
    assert len(store.documents([trace_id(1)])[trace_id(1)]) == 2


def test_put_reads_an_iterable_lazily_in_chunks(store):
    seen = []

    def documents():
        for i in range(2500):
            seen.append(i)
            yield doc(i)

    assert store.put(documents()).accepted == 2500
    assert store.count() == 2500 and len(seen) == 2500


def test_threads_write_and_read_at_once(tmp_path):
    store = Store(tmp_path / "t.sqlite3")
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for j in range(20):
                store.put([doc(k * 1000 + j * 10 + n) for n in range(10)])
        except BaseException as e:
            errors.append(e)

    def reader() -> None:
        try:
            for _ in range(50):
                store.trace_ids(EPOCH, EPOCH)
                store.count()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert store.count() == 800
    store.close()


def test_groups_by_name_or_arn(store):
    g = {"GroupName": "slow", "GroupARN": "arn:aws:xray:x:1:group/slow/a", "FilterExpression": "a"}
    store.save_group(g)
    store.save_group({"GroupName": "other", "GroupARN": "arn:o", "FilterExpression": "b"})
    store.save_group(g | {"FilterExpression": "responsetime > 1"})  # replaces, keeps its place
    assert [x["GroupName"] for x in store.groups()] == ["slow", "other"]
    assert store.group("arn:aws:xray:x:1:group/slow/a")["FilterExpression"] == "responsetime > 1"
    assert store.group("missing") is None
    assert store.delete_group("arn:o") is True
    assert store.delete_group("other") is False
    with pytest.raises(ArgumentError, match="GroupName"):
        store.save_group({"FilterExpression": "x"})
    with pytest.raises(ArgumentTypeError):
        store.save_group(["GroupName"])


def test_rules_by_name(store):
    store.save_rule({"RuleName": "a", "Priority": 1})
    store.save_rule({"RuleName": "b", "Priority": 2})
    store.save_rule({"RuleName": "a", "Priority": 3})
    assert store.rules() == [{"RuleName": "a", "Priority": 3}, {"RuleName": "b", "Priority": 2}]
    assert store.delete_rule("a") is True and store.delete_rule("a") is False
    with pytest.raises(ArgumentTypeError, match="JSON"):
        store.save_rule({"RuleName": "c", "When": object()})


def test_bad_arguments_and_closed_store(tmp_path):
    with pytest.raises(ArgumentError, match="retention_days"):
        Store(retention_days=0)
    with pytest.raises(ArgumentTypeError):
        Store(3)  # type: ignore[arg-type]
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is no database" * 100)
    with pytest.raises(ArgumentError, match="not an xraykit local store"):
        Store(junk)
    store = Store()
    store.close()
    with pytest.raises(ArgumentError, match="closed"):
        store.count()
    assert "closed" in repr(store)


# --- the change journal and settings ------------------------------------------------------


def test_changes_name_the_traces_each_revision_touched(store):
    start = store.revision
    assert store.changes(start) == (start, set())
    store.put([doc(1), doc(2)])
    middle = store.revision
    store.put([doc(2, id="00000000000000aa"), doc(3)])
    assert store.changes(start) == (store.revision, {trace_id(1), trace_id(2), trace_id(3)})
    assert store.changes(middle) == (store.revision, {trace_id(2), trace_id(3)})
    assert store.changes(store.revision) == (store.revision, set())
    assert store.changes(start - 1) is None  # before the journal began: read everything
    store.put(["not json"])  # nothing kept, nothing changed
    assert store.changes(middle)[0] == store.revision


def test_a_purge_is_journaled_with_the_deleted_traces(store):
    store.put([doc(1)], received=0.0)
    store.put([doc(2)], received=100 * 86400.0)
    before = store.revision
    assert store.purge(now=40 * 86400.0) == 1
    assert store.changes(before) == (store.revision, {trace_id(1)})
    assert store.documents([trace_id(1), trace_id(2)]).keys() == {trace_id(2)}


def test_the_journal_is_bounded(store, monkeypatch):
    monkeypatch.setattr("xraykit.local.store.JOURNAL_IDS", 2)
    first = store.revision
    for i in range(5):
        store.put([doc(i)])
    assert store.changes(first) is None  # too far behind: the reader re-reads everything
    assert store.changes(store.revision - 1) == (store.revision, {trace_id(4)})
    assert len(store._journal) <= 2


def test_wait_for_change_wakes_on_put_and_on_close(store):
    seen = store.revision
    timer = threading.Timer(0.05, lambda: store.put([doc(1)]))
    timer.start()
    assert store.wait_for_change(seen, timeout=10) == seen + 1
    timer.join()
    assert store.wait_for_change(seen, timeout=10) == seen + 1  # already moved: no wait
    other = Store(":memory:")
    closer = threading.Timer(0.05, other.close)
    closer.start()
    assert other.wait_for_change(other.revision, timeout=10) == other.revision
    closer.join()
    assert other.closed and not store.closed


def test_settings_survive_a_restart(tmp_path):
    path = tmp_path / "local.sqlite3"
    with Store(path) as store:
        assert store.setting("encryption") is None
        store.save_setting("encryption", {"Type": "KMS", "KeyId": "alias/x"})
        store.save_setting("encryption", {"Type": "KMS", "KeyId": "alias/y"})
        with pytest.raises(ArgumentTypeError, match="must be a dict"):
            store.save_setting("encryption", ["KMS"])  # type: ignore[arg-type]
    with Store(path) as store:
        assert store.setting("encryption") == {"Type": "KMS", "KeyId": "alias/y"}
