"""A saved TraceSet: one file that opens about ten times faster than loading its JSON.

The file (version 2) is a zip archive whose members are all *stored* (not zip-compressed):

``<frame>.arrow``
    each frame (the seven of a TraceSet, and ``summaries`` when there are some) as an Arrow
    IPC file of one record batch, buffers zstd-compressed (level 1), with pandas' schema
    metadata, so dtypes, time zones and nullable integers come back as they were. A column
    of Python objects (annotation and metadata ``value``) is all nulls there; its values are
``<frame>.<column position>.json``
    one JSON array, decoded by a single ``orjson.loads``. A value orjson cannot write (an int
    beyond 64 bits, nesting deeper than 255, a NaN or infinity) is ``null`` there, and its
    text, from an encoder without recursion, is in the manifest under its row.
``documents.arrow`` and ``documents.zst``
    the :class:`~xraykit.docstore.DocumentStore` as it is in memory: its compact index
    (:meth:`~xraykit.docstore.DocumentStore.to_arrow`) and its zstd blocks one after the
    other, verbatim (never decompressed to save, nor recompressed to open).
``xraykit.json``
    the manifest: ``format`` ``"xraykit-traceset"``, ``version`` 2, ``frames`` (each
    frame's ``rows`` and ``json`` columns: ``{position: {row: text}}``), and ``blocks``
    (``[compressed bytes, text bytes]`` of each block, in ``documents.zst`` order).

Why: ``load_file`` knows a saved TraceSet by the zip signature, and stored members are read
with one read each at their offsets, checked against their CRC-32 (a damaged file is an
error, never wrong data). Arrow IPC rather than Parquet: opening a frame is decompressing
its buffers, with no page decoding, and strings come back as the Arrow buffers pandas' ``str``
columns are made of. zstd level 1 makes the frames six times smaller for about 50 ms (on
two threads), less than reading and checking the uncompressed bytes would take; one record
batch per frame, as the file is always read whole. Files of version 1 (a zip of Parquet
files, the documents as text) are still read. Every size and offset is checked against the
file, and Arrow validates every table in full, so a damaged or hostile file raises
:class:`~xraykit.exceptions.TraceParseError`. The file is read, never memory-mapped, and
written beside its target, then renamed over it.

Examples
--------
>>> import tempfile, zipfile, xraykit
>>> from xraykit.saved import read_saved
>>> ts = xraykit.load_sample("shop")
>>> with tempfile.TemporaryDirectory() as d:
...     path = ts.save(f"{d}/shop.traceset")
...     members = zipfile.ZipFile(path).namelist()
...     saved = read_saved(path)
>>> members[:4], members[-3:]
(['traces.arrow', 'segments.arrow', 'subsegments.arrow', 'annotations.arrow'], ['documents.arrow', 'documents.zst', 'xraykit.json'])
>>> saved.frames["metadata"].equals(ts.metadata), saved.documents.to_frame().equals(ts.raw_documents)
(True, True)
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import struct
import uuid
import zipfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from xraykit.docstore import DocumentStore
from xraykit.exceptions import TraceParseError
from xraykit.schema import FRAMES, SCHEMAS

__all__ = ["FORMAT", "VERSION", "Saved", "read_saved", "write_saved"]

FORMAT = "xraykit-traceset"
#: The version written; versions 1 and 2 are read.
VERSION = 2

_MANIFEST = "xraykit.json"
_BLOCKS = "documents.zst"
_INDEX = "documents.arrow"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # a fixed member date: the same TraceSet saves to the same bytes
_ZIP32 = (1 << 31) - 1  # beyond this a member needs zip64 headers
_IPC = ipc.IpcWriteOptions(compression=pa.Codec("zstd", compression_level=1))
# orjson hands these to `default` (which refuses them) rather than writing them as strings
_ORJSON = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_PASSTHROUGH_DATETIME
_CHUNK = 1 << 14  # values per JSON array of an object column
_JSON = ("arrays", "odd")
_FIX = "Save it again with TraceSet.save(), or load the trace file it was saved from."


class Saved(NamedTuple):
    """What a saved file holds: the frames by name, the documents and the summaries."""

    frames: dict[str, pd.DataFrame]
    documents: DocumentStore
    summaries: pd.DataFrame | None


# -- writing -------------------------------------------------------------------------------------


def write_saved(
    path: str | os.PathLike[str],
    frames: Mapping[str, pd.DataFrame],
    documents: DocumentStore,
    summaries: pd.DataFrame | None = None,
) -> Path:
    """Write frames, documents and summaries to ``path`` in the saved format; return the path.

    The file is written beside ``path`` under a temporary name, then renamed over it: a
    reader of the old file, or a crash while writing, never sees half a file.

    Raises
    ------
    TypeError
        When an object column holds something that is not a JSON value.

    Examples
    --------
    >>> import tempfile, xraykit
    >>> ts = xraykit.load_sample("shop")
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = write_saved(f"{d}/shop.traceset", ts.frames, ts._documents)
    ...     read_saved(path).frames["traces"].equals(ts.traces)
    True
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(temporary, "xb") as f, zipfile.ZipFile(f, "w") as archive:
            _write(archive, frames, documents, summaries)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def _write(
    archive: zipfile.ZipFile,
    frames: Mapping[str, pd.DataFrame],
    documents: DocumentStore,
    summaries: pd.DataFrame | None,
) -> None:
    described: dict[str, Any] = {}
    named = dict(frames) if summaries is None else {**frames, "summaries": summaries}
    for name, frame in named.items():
        objects = [i for i, dtype in enumerate(frame.dtypes) if pd.api.types.is_object_dtype(dtype)]
        bare = frame.copy(deep=False)
        for i in objects:  # all nulls in the Arrow table; the values go to a JSON member
            bare.isetitem(i, np.full(len(frame), None, dtype=object))
        _put(archive, f"{name}.arrow", _ipc_bytes(pa.Table.from_pandas(bare, preserve_index=False)))
        columns = {}
        for i in objects:
            arrays, odd = _json_arrays(frame.iloc[:, i], f"{name}[{frame.columns[i]!r}]")
            _put(archive, f"{name}.{i}.json", *arrays)
            columns[str(i)] = {"arrays": [len(a) for a in arrays], "odd": odd}
        described[name] = {"rows": len(frame), "json": columns}
    _put(archive, _INDEX, _ipc_bytes(documents.to_arrow()))
    _put(archive, _BLOCKS, *documents.blocks)
    blocks = [[len(b), s] for b, s in zip(documents.blocks, documents.block_sizes, strict=True)]
    manifest = {"format": FORMAT, "version": VERSION, "frames": described, "blocks": blocks}
    _put(archive, _MANIFEST, orjson.dumps(manifest))


def _ipc_bytes(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, table.schema, options=_IPC) as writer:
        writer.write_table(table, max_chunksize=max(table.num_rows, 1))
    return sink.getvalue()


def _put(archive: zipfile.ZipFile, name: str, *pieces: Any) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.external_attr = 0o644 << 16
    size = sum(memoryview(p).nbytes for p in pieces)
    with archive.open(info, "w", force_zip64=size > _ZIP32) as member:
        for piece in pieces:
            member.write(piece)


def _json_arrays(column: pd.Series, where: str) -> tuple[list[bytes], dict[str, str]]:
    """The values as JSON arrays of :data:`_CHUNK` values, and the text of the values orjson
    cannot write, by row (null in the arrays)."""
    values = column.tolist()
    # orjson writes NaN and infinities as null, and refuses NaT and NA: those go by row
    odd = {r for r, v in enumerate(values) if isinstance(v, float) and not math.isfinite(v)}
    odd.update(int(r) for r in np.flatnonzero(column.isna().to_numpy()) if values[r] is not None)
    arrays = []
    for first in range(0, len(values), _CHUNK):
        part = values[first : first + _CHUNK]
        try:
            arrays.append(orjson.dumps(part, default=_refuse, option=_ORJSON))
        except orjson.JSONEncodeError:  # an int beyond 64 bits, deep nesting: value by value
            texts = []
            for row, value in enumerate(part, first):
                try:
                    texts.append(b"null" if row in odd else orjson.dumps(value, option=_ORJSON))
                except orjson.JSONEncodeError:
                    odd.add(row)
                    texts.append(b"null")
            arrays.append(b"[" + b",".join(texts) + b"]")
    special = {}
    for row in sorted(odd):
        try:
            special[str(row)] = _dumps(values[row])
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{where} row {row} holds {values[row]!r}, which a saved TraceSet cannot keep "
                f"({exc}): values must be JSON values (None, bool, int, float, str, and lists and "
                "dicts of them). Convert the column before saving."
            ) from exc
    return arrays, special


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not a JSON value")


class _Raw(str):
    """Text :func:`_dumps` writes as it is (brackets, commas, keys)."""


def _dumps(value: Any) -> str:
    """JSON text of ``value`` at any depth, without recursion; non-finite floats as Python's json
    module writes them (NaN, Infinity)."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, np.generic):
            item = item.item()
        if type(item) is _Raw:
            out.append(item)
        elif item is None or isinstance(item, bool):
            out.append("null" if item is None else "true" if item else "false")
        elif isinstance(item, int):
            out.append(int.__repr__(item))
        elif isinstance(item, float):
            out.append(float.__repr__(item) if math.isfinite(item) else json.dumps(item))
        elif isinstance(item, str):
            out.append(json.encoder.encode_basestring_ascii(item))
        elif isinstance(item, list | tuple):
            out.append("[")
            stack.append(_Raw("]"))
            for i, child in enumerate(reversed(item)):
                stack.extend((_Raw(","), child) if i else (child,))
        elif isinstance(item, dict) and all(isinstance(k, str) for k in item):
            out.append("{")
            stack.append(_Raw("}"))
            for i, (key, child) in enumerate(reversed(item.items())):
                key_text = _Raw(json.encoder.encode_basestring_ascii(key) + ":")
                stack.extend((_Raw(","), child, key_text) if i else (child, key_text))
        else:
            raise TypeError(f"{type(item).__name__} is not a JSON value")
    return "".join(out)


_TOKEN = re.compile(
    r"""\s*(?:(?P<open>[\[{])|(?P<close>[\]}])|(?P<sep>[,:])|(?P<string>"(?:[^"\\]|\\.)*")"""
    r"""|(?P<number>-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|NaN|-?Infinity)"""
    r"""|(?P<word>true|false|null))"""
)
_WORDS = {"true": True, "false": False, "null": None}


def _loads(text: str) -> Any:
    """Parse JSON text (as :func:`_dumps` writes it) at any depth, without recursion.

    Raises
    ------
    ValueError
        When ``text`` is not one JSON value.
    """
    stack: list[Any] = []  # the open lists and dicts
    keys: list[Any] = []  # each open dict's pending key (None for a list, and between pairs)
    result, want, pos = None, "value", 0  # want: "value", "key", ":", "," (or a close), "end"
    while m := _TOKEN.match(text, pos):
        pos, kind = m.end(), m.lastgroup or ""
        token = m.group(kind)
        top = stack[-1] if stack else None
        is_list = isinstance(top, list)
        if (
            kind == "close"
            and top is not None
            and token == ("]" if is_list else "}")
            and (want == "," or (not top and want == ("value" if is_list else "key")))
        ):
            value = stack.pop()
            keys.pop()
        elif kind == "sep" and want == token:
            want = "key" if token == "," and not is_list else "value"
            continue
        elif kind == "string" and want == "key":
            keys[-1], want = json.loads(token), ":"
            continue
        elif want != "value" or kind in ("close", "sep"):
            raise ValueError(f"unexpected {token!r} at {m.start(kind)} of a saved JSON value")
        elif kind == "open":
            stack.append([] if token == "[" else {})
            keys.append(None)
            want = "value" if token == "[" else "key"
            continue
        elif kind == "number":
            value = int(token) if token.lstrip("-").isdigit() else float(token)
        else:
            value = json.loads(token) if kind == "string" else _WORDS[token]
        if not stack:  # a complete value: the result, or the next item of its container
            result, want = value, "end"
            continue
        if isinstance(stack[-1], list):
            stack[-1].append(value)
        else:
            stack[-1][keys[-1]] = value
            keys[-1] = None
        want = ","
    if want != "end" or text[pos:].strip():
        raise ValueError(f"a saved JSON value ends early or has extra text at {pos}")
    return result


# -- reading -------------------------------------------------------------------------------------

_DAMAGE = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    struct.error,
    EOFError,
    OSError,
    ValueError,  # orjson's, Arrow's ArrowInvalid, and ours
    KeyError,
    IndexError,
    TypeError,
    OverflowError,
    NotImplementedError,
    RuntimeError,  # zipfile: an encrypted member
    pa.ArrowException,  # ArrowMemoryError among them
)


def read_saved(source: str | os.PathLike[str] | IO[bytes]) -> Saved:
    """Read a file written by :func:`write_saved` (or by ``TraceSet.save`` of version 1).

    Parameters
    ----------
    source : str, Path or binary file
        A path, or a file already open for reading (it is not closed). A stream that cannot
        seek is read into memory first. The file is read, never memory-mapped.

    Returns
    -------
    Saved
        ``frames`` (the seven frames by name), ``documents`` and ``summaries`` (or None).

    Raises
    ------
    TraceParseError
        When the file is not a saved TraceSet, or is damaged or truncated.

    Examples
    --------
    >>> import io, xraykit
    >>> from xraykit.exceptions import TraceParseError
    >>> try:
    ...     read_saved(io.BytesIO(b"PK\\x03\\x04 and then nothing"))
    ... except TraceParseError as exc:
    ...     print(str(exc)[:62])
    <stream> looks like a saved TraceSet but cannot be read: it is
    """
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as f:
            return _read(f, Path(source).name)
    name = Path(str(getattr(source, "name", "") or "<stream>")).name
    seekable = getattr(source, "seekable", None)
    if not (callable(seekable) and seekable()):
        source = io.BytesIO(source.read())
    return _read(source, name)


def _read(f: IO[bytes], name: str) -> Saved:
    try:
        size = f.seek(0, os.SEEK_END)
        with zipfile.ZipFile(f) as archive:
            members = _Members(archive, size, name)
            manifest = orjson.loads(members.read(_MANIFEST))
            _check(isinstance(manifest, dict), "a manifest object", manifest)
            found = (manifest.get("format"), manifest.get("version"))
            _check(found[0] == FORMAT, f"a manifest of format {FORMAT!r}", found[0])
            if found[1] == 1:
                return _read_v1(members, manifest)
            if isinstance(found[1], int) and found[1] > VERSION:
                raise TraceParseError(
                    f"{name} was saved by a newer xraykit (format version {found[1]}); this "
                    f"one reads versions 1 to {VERSION}. Upgrade xraykit: pip install -U xraykit",
                    source=name,
                )
            _check(found[1] == VERSION, f"format version 1 or {VERSION}", found[1])
            return _read_v2(members, manifest)
    except TraceParseError:
        raise
    except _DAMAGE as exc:
        raise TraceParseError(
            f"{name} looks like a saved TraceSet but cannot be read: {_said(exc)}. {_FIX}",
            source=name,
        ) from exc


class _Damaged(ValueError):
    """What was expected and what came: the reason a saved file cannot be read."""


def _check(ok: bool, expected: str, found: Any) -> None:
    if not ok:
        text = repr(found)
        raise _Damaged(
            f"expected {expected}, but found {text[:200]}{'…' if len(text) > 200 else ''}"
        )


def _said(exc: BaseException) -> str:
    if isinstance(exc, _Damaged):
        return str(exc)
    if isinstance(exc, zipfile.BadZipFile | EOFError | struct.error):
        return f"it is not a complete zip file ({exc}); it may be truncated or damaged"
    return f"{type(exc).__name__}: {exc}"


class _Members:
    """The stored members of a zip file, read whole after checking their sizes."""

    def __init__(self, archive: zipfile.ZipFile, size: int, name: str) -> None:
        self.archive, self.size, self.name = archive, size, name

    def info(self, member: str) -> zipfile.ZipInfo:
        try:
            info = self.archive.getinfo(member)
        except KeyError:
            raise _Damaged(
                f"it is a zip file without the member {member!r} a saved TraceSet has "
                f"(its members: {self.archive.namelist()[:10]!r})"
            ) from None
        _check(info.compress_type == zipfile.ZIP_STORED, f"{member} stored", info.compress_type)
        _check(not info.flag_bits & 1, f"{member} not encrypted", "an encrypted member")
        _check(
            info.file_size == info.compress_size
            and info.header_offset + info.compress_size <= self.size,
            f"{member} to fit in the file of {self.size} bytes",
            f"{info.compress_size} bytes at offset {info.header_offset}",
        )
        return info

    def read(self, member: str) -> bytes:
        return self.archive.read(self.info(member))  # checks the CRC-32

    def pieces(self, member: str, lengths: list[int]) -> list[bytes]:
        """The member as consecutive pieces of the given lengths, which must cover it exactly."""
        info = self.info(member)
        _check(
            sum(lengths) == info.file_size,
            f"blocks filling {member}'s {info.file_size} bytes",
            sum(lengths),
        )
        with self.archive.open(info) as f:
            pieces = [f.read(n) for n in lengths]
            f.read(1)  # at the end: the CRC-32 is checked
        _check(
            all(len(p) == n for p, n in zip(pieces, lengths, strict=True)),
            "whole blocks",
            "a short read",
        )
        return pieces


def _read_v2(members: _Members, manifest: dict[str, Any]) -> Saved:
    described = manifest.get("frames")
    _check(isinstance(described, dict), "frames described in the manifest", described)
    unknown = set(described) - {*FRAMES, "summaries"}
    _check(not unknown and set(FRAMES) <= set(described), f"frames {FRAMES}", sorted(described))
    for name, entry in described.items():
        _check(
            isinstance(entry, dict)
            and type(entry.get("rows")) is int
            and isinstance(entry.get("json"), dict),
            f"the rows and JSON columns of {name}",
            entry,
        )
    blocks = manifest.get("blocks")
    _check(
        isinstance(blocks, list)
        and all(
            isinstance(b, list) and len(b) == 2 and all(type(n) is int and n >= 0 for n in b)
            for b in blocks
        ),
        "blocks as [compressed bytes, text bytes]",
        blocks,
    )
    # every member is read (and its CRC checked) first; then a worker thread decodes the Arrow
    # tables, which releases the GIL, while this one builds the Python objects of the JSON
    raw = {name: members.read(f"{name}.arrow") for name in (*described, "documents")}
    texts = members.pieces(_BLOCKS, [b[0] for b in blocks])
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xraykit-open") as pool:
        tables = {name: pool.submit(_table, data) for name, data in raw.items()}
        del raw
        values = {name: _json_columns(members, name, entry) for name, entry in described.items()}
        frames = {
            name: _frame(name, tables[name].result(), entry["rows"], values[name])
            for name, entry in described.items()
        }
        index = tables["documents"].result()
    documents = DocumentStore.from_arrow(index, texts, [b[1] for b in blocks])
    summaries = frames.pop("summaries", None)
    return Saved(frames, documents, summaries)


def _table(data: bytes) -> pa.Table:
    with ipc.open_file(pa.py_buffer(data)) as reader:
        table = reader.read_all()
    table.validate(full=True)  # offsets and UTF-8 checked: nothing later reads out of bounds
    return table


def _json_columns(members: _Members, name: str, entry: dict[str, Any]) -> dict[int, np.ndarray]:
    """The values of each object column of a frame, by column position."""
    rows, out = entry["rows"], {}
    for position, described in entry["json"].items():
        i = int(position) if str(position).isdigit() else -1
        arrays, odd = (described.get(k) if isinstance(described, dict) else None for k in _JSON)
        _check(
            i >= 0
            and isinstance(odd, dict)
            and isinstance(arrays, list)
            and all(type(n) is int and n > 0 for n in arrays),
            f"a JSON column of {name} as {{'arrays': [sizes], 'odd': {{row: text}}}}",
            {position: described},
        )
        data = memoryview(members.read(f"{name}.{i}.json"))
        _check(sum(arrays) == len(data), f"arrays filling {len(data)} bytes", sum(arrays))
        values: list[Any] = []
        at = 0
        for size in arrays:  # one orjson call per array: a thread decoding tables gets turns
            part = orjson.loads(data[at : at + size])
            _check(isinstance(part, list), "a JSON array", type(part))
            values += part
            at += size
        _check(len(values) == rows, f"{rows} values in {name}.{i}.json", len(values))
        for row, text in odd.items():
            at = int(row) if str(row).isdigit() else -1
            _check(0 <= at < rows and isinstance(text, str), f"a row of {name}", row)
            values[at] = _loads(text)
        out[i] = np.fromiter(values, dtype=object, count=rows)
    return out


def _frame(name: str, table: pa.Table, rows: int, values: dict[int, np.ndarray]) -> pd.DataFrame:
    _check(table.num_rows == rows, f"{rows} rows in {name}.arrow", table.num_rows)
    frame = table.to_pandas(split_blocks=True)
    _check(frame.shape[1] == table.num_columns, f"{table.num_columns} columns", frame.shape[1])
    for i, column in values.items():
        _check(
            i < table.num_columns and table.schema.field(i).type == pa.null(),
            f"a JSON column of {name} in place of a column of nulls",
            i,
        )
        frame.isetitem(i, pd.Series(column, index=frame.index, dtype=object, copy=False))
    if name in SCHEMAS:
        _check_dtypes(frame, name)
    return frame


def _check_dtypes(frame: pd.DataFrame, name: str) -> None:
    """The columns the schema declares must hold its dtypes (the TraceSet adds missing ones)."""
    declared = SCHEMAS[name]
    wrong = {
        str(c): str(t) for c, t in frame.dtypes.items() if c in declared and str(t) != declared[c]
    }
    _check(not wrong, f"the dtypes of xraykit.schema.SCHEMAS[{name!r}]", wrong)


def _read_v1(members: _Members, manifest: dict[str, Any]) -> Saved:
    """Version 1: a zip of Parquet files, object values as JSON text one by one."""
    encoded = manifest.get("json_columns", {})
    _check(isinstance(encoded, dict), "json_columns in the manifest", encoded)
    frames: dict[str, pd.DataFrame] = {}
    for member in members.archive.namelist():
        name = member.removesuffix(".parquet")
        if name == member or name not in {*SCHEMAS, "summaries"}:
            continue
        table = pq.read_table(pa.BufferReader(members.read(member)))
        table.validate(full=True)
        frame = table.to_pandas()
        for column in encoded.get(name, []):
            values = [orjson.loads(v) for v in frame[column]]
            frame[column] = pd.Series(values, index=frame.index, dtype=object)
        if name in SCHEMAS:
            _check_dtypes(frame, name)
        frames[name] = frame
    documents = frames.pop("documents", None)
    store = DocumentStore() if documents is None else DocumentStore.from_frame(documents)
    summaries = frames.pop("summaries", None)
    return Saved(frames, store, summaries)
