"""DocumentStore: the original documents compressed in blocks, and the TraceSet built on it."""

from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import xraykit
from xraykit.io.docstore import INDEX, DocumentStore, DocumentStoreBuilder
from xraykit.schema import SCHEMAS, conform, empty_frame
from xraykit.traceset import TraceSet

LINKED = '{"id": "c1", "links": [{"trace_id": "1-b", "id": "p1"}]}'


def frame_of(rows: list[tuple[str, str, bool, str | None]]) -> pd.DataFrame:
    trace_id, entity_id, in_progress, document = zip(*rows, strict=True) if rows else ([],) * 4
    return conform(
        pd.DataFrame(
            {
                "trace_id": pd.Series(trace_id, dtype="str"),
                "entity_id": pd.Series(entity_id, dtype="str"),
                "in_progress": pd.Series(in_progress, dtype="bool"),
                "document": pd.Series(document, dtype="str"),
            }
        ),
        "documents",
    )


SMALL = frame_of(
    [
        ("1-a", "s1", False, '{"id": "s1", "name": "web"}'),
        ("1-a", "s2", True, '{"id": "s2", "name": "café ☕ 東京 🚀"}'),
        ("1-b", "c1", False, LINKED),
        ("1-b", "s2", False, '{"id": "s2", "name": "again"}'),
        ("1-c", "s4", False, None),
        ("1-c", "s5", False, ""),
        ("1-c", "s6", False, '{"id": "s6", "text": "' + "é" * 300 + '"}'),
    ]
)


@pytest.fixture(scope="module")
def shop_documents() -> pd.DataFrame:
    return xraykit.load_sample("shop").raw_documents


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("block_bytes", [1, 40, 100, 1 << 20])
def test_frame_round_trip(block_bytes):
    store = DocumentStore.from_frame(SMALL, block_bytes=block_bytes)
    pd.testing.assert_frame_equal(store.to_frame(), SMALL, check_exact=True)
    assert len(store) == len(SMALL)
    assert store.text_nbytes == sum(len(t.encode()) for t in SMALL.document.dropna())


def test_shop_round_trip_across_many_blocks(shop_documents):
    store = DocumentStore.from_frame(shop_documents, block_bytes=1 << 16)
    assert len(store.blocks) > 100
    pd.testing.assert_frame_equal(store.to_frame(), shop_documents, check_exact=True)
    index = store.index
    assert {c: str(t) for c, t in index.dtypes.items()} == INDEX
    assert (index.start <= index.stop).all()


def test_blocks_hold_at_most_block_bytes_unless_one_document_is_longer():
    store = DocumentStore.from_frame(SMALL, block_bytes=100)
    index = store.index[store.index.block >= 0]
    text = index.stop - index.start
    per_block = (
        index.assign(text=text).groupby("block").agg(text=("text", "sum"), n=("text", "size"))
    )
    assert ((per_block.text <= 100) | (per_block.n == 1)).all()
    assert len(store.blocks) == len(per_block)


def test_sliced_arrow_arrays_with_an_offset():
    texts = ['{"a": 1}', '{"b": "ünï"}', '{"c": 3}', None, '{"links": []}', '{"e": 5}']
    for kind in (pa.string(), pa.large_string()):
        whole = pa.array(texts, kind)
        part = whole.slice(2, 3)
        assert part.offset == 2
        builder = DocumentStoreBuilder(block_bytes=8)
        builder.add_chunk(
            pa.array(["1-a"] * 6).slice(2, 3),
            pa.array([f"e{i}" for i in range(6)]).slice(2, 3),
            pa.array([False, True] * 3).slice(2, 3),
            part,
        )
        builder.add_chunk(pa.array(["1-b"]), pa.array(["e9"]), pa.array([True]), whole.slice(5, 1))
        frame = builder.finish().to_frame()
        assert frame.document[0] == '{"c": 3}' and pd.isna(frame.document[1])
        assert frame.document.tolist()[2:] == ['{"links": []}', '{"e": 5}']
        assert frame.entity_id.tolist() == ["e2", "e3", "e4", "e9"]
        assert frame.in_progress.tolist() == [False, True, False, True]


def test_chunked_arrays_are_accepted():
    docs = pa.chunked_array([pa.array(["{}", "[]"]), pa.array(['"x"'])])
    builder = DocumentStoreBuilder()
    builder.add_chunk(
        pa.chunked_array([pa.array(["1-a"]), pa.array(["1-a", "1-b"])]),
        pa.array(["a", "b", "c"]),
        pa.array([False, False, True]),
        docs,
    )
    store = builder.finish()
    assert store.to_frame().document.tolist() == ["{}", "[]", '"x"']
    assert store.trace_texts("1-a") == ["{}", "[]"]


def test_arrays_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="one value per document"):
        DocumentStoreBuilder().add_chunk(
            pa.array(["1-a"]), pa.array(["a", "b"]), pa.array([False]), pa.array(["{}"])
        )
    with pytest.raises(ValueError, match="block_bytes must be positive"):
        DocumentStoreBuilder(block_bytes=0)


def test_non_ascii_text_survives_and_missing_text_stays_missing():
    store = DocumentStore.from_frame(SMALL, block_bytes=16)
    assert store.entity_texts("s2") == [SMALL.document[1], SMALL.document[3]]
    assert json.loads(store.entity_texts("s2")[0])["name"] == "café ☕ 東京 🚀"
    assert store.entity_texts("s4") == [None]
    assert store.entity_texts("s5") == [""]
    assert store.index.set_index("entity_id").block["s4"] == -1


def test_empty_store():
    empty = [
        DocumentStore(),
        DocumentStoreBuilder().finish(),
        DocumentStore.from_frame(empty_frame("documents")),
        DocumentStore.from_frame(pd.DataFrame()),
        DocumentStore.concat([]),
        DocumentStore.from_frame(SMALL).filter(np.zeros(len(SMALL), dtype=bool)),
    ]
    for store in empty:
        assert len(store) == 0 and store.blocks == () and store.nbytes < 1000
        pd.testing.assert_frame_equal(store.to_frame(), empty_frame("documents"))
        assert store.linked().empty
        assert store.entity_texts("s1") == [] and store.trace_texts("1-a") == []
        assert len(store.select_traces(["1-a"])) == 0
    assert DocumentStore().nbytes == 0


# -- selection ----------------------------------------------------------------------------------


def test_filter_keeps_rows_and_only_the_blocks_they_need(rng):
    store = DocumentStore.from_frame(SMALL, block_bytes=40)
    for _ in range(20):
        mask = rng.random(len(SMALL)) < 0.5
        part = store.filter(mask)
        expected = SMALL[mask].reset_index(drop=True)
        pd.testing.assert_frame_equal(part.to_frame(), expected, check_exact=True)
        used = set(part.index.block[part.index.block >= 0])
        assert used == set(range(len(part.blocks)))
        assert set(map(id, part.blocks)) <= set(map(id, store.blocks))  # shared, not recompressed
    with pytest.raises(ValueError, match="one value per document"):
        store.filter([True])


def test_select_traces(shop_documents):
    store = DocumentStore.from_frame(shop_documents)
    wanted = shop_documents.trace_id.drop_duplicates().iloc[::7]
    part = store.select_traces(wanted)
    expected = shop_documents[shop_documents.trace_id.isin(set(wanted))].reset_index(drop=True)
    pd.testing.assert_frame_equal(part.to_frame(), expected)
    assert (
        len(store.select_traces(iter(["nope", wanted.iloc[0]])))
        == (shop_documents.trace_id == wanted.iloc[0]).sum()
    )


def test_concat_shifts_blocks_and_keeps_order():
    a = DocumentStore.from_frame(SMALL.iloc[:3], block_bytes=30)
    b = DocumentStore.from_frame(SMALL.iloc[3:], block_bytes=30)
    both = DocumentStore.concat([a, b])
    assert len(both.blocks) == len(a.blocks) + len(b.blocks)
    pd.testing.assert_frame_equal(both.to_frame(), SMALL)
    # a block shared by two inputs is kept once; rows out of block order come back in order
    store = DocumentStore.from_frame(SMALL, block_bytes=30)
    tail = store.filter(np.arange(len(SMALL)) == len(SMALL) - 1)
    mixed = DocumentStore.concat([tail, store])
    assert len(mixed.blocks) == len(store.blocks)
    assert not mixed.index.block.is_monotonic_increasing
    expected = pd.concat([SMALL.iloc[-1:], SMALL], ignore_index=True)
    pd.testing.assert_frame_equal(mixed.to_frame(), expected)
    assert mixed.entity_texts("s6") == [SMALL.document.iloc[-1]] * 2


# -- lookups ------------------------------------------------------------------------------------


def test_lookups_match_the_frame(shop_documents):
    store = DocumentStore.from_frame(shop_documents, block_bytes=1 << 17)
    for i in range(0, len(shop_documents), 997):
        row = shop_documents.iloc[i]
        assert (
            store.entity_texts(row.entity_id)
            == shop_documents.document[shop_documents.entity_id == row.entity_id].tolist()
        )
        assert (
            store.trace_texts(row.trace_id)
            == shop_documents.document[shop_documents.trace_id == row.trace_id].tolist()
        )
    assert store.entity_texts("0000000000000000") == []


def test_linked_equals_a_brute_force_search(shop_documents):
    store = DocumentStore.from_frame(shop_documents, block_bytes=1 << 16)
    brute = shop_documents.loc[
        shop_documents.document.str.contains('"links"', regex=False),
        ["trace_id", "entity_id", "document"],
    ].reset_index(drop=True)
    assert len(brute) > 0
    pd.testing.assert_frame_equal(store.linked(), brute)
    assert (
        store.index.has_links.tolist()
        == shop_documents.document.str.contains('"links"', regex=False).tolist()
    )
    small = DocumentStore.from_frame(SMALL)
    assert small.linked().values.tolist() == [["1-b", "c1", LINKED]]


def test_pickle_round_trip(shop_documents):
    store = DocumentStore.from_frame(shop_documents)
    back = pickle.loads(pickle.dumps(store))
    assert back.blocks == store.blocks
    pd.testing.assert_frame_equal(back.index, store.index)
    pd.testing.assert_frame_equal(back.to_frame(), shop_documents)


def test_the_store_is_much_smaller_than_its_text(shop_documents):
    text = int(shop_documents.document.str.encode("utf-8").str.len().sum())
    store = DocumentStore.from_frame(shop_documents)
    assert store.text_nbytes == text
    assert sum(map(len, store.blocks)) * 5 < text
    assert store.nbytes * 3 < text  # index included
    assert store.nbytes > sum(map(len, store.blocks))


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["1-a", "1-b", "1-c"]),
            st.text(min_size=1, max_size=4),
            st.booleans(),
            st.none() | st.text(max_size=30),
        ),
        max_size=30,
    ),
    st.integers(1, 64),
    st.lists(st.booleans(), min_size=30, max_size=30),
)
def test_any_documents_round_trip_and_filter(rows, block_bytes, mask):
    frame = frame_of(rows)
    store = DocumentStore.from_frame(frame, block_bytes=block_bytes)
    pd.testing.assert_frame_equal(store.to_frame(), frame, check_exact=True)
    keep = np.array(mask[: len(frame)], dtype=bool)
    pd.testing.assert_frame_equal(
        store.filter(keep).to_frame(), frame[keep].reset_index(drop=True), check_exact=True
    )
    if rows:
        eid = rows[0][1]
        assert store.entity_texts(eid) == [
            None if pd.isna(t) else t for t in frame.document[frame.entity_id == eid]
        ]


# -- the TraceSet on the store ------------------------------------------------------------------


def test_traceset_keeps_a_store_and_accepts_a_frame_a_store_or_none(shop, shop_documents):
    assert isinstance(shop._documents, DocumentStore)
    assert isinstance(TraceSet()._documents, DocumentStore) and len(TraceSet()._documents) == 0
    from_frame = TraceSet({**shop.frames, "documents": shop_documents})
    from_store = TraceSet({**shop.frames, "documents": shop._documents})
    assert from_store._documents is shop._documents
    pd.testing.assert_frame_equal(from_frame.raw_documents, shop_documents)
    pd.testing.assert_frame_equal(from_store.raw_documents, shop_documents)
    assert list(shop_documents.columns) == list(SCHEMAS["documents"])
    tid = shop.traces.root_segment_id[3]
    assert from_frame.document(tid) == from_store.document(tid) == shop.document(tid)


def test_document_lookups_through_the_traceset(shop, shop_documents):
    seg = shop.segments.segment_id[10]
    raw = shop_documents.document[shop_documents.entity_id == seg].iloc[-1]
    assert shop.document(seg) == json.loads(raw)
    sub = shop.subsegments[~shop.subsegments.streamed].subsegment_id.iloc[5]
    assert shop.document(sub)["id"] == sub
    with pytest.raises(LookupError, match="No segment or subsegment"):
        shop.document("ffffffffffffffff")


def test_missing_text_is_a_lookup_error():
    doc = {"trace_id": "1-5f84c7a1-6c7a8d2e9f0a1b2c3d4e5f60", "id": "a000000000000001"}
    ts = xraykit.from_documents([doc | {"name": "web", "start_time": 1.0, "end_time": 2.0}])
    frame = ts.raw_documents.assign(document=pd.Series([None], dtype="str"))
    broken = TraceSet({**ts.frames, "documents": frame})
    with pytest.raises(LookupError, match="could not be kept"):
        broken.document("a000000000000001")


def test_save_keeps_the_blocks_as_they_are(tmp_path, shop):
    part = shop.select(shop.traces.trace_id[:20])
    path = part.save(tmp_path / "part.traceset")
    with zipfile.ZipFile(path) as archive:
        member = archive.read("documents.zst")
    assert member == b"".join(part._documents.blocks)  # verbatim: not recompressed
    back = xraykit.load_file(path)
    assert back._documents.blocks == part._documents.blocks
    pd.testing.assert_frame_equal(back.raw_documents, part.raw_documents)
    pd.testing.assert_frame_equal(back._documents.index, part._documents.index)


def test_arrow_round_trip_keeps_the_compact_index(shop_documents):
    store = DocumentStore.from_frame(shop_documents, block_bytes=1 << 16)
    table = store.to_arrow()
    assert table.schema.field("entity_id").type == pa.uint64()  # X-Ray ids, packed
    assert table.schema.field("start").type == pa.int32()
    back = DocumentStore.from_arrow(table, store.blocks, store.block_sizes)
    pd.testing.assert_frame_equal(back.index, store.index)
    pd.testing.assert_frame_equal(back.to_frame(), shop_documents)
    odd = DocumentStore.from_frame(SMALL)  # ids that are not 16 hex digits stay strings
    assert pa.types.is_large_string(odd.to_arrow().schema.field("entity_id").type)
    again = DocumentStore.from_arrow(odd.to_arrow(), odd.blocks, odd.block_sizes)
    pd.testing.assert_frame_equal(again.to_frame(), SMALL)


def _broken(store: DocumentStore, column: str, values: list) -> pa.Table:
    table = store.to_arrow()
    i = table.column_names.index(column)
    return table.set_column(i, column, pa.array(values, table.schema.field(column).type))


BROKEN = [  # (what is wrong, the message)
    (lambda s, n: (_broken(s, "block", [0, 1, 0]), s.block_sizes), "outside the 1 blocks"),
    (lambda s, n: (_broken(s, "stop", [1, 2, n + 1]), s.block_sizes), "offsets fall outside"),
    (lambda s, n: (_broken(s, "start", [-1, 0, 0]), s.block_sizes), "offsets fall outside"),
    (lambda s, n: (s.to_arrow(), (7,)), "not a zstd frame of 7 bytes"),
    (lambda s, n: (s.to_arrow().drop_columns(["has_links"]), s.block_sizes), "the columns"),
    (lambda s, n: (_broken(s, "in_progress", [None] * 3), s.block_sizes), "has nulls"),
    (lambda s, n: (s.to_arrow(), (n, n)), "1 blocks but 2 block sizes"),
    (
        lambda s, n: (s.to_arrow().set_column(5, "start", pa.array([0, 1, 2])), s.block_sizes),
        "the types of to_arrow",
    ),
]


@pytest.mark.parametrize(("broken", "message"), BROKEN)
def test_from_arrow_refuses_an_index_that_does_not_fit_its_blocks(broken, message):
    store = DocumentStore.from_frame(SMALL.iloc[:3])
    table, sizes = broken(store, store.block_sizes[0])
    with pytest.raises(ValueError, match=message):
        DocumentStore.from_arrow(table, store.blocks, sizes)


def test_from_arrow_refuses_codes_outside_the_dictionary():
    store = DocumentStore.from_frame(SMALL.iloc[:3])
    codes = pa.DictionaryArray.from_arrays(
        pa.array([0, 7, 0], pa.int32()), pa.array(["1-a"], pa.large_string()), safe=False
    )
    table = store.to_arrow().set_column(0, "trace_id", codes)
    with pytest.raises(ValueError, match="outside their dictionary"):
        DocumentStore.from_arrow(table, store.blocks, store.block_sizes)


def test_the_compact_index_is_small(shop_documents):
    store = DocumentStore.from_frame(shop_documents)
    frame_bytes = int(store.index.memory_usage(index=False, deep=True).sum())
    index_bytes = store.nbytes - sum(map(len, store.blocks))
    assert index_bytes * 2 < frame_bytes
    ids = shop_documents.trace_id.nunique()
    assert len(store.to_arrow().column("trace_id").chunk(0).dictionary) == ids
    part = store.select_traces(shop_documents.trace_id.iloc[:1])  # its id table shrinks too
    assert len(part.to_arrow().column("trace_id").chunk(0).dictionary) == 1


def test_select_and_concat_carry_the_documents(shop, shop_documents):
    ids = shop.traces.trace_id
    a, b = shop.select(ids[:40]), shop.select(ids[30:70])
    both = xraykit.concat([a, b])
    expected = pd.concat(
        [
            shop_documents[shop_documents.trace_id.isin(set(ids[:30]))],
            shop_documents[shop_documents.trace_id.isin(set(ids[30:70]))],
        ],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(both.raw_documents, expected)
    assert len(both._documents.blocks) <= len(shop._documents.blocks)  # shared blocks, once
    assert len(a._documents.blocks) < len(shop._documents.blocks)
    one = shop.trace(ids[50])
    assert one.document(one.traces.root_segment_id[0])["trace_id"] == ids[50]


def test_a_traceset_with_its_store_pickles(shop):
    part = shop.select(shop.traces.trace_id[:5])
    back = pickle.loads(pickle.dumps(part))
    pd.testing.assert_frame_equal(back.raw_documents, part.raw_documents)
    assert back.document(part.traces.root_segment_id[0]) == part.document(
        part.traces.root_segment_id[0]
    )


@pytest.mark.parametrize(
    ("entity_ids", "packed"),
    [
        (["70de5b6f19ff9a0a", "0000000000000000", "ffffffffffffffff"], True),
        (["70de5b6f19ff9a0a", "70DE5B6F19FF9A0B"], False),  # upper case would not come back
        (["70de5b6f19ff9a0a", "70de5b6f19ff9a0"], False),
        (["70de5b6f19ff9a0a", None], False),
    ],
)
def test_entity_ids_are_packed_only_when_every_one_is_16_hex_digits(entity_ids, packed):
    frame = frame_of([("1-a", e, False, f'{{"n": {i}}}') for i, e in enumerate(entity_ids)])
    store = DocumentStore.from_frame(frame, block_bytes=8)
    assert (store.to_arrow().schema.field("entity_id").type == pa.uint64()) is packed
    pd.testing.assert_frame_equal(store.to_frame(), frame)
    pd.testing.assert_frame_equal(store.index[["entity_id"]], frame[["entity_id"]])
    assert store.entity_texts(entity_ids[0]) == ['{"n": 0}']
    assert store.entity_texts("70de5b6f19ff9a0A") == []
    # joined with a store of the other kind, every id stays as it was
    other = DocumentStore.from_frame(SMALL)
    both = DocumentStore.concat([store, other])
    expected = pd.concat([frame, SMALL], ignore_index=True)
    pd.testing.assert_frame_equal(both.to_frame(), expected)


def test_a_store_from_its_blocks_and_index_frame():
    store = DocumentStore.from_frame(SMALL, block_bytes=40)
    again = DocumentStore(store.blocks, store.block_sizes, store.index)
    pd.testing.assert_frame_equal(again.to_frame(), SMALL)
    pd.testing.assert_frame_equal(again.index, store.index)
    with pytest.raises(ValueError, match="2 blocks but 1 sizes"):
        DocumentStore(store.blocks[:2], store.block_sizes[:1])
