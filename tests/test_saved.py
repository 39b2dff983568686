"""Saved TraceSets (xraykit.io.saved): the round trip, the layout, and damaged or hostile files."""

from __future__ import annotations

import gc
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xraykit
from xraykit.exceptions import TraceParseError
from xraykit.io import saved
from xraykit.io.saved import read_saved, write_saved
from xraykit.schema import FRAMES, SCHEMAS, conform
from xraykit.traceset import TraceSet

TRACE_ID = "1-5f84c7a1-6c7a8d2e9f0a1b2c3d4e5f60"


def segment(**fields: Any) -> dict[str, Any]:
    doc = {"name": "web", "id": "a000000000000001", "trace_id": TRACE_ID, "start_time": 1.0}
    return doc | {"end_time": 2.0} | fields


def assert_same(back: TraceSet, ts: TraceSet) -> None:
    """Every frame, value type, document and summary of ``ts`` is in ``back``."""
    for name in FRAMES:
        left, right = getattr(back, name), getattr(ts, name)
        pd.testing.assert_frame_equal(left, right, check_exact=True, obj=name)
        objects = [c for c, t in right.dtypes.items() if pd.api.types.is_object_dtype(t)]
        for column in objects:  # 1 == True: the types must match too
            assert left[column].map(type).tolist() == right[column].map(type).tolist()
    pd.testing.assert_frame_equal(back.raw_documents, ts.raw_documents, check_exact=True)
    if ts.summaries is None:
        assert back.summaries is None
    else:
        pd.testing.assert_frame_equal(back.summaries, ts.summaries, check_exact=True)


def reopen(ts: TraceSet, folder: Path) -> TraceSet:
    return xraykit.load_file(ts.save(folder / "set.traceset"))


@pytest.fixture(scope="module")
def small(shop: TraceSet) -> TraceSet:
    """Three traces of the shop sample with the summaries of a live pull."""
    part = shop.select(shop.traces.trace_id[:3])
    summaries = pd.DataFrame(
        {
            "trace_id": part.traces.trace_id,
            "revision": pd.array([1, None, 3], dtype="Int64"),
            "annotation.tier": pd.Series(["gold", None, np.nan], dtype=object),
            "annotation.vip": pd.array([True, None, False], dtype="boolean"),
            "matched_event_time": pd.to_datetime([1.5, None, 3], unit="s", utc=True),
            "service_names": pd.Series(["a,b", "c", None], dtype="str"),
            "causes": pd.Series([[{"id": "x", "n": 2**70}], {"k": float("inf")}, []], dtype=object),
        }
    )
    return TraceSet({**part.frames, "documents": part._documents}, summaries=summaries)


@pytest.fixture(scope="module")
def small_file(small: TraceSet, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return small.save(tmp_path_factory.mktemp("saved") / "small.traceset").read_bytes()


# -- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", xraykit.sample_names())
def test_every_sample_comes_back_whole(name, tmp_path):
    ts = xraykit.load_sample(name)
    back = reopen(ts, tmp_path)
    assert_same(back, ts)
    sub = ts.subsegments.subsegment_id[ts.subsegments.depth.fillna(0) > 1]
    for entity in [ts.segments.segment_id.iloc[-1], *sub.iloc[:1]]:
        assert back.document(entity) == ts.document(entity)


def test_an_empty_traceset(tmp_path):
    back = reopen(TraceSet(), tmp_path)
    assert len(back) == 0 and len(back._documents) == 0
    for name in FRAMES:
        assert {c: str(t) for c, t in getattr(back, name).dtypes.items()} == SCHEMAS[name]
    assert_same(back, TraceSet())


def test_a_traceset_built_in_memory(tmp_path):
    ts = xraykit.from_documents(
        [
            segment(
                annotations={"tier": "gold", "items": 3, "score": 4.5, "vip": False, "one": 1.0},
                metadata={"default": {"payload": {"items": [1, 2, {"a": None}]}, "n": 7}},
                subsegments=[{"name": "db", "id": "a000000000000002", "start_time": 1.1}],
            ),
            json.dumps(segment(id="b000000000000001", in_progress=True, end_time=None)),
            '{"name": "not closed"',
        ],
        on_error="ignore",
    )
    assert len(ts.problems) and ts.traces.is_partial.any()
    back = reopen(ts, tmp_path)
    assert_same(back, ts)
    values = back.annotations.set_index("key").value
    assert type(values["items"]) is int and type(values["one"]) is float
    assert values["vip"] is False
    assert back.document("a000000000000002") == ts.document("a000000000000002")


def depth_and_core(value: Any) -> tuple[int, Any]:
    """How deep a value of nested one-item lists goes, without recursion."""
    depth = 0
    while isinstance(value, list) and len(value) == 1:
        depth, value = depth + 1, value[0]
    return depth, value


def test_values_orjson_cannot_write(tmp_path):
    deep = "[" * 900 + '"core"' + "]" * 900  # the loader takes nesting this deep
    text = json.dumps(segment())[:-1] + ', "metadata": {"default": {"deep": ' + deep + "}}}"
    ts = xraykit.from_documents([text])
    assert depth_and_core(ts.metadata.value[0]) == (900, "core")
    odd = {"big": 2**80, "small": -(2**70), "nan": np.nan, "inf": -np.inf, "lone": "\ud800"}
    extra = pd.DataFrame(
        {
            "trace_id": TRACE_ID,
            "entity_id": "a000000000000001",
            "namespace": "default",
            "key": [*odd, "inside"],
            "value": pd.Series([*odd.values(), [1, {"n": 2**80}]], dtype=object),
        }
    )
    metadata = pd.concat([ts.metadata, extra], ignore_index=True)
    ts = TraceSet({**ts.frames, "metadata": metadata, "documents": ts._documents})
    back = reopen(ts, tmp_path)
    values = back.metadata.set_index("key").value
    assert depth_and_core(values["deep"]) == (900, "core")
    assert values["big"] == 2**80 and type(values["big"]) is int
    assert values["small"] == -(2**70) and values["lone"] == "\ud800"
    assert np.isnan(values["nan"]) and values["inf"] == -np.inf
    assert values["inside"] == [1, {"n": 2**80}]
    with zipfile.ZipFile(tmp_path / "set.traceset") as archive:
        manifest = orjson.loads(archive.read("xraykit.json"))
    odd_rows = manifest["frames"]["metadata"]["json"]["4"]
    assert sorted(map(int, odd_rows)) == [0, 1, 2, 3, 4, 5, 6]  # null in the JSON array


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=40, deadline=None)
@given(st.lists(json_values | st.just(float("nan")) | st.integers(2**63, 2**90), max_size=8))
def test_any_json_values_come_back(tmp_path_factory, values):
    keys = pd.Series([f"k{i}" for i in range(len(values))], dtype="str")
    frame = conform(pd.DataFrame({"trace_id": TRACE_ID, "key": keys}), "metadata")
    frame["value"] = pd.Series(values, dtype=object)
    path = tmp_path_factory.mktemp("values") / "values.traceset"
    back = read_saved(write_saved(path, {"metadata": frame} | _empty(), TraceSet()._documents))
    got = back.frames["metadata"].value.tolist()
    assert json.dumps(got) == json.dumps(values)  # types too: 1 is not 1.0 nor true


def _empty() -> dict[str, pd.DataFrame]:
    return {name: frame for name, frame in TraceSet().frames.items() if name != "metadata"}


def test_summaries_keep_their_columns_and_dtypes(small, tmp_path):
    back = reopen(small, tmp_path)
    assert_same(back, small)
    tiers = back.summaries["annotation.tier"].tolist()
    assert tiers[:2] == ["gold", None] and isinstance(tiers[2], float) and np.isnan(tiers[2])
    assert back.summaries.causes[0][0]["n"] == 2**70
    no_rows = TraceSet({**small.frames}, summaries=small.summaries.iloc[:0])
    pd.testing.assert_frame_equal(reopen(no_rows, tmp_path).summaries, small.summaries.iloc[:0])


def test_a_value_that_is_not_json_is_refused_and_nothing_is_written(small, tmp_path):
    path = small.save(tmp_path / "kept.traceset")
    before = path.read_bytes()
    bad = small.summaries.assign(causes=pd.Series([pd.NA, 1, 2], dtype=object))
    with pytest.raises(TypeError, match=r"summaries\['causes'\] row 0 holds <NA>"):
        TraceSet(small.frames, summaries=bad).save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["kept.traceset"]


def test_version_1_files_are_still_read(data_dir):
    back = xraykit.load_file(data_dir / "saved_v1.traceset")
    assert len(back) == 30
    expected = xraykit.load_sample("shop").select(back.traces.trace_id)
    for name in FRAMES:  # durations: loaders may differ below X-Ray's resolution (1 µs)
        left, right = getattr(back, name), getattr(expected, name)
        pd.testing.assert_frame_equal(left, right, check_exact=False, atol=1e-6, obj=name)
    pd.testing.assert_frame_equal(back.raw_documents, expected.raw_documents, check_exact=True)
    assert len(back.summaries) == 3 and back.summaries.trace_id.isin(back.traces.trace_id).all()
    assert str(back.summaries.revision.dtype) == "Int64"
    root = back.traces.root_segment_id[0]
    assert back.document(root) == expected.document(root)
    data = (data_dir / "saved_v1.traceset").read_bytes()
    unreadable(data[: len(data) // 2])


# -- the file -----------------------------------------------------------------------------------


def test_the_layout_is_the_documented_one(small, small_file):
    with zipfile.ZipFile(io.BytesIO(small_file)) as archive:
        names = archive.namelist()
        manifest = orjson.loads(archive.read("xraykit.json"))
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}
        assert archive.read("documents.zst") == b"".join(small._documents.blocks)
        traces = pa.ipc.open_file(pa.py_buffer(archive.read("traces.arrow"))).read_all()
    frames = [*FRAMES, "summaries"]
    assert names == [
        *(f"{n}.arrow" for n in frames[:4]),
        "annotations.3.json",
        "metadata.arrow",
        "metadata.4.json",
        *(f"{n}.arrow" for n in frames[5:7]),
        "summaries.arrow",
        "summaries.2.json",
        "summaries.6.json",
        "documents.arrow",
        "documents.zst",
        "xraykit.json",
    ]
    assert (manifest["format"], manifest["version"]) == ("xraykit-traceset", 2)
    assert {n: manifest["frames"][n]["rows"] for n in frames} == {
        n: len(getattr(small, n)) for n in frames
    }
    assert manifest["blocks"] == [
        [len(b), s]
        for b, s in zip(small._documents.blocks, small._documents.block_sizes, strict=True)
    ]
    assert traces.num_rows == len(small) and traces.num_columns == len(SCHEMAS["traces"])


def test_the_same_traceset_saves_to_the_same_bytes(small, small_file, tmp_path):
    assert small.save(tmp_path / "again.traceset").read_bytes() == small_file


def test_saving_over_the_file_it_was_opened_from(shop, tmp_path):
    path = shop.save(tmp_path / "shop.traceset")
    opened = xraykit.load_file(path)
    part = opened.select(opened.traces.trace_id[:2])
    part.save(path)
    assert os.listdir(tmp_path) == ["shop.traceset"]  # no temporary file left beside it
    assert_same(xraykit.load_file(path), part)
    assert_same(opened, shop)  # read whole when opened: the new file changes nothing
    entity = shop.segments.segment_id.iloc[-1]
    assert opened.document(entity) == shop.document(entity)


def test_a_crash_while_writing_leaves_the_old_file(small, tmp_path, monkeypatch):
    path = small.save(tmp_path / "kept.traceset")
    before = path.read_bytes()
    calls = []

    def crash(archive: zipfile.ZipFile, name: str, *pieces: Any) -> None:
        calls.append(name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        put(archive, name, *pieces)

    put = saved._put
    monkeypatch.setattr(saved, "_put", crash)
    with pytest.raises(KeyboardInterrupt):
        small.save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["kept.traceset"]


class Stream(io.RawIOBase):
    """A pipe-like binary stream: it reads, but cannot seek."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


def test_open_files_and_streams_are_read(small, small_file, tmp_path):
    path = tmp_path / "small.traceset"
    path.write_bytes(small_file)
    with open(path, "rb") as f:
        f.read(4)  # as a loader that looked at the signature first
        one = read_saved(f)
        assert not f.closed
    two = read_saved(io.BytesIO(small_file))
    three = read_saved(io.BufferedReader(Stream(small_file)))
    for back in (one, two, three):
        assert_same(
            TraceSet({**back.frames, "documents": back.documents}, summaries=back.summaries), small
        )


def test_opening_changes_no_process_state(small_file):
    before = (gc.isenabled(), gc.get_threshold(), pa.default_memory_pool().backend_name)
    threads = threading.active_count()
    read_saved(io.BytesIO(small_file))
    assert (gc.isenabled(), gc.get_threshold(), pa.default_memory_pool().backend_name) == before
    assert threading.active_count() == threads


# -- damaged and hostile files -------------------------------------------------------------------


def unreadable(data: bytes, match: str | None = None) -> TraceParseError:
    with pytest.raises(TraceParseError, match=match) as caught:
        read_saved(io.BytesIO(data))
    message = str(caught.value)
    assert "looks like a saved TraceSet" in message or "newer xraykit" in message
    assert "TraceSet.save()" in message or "Upgrade xraykit" in message
    return caught.value


def rezip(data: bytes, members: dict[str, bytes | None]) -> bytes:
    """The saved file with members replaced or added (None: left out)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as old, zipfile.ZipFile(out, "w") as new:
        contents = {name: old.read(name) for name in old.namelist()} | members
        for name, content in contents.items():
            if content is not None:
                new.writestr(name, content)
    return out.getvalue()


def manifest_of(data: bytes) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        value: dict[str, Any] = orjson.loads(archive.read("xraykit.json"))
        return value


def test_truncated_files(small_file):
    with zipfile.ZipFile(io.BytesIO(small_file)) as archive:
        starts = [i.header_offset for i in archive.infolist()]
    cuts = sorted({*range(0, len(small_file), 997), *starts, *(s + 40 for s in starts)})
    cuts += [len(small_file) - n for n in (1, 10, 22, 23, 60)]
    for cut in cuts:
        unreadable(small_file[:cut])


@pytest.mark.slow
def test_flipped_bytes_are_caught_or_harmless(small, small_file):
    with zipfile.ZipFile(io.BytesIO(small_file)) as archive:
        infos = archive.infolist()
        directory = archive.start_dir
    # every field of some local headers, of some central directory entries and of its end
    headers = [i.header_offset + k for i in (infos[0], infos[5], infos[-1]) for k in range(30)]
    entries = range(directory, directory + 2 * 46 + 40)
    end = range(len(small_file) - 22, len(small_file))
    for at in sorted({*range(0, len(small_file), 997), *headers, *entries, *end}):
        data = bytearray(small_file)
        data[at] ^= 0xFF
        try:
            back = read_saved(io.BytesIO(bytes(data)))
        except TraceParseError:
            continue
        # the flip was in a field nothing reads (a date, an attribute): the contents are whole
        ts = TraceSet({**back.frames, "documents": back.documents}, summaries=back.summaries)
        assert_same(ts, small)


def test_a_zip_that_is_not_a_traceset(small_file):
    other = io.BytesIO()
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("hello.txt", "hi")
    unreadable(other.getvalue(), "without the member 'xraykit.json'")
    unreadable(b"PK\x03\x04" + bytes(100), "not a zip file, or a truncated")
    unreadable(rezip(small_file, {"xraykit.json": b"[1, 2"}), "JSONDecodeError")
    unreadable(
        rezip(small_file, {"xraykit.json": b'{"format": "other"}'}), "format 'xraykit-traceset'"
    )


def test_wrong_manifests(small_file):
    manifest = manifest_of(small_file)

    def edited(**changes: Any) -> bytes:
        return rezip(small_file, {"xraykit.json": orjson.dumps(manifest | changes)})

    error = unreadable(edited(version=99), "newer xraykit")
    assert "version 99" in str(error)
    unreadable(edited(version="2"), "format version 1 or 2, but found '2'")
    frames = manifest["frames"]
    unreadable(edited(frames={k: v for k, v in frames.items() if k != "traces"}), "frames")
    unreadable(edited(frames=frames | {"spans": frames["traces"]}), "frames")
    unreadable(edited(frames=frames | {"traces": frames["traces"] | {"rows": 4}}), "4 rows")
    unreadable(edited(blocks=[]), "blocks filling")
    unreadable(edited(blocks=[[1, -1]]), "compressed bytes, text bytes")
    json_column = frames["metadata"]["json"]["4"]
    bad = {"4": json_column | {"0": "[[[1"}}
    unreadable(
        edited(frames=frames | {"metadata": frames["metadata"] | {"json": bad}}), "ends early"
    )
    moved = {"2": json_column}  # a JSON column where the table has a real column
    with zipfile.ZipFile(io.BytesIO(small_file)) as archive:
        values = archive.read("metadata.4.json")
    manifest_moved = manifest | {
        "frames": frames | {"metadata": frames["metadata"] | {"json": moved}}
    }
    members = {"metadata.2.json": values, "xraykit.json": orjson.dumps(manifest_moved)}
    unreadable(rezip(small_file, members), "in place of a column of nulls")


def test_absurd_sizes_are_refused_before_anything_is_read(small_file):
    manifest = manifest_of(small_file)
    huge = 1 << 50
    edited = manifest | {"blocks": [[huge, huge]]}
    unreadable(rezip(small_file, {"xraykit.json": orjson.dumps(edited)}), "blocks filling")
    frames = manifest["frames"]
    edited = manifest | {"frames": frames | {"metadata": frames["metadata"] | {"rows": huge}}}
    unreadable(rezip(small_file, {"xraykit.json": orjson.dumps(edited)}), "rows in metadata")
    # a central directory entry claiming a member of 4 GiB
    data = bytearray(small_file)
    at = data.rindex(b"PK\x01\x02")
    data[at + 20 : at + 28] = struct.pack("<II", 0xFFFFFFFE, 0xFFFFFFFE)
    unreadable(bytes(data), "to fit in the file")


def test_members_of_the_wrong_kind(small_file):
    with zipfile.ZipFile(io.BytesIO(small_file)) as archive:
        metadata = archive.read("metadata.arrow")
        traces = archive.read("traces.arrow")
    unreadable(rezip(small_file, {"traces.arrow": metadata}), "rows in traces.arrow|dtypes")
    unreadable(rezip(small_file, {"traces.arrow": b"not arrow at all"}), "ArrowInvalid")
    unreadable(rezip(small_file, {"documents.arrow": traces}), "document index")
    unreadable(rezip(small_file, {"documents.arrow": None}), "without the member 'documents.arrow'")
    unreadable(
        rezip(small_file, {"annotations.3.json": b'{"a": 1}'}), "values, but found <class 'dict'>"
    )
    schema = pa.schema([(n, pa.int64()) for n in SCHEMAS["traces"]])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, schema) as writer:
        writer.write_table(schema.empty_table())
    rows = manifest_of(small_file)
    rows["frames"]["traces"]["rows"] = 0
    mistyped = rezip(
        small_file,
        {"traces.arrow": sink.getvalue().to_pybytes(), "xraykit.json": orjson.dumps(rows)},
    )
    unreadable(mistyped, r"dtypes of xraykit.schema.SCHEMAS\['traces'\]")
    deflated = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(small_file)) as old, zipfile.ZipFile(deflated, "w") as new:
        for info in old.infolist():
            kind = zipfile.ZIP_DEFLATED if info.filename == "traces.arrow" else zipfile.ZIP_STORED
            new.writestr(info.filename, old.read(info), compress_type=kind)
    unreadable(deflated.getvalue(), "traces.arrow stored")


def test_a_damaged_document_block(small, small_file):
    with zipfile.ZipFile(io.BytesIO(small_file)) as archive:
        blocks = archive.read("documents.zst")
    unreadable(rezip(small_file, {"documents.zst": b"\0" * len(blocks)}), "not a zstd frame")
    # a crafted block (its CRC made right, its header kept) is found when it is decompressed
    first = len(small._documents.blocks[0])
    crafted = blocks[:12] + b"\xff" * (first - 12) + blocks[first:]
    back = read_saved(io.BytesIO(rezip(small_file, {"documents.zst": crafted})))
    with pytest.raises(TraceParseError, match="Document block 0 cannot be decompressed"):
        back.documents.to_frame()


def test_a_file_claiming_terabytes_fails_within_a_small_memory_limit(small_file, tmp_path):
    manifest = manifest_of(small_file)
    manifest["blocks"] = [[1 << 40, 1 << 41]]
    path = tmp_path / "huge.traceset"
    path.write_bytes(rezip(small_file, {"xraykit.json": orjson.dumps(manifest)}))
    script = textwrap.dedent(
        f"""
        import resource, xraykit
        from xraykit.exceptions import TraceParseError
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
        try:
            xraykit.load_file({str(path)!r})
        except TraceParseError as exc:
            print("refused:", exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "refused:" in done.stdout and "blocks filling" in done.stdout
