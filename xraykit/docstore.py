"""The original documents of a TraceSet, compressed in blocks.

A :class:`DocumentStore` keeps the JSON text of every segment document (and of every
subsegment sent on its own) zstd-compressed, in blocks of about a megabyte of text, with a
small index frame of one row per document: ``trace_id, entity_id, in_progress, has_links``
and where its text is (``block``, ``start``, ``stop``: byte offsets in the decompressed
block). Filtering only touches the index; the blocks are shared, never recompressed.
:meth:`DocumentStore.to_frame` gives back the ``documents`` frame of
:data:`xraykit.schema.DOCUMENTS`.

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
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xraykit.schema import conform, isin

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

_ARROW = {
    "trace_id": pa.large_string(),
    "entity_id": pa.large_string(),
    "in_progress": pa.bool_(),
    "has_links": pa.bool_(),
    "block": pa.int32(),
    "start": pa.int64(),
    "stop": pa.int64(),
}

_LINKS = '"links"'
_MAX_WAITING = 8  # blocks whose compression may be pending at once


def _codec() -> pa.Codec:
    return pa.Codec("zstd", compression_level=1)


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
        self._columns: dict[str, list[pa.Array]] = {name: [] for name in _ARROW}

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
        if "has_links" not in ids:
            ids = {**ids, "has_links": pc.fill_null(pc.match_substring(text, _LINKS), False)}
        columns = self._columns
        for name, values in ids.items():
            columns[name].append(values)
        columns["block"].append(pa.array(block, pa.int32()))
        columns["start"].append(pa.array(start, pa.int64()))
        columns["stop"].append(pa.array(stop, pa.int64()))

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
        # chunked, not concatenated: the index's strings stay in the buffers they arrived in
        table = pa.table(
            {
                name: pa.chunked_array(parts, _ARROW[name]) if parts else pa.array([], _ARROW[name])
                for name, parts in self._columns.items()
            }
        )
        index = table.to_pandas()
        blocks = tuple(b.result() if isinstance(b, Future) else b for b in self._blocks)
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self._running.clear()
        return DocumentStore._pruned(blocks, tuple(self._sizes), index)


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

    __slots__ = ("_blocks", "_index", "_sizes")

    _blocks: tuple[bytes, ...]
    _sizes: tuple[int, ...]
    _index: pd.DataFrame

    def __init__(
        self,
        blocks: Sequence[bytes] = (),
        sizes: Sequence[int] = (),
        index: pd.DataFrame | None = None,
    ) -> None:
        if len(blocks) != len(sizes):
            raise ValueError(f"{len(blocks)} blocks but {len(sizes)} sizes were passed.")
        if index is None:
            index = pd.DataFrame({c: pd.Series(dtype=t) for c, t in INDEX.items()})
        self._blocks = tuple(blocks)
        self._sizes = tuple(int(s) for s in sizes)
        self._index = index[list(INDEX)].astype(INDEX).reset_index(drop=True)

    @classmethod
    def _pruned(
        cls, blocks: tuple[bytes, ...], sizes: tuple[int, ...], index: pd.DataFrame
    ) -> DocumentStore:
        """A store keeping only the blocks that some index row points into."""
        block = index["block"].to_numpy()
        used = np.unique(block[block >= 0])
        if len(used) < len(blocks):
            renumber = np.full(len(blocks), -1, dtype=np.int32)
            renumber[used] = np.arange(len(used), dtype=np.int32)
            index = index.assign(block=np.where(block >= 0, renumber[block], -1).astype(np.int32))
            blocks = tuple(blocks[i] for i in used)
            sizes = tuple(sizes[i] for i in used)
        return cls(blocks, sizes, index)

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
        frames = []
        for store in stores:
            renumber = np.full(len(store._blocks) + 1, -1, dtype=np.int32)  # last: -1 stays -1
            for i, (data, size) in enumerate(zip(store._blocks, store._sizes, strict=True)):
                if id(data) not in seen:
                    seen[id(data)] = len(blocks)
                    blocks.append(data)
                    sizes.append(size)
                renumber[i] = seen[id(data)]
            index = store._index
            if len(index):
                frames.append(index.assign(block=renumber[index["block"].to_numpy()]))
        if not frames:
            return cls()
        return cls(blocks, sizes, pd.concat(frames, ignore_index=True))

    # -- size and shape ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        n = len(self._blocks)
        return f"<DocumentStore: {len(self)} documents in {n} block{'s' if n != 1 else ''}>"

    @property
    def index(self) -> pd.DataFrame:
        """One row per document: the columns of :data:`INDEX` (a copy; the store is immutable)."""
        return self._index.copy(deep=False)

    @property
    def blocks(self) -> tuple[bytes, ...]:
        """The compressed blocks."""
        return self._blocks

    @property
    def nbytes(self) -> int:
        """Memory held: the compressed blocks and the index.

        >>> DocumentStore().nbytes
        0
        """
        index = int(self._index.memory_usage(index=False, deep=True).sum())
        return sum(len(b) for b in self._blocks) + index

    @property
    def text_nbytes(self) -> int:
        """Size of the UTF-8 text of the documents, uncompressed.

        >>> DocumentStore().text_nbytes
        0
        """
        return int((self._index["stop"] - self._index["start"]).sum())

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
        return DocumentStore._pruned(
            self._blocks, self._sizes, self._index[keep].reset_index(drop=True)
        )

    def select_traces(self, trace_ids: Iterable[str] | pd.Series | pd.Index) -> DocumentStore:
        """Return the store of the documents of the given traces.

        >>> DocumentStore().select_traces(["1-a"]).to_frame().empty
        True
        """
        return self.filter(isin(self._index["trace_id"], trace_ids))

    # -- text ----------------------------------------------------------------------------------

    def to_frame(self) -> pd.DataFrame:
        """Return the ``documents`` frame: ``trace_id, entity_id, in_progress, document``.

        Each block is decompressed once.

        >>> DocumentStore().to_frame().dtypes.astype(str).tolist()
        ['str', 'str', 'bool', 'str']
        """
        frame = self._index[["trace_id", "entity_id", "in_progress"]].copy(deep=False)
        frame["document"] = self._texts(np.arange(len(self))).to_pandas()
        return conform(frame, "documents")

    def entity_texts(self, entity_id: str) -> list[str | None]:
        """The texts stored under one entity id (several when it arrived more than once).

        None stands for a text that could not be kept.

        >>> DocumentStore().entity_texts("s1")
        []
        """
        return self._rows_where("entity_id", entity_id)

    def trace_texts(self, trace_id: str) -> list[str | None]:
        """The texts of the documents of one trace, in the order they are stored.

        >>> DocumentStore().trace_texts("1-a")
        []
        """
        return self._rows_where("trace_id", trace_id)

    def linked(self) -> pd.DataFrame:
        """``trace_id, entity_id, document`` of the documents whose text contains ``"links"``.

        Only the blocks holding such documents are decompressed.

        >>> DocumentStore().linked().columns.tolist()
        ['trace_id', 'entity_id', 'document']
        """
        frame = self.filter(self._index["has_links"].to_numpy()).to_frame()
        return frame[["trace_id", "entity_id", "document"]]

    def _rows_where(self, column: str, value: str) -> list[str | None]:
        rows = np.flatnonzero((self._index[column] == value).to_numpy(dtype=bool, na_value=False))
        texts: list[Any] = self._texts(rows).to_pylist()
        return texts

    def _texts(self, rows: np.ndarray) -> pa.ChunkedArray:
        """The texts of index rows ``rows``, in that order; each block decompressed once."""
        block = self._index["block"].to_numpy()[rows]
        start = self._index["start"].to_numpy()[rows]
        stop = self._index["stop"].to_numpy()[rows]
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


# -- Arrow helpers -------------------------------------------------------------------------------


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
