"""Trace links: the dashed ``link`` edges from an SQS queue to the Lambda consumer it triggered.

A linked segment carries ``"links": [{"trace_id": ..., "id": ...}]`` pointing at the
producer's entity. Only the documents that contain ``"links"`` are parsed; each link becomes
an edge from the node the producer's entity stands for (the queue) to the consumer's node,
with the received event age (consumer start − producer call end) as its latency.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xraykit.graph.arrays import _BAR, _codes, _Keys, _strings, _take
from xraykit.graph.columns import _NAT
from xraykit.io.docstore import DocumentStore

if TYPE_CHECKING:
    from xraykit.traceset import TraceSet


_LINKS = np.frombuffer(b'"links"', dtype=np.uint8)


def _rows_containing(chunk: pa.Array, needle: np.ndarray) -> np.ndarray:
    """Rows of an Arrow string array whose text contains ``needle`` (at least 2 bytes).

    Vectorised over the array's data buffer, without copying it: the positions of one byte of
    the needle are found, then the other bytes are compared at those positions.
    """
    buffers = chunk.buffers()
    if len(chunk) == 0 or buffers[2] is None:
        return np.zeros(0, dtype=np.int64)
    width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    offsets = np.frombuffer(buffers[1], dtype=width)[chunk.offset : chunk.offset + len(chunk) + 1]
    data = np.frombuffer(buffers[2], dtype=np.uint8)[int(offsets[0]) : int(offsets[-1])]
    pivot = len(needle) - 2
    at = np.flatnonzero(data[pivot : len(data) - 1] == needle[pivot])  # match starts
    for j, byte in enumerate(needle):
        if j != pivot and len(at):
            at = at[data[at + j] == byte]
    rows = np.searchsorted(offsets, at + int(offsets[0]), side="right") - 1
    return np.unique(rows)


def _link_documents(ts: TraceSet) -> list[tuple[str, str, str, str]]:
    """``(trace_id, entity_id, linked trace_id, linked entity id)`` of every trace link.

    Only documents that contain ``"links"`` are parsed: a TraceSet's document store flagged
    them when it was built (and decompresses only their blocks); for another object with
    ``raw_documents``, the raw text is searched first (in Arrow's buffers, without copying).
    """
    store = getattr(ts, "document_store", None)
    if isinstance(store, DocumentStore):
        docs = store.linked()
        return _parse_links(docs["trace_id"], docs["entity_id"], docs["document"])
    docs = getattr(ts, "raw_documents", None)
    if docs is None or docs.empty:
        return []
    column = docs["document"]
    arrow = pa.array(column.array) if str(column.dtype) == "str" else _strings(column)
    chunks = arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]
    parts, base = [np.zeros(0, dtype=np.int64)], 0
    for chunk in chunks:
        if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
            chunk = chunk.cast(pa.large_string())
        parts.append(base + _rows_containing(chunk, _LINKS))
        base += len(chunk)
    hits = np.concatenate(parts)
    return _parse_links(*(docs[c].iloc[hits] for c in ("trace_id", "entity_id", "document")))


def _parse_links(
    trace_ids: pd.Series, entity_ids: pd.Series, texts: pd.Series
) -> list[tuple[str, str, str, str]]:
    """The links of the given documents (JSON texts); unreadable texts are skipped."""
    found: dict[tuple[str, str, str, str], None] = {}
    columns = (trace_ids.tolist(), entity_ids.tolist(), texts.tolist())
    # a loop over the documents that carry links (one per linked consumer invocation)
    for trace_id, entity_id, raw in zip(*columns, strict=True):
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        for link in (doc.get("links") or []) if isinstance(doc, dict) else []:
            if isinstance(link, dict) and link.get("id"):
                target_trace = str(link.get("trace_id") or trace_id)
                found[(str(trace_id), str(entity_id), target_trace, str(link["id"]))] = None
    return list(found)


def _link_edges(
    links: list[tuple[str, str, str, str]],
    keys: _Keys,
    segs: pd.DataFrame,
    inferred: np.ndarray,
    seg_first: np.ndarray,
    sub_first: np.ndarray,
    call_of_sub: np.ndarray,
    ident: tuple[pa.Array, pa.Array, pa.Array],
    node_id: pa.Array,
    stats: Mapping[str, np.ndarray],
) -> tuple[np.ndarray, dict[str, Any]]:
    """The ``link`` edges: from the node a link points at (the SQS queue) to the linked segment.

    Returns which segments are linked consumers and the parts of the link edge rows
    (``entity``, ``source``, ``target``, ``linked_trace_id``, ``event_age_s``; empty when
    there is none). Only a real segment without a parent can be a linked consumer.
    """
    n_seg = len(segs)
    linked = np.zeros(n_seg, dtype=bool)
    link_parts: dict[str, Any] = {}
    if links:
        consumer = seg_first[keys.key["consumer"]]
        parentless = np.r_[segs["parent_id"].isna().to_numpy() & ~inferred, False]
        target = keys.key["producer"]
        as_segment = seg_first[target]
        as_parent = keys.position("seg_parent")[target]
        as_sub = sub_first[target]
        # index only where a target was found: with no segments or no subsegments at all,
        # a clipped -1 would point past the end of the arrays
        as_call = np.full(len(as_sub), -1, dtype=np.int64)
        sub_hit = as_sub >= 0
        as_call[sub_hit] = call_of_sub[as_sub[sub_hit]]
        call_node = pc.binary_join_element_wise(*(_take(a, as_call) for a in ident), _BAR)
        source = pc.coalesce(_take(node_id, as_segment), _take(node_id, as_parent), call_node)
        ends = np.full(len(target), _NAT, dtype=np.int64)
        seg_hit = as_segment >= 0
        ends[seg_hit] = stats["end"][as_segment[seg_hit]]
        sub_only = ~seg_hit & sub_hit
        ends[sub_only] = stats["end"][n_seg + as_sub[sub_only]]
        keep = (
            parentless[consumer]
            & (consumer >= 0)
            & source.is_valid().to_numpy(zero_copy_only=False)
        )
        rows = np.flatnonzero(keep)
        if len(rows):  # one link edge per (consumer segment, source node)
            source_codes, _ = _codes(source.take(rows))
            pair = consumer[rows] * (len(rows) + 1) + source_codes
            rows = rows[np.sort(np.unique(pair, return_index=True)[1])]
            seg_rows = consumer[rows]
            nat = (ends[rows] == _NAT) | (stats["start"][seg_rows] == _NAT)
            age = (stats["start"][seg_rows] - ends[rows]) / 1e6
            linked[seg_rows] = True
            link_parts = {
                "entity": seg_rows,
                "source": source.take(rows),
                "target": seg_rows,
                "linked_trace_id": _strings([links[r][2] for r in rows]),
                "event_age_s": np.where(nat, np.nan, age),
            }
    return linked, link_parts
