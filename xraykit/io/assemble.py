"""From entity rows to the finished frames: duplicates, stitching, and one row per trace.

The loader (:mod:`xraykit.io.reader`) reads documents into segment and subsegment rows as
they come. The steps here need every row at once and work on whole columns:

* duplicates: one row per entity id, a complete document winning over an ``in_progress``
  one, exact duplicates counted once;
* stitching: subsegments sent on their own go under their parents, which may arrive later;
* the trace rows, with ``GetTraceSummaries`` semantics (xray-facts §2.3).

Times arrive as microseconds (as X-Ray records them); every duration is computed from them,
so ``duration_s`` is exactly ``end - start``. A load's peak memory is reached here, so the
steps avoid Python objects per value (X-Ray's hex ids become 64-bit numbers) and keep their
temporary arrays short-lived.

>>> import numpy as np
>>> micros_to_time(np.array([1478293361271000])).tolist()
[Timestamp('2016-11-04 21:02:41.271000+0000', tz='UTC')]
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xraykit.io.columns import EntityIndex, utc_times
from xraykit.io.docstore import DocumentStore
from xraykit.io.ids import hex_ids
from xraykit.io.memory import POOL as _POOL
from xraykit.schema import arrow_strings, conform, empty_frame, isin
from xraykit.status import flags

__all__ = ["assemble_frames", "micros_to_time"]


class Problems(Protocol):
    """Where a step reports what it had to decide (the loader's problem list)."""

    def add(self, location: str, reason: str) -> None: ...

    def frame(self) -> pd.DataFrame: ...


def assemble_frames(
    tables: dict[str, pd.DataFrame],
    docs: DocumentStore,
    doc_seqs: np.ndarray,
    problems: Problems,
    trace_ids: pa.Array,
    ids: EntityIndex | None = None,
) -> dict[str, Any]:
    """The frames of the rows a reader read: ``tables`` (emptied, so that the rows' memory
    goes when it is no longer needed) of segments, subsegments, annotations, metadata and
    exceptions; ``trace_ids``, the ids that the rows' ``_trace`` numbers stand for; ``ids``,
    what the C scanner found of the entity ids (else it is found here)."""
    seg, sub = tables.pop("segments"), tables.pop("subsegments")
    if ids is not None:
        seg["_inside"] = ids.caller_inside
    repeats = (True, True) if ids is None else (ids.segments_repeat, ids.subsegments_repeat)
    seg, sub, dropped = _deduplicate(seg, sub, problems, repeats)
    ann, meta, exc = (tables.pop(name) for name in ("annotations", "metadata", "exceptions"))
    if dropped is not None:
        docs = docs.filter(~np.isin(doc_seqs, dropped))
    if dropped is not None:
        ann = ann[~ann["_seq"].isin(dropped)]
        meta = meta[~meta["_seq"].isin(dropped)]
        exc = exc[~exc["_seq"].isin(dropped)]
    sub = _stitch(seg, sub, problems)
    for frame in (seg, sub):
        end = _micros(frame["end"])
        frame["duration_s"] = _seconds(end - _micros(frame["start"]), end == _NAT)
    seg_code, sub_code = seg["_trace"].to_numpy(), sub["_trace"].to_numpy()
    inside = seg["_inside"].to_numpy() if "_inside" in seg else _calls_from_inside(seg, sub)
    # the frames as they stay (the reader's own columns let go) before the trace rows, which
    # a load's peak memory is reached building
    frames: dict[str, Any] = {
        name: conform(frame, name)
        for name, frame in (
            ("segments", seg),
            ("subsegments", sub),
            ("annotations", ann),
            ("metadata", meta),
            ("exceptions", exc),
        )
    }
    del seg, sub, ann, meta, exc
    traces = _trace_rows(
        frames["segments"], frames["subsegments"], seg_code, sub_code, inside, trace_ids
    )
    return {
        "traces": conform(traces, "traces"),
        **frames,
        "problems": problems.frame(),
        "documents": docs,
    }


def _deduplicate(
    seg: pd.DataFrame, sub: pd.DataFrame, problems: Problems, repeats: tuple[bool, bool]
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray | None]:
    """Keep one row per entity id: complete beats in progress, then the last one read
    (``repeats``: whether segments, subsegments may repeat an id at all)."""
    dropped: list[np.ndarray] = []
    out = []
    for frame, key, may_repeat in (
        (seg, "segment_id", repeats[0]),
        (sub, "subsegment_id", repeats[1]),
    ):
        keys = ["trace_id", key]
        repeated = _repeated(frame[key]) if may_repeat else None
        if repeated is None:  # every id is unique: the usual case, decided in Arrow
            out.append(frame)
            continue
        candidates = frame[repeated]
        group = candidates[candidates.duplicated(keys, keep=False)]
        if group.empty:
            out.append(frame)
            continue
        # the winner: not in progress first, then the latest read (highest _seq)
        order = group.sort_values(["in_progress", "_seq"], ascending=[True, False])
        winners = order.drop_duplicates(keys, keep="first")
        losers = group.loc[group.index.difference(winners.index)]
        complete = group[~group["in_progress"]]
        cols = ["name", "start", "end"]
        conflicts = complete.drop_duplicates([*keys, *cols]).duplicated(keys, keep=False)
        for eid in complete.loc[conflicts[conflicts].index, key].unique():
            problems.add(
                str(eid),
                f"two different complete documents share the id {eid}; kept the one read last",
            )
        dropped.append(losers["_seq"].to_numpy())
        out.append(frame.drop(index=losers.index))
    seg, sub = out
    if not dropped:
        return seg, sub, None
    gone = np.concatenate(dropped)
    return seg, sub, gone


def _repeated(ids: pd.Series) -> np.ndarray | None:
    """Which rows hold an id that occurs more than once, or None when all are unique.

    Without Python objects: pandas' own duplicate search over Arrow strings made one of every
    id, a third of the file's size in memory.
    """
    numbers = _hex64(ids)
    if numbers is not None:  # X-Ray's ids: 16 hex digits, exactly one 64-bit number each
        values, _present = numbers
        ordered = np.sort(values)  # sorted, not hashed: a copy is all the memory it takes
        if not (ordered[1:] == ordered[:-1]).any():
            return None
        del ordered
        repeated = pd.Series(values, copy=False).duplicated(keep=False).to_numpy()
        return repeated if repeated.any() else None
    arrow = arrow_strings(ids)
    if pc.count_distinct(arrow, memory_pool=_POOL).as_py() == len(arrow) - arrow.null_count:
        return None
    counts = pc.value_counts(arrow, memory_pool=_POOL)
    twice = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    hit = pc.is_in(arrow, value_set=twice, memory_pool=_POOL)
    return pc.fill_null(hit, False).to_numpy(zero_copy_only=False)


def _hex64(ids: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    return hex_ids(arrow_strings(ids))


def _stitch(seg: pd.DataFrame, sub: pd.DataFrame, problems: Problems) -> pd.DataFrame:
    """Place subsegments that were sent on their own under their parents."""
    sub["orphan"] = False
    pending = sub["segment_id"].isna()
    if not pending.any():
        return sub
    # streamed subtrees hang from their "anchor" (the streamed subsegment itself);
    # resolve the anchors' parents, level by level (streamed anchors can nest)
    anchors = sub.loc[sub["streamed"], ["trace_id", "subsegment_id", "parent_id"]]
    known = pd.concat(
        [
            pd.DataFrame(
                {
                    "trace_id": seg["trace_id"],
                    "entity_id": seg["segment_id"],
                    "owner": seg["segment_id"],
                    "depth": 0,
                }
            ),
            pd.DataFrame(
                {
                    "trace_id": sub.loc[~pending, "trace_id"],
                    "entity_id": sub.loc[~pending, "subsegment_id"],
                    "owner": sub.loc[~pending, "segment_id"],
                    "depth": sub.loc[~pending, "depth"].astype("int64"),
                }
            ),
        ],
        ignore_index=True,
    )
    # anchor -> (owner segment, depth of the anchor); embedded rows of a streamed subtree
    # carry a depth relative to their anchor (the anchor itself has 1)
    rel = sub.loc[pending, ["trace_id", "_anchor"]]
    rel_depth = sub.loc[pending, "depth"].astype("int64")
    todo = anchors.rename(columns={"subsegment_id": "anchor"})
    resolved: dict[tuple[str, str], tuple[str, int]] = {}
    # an id used twice in a trace (a subsegment reusing its segment's id) resolves to the first
    known = known.drop_duplicates(["trace_id", "entity_id"], ignore_index=True)
    index = pd.MultiIndex.from_frame(known[["trace_id", "entity_id"]])
    owners = known["owner"].to_numpy()
    depths = known["depth"].to_numpy()
    while len(todo):
        pos = index.get_indexer(pd.MultiIndex.from_frame(todo[["trace_id", "parent_id"]]))
        hit = pos >= 0
        if not hit.any():
            break
        for (tid, anchor), p in zip(
            todo.loc[hit, ["trace_id", "anchor"]].itertuples(index=False), pos[hit], strict=True
        ):
            resolved[(tid, anchor)] = (owners[p], int(depths[p]) + 1)
        # newly placed anchors and their subtrees become known parents for the next level
        new_rows = sub.loc[pending & isin(sub["_anchor"], todo.loc[hit, "anchor"])]
        new = pd.DataFrame(
            {
                "trace_id": new_rows["trace_id"].to_numpy(),
                "entity_id": new_rows["subsegment_id"].to_numpy(),
                "owner": [
                    resolved[(t, a)][0]
                    for t, a in zip(new_rows["trace_id"], new_rows["_anchor"], strict=True)
                ],
                "depth": [
                    resolved[(t, a)][1] + int(d) - 1
                    for t, a, d in zip(
                        new_rows["trace_id"], new_rows["_anchor"], new_rows["depth"], strict=True
                    )
                ],
            }
        )
        known = pd.concat([known, new], ignore_index=True)
        known = known.drop_duplicates(["trace_id", "entity_id"], ignore_index=True)
        index = pd.MultiIndex.from_frame(known[["trace_id", "entity_id"]])
        owners = known["owner"].to_numpy()
        depths = known["depth"].to_numpy()
        todo = todo[~hit]
    keys = list(zip(rel["trace_id"], rel["_anchor"], strict=True))
    owner = [resolved.get(k, (None, 0))[0] for k in keys]
    base = np.array([resolved.get(k, (None, 0))[1] for k in keys], dtype=np.int64)
    placed = np.array([o is not None for o in owner], dtype=bool)
    sub.loc[pending, "segment_id"] = pd.array(owner, dtype="str")
    depth = pd.array(np.where(placed, base + rel_depth.to_numpy() - 1, 0), dtype="Int64")
    depth[~placed] = pd.NA
    sub.loc[pending, "depth"] = depth
    orphan_rows = pending.copy()
    orphan_rows[pending] = ~placed
    sub["orphan"] = orphan_rows
    for tid, sid, pid in sub.loc[
        orphan_rows & sub["streamed"], ["trace_id", "subsegment_id", "parent_id"]
    ].itertuples(index=False):
        problems.add(
            str(sid),
            f"subsegment {sid} of trace {tid} names parent {pid}, which never arrived; "
            "kept as an orphan (column 'orphan')",
        )
    return sub


_NAT = np.iinfo(np.int64).min


def _micros(times: pd.Series) -> np.ndarray:
    """A time column's microseconds since the epoch (NaT: the smallest int64)."""
    return times.array.asi8


def _seconds(micros: np.ndarray, missing: np.ndarray | None = None) -> np.ndarray:
    """Durations in microseconds as float seconds; NaN where a time was missing."""
    seconds = micros / 1e6
    if missing is not None:
        seconds[missing] = np.nan
    return seconds


def micros_to_time(micros: np.ndarray) -> pd.DatetimeIndex:
    """Microseconds since the epoch (the smallest int64 for none) as UTC times."""
    return pd.DatetimeIndex(utc_times(np.asarray(micros, dtype=np.int64)))


def _calls_from_inside(seg: pd.DataFrame, sub: pd.DataFrame) -> np.ndarray:
    """Whether each segment's parent (its caller) is an entity of the loaded data."""
    parents, own, subs = _hex64(seg["parent_id"]), _hex64(seg["segment_id"]), None
    if parents is not None and own is not None:
        subs = _hex64(sub["subsegment_id"])
    if parents is None or own is None or subs is None:
        ids = pd.concat([seg["segment_id"], sub["subsegment_id"]], ignore_index=True)
        return isin(seg["parent_id"], ids)
    known = np.concatenate([own[0], subs[0]])
    known.sort()  # a sorted copy and a binary search take less memory than a hash table
    at = np.searchsorted(known, parents[0])
    at[at == len(known)] = 0
    return (known[at] == parents[0]) & parents[1] if len(known) else np.zeros(len(seg), bool)


def _factorize(*columns: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Codes of the values of ``columns`` (in order, concatenated) and the distinct values,
    in order of first appearance, as ``pd.factorize`` gives them (computed in Arrow)."""
    chunks: list[pa.Array] = []
    for column in columns:
        arrow = arrow_strings(column)
        chunks.extend(arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow])
    values = pa.chunked_array(chunks, pa.large_string())
    distinct = pc.unique(values, memory_pool=_POOL)
    codes = pc.index_in(values, value_set=distinct, memory_pool=_POOL)
    return codes.to_numpy(), pd.Series(distinct.to_pandas(), dtype="str")


def _trace_rows(
    seg: pd.DataFrame,
    sub: pd.DataFrame,
    seg_code: np.ndarray,
    sub_code: np.ndarray,
    inside: np.ndarray,
    trace_ids: pa.Array,
) -> pd.DataFrame:
    """One row per trace with GetTraceSummaries semantics (vectorised over trace codes).

    The steps are small functions so that their temporary arrays are freed as soon as each
    is done: a load's peak memory is reached here.
    """
    if not len(seg_code) and not len(sub_code):
        return empty_frame("traces")
    n = len(trace_ids)
    first, last, has_throttle, is_partial = _spans(seg, sub, seg_code, sub_code, n)
    segment_count = np.bincount(seg_code, minlength=n)
    subsegment_count = np.bincount(sub_code, minlength=n)
    root_pos = _root_positions(seg, inside, seg_code, n)
    service_count = _service_counts(seg, seg_code, n)
    user_rows = _first_users(seg, seg_code, n)
    del seg_code

    # the traces in order of start, then trace id (an id of rows that were undone has none)
    order = np.lexsort((_ranks(trace_ids), first))
    order = order[(segment_count + subsegment_count)[order] > 0]
    root = root_pos[order]
    # the user: the root's, else the earliest segment's that has one
    user = root.copy()
    if user_rows is not None:
        no_user = (root < 0) | ~seg["user"].notna().to_numpy(bool)[np.maximum(root, 0)]
        user[no_user] = user_rows[order][no_user]
    del user_rows

    def at_root(column: str) -> Any:
        return _taken(seg[column], root)

    root_status = at_root("http_status")
    # the root's flags, or its HTTP status where a document left a flag out: what the client saw
    outcome = flags(
        root_status, fault=at_root("fault"), error=at_root("error"), throttle=at_root("throttle")
    )
    return pd.DataFrame(
        {
            "trace_id": pd.array(
                pc.take(arrow_strings(trace_ids), pa.array(order), memory_pool=_POOL), dtype="str"
            ),
            "start": micros_to_time(first[order]),
            "end": micros_to_time(last[order]),
            "duration_s": _seconds((last - first)[order], last[order] == _NAT),
            "response_time_s": at_root("duration_s"),
            "root_segment_id": at_root("segment_id"),
            "root_service": at_root("name"),
            "root_origin": at_root("origin"),
            "http_method": at_root("http_method"),
            "http_url": at_root("http_url"),
            "http_status": root_status,
            "client_ip": at_root("http_client_ip"),
            "user_agent": at_root("http_user_agent"),
            "has_fault": outcome.fault,
            "has_error": outcome.error,
            "has_throttle": has_throttle[order],
            "is_partial": is_partial[order],
            "user": _taken(seg["user"], user),
            "segment_count": segment_count[order],
            "subsegment_count": subsegment_count[order],
            "service_count": service_count[order],
        },
        copy=False,
    )


def _taken(column: pd.Series, rows: np.ndarray) -> Any:
    """The values of ``column`` at positions ``rows`` (-1: missing, or False for flags), in
    the column's dtype; strings are taken in Arrow on the C library's allocator."""
    missing = rows < 0
    if isinstance(column.dtype, pd.StringDtype):
        index = pa.array(rows, mask=missing) if missing.any() else pa.array(rows)
        return pd.array(pc.take(arrow_strings(column), index, memory_pool=_POOL), dtype="str")
    if not len(column):  # no segment at all (a file of orphan subsegments)
        empty = pd.Series([None] * len(rows), dtype=object)
        return (
            np.zeros(len(rows), bool) if column.dtype == bool else empty.astype(column.dtype).array
        )
    at = np.where(missing, 0, rows) if missing.any() else rows
    values = column.array[at]
    if column.dtype == bool:
        return np.asarray(values, dtype=bool) & ~missing
    if missing.any():
        values = values.copy()
        values[missing] = None
    return values


def _spans(
    seg: pd.DataFrame, sub: pd.DataFrame, seg_code: np.ndarray, sub_code: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per trace: first start and last end of any entity (microseconds), and whether any
    entity was throttled (flag or 429) or is still in progress. Frame by frame, without
    concatenating their columns."""
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, _NAT)  # NaT is the smallest int64: any end beats it
    has_throttle = np.zeros(n, dtype=bool)
    is_partial = np.zeros(n, dtype=bool)
    for frame, code in ((seg, seg_code), (sub, sub_code)):
        np.minimum.at(first, code, _micros(frame["start"]))
        np.maximum.at(last, code, _micros(frame["end"]))
        throttled = flags(frame["http_status"], throttle=frame["throttle"]).throttle
        has_throttle[code[throttled]] = True
        is_partial[code[frame["in_progress"].to_numpy(bool)]] = True
    return first, last, has_throttle, is_partial


def _root_positions(
    seg: pd.DataFrame, inside: np.ndarray, seg_code: np.ndarray, n: int
) -> np.ndarray:
    """Row of each trace's root segment in ``seg`` (-1: none).

    The root is X-Ray's entry point: the earliest real segment whose caller is not in the
    trace (when every real segment's caller is, the earliest real one); the first row read
    wins a tie. Inferred segments never are; a trace with nothing else has no root. Computed
    with per-trace minimums, no sort: a load's peak memory is reached here.
    """
    candidate = ~seg["inferred"].to_numpy(bool)
    outside = candidate & ~inside
    has_outside = np.zeros(n, dtype=bool)
    has_outside[seg_code[outside]] = True
    candidate &= outside | ~has_outside[seg_code]
    del outside, has_outside
    start = _micros(seg["start"])
    earliest = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(earliest, seg_code[candidate], start[candidate])
    candidate &= start == earliest[seg_code]
    del earliest
    rows = np.flatnonzero(candidate)
    root_pos = np.full(n, len(seg), dtype=np.int64)
    np.minimum.at(root_pos, seg_code[rows], rows)
    root_pos[root_pos == len(seg)] = -1
    return root_pos


def _first_users(seg: pd.DataFrame, seg_code: np.ndarray, n: int) -> np.ndarray | None:
    """Per trace, the row of its earliest segment that names a user (-1: none; None: no
    segment names one)."""
    rows = np.flatnonzero(seg["user"].notna().to_numpy(bool))
    if not len(rows):
        return None
    rows = rows[np.lexsort((_micros(seg["start"])[rows], seg_code[rows]))]
    codes = seg_code[rows]
    first = np.ones(len(codes), dtype=bool)
    first[1:] = codes[1:] != codes[:-1]
    user_rows = np.full(n, -1, dtype=np.int64)
    user_rows[codes[first]] = rows[first]
    return user_rows


def _service_counts(seg: pd.DataFrame, seg_code: np.ndarray, n: int) -> np.ndarray:
    """Per trace, the number of distinct (name, origin) among its segments (a missing origin
    counts as one of its own): one integer per segment, sorted in place (a hash table would
    take several times the memory)."""
    names = pc.dictionary_encode(arrow_strings(seg["name"]), memory_pool=_POOL)
    origins = pc.dictionary_encode(
        arrow_strings(seg["origin"]), null_encoding="encode", memory_pool=_POOL
    )
    width = (len(names.dictionary) + 1) * (len(origins.dictionary) + 1)
    if n * width >= 2**62:  # pragma: no cover - millions of names and origins
        pairs = np.stack([seg_code, _indices(names), _indices(origins)])
        return np.bincount(np.unique(pairs, axis=1)[0], minlength=n)
    keys = seg_code.astype(np.int64)
    keys *= len(names.dictionary) + 1
    keys += _indices(names)
    keys *= len(origins.dictionary) + 1
    keys += _indices(origins)
    del names, origins
    keys.sort()
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    return np.bincount(keys[first] // width, minlength=n)


def _indices(encoded: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The codes of a dictionary-encoded column, as numpy."""
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks(memory_pool=_POOL)
    return encoded.indices.to_numpy(zero_copy_only=False)


def _ranks(values: pd.Series) -> np.ndarray:
    """The rank of each string in sorted (code point) order."""
    order = pc.sort_indices(arrow_strings(values), memory_pool=_POOL).to_numpy()
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(len(order))
    return ranks
