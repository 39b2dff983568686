"""The original documents of a TraceSet, compressed in blocks.

A :class:`DocumentStore` keeps the JSON text of every segment document (and of every
subsegment sent on its own) zstd-compressed, in blocks of about a megabyte of text, with an
index of one row per document: ``trace_id, entity_id, in_progress, has_links`` and where its
text is (``block``, ``start``, ``stop``: byte offsets in the decompressed block). Filtering
only touches the index; the blocks are shared, never recompressed.
:meth:`DocumentStore.to_frame` gives back the ``documents`` frame of
:data:`xraykit.schema.DOCUMENTS`.

The index is held compactly (about 40 bytes a document, against 90 as a DataFrame): trace ids
as int32 codes into a table of the distinct ids, entity ids of 16 hex digits (X-Ray's) as
uint64, offsets as int32 while every block is under 2 GiB. :attr:`DocumentStore.index`
builds the DataFrame of :data:`INDEX` on demand. :meth:`DocumentStore.to_arrow` and
:meth:`DocumentStore.from_arrow` give that compact index, with the blocks as they are, to the
saved format (:mod:`xraykit.saved`).

A loader builds one chunk by chunk with :class:`DocumentStoreBuilder`, so that the
uncompressed text never accumulates.

Examples
--------
>>> import pyarrow as pa
>>> from xraykit.docstore import DocumentStoreBuilder
>>> builder = DocumentStoreBuilder()
>>> builder.add_chunk(
...     pa.array(["1-a", "1-a"]),
...     pa.array(["s1", "s2"]),
...     pa.array([False, True]),
...     pa.array(['{"id": "s1"}', '{"id": "s2", "links": []}']),
... )
>>> store = builder.finish()
>>> len(store), store.entity_texts("s2")
(2, ['{"id": "s2", "links": []}'])
>>> store.to_frame().columns.tolist()
['trace_id', 'entity_id', 'in_progress', 'document']
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xraykit.schema import arrow_strings, conform

__all__ = ["BLOCK_BYTES", "INDEX", "DocumentStore", "DocumentStoreBuilder"]

#: Uncompressed text per block (a single larger document makes a larger block).
BLOCK_BYTES = 1 << 20

#: Columns and dtypes of :attr:`DocumentStore.index`; ``block`` is -1 for a missing text.
INDEX = {
    "trace_id": "str",
    "entity_id": "str",
    "in_progress": "bool",
    "has_links": "bool",  # the text contains '"links"' (trace links, read by the service graph)
    "block": "int32",
    "start": "int64",  # byte offsets of the text in the decompressed block
    "stop": "int64",
}

_LINKS = '"links"'
_MAX_WAITING = 8  # blocks whose compression may be pending at once
_INT32_MAX = np.iinfo(np.int32).max
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NIBBLE = np.full(256, 255, dtype=np.uint8)  # ASCII byte -> its hex digit value (255: not one)
_NIBBLE[_HEX] = np.arange(16, dtype=np.uint8)


def _codec() -> pa.Codec:
    return pa.Codec("zstd", compression_level=1)


# -- the compact index ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class _Rows:
    """The index, one entry per document, in compact columns (see the module docstring)."""

    trace_ids: pa.Array  # the distinct trace ids (large strings)
    trace: np.ndarray  # int32 position in trace_ids; -1 for a missing id
    entity: np.ndarray | pa.Array  # uint64 of 16 hex digits each, or else large strings
    in_progress: np.ndarray  # bool
    has_links: np.ndarray  # bool
    block: np.ndarray  # int32; -1 for a missing text
    start: np.ndarray  # int32 or int64 byte offsets in the decompressed block
    stop: np.ndarray

    def __len__(self) -> int:
        return len(self.trace)

    @property
    def nbytes(self) -> int:
        arrays = (self.trace, self.in_progress, self.has_links, self.block, self.start, self.stop)
        return self.trace_ids.nbytes + self.entity.nbytes + sum(a.nbytes for a in arrays)

    def take(self, rows: np.ndarray) -> _Rows:
        """The rows at integer positions ``rows``; unused trace ids are dropped."""
        entity = self.entity
        picked = entity[rows] if isinstance(entity, np.ndarray) else entity.take(pa.array(rows))
        ids, trace = _pruned_codes(self.trace_ids, self.trace[rows])
        return _Rows(
            ids,
            trace,
            picked,
            self.in_progress[rows],
            self.has_links[rows],
            self.block[rows],
            self.start[rows],
            self.stop[rows],
        )

    def trace_strings(self) -> pa.Array:
        codes = self.trace
        return self.trace_ids.take(pa.array(codes, mask=codes < 0))

    def entity_strings(self) -> pa.Array:
        if isinstance(self.entity, np.ndarray):
            return _hex_strings(self.entity)
        return self.entity

    def where_entity(self, entity_id: str) -> np.ndarray:
        if isinstance(self.entity, np.ndarray):
            packed = _hex_ids(pa.array([entity_id], pa.large_string()))
            if packed is None:
                return np.zeros(len(self), dtype=bool)
            return self.entity == packed[0]
        hit = pc.equal(self.entity, pa.scalar(entity_id, pa.large_string()))
        return pc.fill_null(hit, False).to_numpy(zero_copy_only=False)

    def where_traces(self, trace_ids: pa.Array) -> np.ndarray:
        hit = pc.fill_null(pc.is_in(self.trace_ids, value_set=trace_ids), False)
        return np.append(hit.to_numpy(zero_copy_only=False), False)[self.trace]  # -1: False

    @classmethod
    def build(
        cls,
        traces: Sequence[tuple[pa.Array, np.ndarray]],
        entities: Sequence[np.ndarray | pa.Array],
        columns: dict[str, Sequence[np.ndarray]],
        *,
        wide: bool,
    ) -> _Rows:
        """Join parts: each trace part is (its distinct ids, codes into them); ``wide``: int64
        offsets."""
        ids, trace = _merged_codes(traces)
        if all(isinstance(e, np.ndarray) for e in entities):
            entity: np.ndarray | pa.Array = np.concatenate([np.zeros(0, np.uint64), *entities])
        else:
            strings = [_hex_strings(e) if isinstance(e, np.ndarray) else e for e in entities]
            entity = pa.concat_arrays([s.cast(pa.large_string()) for s in strings])
        offset = np.int64 if wide else np.int32
        kinds = {"in_progress": np.bool_, "has_links": np.bool_, "block": np.int32}
        joined = {
            name: np.concatenate([np.zeros(0, kinds.get(name, offset)), *parts]).astype(
                kinds.get(name, offset), copy=False
            )
            for name, parts in columns.items()
        }
        return cls(ids, trace, entity, **joined)

    @classmethod
    def empty(cls) -> _Rows:
        return cls.build(
            [],
            [],
            {n: [] for n in ("in_progress", "has_links", "block", "start", "stop")},
            wide=False,
        )


def _encoded(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Distinct values and int32 codes into them (-1 for a null)."""
    encoded = pc.dictionary_encode(values.cast(pa.large_string()))
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)
    return encoded.dictionary, codes


def _merged_codes(parts: Sequence[tuple[pa.Array, np.ndarray]]) -> tuple[pa.Array, np.ndarray]:
    """One table of distinct ids for several (ids, codes) parts, in one hash pass."""
    if not parts:
        return pa.array([], pa.large_string()), np.zeros(0, np.int32)
    if len(parts) == 1:
        return parts[0]
    ids, positions = _encoded(pa.concat_arrays([p[0].cast(pa.large_string()) for p in parts]))
    codes, at = [], 0
    for part_ids, part_codes in parts:
        local = np.append(positions[at : at + len(part_ids)], np.int32(-1))  # code -1 stays -1
        codes.append(local[part_codes])
        at += len(part_ids)
    return ids, np.concatenate(codes).astype(np.int32, copy=False)


def _pruned_codes(ids: pa.Array, codes: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """Drop the ids no code points to (a selection of a few traces keeps only their ids)."""
    used = np.zeros(len(ids) + 1, dtype=bool)
    used[codes] = True  # -1 marks the extra last entry
    used = used[:-1]
    if used.all():
        return ids, codes
    renumber = np.full(len(ids) + 1, -1, dtype=np.int32)
    renumber[np.flatnonzero(used)] = np.arange(int(used.sum()), dtype=np.int32)
    return ids.filter(pa.array(used)), renumber[codes]


def _hex_ids(values: pa.Array) -> np.ndarray | None:
    """Ids of exactly 16 lower-case hex digits as uint64, or None when any id is not one."""
    if values.null_count:
        return None
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return None
    n = len(values)
    _validity, offsets_buffer, data = values.buffers()
    if n == 0 or data is None:
        return np.zeros(0, np.uint64) if n == 0 else None
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, dtype=width)[values.offset : values.offset + n + 1]
    if not (np.diff(offsets) == 16).all():
        return None
    text = np.frombuffer(data, dtype=np.uint8)[int(offsets[0]) : int(offsets[-1])]
    nibbles = _NIBBLE[text.reshape(n, 16)]
    if (nibbles > 15).any():
        return None
    packed = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]  # (n, 8) bytes, most significant first
    return packed.view(">u8").ravel().astype(np.uint64)


def _hex_strings(values: np.ndarray) -> pa.Array:
    """The inverse of :func:`_hex_ids`: uint64 values as 16 lower-case hex digits."""
    n = len(values)
    octets = values.astype(">u8").view(np.uint8).reshape(n, 8)
    text = np.empty((n, 16), dtype=np.uint8)
    text[:, 0::2], text[:, 1::2] = _HEX[octets >> 4], _HEX[octets & 15]
    offsets = np.arange(0, 16 * n + 1, 16, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text))


# -- building -----------------------------------------------------------------------------------


class DocumentStoreBuilder:
    """Build a :class:`DocumentStore` chunk by chunk; each chunk's text is compressed at once.

    ``block_bytes`` is the uncompressed text per block (:data:`BLOCK_BYTES` by default).

    >>> import pyarrow as pa
    >>> builder = DocumentStoreBuilder()
    >>> builder.add_chunk(pa.array(["1-a"]), pa.array(["s1"]), pa.array([False]), pa.array(["{}"]))
    >>> builder.add_chunk(pa.array(["1-b"]), pa.array(["s2"]), pa.array([True]), pa.array([None], pa.string()))
    >>> store = builder.finish()
    >>> store.to_frame()["document"].tolist()
    ['{}', nan]
    >>> len(DocumentStoreBuilder().finish())
    0
    """

    def __init__(self, *, block_bytes: int = BLOCK_BYTES) -> None:
        if block_bytes < 1:
            raise ValueError(f"block_bytes must be positive, but {block_bytes} was passed.")
        self._block_bytes = block_bytes
        self._codec = _codec()
        # compressed blocks, or their compression still running in the background
        self._blocks: list[bytes | Future[bytes]] = []
        self._pool: ThreadPoolExecutor | None = None
        self._running: deque[Future[bytes]] = deque()
        self._sizes: list[int] = []
        # each chunk's index, compact already: the id strings do not accumulate either
        self._traces: list[tuple[pa.Array, np.ndarray]] = []
        self._entities: list[np.ndarray | pa.Array] = []
        self._columns: dict[str, list[np.ndarray]] = {
            name: [] for name in ("in_progress", "has_links", "block", "start", "stop")
        }

    def add_chunk(
        self,
        trace_id: pa.Array | pa.ChunkedArray,
        entity_id: pa.Array | pa.ChunkedArray,
        in_progress: pa.Array | pa.ChunkedArray,
        document: pa.Array | pa.ChunkedArray,
        has_links: pa.Array | pa.ChunkedArray | None = None,
    ) -> None:
        """Add documents: four aligned Arrow arrays, the last one their JSON text.

        ``has_links`` (whether each text contains ``"links"``) is computed when not given; the
        loader's C scanner passes it, having found it while copying the text.

        ``document`` is a string or large string array (a null is kept as a missing text).
        Its text is compressed now, straight from the array's buffers, in blocks of at most
        ``block_bytes`` (a longer single document makes a block of its own).

        Raises
        ------
        ValueError
            When the arrays differ in length.
        """
        ids = {
            "trace_id": _flat(trace_id, pa.large_string()),
            "entity_id": _flat(entity_id, pa.large_string()),
            "in_progress": _flat(in_progress, pa.bool_()),
        }
        if has_links is not None:
            ids["has_links"] = _flat(has_links, pa.bool_())
        if not isinstance(document, pa.Array | pa.ChunkedArray):
            document = pa.array(document, pa.large_string())
        lengths = {len(a) for a in ids.values()} | {len(document)}
        if len(lengths) != 1:
            raise ValueError(
                "trace_id, entity_id, in_progress and document must have one value per "
                f"document, but their lengths are {[len(a) for a in (*ids.values(), document)]}."
            )
        chunks = document.chunks if isinstance(document, pa.ChunkedArray) else [document]
        at = 0
        for chunk in chunks:
            if len(chunk):
                part = {name: a.slice(at, len(chunk)) for name, a in ids.items()}
                self._add_text(part, chunk)
            at += len(chunk)

    def _add_text(self, ids: dict[str, pa.Array], text: pa.Array) -> None:
        if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
            text = text.cast(pa.large_string())
        n = len(text)
        _validity, offsets_buffer, data = text.buffers()
        width = np.int64 if pa.types.is_large_string(text.type) else np.int32
        offsets = np.frombuffer(offsets_buffer, dtype=width)[text.offset : text.offset + n + 1]
        offsets = offsets.astype(np.int64)
        cuts = _cuts(offsets, self._block_bytes)
        first = len(self._blocks)
        for lo, hi in pairwise(cuts):
            begin, end = int(offsets[lo]), int(offsets[hi])
            raw = data.slice(begin, end - begin) if data is not None else b""
            self._blocks.append(self._compress(raw))
            self._sizes.append(end - begin)
        counts = np.diff(cuts)
        base = np.repeat(offsets[cuts[:-1]], counts)
        block = np.repeat(np.arange(first, len(self._blocks), dtype=np.int32), counts)
        start, stop = offsets[:-1] - base, offsets[1:] - base
        if text.null_count:
            null = text.is_null().to_numpy(zero_copy_only=False)
            block[null], start[null], stop[null] = -1, 0, 0
        links = ids.get("has_links")
        if links is None:
            links = pc.match_substring(text, _LINKS)
        entity = ids["entity_id"]
        self._traces.append(_encoded(ids["trace_id"]))
        packed = _hex_ids(entity)
        self._entities.append(entity if packed is None else packed)
        columns = self._columns
        columns["in_progress"].append(_bools(ids["in_progress"]))
        columns["has_links"].append(_bools(links))
        columns["block"].append(block)
        columns["start"].append(start)
        columns["stop"].append(stop)

    def _compress(self, raw: Any) -> bytes | Future[bytes]:
        """Compress one block: the first at once, later ones on a thread of their own.

        zstd releases the GIL, so a loader goes on reading the next documents meanwhile; a
        small load never starts the thread. At most a few blocks wait, to bound memory.
        """
        if not self._blocks:
            return self._codec.compress(raw, asbytes=True)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xraykit-zstd")
        future = self._pool.submit(self._codec.compress, raw, asbytes=True)
        self._running.append(future)
        while len(self._running) > _MAX_WAITING:
            self._running.popleft().result()
        return future

    def finish(self) -> DocumentStore:
        """Return the store of every document added so far."""
        blocks = tuple(b.result() if isinstance(b, Future) else b for b in self._blocks)
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self._running.clear()
        wide = bool(self._sizes) and max(self._sizes) > _INT32_MAX
        rows = _Rows.build(self._traces, self._entities, self._columns, wide=wide)
        return DocumentStore._pruned(blocks, tuple(self._sizes), rows)


class DocumentStore:
    """The original documents, zstd-compressed in blocks, with one index row per document.

    Immutable: :meth:`filter`, :meth:`select_traces` and :meth:`concat` return new stores
    that share the compressed blocks. Build one with :class:`DocumentStoreBuilder` or
    :meth:`from_frame`; ``DocumentStore()`` is empty.

    >>> import pandas as pd
    >>> frame = pd.DataFrame({
    ...     "trace_id": ["1-a", "1-a", "1-b"],
    ...     "entity_id": ["s1", "s2", "s3"],
    ...     "in_progress": [False, False, True],
    ...     "document": ['{"id": "s1"}', '{"id": "s2", "links": [{"id": "s9"}]}', '{"id": "s3"}'],
    ... })
    >>> store = DocumentStore.from_frame(frame)
    >>> store
    <DocumentStore: 3 documents in 1 block>
    >>> store.trace_texts("1-a")
    ['{"id": "s1"}', '{"id": "s2", "links": [{"id": "s9"}]}']
    >>> store.linked().entity_id.tolist()
    ['s2']
    """

    __slots__ = ("_blocks", "_rows", "_sizes")

    _blocks: tuple[bytes, ...]
    _sizes: tuple[int, ...]
    _rows: _Rows

    def __init__(
        self,
        blocks: Sequence[bytes] = (),
        sizes: Sequence[int] = (),
        index: pd.DataFrame | None = None,
    ) -> None:
        if len(blocks) != len(sizes):
            raise ValueError(f"{len(blocks)} blocks but {len(sizes)} sizes were passed.")
        self._blocks = tuple(blocks)
        self._sizes = tuple(int(s) for s in sizes)
        self._rows = _Rows.empty() if index is None else _rows_of_frame(index, self._sizes)

    @classmethod
    def _of(cls, blocks: tuple[bytes, ...], sizes: tuple[int, ...], rows: _Rows) -> DocumentStore:
        store = cls.__new__(cls)
        store._blocks, store._sizes, store._rows = blocks, sizes, rows
        return store

    @classmethod
    def _pruned(
        cls, blocks: tuple[bytes, ...], sizes: tuple[int, ...], rows: _Rows
    ) -> DocumentStore:
        """A store keeping only the blocks that some index row points into."""
        block = rows.block
        used = np.zeros(len(blocks) + 1, dtype=bool)
        used[block] = True  # -1 marks the extra last entry
        used = used[:-1]
        if not used.all():
            keep = np.flatnonzero(used)
            renumber = np.full(len(blocks) + 1, -1, dtype=np.int32)
            renumber[keep] = np.arange(len(keep), dtype=np.int32)
            rows = _Rows(**{**_fields(rows), "block": renumber[block]})
            blocks = tuple(blocks[i] for i in keep)
            sizes = tuple(sizes[i] for i in keep)
        return cls._of(blocks, sizes, rows)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, block_bytes: int = BLOCK_BYTES) -> DocumentStore:
        """Return the store of a ``documents`` frame (columns of :data:`xraykit.schema.DOCUMENTS`).

        The frame is conformed first (missing columns added); ``block_bytes`` as for
        :class:`DocumentStoreBuilder`.

        >>> import pandas as pd
        >>> frame = pd.DataFrame({"trace_id": ["1-a"], "entity_id": ["s1"], "document": ["{}"]})
        >>> DocumentStore.from_frame(frame).to_frame().values.tolist()
        [['1-a', 's1', False, '{}']]
        """
        table = pa.Table.from_pandas(conform(frame, "documents"), preserve_index=False)
        builder = DocumentStoreBuilder(block_bytes=block_bytes)
        for batch in table.to_batches():
            builder.add_chunk(
                batch.column("trace_id"),
                batch.column("entity_id"),
                batch.column("in_progress"),
                batch.column("document"),
            )
        return builder.finish()

    @classmethod
    def concat(cls, stores: Iterable[DocumentStore]) -> DocumentStore:
        """Return one store of the documents of all ``stores``, in order.

        Blocks are joined (a block shared by several stores is kept once), not recompressed.

        >>> import pandas as pd
        >>> store = DocumentStore.from_frame(
        ...     pd.DataFrame({"trace_id": ["1-a", "1-b"], "entity_id": ["s1", "s2"], "document": ["{}", "[]"]})
        ... )
        >>> both = DocumentStore.concat([store.select_traces(["1-b"]), store])
        >>> both.to_frame().entity_id.tolist(), len(both.blocks)
        (['s2', 's1', 's2'], 1)
        """
        blocks: list[bytes] = []
        sizes: list[int] = []
        seen: dict[int, int] = {}  # id() of a block already taken -> its new number
        parts: list[_Rows] = []
        blocks_of: list[np.ndarray] = []
        for store in stores:
            renumber = np.full(len(store._blocks) + 1, -1, dtype=np.int32)  # last: -1 stays -1
            for i, (data, size) in enumerate(zip(store._blocks, store._sizes, strict=True)):
                if id(data) not in seen:
                    seen[id(data)] = len(blocks)
                    blocks.append(data)
                    sizes.append(size)
                renumber[i] = seen[id(data)]
            if len(store):
                parts.append(store._rows)
                blocks_of.append(renumber[store._rows.block])
        if not parts:
            return cls()
        columns = {
            name: [getattr(p, name) for p in parts]
            for name in ("in_progress", "has_links", "start", "stop")
        }
        rows = _Rows.build(
            [(p.trace_ids, p.trace) for p in parts],
            [p.entity for p in parts],
            {**columns, "block": blocks_of},
            wide=any(p.start.dtype == np.int64 for p in parts),
        )
        return cls._of(tuple(blocks), tuple(sizes), rows)

    # -- the saved format -----------------------------------------------------------------------

    def to_arrow(self) -> pa.Table:
        """Return the compact index as an Arrow table; with :attr:`blocks` and
        :attr:`block_sizes`, everything :meth:`from_arrow` needs to rebuild the store.

        Columns: ``trace_id`` (dictionary of the distinct ids, int32 codes), ``entity_id``
        (uint64 when every id is 16 hex digits, else strings), ``in_progress``,
        ``has_links``, ``block`` (int32), ``start`` and ``stop`` (int32 or int64).

        >>> import pandas as pd
        >>> store = DocumentStore.from_frame(
        ...     pd.DataFrame({"trace_id": ["1-a", "1-a"], "entity_id": ["70de5b6f19ff9a0a", "70de5b6f19ff9a0b"], "document": ["{}", "[]"]})
        ... )
        >>> store.to_arrow().schema.types[:2]
        [DictionaryType(dictionary<values=large_string, indices=int32, ordered=0>), DataType(uint64)]
        >>> back = DocumentStore.from_arrow(store.to_arrow(), store.blocks, store.block_sizes)
        >>> back.to_frame().equals(store.to_frame())
        True
        """
        rows = self._rows
        codes = pa.array(rows.trace, mask=rows.trace < 0)
        return pa.table(
            {
                "trace_id": pa.DictionaryArray.from_arrays(codes, rows.trace_ids),
                "entity_id": rows.entity,
                "in_progress": rows.in_progress,
                "has_links": rows.has_links,
                "block": rows.block,
                "start": rows.start,
                "stop": rows.stop,
            }
        )

    @classmethod
    def from_arrow(
        cls, table: pa.Table, blocks: Sequence[bytes], block_sizes: Sequence[int]
    ) -> DocumentStore:
        """Return the store of a :meth:`to_arrow` table and its blocks, checking that they agree.

        The input may come from an untrusted file: every code and offset is checked against
        the blocks (vectorised) before the store is built.

        Raises
        ------
        ValueError
            Naming the first column or value that does not fit.
        """
        expected = ["trace_id", "entity_id", "in_progress", "has_links", "block", "start", "stop"]
        if table.column_names != expected:
            raise ValueError(
                f"the document index must have the columns {expected}, not {table.column_names}"
            )
        if len(blocks) != len(block_sizes):
            raise ValueError(f"{len(blocks)} blocks but {len(block_sizes)} block sizes")
        columns = {name: table.column(name).combine_chunks() for name in expected}
        trace = columns["trace_id"]
        if not (
            pa.types.is_dictionary(trace.type)
            and trace.type.index_type == pa.int32()
            and _is_text(trace.type.value_type)
        ):
            raise ValueError(
                f"trace_id must be a dictionary of strings with int32 codes, not {trace.type}"
            )
        ids = trace.dictionary.cast(pa.large_string())
        codes = pc.fill_null(trace.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)
        if len(codes) and (codes.min() < -1 or codes.max() >= len(ids)):
            raise ValueError("trace_id codes point outside their dictionary")
        entity: np.ndarray | pa.Array = columns["entity_id"]
        if entity.type == pa.uint64() and entity.null_count == 0:
            entity = entity.to_numpy()
        elif _is_text(entity.type):
            entity = entity.cast(pa.large_string())
        else:
            raise ValueError(f"entity_id must hold uint64 or strings, not {entity.type}")
        arrays = {}
        for name, kinds in (
            ("in_progress", (pa.bool_(),)),
            ("has_links", (pa.bool_(),)),
            ("block", (pa.int32(),)),
            ("start", (pa.int32(), pa.int64())),
            ("stop", (pa.int32(), pa.int64())),
        ):
            column = columns[name]
            if column.type not in kinds or column.null_count:
                raise ValueError(
                    f"{name} must hold {' or '.join(map(str, kinds))} without nulls, not {column.type}"
                )
            arrays[name] = column.to_numpy(zero_copy_only=False)
        block, start, stop = arrays["block"], arrays["start"], arrays["stop"]
        if start.dtype != stop.dtype:
            raise ValueError(
                f"start and stop must have one type, not {start.dtype} and {stop.dtype}"
            )
        sizes = np.asarray(block_sizes, dtype=np.int64)
        declared = [_zstd_content_size(b) for b in blocks]
        if declared != sizes.tolist():
            i = next(i for i, d in enumerate(declared) if d != sizes[i])
            raise ValueError(
                f"block {i} is not a zstd frame of {sizes[i]} bytes of text (its header says "
                f"{declared[i]})"
            )
        if len(block) and (block.min() < -1 or block.max() >= len(blocks)):
            raise ValueError(f"a document's block is outside the {len(blocks)} blocks")
        room = np.append(sizes, 0)[block]  # a missing text (block -1) has room 0
        if ((start < 0) | (start > stop) | (stop > room)).any():
            raise ValueError("a document's offsets fall outside its block")
        rows = _Rows(ids, codes, entity, **arrays)
        return cls._of(tuple(bytes(b) for b in blocks), tuple(int(s) for s in sizes), rows)

    # -- size and shape ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        n = len(self._blocks)
        return f"<DocumentStore: {len(self)} documents in {n} block{'s' if n != 1 else ''}>"

    @property
    def index(self) -> pd.DataFrame:
        """One row per document: the columns of :data:`INDEX`, built on each access.

        >>> DocumentStore().index.columns.tolist()
        ['trace_id', 'entity_id', 'in_progress', 'has_links', 'block', 'start', 'stop']
        """
        rows = self._rows
        return pd.DataFrame(
            {
                "trace_id": pd.array(rows.trace_strings(), dtype="str"),
                "entity_id": pd.array(rows.entity_strings(), dtype="str"),
                "in_progress": rows.in_progress,
                "has_links": rows.has_links,
                "block": rows.block,
                "start": rows.start.astype(np.int64),
                "stop": rows.stop.astype(np.int64),
            },
        )

    @property
    def blocks(self) -> tuple[bytes, ...]:
        """The compressed blocks."""
        return self._blocks

    @property
    def block_sizes(self) -> tuple[int, ...]:
        """The uncompressed size of each block (bytes of UTF-8 text).

        >>> DocumentStore().block_sizes
        ()
        """
        return self._sizes

    @property
    def nbytes(self) -> int:
        """Memory held: the compressed blocks and the index.

        >>> DocumentStore().nbytes
        0
        """
        return sum(len(b) for b in self._blocks) + self._rows.nbytes

    @property
    def text_nbytes(self) -> int:
        """Size of the UTF-8 text of the documents, uncompressed.

        >>> DocumentStore().text_nbytes
        0
        """
        rows = self._rows
        return int((rows.stop.astype(np.int64) - rows.start).sum())

    # -- selection -----------------------------------------------------------------------------

    def filter(self, mask: np.ndarray | pd.Series | Sequence[bool]) -> DocumentStore:
        """Return the store of the documents where ``mask`` (aligned with :attr:`index`) is True.

        >>> store = DocumentStore.from_frame(
        ...     pd.DataFrame({"trace_id": ["1-a", "1-b"], "entity_id": ["s1", "s2"], "document": ["{}", "[]"]})
        ... )
        >>> store.filter([False, True]).to_frame().document.tolist()
        ['[]']

        Raises
        ------
        ValueError
            When ``mask`` does not have one value per document.
        """
        keep = np.asarray(mask, dtype=bool)
        if keep.shape != (len(self),):
            raise ValueError(
                f"The mask must have one value per document ({len(self)}), but has shape {keep.shape}."
            )
        if keep.all():
            return self
        rows = self._rows.take(np.flatnonzero(keep))
        return DocumentStore._pruned(self._blocks, self._sizes, rows)

    def select_traces(self, trace_ids: Iterable[str] | pd.Series | pd.Index) -> DocumentStore:
        """Return the store of the documents of the given traces.

        >>> DocumentStore().select_traces(["1-a"]).to_frame().empty
        True
        """
        if isinstance(trace_ids, pd.Series | pd.Index):
            wanted = arrow_strings(trace_ids)
        else:
            wanted = pa.array([t for t in trace_ids if isinstance(t, str)], pa.large_string())
        return self.filter(self._rows.where_traces(wanted))

    # -- text ----------------------------------------------------------------------------------

    def to_frame(self) -> pd.DataFrame:
        """Return the ``documents`` frame: ``trace_id, entity_id, in_progress, document``.

        Each block is decompressed once.

        >>> DocumentStore().to_frame().dtypes.astype(str).tolist()
        ['str', 'str', 'bool', 'str']
        """
        rows = self._rows
        frame = pd.DataFrame(
            {
                "trace_id": pd.array(rows.trace_strings(), dtype="str"),
                "entity_id": pd.array(rows.entity_strings(), dtype="str"),
                "in_progress": rows.in_progress,
                "document": pd.array(self._texts(np.arange(len(self))), dtype="str"),
            }
        )
        return conform(frame, "documents")

    def entity_texts(self, entity_id: str) -> list[str | None]:
        """The texts stored under one entity id (several when it arrived more than once).

        None stands for a text that could not be kept.

        >>> DocumentStore().entity_texts("s1")
        []
        """
        return self._texts_where(self._rows.where_entity(entity_id))

    def trace_texts(self, trace_id: str) -> list[str | None]:
        """The texts of the documents of one trace, in the order they are stored.

        >>> DocumentStore().trace_texts("1-a")
        []
        """
        return self._texts_where(self._rows.where_traces(pa.array([trace_id], pa.large_string())))

    def linked(self) -> pd.DataFrame:
        """``trace_id, entity_id, document`` of the documents whose text contains ``"links"``.

        Only the blocks holding such documents are decompressed.

        >>> DocumentStore().linked().columns.tolist()
        ['trace_id', 'entity_id', 'document']
        """
        frame = self.filter(self._rows.has_links).to_frame()
        return frame[["trace_id", "entity_id", "document"]]

    def _texts_where(self, mask: np.ndarray) -> list[str | None]:
        texts: list[Any] = self._texts(np.flatnonzero(mask)).to_pylist()
        return texts

    def _texts(self, rows: np.ndarray) -> pa.ChunkedArray:
        """The texts of index rows ``rows``, in that order; each block decompressed once."""
        block = self._rows.block[rows]
        start = self._rows.start[rows].astype(np.int64)
        stop = self._rows.stop[rows].astype(np.int64)
        order = np.argsort(block, kind="stable")
        groups = np.split(order, np.flatnonzero(np.diff(block[order])) + 1) if len(rows) else []
        codec = _codec()
        pieces = []
        for group in groups:
            b = int(block[group[0]])
            if b < 0:
                pieces.append(pa.nulls(len(group), pa.large_string()))
                continue
            data = codec.decompress(self._blocks[b], decompressed_size=self._sizes[b])
            pieces.append(_gather(data, start[group], stop[group]))
        out = pa.chunked_array(pieces, type=pa.large_string())
        if len(order) and not (order[1:] > order[:-1]).all():
            out = out.take(pa.array(np.argsort(order)))
        return out


# -- helpers -------------------------------------------------------------------------------------


def _fields(rows: _Rows) -> dict[str, Any]:
    return {name: getattr(rows, name) for name in _Rows.__slots__}


def _rows_of_frame(index: pd.DataFrame, sizes: tuple[int, ...]) -> _Rows:
    """The compact index of a DataFrame with the columns of :data:`INDEX`."""
    index = index[list(INDEX)].astype(INDEX)
    entity = arrow_strings(index["entity_id"])
    entity = entity.combine_chunks() if isinstance(entity, pa.ChunkedArray) else entity
    packed = _hex_ids(entity)
    trace = arrow_strings(index["trace_id"])
    trace = trace.combine_chunks() if isinstance(trace, pa.ChunkedArray) else trace
    wide = bool(sizes) and max(sizes) > _INT32_MAX
    columns = {
        name: [index[name].to_numpy()]
        for name in ("in_progress", "has_links", "block", "start", "stop")
    }
    return _Rows.build(
        [_encoded(trace)], [entity if packed is None else packed], columns, wide=wide
    )


def _zstd_content_size(block: bytes) -> int | None:
    """The text size a zstd frame's header declares (None: not a frame that declares one).

    >>> _zstd_content_size(_codec().compress(b"x" * 300, asbytes=True))
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


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _bools(values: pa.Array) -> np.ndarray:
    return pc.fill_null(values, False).to_numpy(zero_copy_only=False).astype(bool, copy=False)


def _flat(values: Any, kind: pa.DataType) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = pa.array(values, kind)
    return values if values.type == kind else values.cast(kind)


def _cuts(offsets: np.ndarray, limit: int) -> list[int]:
    """Row boundaries splitting text ``offsets`` into runs of at most ``limit`` bytes (or one row)."""
    n = len(offsets) - 1
    cuts = [0]
    while cuts[-1] < n:
        lo = cuts[-1]
        hi = int(np.searchsorted(offsets, offsets[lo] + limit, side="right")) - 1
        cuts.append(min(n, max(hi, lo + 1)))
    return cuts


def _gather(data: pa.Buffer, start: np.ndarray, stop: np.ndarray) -> pa.Array:
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
