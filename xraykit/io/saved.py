"""A saved TraceSet: one file that opens several times faster than the JSON it came from.

The file (format version 2) is a zip archive of *stored* (not zip-compressed) members:

``<frame>.arrow``
    each frame (the seven of a TraceSet, then ``summaries`` if any) as an Arrow IPC file of
    one record batch, buffers zstd-compressed (level 1), with pandas' schema metadata: dtypes,
    time zones and nullable integers come back as they were. A column of Python objects
    (annotation and metadata ``value``) is all nulls there; its values are in
``<frame>.<column position>.json``
    one JSON array, decoded by one ``orjson.loads``. A value orjson cannot write (an int
    beyond 64 bits, nesting deeper than 255 levels, NaN or infinity at any depth) is
    ``null`` there, and its text, from an encoder without recursion, is in the manifest.
``documents.arrow``, ``documents.zst``
    the :class:`~xraykit.io.docstore.DocumentStore` as it is in memory: its compact index
    (:meth:`~xraykit.io.docstore.DocumentStore.to_arrow`), and its zstd blocks one after the
    other (concatenated zstd frames), verbatim: never decompressed to save nor recompressed
    to open.
``xraykit.json``
    the manifest: ``{"format": "xraykit-traceset", "version": 2, "frames": {name: {"rows":
    n, "json": {position: {row: text}}}}, "blocks": [[compressed bytes, text bytes], ...]}``.

Why: ``load_file`` knows a saved TraceSet by the zip signature; each stored member is read
with one read at its offset and checked against its CRC-32, so damage is an error, never
wrong data, and any zip tool can list the members. Arrow IPC rather than Parquet: opening a
frame is decompressing its buffers (on Arrow's threads), with no page decoding, and strings
come back as the very buffers pandas' ``str`` columns hold. zstd level 1 keeps the file
about a third of the JSON's size (uncompressed, it would be larger than the JSON) and costs
no more at open than reading and checking the uncompressed bytes would. One record batch, no
row groups: a frame is always read whole. Files of version 1 (Parquet, documents as text)
are still read.

A file may come from anywhere: sizes and offsets are checked against the file before
anything is read, Arrow validates every table in full (offsets, UTF-8, dictionary codes),
and damage raises :class:`~xraykit.exceptions.TraceParseError` (in a document block whose
CRC was forged to match, when the block is first decompressed). The file is read whole,
never memory-mapped, and written beside its target under a temporary name, then renamed
over it.

Examples
--------
>>> import tempfile, zipfile, xraykit
>>> ts = xraykit.load_sample("shop")
>>> with tempfile.TemporaryDirectory() as d:
...     path = ts.save(f"{d}/shop.traceset")
...     members = zipfile.ZipFile(path).namelist()
...     saved = read_saved(path)
>>> members[3:6], members[-3:]
(['annotations.arrow', 'annotations.3.json', 'metadata.arrow'], ['documents.arrow', 'documents.zst', 'xraykit.json'])
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
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc

from xraykit.exceptions import ArgumentError, ArgumentTypeError, TraceParseError
from xraykit.io.columns import json_values
from xraykit.io.docstore import DocumentStore
from xraykit.schema import FRAMES, SCHEMAS

__all__ = ["FORMAT", "VERSION", "Saved", "read_saved", "write_saved"]

FORMAT = "xraykit-traceset"
#: The version written; versions 1 and 2 are read.
VERSION = 2

_MANIFEST, _INDEX, _BLOCKS = "xraykit.json", "documents.arrow", "documents.zst"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # a fixed member date: a TraceSet always saves to the same bytes
_ZIP32 = (1 << 31) - 1  # a larger member needs zip64 headers
_IPC = ipc.IpcWriteOptions(compression=pa.Codec("zstd", compression_level=1))
# datetimes go to `default` (which refuses them) rather than silently becoming strings
_ORJSON = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_PASSTHROUGH_DATETIME
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
    crash while writing never leaves half a file, even over the file being saved again.

    Raises
    ------
    ArgumentTypeError
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
        objects = [i for i, kind in enumerate(frame.dtypes) if pd.api.types.is_object_dtype(kind)]
        bare = frame.copy(deep=False)
        for i in objects:  # all nulls in the Arrow table: the values go to a JSON member
            bare.isetitem(i, np.full(len(frame), None, dtype=object))
        _put(archive, f"{name}.arrow", _ipc_bytes(pa.Table.from_pandas(bare, preserve_index=False)))
        odd = {}
        for i in objects:
            data, odd[str(i)] = _json_array(frame.iloc[:, i], f"{name}[{frame.columns[i]!r}]")
            _put(archive, f"{name}.{i}.json", data)
        described[name] = {"rows": len(frame), "json": odd}
    _put(archive, _INDEX, _ipc_bytes(documents.to_arrow()))
    _put(archive, _BLOCKS, *documents.blocks)
    blocks = [[len(b), s] for b, s in zip(documents.blocks, documents.block_sizes, strict=True)]
    manifest = {"format": FORMAT, "version": VERSION, "frames": described, "blocks": blocks}
    _put(archive, _MANIFEST, orjson.dumps(manifest))


def _ipc_bytes(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, table.schema, options=_IPC) as writer:
        writer.write_table(table.combine_chunks(), max_chunksize=max(table.num_rows, 1))
    return sink.getvalue()


def _put(archive: zipfile.ZipFile, name: str, *pieces: Any) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.external_attr = 0o644 << 16
    size = sum(memoryview(p).nbytes for p in pieces)
    with archive.open(info, "w", force_zip64=size > _ZIP32) as member:
        for piece in pieces:
            member.write(piece)


def _json_array(column: pd.Series, where: str) -> tuple[bytes, dict[str, str]]:
    """One JSON array of the values, and the text of each value orjson cannot write, by row."""
    values = column.tolist()
    odd: set[int] = set()
    try:
        data = orjson.dumps(values, default=_refuse, option=_ORJSON)
    except orjson.JSONEncodeError:  # an int beyond 64 bits, deep nesting, NA: value by value
        texts = []
        for row, value in enumerate(values):
            try:
                texts.append(orjson.dumps(value, default=_refuse, option=_ORJSON))
            except orjson.JSONEncodeError:
                odd.add(row)
                texts.append(b"null")
        data = b"[" + b",".join(texts) + b"]"
    if b"null" in data and not _equal(back := orjson.loads(data), values):
        # orjson wrote a NaN or an infinity as null, somewhere: find the rows
        pairs = zip(back, values, strict=True)
        odd.update(r for r, (b, v) in enumerate(pairs) if v is not None and not _equal(b, v))
    special = {}
    for row in sorted(odd):
        try:
            special[str(row)] = _dumps(values[row])
        except (TypeError, ValueError) as exc:
            raise ArgumentTypeError(
                f"{where} row {row} holds {values[row]!r}, which a saved TraceSet cannot keep "
                f"({exc}): values must be JSON values (None, bool, int, float, str, and lists and "
                "dicts of them). Convert the column before saving."
            ) from exc
    return data, special


def _equal(left: Any, right: Any) -> bool:
    try:
        return bool(left == right)
    except (TypeError, ValueError):  # an array's truth value, say
        return False


def _refuse(value: Any) -> Any:
    raise ArgumentTypeError(f"{type(value).__name__} is not a JSON value")


class _Raw(str):
    """Text :func:`_dumps` writes as it is (brackets, commas, keys)."""


def _dumps(value: Any) -> str:
    """JSON text of ``value`` at any depth, without recursion (NaN and infinities written as
    Python's json module writes them)."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, np.generic | np.ndarray):  # as orjson writes numpy values
            item = item.tolist()
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
        elif isinstance(item, dict):
            if not all(isinstance(k, str) for k in item):
                raise ArgumentTypeError(
                    "a dict with keys that are not strings is not a JSON object"
                )
            out.append("{")
            stack.append(_Raw("}"))
            for i, (key, child) in enumerate(reversed(item.items())):
                key_text = _Raw(json.encoder.encode_basestring_ascii(key) + ":")
                stack.extend((_Raw(","), child, key_text) if i else (child, key_text))
        else:
            raise ArgumentTypeError(f"{type(item).__name__} is not a JSON value")
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
    ArgumentError
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
            raise ArgumentError(f"unexpected {token!r} at {m.start(kind)} of a saved JSON value")
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
        raise ArgumentError(f"a saved JSON value ends early or has extra text at {pos}")
    return result


# -- reading -------------------------------------------------------------------------------------

_DAMAGE = (  # what zipfile, orjson, Arrow and pandas raise on a damaged or hostile file
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    struct.error,
    EOFError,
    OSError,
    ValueError,
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
        A path, or a file already open for reading (left open). A stream that cannot seek is
        read into memory first. The file is read, never memory-mapped.

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
    >>> import io
    >>> try:
    ...     read_saved(io.BytesIO(b"PK\\x03\\x04 and then nothing"))
    ... except TraceParseError as exc:
    ...     print(exc)
    <stream> looks like a saved TraceSet but cannot be read: it is not a zip file, ... Save it again with TraceSet.save(), ...
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
            members = _Members(archive, size)
            manifest = orjson.loads(members.read(_MANIFEST))
            _check(isinstance(manifest, dict), "a manifest object", manifest)
            found = (manifest.get("format"), manifest.get("version"))
            _check(found[0] == FORMAT, f"a manifest of format {FORMAT!r}", found[0])
            if isinstance(found[1], int) and found[1] > VERSION:
                raise TraceParseError(
                    f"{name} was saved by a newer xraykit (format version {found[1]}); this "
                    f"one reads versions 1 to {VERSION}. Upgrade xraykit: pip install -U xraykit",
                    source=name,
                )
            _check(found[1] in (1, VERSION), f"format version 1 or {VERSION}", found[1])
            return (_read_v1 if found[1] == 1 else _read_v2)(members, manifest)
    except TraceParseError:
        raise
    except _DAMAGE as exc:
        raise TraceParseError(
            f"{name} looks like a saved TraceSet but cannot be read: {_said(exc)}. {_FIX}",
            source=name,
        ) from exc


class _Damaged(ValueError):
    """What was expected and what came: why a saved file cannot be read."""


def _check(ok: bool, expected: str, found: Any) -> None:
    if not ok:
        text = repr(found)
        text = text if len(text) <= 200 else text[:200] + "…"
        raise _Damaged(f"expected {expected}, but found {text}")


def _said(exc: BaseException) -> str:
    if isinstance(exc, _Damaged):
        return str(exc)
    if isinstance(exc, zipfile.BadZipFile | EOFError | struct.error):
        return f"it is not a zip file, or a truncated or damaged one ({exc})"
    return f"{type(exc).__name__}: {exc}"


class _Members:
    """The stored members of a zip file, read whole after checking that they fit in it."""

    def __init__(self, archive: zipfile.ZipFile, size: int) -> None:
        self.archive, self.size = archive, size

    def info(self, member: str) -> zipfile.ZipInfo:
        try:
            info = self.archive.getinfo(member)
        except KeyError:
            names = self.archive.namelist()
            raise _Damaged(
                f"it is a zip file without the member {member!r} a saved TraceSet has "
                f"(its members: {names[:12]!r}{'…' if len(names) > 12 else ''})"
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
        """The member in consecutive pieces of ``lengths`` bytes, which must cover it."""
        info = self.info(member)
        total = sum(lengths)
        _check(total == info.file_size, f"blocks filling {info.file_size} bytes", total)
        with self.archive.open(info) as f:
            pieces = [f.read(n) for n in lengths]
            _check(not f.read(1) and sum(map(len, pieces)) == total, "whole blocks", total)
        return pieces  # read to the end: the CRC-32 was checked


def _read_v2(members: _Members, manifest: dict[str, Any]) -> Saved:
    described: Any = manifest.get("frames")
    _check(isinstance(described, dict), "frames in the manifest", described)
    _check(set(FRAMES) <= set(described) <= {*FRAMES, "summaries"}, f"frames {FRAMES}", described)
    blocks: Any = manifest.get("blocks")
    _check(
        isinstance(blocks, list)
        and all(
            isinstance(b, list) and len(b) == 2 and all(type(n) is int and n >= 0 for n in b)
            for b in blocks
        ),
        "blocks as [compressed bytes, text bytes]",
        blocks,
    )
    # one table after the other: decoding them on threads, beside each other or beside the
    # JSON (Arrow releases the GIL), measured no faster on two cores
    frames = {
        name: _frame(members, name, entry, _table(members.read(f"{name}.arrow")))
        for name, entry in described.items()
    }
    texts = members.pieces(_BLOCKS, [b[0] for b in blocks])
    index = _table(members.read(_INDEX))
    documents = DocumentStore.from_arrow(index, texts, [b[1] for b in blocks])
    return Saved(frames, documents, frames.pop("summaries", None))


def _table(data: bytes) -> pa.Table:
    with ipc.open_file(pa.py_buffer(data)) as reader:
        table = reader.read_all()
    table.validate(full=True)  # offsets, UTF-8, codes: nothing later reads out of bounds
    return table


def _frame(members: _Members, name: str, entry: Any, table: pa.Table) -> pd.DataFrame:
    rows: Any = entry.get("rows") if isinstance(entry, dict) else None
    odd: Any = entry.get("json") if isinstance(entry, dict) else None
    _check(
        type(rows) is int and isinstance(odd, dict), f'{name} as {{"rows": n, "json": {{}}}}', entry
    )
    _check(table.num_rows == rows, f"{rows} rows in {name}.arrow", table.num_rows)
    frame = table.to_pandas(split_blocks=True)
    _check(frame.shape[1] == table.num_columns, f"{table.num_columns} columns", frame.shape[1])
    for position, special in odd.items():
        i = int(position) if str(position).isdigit() else -1
        _check(
            0 <= i < table.num_columns
            and table.schema.field(i).type == pa.null()
            and isinstance(special, dict),
            f"a JSON column of {name} in place of a column of nulls",
            position,
        )
        values = json_values(members.read(f"{name}.{i}.json"))
        _check(isinstance(values, list) and len(values) == rows, f"{rows} values", type(values))
        for row, text in special.items():
            at = int(row) if str(row).isdigit() else -1
            _check(0 <= at < rows and isinstance(text, str), f"a row of {name}", row)
            values[at] = _loads(text)
        frame.isetitem(i, pd.Series(values, index=frame.index, dtype=object))
    if name in SCHEMAS:
        _check_dtypes(frame, name)
    return frame


def _check_dtypes(frame: pd.DataFrame, name: str) -> None:
    """The columns the schema declares must hold its dtypes (the TraceSet adds missing ones)."""
    declared = SCHEMAS[name]
    wrong = {str(c): str(t) for c, t in frame.dtypes.items() if declared.get(c, str(t)) != str(t)}
    _check(not wrong, f"the dtypes of xraykit.schema.SCHEMAS[{name!r}]", wrong)


def _read_v1(members: _Members, manifest: dict[str, Any]) -> Saved:
    """Version 1: a zip of Parquet files, object values as JSON text one by one."""
    import pyarrow.parquet as pq  # only for files of version 1: it costs an import memory

    encoded: Any = manifest.get("json_columns", {})
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
    return Saved(frames, store, frames.pop("summaries", None))
