"""The document store's compact index and the Arrow helpers it is built with.

One row per document: its trace id (dictionary-encoded), entity id, ``in_progress`` and
``has_links`` flags, and where its text lies (block, start, stop). Kept as one Arrow table;
:class:`~xraykit.io.docstore.DocumentStore` selects, joins and saves it with these helpers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xraykit.io.ids import hex_ids
from xraykit.io.memory import POOL as _POOL

TRACE_TYPE = pa.dictionary(pa.int32(), pa.large_string())
HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
NIBBLE = np.full(256, 255, dtype=np.uint8)  # ASCII byte -> its hex digit value (255: not one)
NIBBLE[HEX_DIGITS] = np.arange(16, dtype=np.uint8)


def index_part(
    trace_id: pa.Array,
    entity_id: pa.Array,
    in_progress: pa.Array,
    has_links: pa.Array,
    *where: np.ndarray,
) -> pa.Table:
    """The compact index of some documents: ``where`` is their block, start and stop."""
    packed = packed_hex_ids(entity_id)
    columns = {
        "trace_id": trace_id
        if pa.types.is_dictionary(trace_id.type)
        else pc.dictionary_encode(trace_id, memory_pool=_POOL),
        "entity_id": entity_id if packed is None else packed,
        "in_progress": filled(in_progress),
        "has_links": filled(has_links),
    }
    return pa.table({**columns, **dict(zip(("block", "start", "stop"), where, strict=True))})


def filled(flags: pa.Array) -> pa.Array:
    """Flags with missing ones false."""
    if not flags.null_count:
        return flags
    return pc.coalesce(flags, pa.scalar(False), memory_pool=_POOL)


def joined(parts: Sequence[pa.Table], sizes: Sequence[int]) -> pa.Table:
    """One compact index of parts (which may differ in their entity and offset types)."""
    if not any(p.num_rows for p in parts):
        return empty_index()
    text = any(p.schema.field("entity_id").type != pa.uint64() for p in parts)
    wide = bool(sizes) and max(sizes) > np.iinfo(np.int32).max
    kinds = {
        "trace_id": TRACE_TYPE,
        "entity_id": pa.large_string() if text else pa.uint64(),
        "start": pa.int64() if wide else pa.int32(),
        "stop": pa.int64() if wide else pa.int32(),
    }
    tables = []
    for part in parts:
        columns = {name: part.column(name) for name in part.column_names}
        if text and columns["entity_id"].type == pa.uint64():
            columns["entity_id"] = hex_strings(columns["entity_id"].to_numpy())
        cast = {n: pc.cast(c, kinds.get(n, c.type), memory_pool=_POOL) for n, c in columns.items()}
        tables.append(pa.table(cast))
    joined = pa.concat_tables(tables).unify_dictionaries(memory_pool=_POOL)
    return joined.combine_chunks(memory_pool=_POOL)


def numbers(index: pa.Table, name: str) -> np.ndarray:
    """A column of the index as numpy (no copy, except for flags)."""
    return index.column(name).chunk(0).to_numpy(zero_copy_only=False)


def trace_codes(trace: pa.DictionaryArray) -> np.ndarray:
    """The trace id codes, -1 for a missing id."""
    indices = trace.indices
    if indices.null_count:
        indices = pc.coalesce(indices, pa.scalar(-1, indices.type), memory_pool=_POOL)
    return indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)


def used_codes(codes: np.ndarray, n: int) -> np.ndarray:
    """Which of ``n`` things codes point to (a code of -1 points to none)."""
    used = np.zeros(n + 1, dtype=bool)
    used[codes] = True  # -1 marks the extra last entry
    return used[:-1]


def renumbered(used: np.ndarray) -> np.ndarray:
    """New codes for old ones when only ``used`` things are kept; the last entry is for -1."""
    renumber = np.full(len(used) + 1, -1, dtype=np.int32)
    renumber[np.flatnonzero(used)] = np.arange(int(used.sum()), dtype=np.int32)
    return renumber


def packed_hex_ids(values: pa.Array) -> np.ndarray | None:
    """Ids of exactly 16 lower-case hex digits as uint64, or None when any id is not one."""
    if values.null_count:
        return None
    packed = hex_ids(values)
    return None if packed is None else packed[0]


def hex_strings(values: np.ndarray) -> pa.Array:
    """The inverse of :func:`packed_hex_ids`: uint64 values as 16 lower-case hex digits."""
    n = len(values)
    octets = values.astype(">u8").view(np.uint8).reshape(n, 8)
    text = np.empty((n, 16), dtype=np.uint8)
    text[:, 0::2], text[:, 1::2] = HEX_DIGITS[octets >> 4], HEX_DIGITS[octets & 15]
    offsets = np.arange(0, 16 * n + 1, 16, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text))


def zstd_content_size(block: bytes) -> int | None:
    """The text size a zstd frame's header declares (None: not a frame that declares one).

    >>> zstd_content_size(pa.Codec("zstd").compress(b"x" * 300, asbytes=True))
    300
    """
    if len(block) < 6 or block[:4] != b"\x28\xb5\x2f\xfd":
        return None
    descriptor = block[4]
    single_segment = descriptor >> 5 & 1
    width = (single_segment, 2, 4, 8)[descriptor >> 6]
    at = 5 + (1 - single_segment) + (0, 1, 2, 4)[descriptor & 3]  # window, dictionary id
    if not width or len(block) < at + width:
        return None
    return int.from_bytes(block[at : at + width], "little") + (256 if width == 2 else 0)


#: The columns of the compact index, in order.
INDEX_COLUMNS = ("trace_id", "entity_id", "in_progress", "has_links", "block", "start", "stop")


def empty_index() -> pa.Table:
    """The compact index of no documents (made on demand: Arrow's first table at import
    would cost a load its memory)."""
    return pa.table(
        {
            "trace_id": pa.array([], TRACE_TYPE),
            "entity_id": pa.array([], pa.uint64()),
            **{n: pa.array([], pa.bool_()) for n in ("in_progress", "has_links")},
            **{n: pa.array([], pa.int32()) for n in ("block", "start", "stop")},
        }
    )


# -- Arrow helpers -------------------------------------------------------------------------------


def is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def flat_array(values: Any, kind: pa.DataType | None) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = pa.array(values, kind)
    return values if kind is None or values.type == kind else values.cast(kind)


def block_cuts(offsets: np.ndarray, limit: int) -> list[int]:
    """Row boundaries splitting text ``offsets`` into runs of at most ``limit`` bytes (or one row)."""
    n = len(offsets) - 1
    cuts = [0]
    while cuts[-1] < n:
        lo = cuts[-1]
        hi = int(np.searchsorted(offsets, offsets[lo] + limit, side="right")) - 1
        cuts.append(min(n, max(hi, lo + 1)))
    return cuts


def gather_texts(data: pa.Buffer, start: np.ndarray, stop: np.ndarray) -> pa.Array:
    """A large string array of the byte ranges ``start:stop`` of ``data``."""
    n = len(start)
    if n == 1 or (n and (start[1:] == stop[:-1]).all()):  # one run: no copy
        offsets = np.concatenate([start, stop[-1:]]).astype(np.int64)
        return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), data)
    lengths = stop - start
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    positions = np.repeat(start - offsets[:-1], lengths) + np.arange(offsets[-1])
    text = np.frombuffer(data, dtype=np.uint8)[positions]
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text))
