"""TraceSet: schema, selection, documents, save/load, concat, display (foundation §2)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import xraykit
from xraykit.exceptions import TraceParseError
from xraykit.schema import FRAMES, SCHEMAS
from xraykit.traceset import TraceSet


def dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {c: str(t) for c, t in frame.dtypes.items()}


def test_empty_traceset_has_every_column():
    ts = TraceSet()
    assert len(ts) == 0
    for name in FRAMES:
        assert dtypes(getattr(ts, name)) == SCHEMAS[name]


@pytest.mark.parametrize("name", xraykit.sample_names())
def test_samples_follow_the_schema(name):
    ts = xraykit.load_sample(name)
    assert len(ts) > 0
    for frame in FRAMES:
        assert dtypes(getattr(ts, frame)) == SCHEMAS[frame], frame
    assert ts.traces.trace_id.is_unique
    assert ts.segments.trace_id.isin(ts.traces.trace_id).all()
    assert ts.traces.segment_count.sum() == len(ts.segments)
    assert ts.traces.subsegment_count.sum() == len(ts.subsegments)
    assert (ts.traces.duration_s >= 0).all()
    assert (ts.traces.duration_s + 1e-6 >= ts.traces.response_time_s.fillna(0)).all()


def test_len_is_the_number_of_traces(shop):
    assert len(shop) == len(shop.traces) == shop.traces.trace_id.nunique()


def test_trace_returns_every_frame_of_one_trace(shop):
    tid = shop.traces.trace_id[len(shop) // 2]
    one = shop.trace(tid)
    assert len(one) == 1
    for name in ("segments", "subsegments", "annotations", "metadata", "exceptions"):
        frame = getattr(one, name)
        assert (frame.trace_id == tid).all()
        assert len(frame) == (getattr(shop, name).trace_id == tid).sum()


def test_trace_unknown_id_says_where_ids_are(shop):
    with pytest.raises(LookupError, match=r"ts\.traces\.trace_id"):
        shop.trace("1-00000000-000000000000000000000000")


def test_select_filters_all_frames_and_does_not_mutate(shop):
    before = shop.traces.copy()
    ids = shop.traces.trace_id[::7]
    part = shop.select(ids)
    assert set(part.traces.trace_id) == set(ids)
    assert set(part.subsegments.trace_id) <= set(ids)
    assert set(part.annotations.trace_id) <= set(ids)
    assert shop.traces.equals(before)


def test_document_of_a_segment_and_of_an_embedded_subsegment(data_dir):
    ts = xraykit.load_file(data_dir / "bare_string_cause.json")
    root = ts.document("f000000000000001")
    assert root["cause"] == "1234567890abcdef" and root["trace_id"] == ts.traces.trace_id[0]
    child = ts.document("f000000000000002")
    assert child["name"] == "charge-card"
    assert child["cause"]["exceptions"][0]["type"] == "CardDeclined"


def test_document_of_a_streamed_subsegment_and_its_children(data_dir):
    ts = xraykit.load_file(data_dir / "streamed_subsegments.jsonl", on_error="ignore")
    assert ts.document("c000000000000002")["type"] == "subsegment"
    assert ts.document("c000000000000004")["sql"]["database_type"] == "sqlite3"


def test_document_unknown_id(shop):
    with pytest.raises(LookupError, match="No segment or subsegment with id 'zzz'"):
        shop.document("zzz")


def test_document_matches_its_rows_on_a_sample(shop):
    row = shop.subsegments.iloc[len(shop.subsegments) // 3]
    doc = shop.document(row.subsegment_id)
    assert doc["id"] == row.subsegment_id and doc["name"] == row["name"]


def test_save_and_load_round_trip_loses_nothing(tmp_path, data_dir):
    ts = xraykit.concat(
        [
            xraykit.load_file(data_dir / "annotation_html.json"),
            xraykit.load_file(data_dir / "daemon_capture.txt"),
            xraykit.load_sample("sdk-capture"),
        ]
    )
    path = ts.save(tmp_path / "set.traceset")
    back = xraykit.load_file(path)
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(back, name), getattr(ts, name), check_exact=True)
    values = back.annotations.set_index("key").value
    assert values["score"] == 4.5 and values["count"] == 3 and type(values["count"]) is int
    assert values["vip"] is False
    assert back.metadata.set_index("key").value["payload"] == {"items": [1, 2, {"a": None}]}
    assert back.document("a300000000000002") == ts.document("a300000000000002")
    sub = ts.subsegments.subsegment_id[ts.subsegments.depth > 1].iloc[0]
    assert back.document(sub) == ts.document(sub)


def test_save_keeps_summaries(tmp_path, shop):
    part = shop.select(shop.traces.trace_id[:3])
    summaries = pd.DataFrame({"trace_id": part.traces.trace_id, "revision": [1, 2, 3]})
    ts = TraceSet({**part.frames, "documents": part._documents}, summaries=summaries)
    back = xraykit.load_file(ts.save(tmp_path / "s.zip"))
    pd.testing.assert_frame_equal(back.summaries, summaries)
    assert back.select(summaries.trace_id[:1]).summaries.revision.tolist() == [1]


def test_a_zip_that_is_not_a_traceset(tmp_path):
    import zipfile

    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(TraceParseError, match="looks like a saved TraceSet but cannot be read"):
        xraykit.load_file(path)


def test_concat_takes_a_repeated_trace_from_the_last_set(data_dir):
    running = xraykit.load_file(data_dir / "in_progress.json")
    tid = running.traces.trace_id[running.traces.is_partial].iloc[0]
    done_doc = running.document("a000000000000001") | {"end_time": 1602537379.0}
    done_doc.pop("in_progress")
    done_doc["subsegments"][0] |= {"end_time": 1602537378.0, "in_progress": False}
    done = xraykit.from_documents([json.dumps(done_doc)])
    both = xraykit.concat([running, done])
    assert len(both) == 2
    assert not both.traces.set_index("trace_id").loc[tid, "is_partial"]
    assert len(both.segments) == 2


def test_concat_rejects_other_things(shop):
    with pytest.raises(TypeError, match="list of TraceSets"):
        xraykit.concat([shop, shop.traces])  # type: ignore[list-item]
    assert len(xraykit.concat([])) == 0


def test_repr_and_html(shop, data_dir):
    assert repr(shop).startswith(f"<TraceSet: {len(shop)} traces")
    page = shop._repr_html_()
    assert "Time span" in page and "shop-api/prod" in page and f"{len(shop.segments):,}" in page
    odd = xraykit.load_file(data_dir / "annotation_html.json")
    assert "R&amp;D &lt;portal&gt;" in odd._repr_html_()
    assert "<portal>" not in odd._repr_html_()


def test_constructor_rejects_unknown_frames():
    with pytest.raises(ValueError, match="frames must be among"):
        TraceSet({"spans": pd.DataFrame()})


def test_a_set_of_in_progress_traces_displays(data_dir):
    ts = xraykit.load_file(data_dir / "in_progress.json")
    running = ts.select(ts.traces.trace_id[ts.traces.is_partial])
    assert pd.isna(running.traces.end[0])
    assert "1 in progress" in repr(running)
    assert "Time span" in running._repr_html_()


def test_constructor_fills_missing_columns_and_names_bad_ones():
    ts = TraceSet({"traces": pd.DataFrame({"trace_id": ["1-5f84c7a1-6c7a8d2e9f0a1b2c3d4e5f60"]})})
    assert ts.traces.segment_count.tolist() == [0] and ts.traces.has_fault.tolist() == [False]
    with pytest.raises(
        ValueError, match=r"Column 'start' of the traces frame must hold datetime64\[us, UTC\]"
    ):
        TraceSet({"traces": pd.DataFrame({"trace_id": ["x"], "start": ["yesterday"]})})


def test_raw_documents_are_the_documents_as_received(data_dir):
    ts = xraykit.load_file(data_dir / "streamed_subsegments.jsonl", on_error="ignore")
    raw = ts.raw_documents
    assert list(raw.columns) == ["trace_id", "entity_id", "in_progress", "document"]
    assert set(raw.entity_id) == {
        "c000000000000001",
        "c000000000000002",
        "c000000000000003",
        "c0000000000000ff",
    }
    assert json.loads(raw.document[0])["id"] == raw.entity_id[0]


def test_concat_adds_up_live_costs(shop):
    from xraykit.aws import CostEstimate

    a = shop.select(shop.traces.trace_id[:2])
    b = shop.select(shop.traces.trace_id[2:4])
    a.cost, b.cost = (
        CostEstimate(traces_scanned=10, traces_retrieved=2),
        CostEstimate(traces_scanned=5, traces_retrieved=2),
    )
    both = xraykit.concat([a, b])
    assert (both.cost.traces_scanned, both.cost.traces_retrieved) == (15, 4)
