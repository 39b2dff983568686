"""The original documents of a TraceSet, compressed in blocks.

A :class:`DocumentStore` keeps the JSON text of every segment document (and of every
subsegment sent on its own) zstd-compressed, in blocks of about a megabyte of text, with an
index of one row per document: ``trace_id, entity_id, in_progress, has_links`` and where its
text is (``block``, ``start``, ``stop``: byte offsets in the decompressed block). Filtering
only touches the index; the blocks are shared, never recompressed.
:meth:`DocumentStore.to_frame` gives back the ``documents`` frame of
:data:`xraykit.schema.DOCUMENTS`.

The index is an Arrow table of about 40 bytes a document (90 as a DataFrame): trace ids as
int32 codes into a dictionary of the distinct ids, entity ids of 16 hex digits (X-Ray's) as
uint64, flags as bits, offsets as int32 while every block is under 2 GiB.
:attr:`DocumentStore.index` builds the DataFrame of :data:`INDEX` on demand;
:meth:`DocumentStore.to_arrow` and :meth:`DocumentStore.from_arrow` hand the table and the
blocks, as they are, to the saved format (:mod:`xraykit.io.saved`).

A loader builds one chunk by chunk with :class:`DocumentStoreBuilder`, so that the
uncompressed text never accumulates.

Examples
--------
>>> import pyarrow as pa
>>> from xraykit.io.docstore import DocumentStoreBuilder
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

from xraykit.exceptions import ArgumentError, TraceParseError
from xraykit.io.docindex import (
    INDEX_COLUMNS,
    TRACE_TYPE,
    block_cuts,
    empty_index,
    flat_array,
    gather_texts,
    hex_strings,
    index_part,
    is_text,
    joined,
    numbers,
    packed_hex_ids,
    renumbered,
    trace_codes,
    used_codes,
    zstd_content_size,
)
from xraykit.io.memory import POOL as _POOL
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
            raise ArgumentError(f"block_bytes must be positive, but {block_bytes} was passed.")
        self._block_bytes = block_bytes
        self._codec = _codec()
        # compressed blocks, or their compression still running in the background
        self._blocks: list[bytes | Future[bytes]] = []
        self._pool: ThreadPoolExecutor | None = None
        self._running: deque[Future[bytes]] = deque()
        self._sizes: list[int] = []
        self._parts: list[pa.Table] = []  # each chunk's index, compact at once
        # or, for texts added alone, where each is: (block, start, stop) per chunk
        self._where: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

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
        ArgumentError
            When the arrays differ in length.
        """
        ids = {
            "trace_id": flat_array(trace_id, pa.large_string()),
            "entity_id": flat_array(entity_id, pa.large_string()),
            "in_progress": flat_array(in_progress, pa.bool_()),
        }
        if has_links is not None:
            ids["has_links"] = flat_array(has_links, pa.bool_())
        if not isinstance(document, pa.Array | pa.ChunkedArray):
            document = pa.array(document, pa.large_string())
        lengths = {len(a) for a in ids.values()} | {len(document)}
        if len(lengths) != 1:
            raise ArgumentError(
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

    def add_texts(self, document: pa.Array) -> None:
        """Add documents' JSON text alone (a string array); what else the store keeps of them
        comes at the end, to :meth:`finish_indexed`, in the same order."""
        self._add_text(None, document)

    def finish_indexed(
        self,
        trace_code: np.ndarray,
        trace_ids: pa.Array,
        entity_id: pa.Array,
        in_progress: np.ndarray,
        has_links: np.ndarray,
    ) -> DocumentStore:
        """Return the store of the texts added with :meth:`add_texts`, given for each its trace
        (``trace_code``: its number among ``trace_ids``), entity id and flags.

        Raises
        ------
        ArgumentError
            When these do not have one value per text added.
        """
        if self._where:
            where = [np.concatenate(parts) for parts in zip(*self._where, strict=True)]
        else:
            where = [np.zeros(0, np.int32)] * 3
        rows = len(where[0])
        if self._parts:
            raise ArgumentError(
                "finish_indexed() finishes texts added with add_texts(), not add_chunk()"
            )
        if not len(trace_code) == len(entity_id) == len(in_progress) == len(has_links) == rows:
            raise ArgumentError(
                f"{rows} texts were added, but the index has {len(trace_code)} rows."
            )
        self._where = []
        codes = pa.array(np.asarray(trace_code, dtype=np.int32))
        part = index_part(
            pa.DictionaryArray.from_arrays(codes, trace_ids),
            entity_id,
            pa.array(in_progress, memory_pool=_POOL),
            pa.array(has_links, memory_pool=_POOL),
            *where,
        )
        self._parts = [part]
        return self.finish()

    def _add_text(self, ids: dict[str, pa.Array] | None, text: pa.Array) -> None:
        if not is_text(text.type):
            text = text.cast(pa.large_string())
        n = len(text)
        _validity, offsets_buffer, data = text.buffers()
        width = np.int64 if pa.types.is_large_string(text.type) else np.int32
        offsets = np.frombuffer(offsets_buffer, dtype=width)[text.offset : text.offset + n + 1]
        offsets = offsets.astype(np.int64)
        cuts = block_cuts(offsets, self._block_bytes)
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
        if ids is None:  # the rest comes to finish_indexed
            width = (
                np.int32
                if self._block_bytes <= np.iinfo(np.int32).max
                and stop.max(initial=0) <= np.iinfo(np.int32).max
                else np.int64
            )
            self._where.append((block, start.astype(width), stop.astype(width)))
            return
        links = ids.get("has_links")
        if links is None:
            links = pc.match_substring(text, _LINKS)
        index = (ids["trace_id"], ids["entity_id"], ids["in_progress"], links, block, start, stop)
        self._parts.append(index_part(*index))

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
        sizes = tuple(self._sizes)
        parts, self._parts, self._blocks, self._sizes = self._parts, [], [], []
        return DocumentStore._of(blocks, sizes, joined(parts, sizes))


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
    _index: pa.Table  # the compact index of the module docstring, one chunk per column

    def __init__(
        self,
        blocks: Sequence[bytes] = (),
        sizes: Sequence[int] = (),
        index: pd.DataFrame | None = None,
    ) -> None:
        if len(blocks) != len(sizes):
            raise ArgumentError(f"{len(blocks)} blocks but {len(sizes)} sizes were passed.")
        self._blocks = tuple(blocks)
        self._sizes = tuple(int(s) for s in sizes)
        if index is None:
            self._index = empty_index()
            return
        frame = index[list(INDEX)].astype(INDEX)
        ids = (
            flat_array(arrow_strings(frame[n]), pa.large_string())
            for n in ("trace_id", "entity_id")
        )
        flags = (pa.array(frame[n].to_numpy()) for n in ("in_progress", "has_links"))
        where = (frame[n].to_numpy() for n in ("block", "start", "stop"))
        self._index = joined([index_part(*ids, *flags, *where)], self._sizes)

    @classmethod
    def _of(
        cls, blocks: tuple[bytes, ...], sizes: tuple[int, ...], index: pa.Table
    ) -> DocumentStore:
        """A store of ``index``, keeping only the blocks and trace ids some row points to."""
        if not index.num_rows:
            index = empty_index()
        elif any(column.num_chunks != 1 for column in index.columns):
            index = index.unify_dictionaries().combine_chunks()
        block = numbers(index, "block")
        used = used_codes(block, len(blocks))
        if not used.all():
            keep = np.flatnonzero(used)
            index = index.set_column(4, "block", pa.array(renumbered(used)[block]))
            blocks, sizes = tuple(blocks[i] for i in keep), tuple(sizes[i] for i in keep)
        trace = index.column("trace_id").chunk(0)
        codes = trace_codes(trace)
        used = used_codes(codes, len(trace.dictionary))
        if not used.all():
            codes = renumbered(used)[codes]
            ids = trace.dictionary.filter(pa.array(used))
            trace = pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), ids)
            index = index.set_column(0, "trace_id", trace)
        store = cls.__new__(cls)
        store._blocks, store._sizes, store._index = blocks, sizes, index
        return store

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
        parts = []
        for store in stores:
            renumber = np.full(len(store._blocks) + 1, -1, dtype=np.int32)  # last: -1 stays -1
            for i, (data, size) in enumerate(zip(store._blocks, store._sizes, strict=True)):
                if id(data) not in seen:
                    seen[id(data)] = len(blocks)
                    blocks.append(data)
                    sizes.append(size)
                renumber[i] = seen[id(data)]
            block = pa.array(renumber[numbers(store._index, "block")])
            parts.append(store._index.set_column(4, "block", block))
        return cls._of(tuple(blocks), tuple(sizes), joined(parts, sizes))

    # -- the saved format -----------------------------------------------------------------------

    def to_arrow(self) -> pa.Table:
        """Return the compact index, which with :attr:`blocks` and :attr:`block_sizes` is all
        :meth:`from_arrow` needs to rebuild the store.

        Columns: ``trace_id`` (int32 codes into a dictionary of the distinct ids),
        ``entity_id`` (uint64 when every id is 16 hex digits, else strings), ``in_progress``,
        ``has_links``, ``block`` (int32), ``start`` and ``stop`` (int32, or int64).

        >>> import pandas as pd
        >>> ids = ["70de5b6f19ff9a0a", "70de5b6f19ff9a0b"]
        >>> store = DocumentStore.from_frame(
        ...     pd.DataFrame({"trace_id": ["1-a", "1-a"], "entity_id": ids, "document": ["{}", "[]"]})
        ... )
        >>> [str(t) for t in store.to_arrow().schema.types[:2]]
        ['dictionary<values=large_string, indices=int32, ordered=0>', 'uint64']
        >>> back = DocumentStore.from_arrow(store.to_arrow(), store.blocks, store.block_sizes)
        >>> back.to_frame().equals(store.to_frame())
        True
        """
        return self._index

    @classmethod
    def from_arrow(
        cls, table: pa.Table, blocks: Sequence[bytes], block_sizes: Sequence[int]
    ) -> DocumentStore:
        """Return the store of a :meth:`to_arrow` table and its blocks, checking they agree.

        They may come from an untrusted file: every type, code and offset is checked against
        the blocks (vectorised), and each block's zstd header must declare its size.

        Raises
        ------
        ArgumentError
            Saying what does not fit.
        """
        if table.column_names != list(INDEX_COLUMNS):
            raise ArgumentError(
                f"the document index must have the columns {list(INDEX_COLUMNS)}, "
                f"not {table.column_names}"
            )
        kinds = [table.schema.field(n).type for n in INDEX_COLUMNS]
        allowed = [(TRACE_TYPE,), (pa.uint64(), pa.large_string()), (pa.bool_(),), (pa.bool_(),)]
        allowed += [(pa.int32(),), (kinds[6],), (pa.int32(), pa.int64())]
        if any(kind not in ok for kind, ok in zip(kinds, allowed, strict=True)):
            raise ArgumentError(
                f"the document index must have the types of to_arrow(), not {kinds}"
            )
        if any(table.column(n).null_count for n in INDEX_COLUMNS[2:]) or (
            kinds[1] == pa.uint64() and table.column(1).null_count
        ):
            raise ArgumentError("the document index has nulls where it must have values")
        if len(blocks) != len(block_sizes):
            raise ArgumentError(f"{len(blocks)} blocks but {len(block_sizes)} block sizes")
        table = table.unify_dictionaries().combine_chunks() if table.num_rows else empty_index()
        trace = table.column("trace_id").chunk(0)
        codes = trace_codes(trace)
        if len(codes) and codes.max() >= len(trace.dictionary):
            raise ArgumentError("trace_id codes point outside their dictionary")
        sizes = [int(s) for s in block_sizes]
        declared = [zstd_content_size(b) for b in blocks]
        if declared != sizes:
            i = next(i for i, d in enumerate(declared) if d != sizes[i])
            raise ArgumentError(
                f"block {i} is not a zstd frame of {sizes[i]} bytes of text (its header says "
                f"{declared[i]})"
            )
        block, start, stop = (numbers(table, n) for n in ("block", "start", "stop"))
        if len(block) and (block.min() < -1 or block.max() >= len(blocks)):
            raise ArgumentError(f"a document's block is outside the {len(blocks)} blocks")
        room = np.append(np.asarray(sizes, dtype=np.int64), 0)[block]  # no text (-1): room 0
        if ((start < 0) | (start > stop) | (stop > room)).any():
            raise ArgumentError("a document's offsets fall outside its block")
        return cls._of(tuple(bytes(b) for b in blocks), tuple(sizes), table)

    # -- size and shape ------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._index.num_rows

    def __repr__(self) -> str:
        n = len(self._blocks)
        return f"<DocumentStore: {len(self)} documents in {n} block{'s' if n != 1 else ''}>"

    @property
    def index(self) -> pd.DataFrame:
        """One row per document: the columns of :data:`INDEX`, built on each access.

        >>> DocumentStore().index.dtypes.astype(str).tolist()
        ['str', 'str', 'bool', 'bool', 'int32', 'int64', 'int64']
        """
        frame = self._frame()
        frame["has_links"] = numbers(self._index, "has_links")
        frame["block"] = numbers(self._index, "block")
        for name in ("start", "stop"):
            frame[name] = numbers(self._index, name).astype(np.int64)
        return frame

    @property
    def blocks(self) -> tuple[bytes, ...]:
        """The compressed blocks."""
        return self._blocks

    @property
    def block_sizes(self) -> tuple[int, ...]:
        """The size of each block's text, uncompressed (bytes).

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
        index = self._index.get_total_buffer_size() if len(self) else 0
        return sum(len(b) for b in self._blocks) + index

    @property
    def text_nbytes(self) -> int:
        """Size of the UTF-8 text of the documents, uncompressed.

        >>> DocumentStore().text_nbytes
        0
        """
        stop = numbers(self._index, "stop").astype(np.int64)
        return int((stop - numbers(self._index, "start")).sum())

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
        ArgumentError
            When ``mask`` does not have one value per document.
        """
        keep = np.asarray(mask, dtype=bool)
        if keep.shape != (len(self),):
            raise ArgumentError(
                f"The mask must have one value per document ({len(self)}), but has shape {keep.shape}."
            )
        return DocumentStore._of(self._blocks, self._sizes, self._index.filter(pa.array(keep)))

    def select_traces(self, trace_ids: Iterable[str] | pd.Series | pd.Index) -> DocumentStore:
        """Return the store of the documents of the given traces.

        >>> DocumentStore().select_traces(["1-a"]).to_frame().empty
        True
        """
        if isinstance(trace_ids, pd.Series | pd.Index):
            wanted = arrow_strings(trace_ids)
        else:
            wanted = pa.array([t for t in trace_ids if isinstance(t, str)], pa.large_string())
        return self.filter(self._of_traces(wanted))

    # -- text ----------------------------------------------------------------------------------

    def to_frame(self) -> pd.DataFrame:
        """Return the ``documents`` frame: ``trace_id, entity_id, in_progress, document``.

        Each block is decompressed once.

        >>> DocumentStore().to_frame().dtypes.astype(str).tolist()
        ['str', 'str', 'bool', 'str']
        """
        frame = self._frame()
        frame["document"] = pd.array(self._texts(np.arange(len(self))), dtype="str")
        return conform(frame, "documents")

    def entity_texts(self, entity_id: str) -> list[str | None]:
        """The texts stored under one entity id (several when it arrived more than once).

        None stands for a text that could not be kept.

        >>> DocumentStore().entity_texts("s1")
        []
        """
        entity = self._index.column("entity_id").chunk(0)
        if entity.type == pa.uint64():
            packed = packed_hex_ids(pa.array([entity_id], pa.large_string()))
            hit = entity.to_numpy() == packed[0] if packed is not None else np.zeros(0, bool)
        else:
            hit = pc.fill_null(pc.equal(entity, entity_id), False).to_numpy(zero_copy_only=False)
        return self._texts_of(hit)

    def trace_texts(self, trace_id: str) -> list[str | None]:
        """The texts of the documents of one trace, in the order they are stored.

        >>> DocumentStore().trace_texts("1-a")
        []
        """
        return self._texts_of(self._of_traces(pa.array([trace_id], pa.large_string())))

    def linked(self) -> pd.DataFrame:
        """``trace_id, entity_id, document`` of the documents whose text contains ``"links"``.

        Only the blocks holding such documents are decompressed.

        >>> DocumentStore().linked().columns.tolist()
        ['trace_id', 'entity_id', 'document']
        """
        frame = self.filter(numbers(self._index, "has_links")).to_frame()
        return frame[["trace_id", "entity_id", "document"]]

    def _frame(self) -> pd.DataFrame:
        """``trace_id, entity_id, in_progress`` as a DataFrame."""
        index = self._index
        entity = index.column("entity_id").chunk(0)
        if entity.type == pa.uint64():
            entity = hex_strings(entity.to_numpy())
        return pd.DataFrame(
            {
                "trace_id": pd.array(
                    index.column("trace_id").chunk(0).cast(pa.large_string()), dtype="str"
                ),
                "entity_id": pd.array(entity, dtype="str"),
                "in_progress": numbers(index, "in_progress"),
            }
        )

    def _of_traces(self, trace_ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Whether each document belongs to one of ``trace_ids``."""
        trace = self._index.column("trace_id").chunk(0)
        hit = pc.fill_null(pc.is_in(trace.dictionary, value_set=trace_ids), False)
        return np.append(hit.to_numpy(zero_copy_only=False), False)[trace_codes(trace)]  # -1: False

    def _texts_of(self, mask: np.ndarray) -> list[str | None]:
        texts: list[Any] = self._texts(np.flatnonzero(mask)).to_pylist()
        return texts

    def _texts(self, rows: np.ndarray) -> pa.ChunkedArray:
        """The texts of index rows ``rows``, in that order; each block decompressed once."""
        block = numbers(self._index, "block")[rows]
        start = numbers(self._index, "start")[rows].astype(np.int64)
        stop = numbers(self._index, "stop")[rows].astype(np.int64)
        order = np.argsort(block, kind="stable")
        groups = np.split(order, np.flatnonzero(np.diff(block[order])) + 1) if len(rows) else []
        codec = _codec()
        pieces = []
        for group in groups:
            b = int(block[group[0]])
            if b < 0:
                pieces.append(pa.nulls(len(group), pa.large_string()))
                continue
            try:
                data = codec.decompress(self._blocks[b], decompressed_size=self._sizes[b])
            except OSError as exc:  # checked against its size only when it was read: crafted
                raise TraceParseError(
                    f"Document block {b} cannot be decompressed ({exc}): the file these "
                    "documents were read from was altered. Load the trace file again."
                ) from exc
            pieces.append(gather_texts(data, start[group], stop[group]))
        out = pa.chunked_array(pieces, type=pa.large_string())
        if len(order) and not (order[1:] > order[:-1]).all():
            out = out.take(pa.array(np.argsort(order)))
        return out
