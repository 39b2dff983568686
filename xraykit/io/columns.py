"""How the readers' rows become the frames' columns.

The columns of ``segments``, ``subsegments``, ``annotations``, ``metadata``, ``exceptions``
and ``documents``, and the JSON type of every document field, are declared once in
:mod:`xraykit.schema`. This module turns those declarations into what the two readers run:

* :data:`ENTITY`: the document fields as a tree of :class:`Field` (the Python reader checks
  documents against it; :func:`field_table` numbers it for the C scanner);
* :data:`TABLES`: each table's columns with their kind and compiled source, plus the columns
  the finishing steps need (``_seq``: the entity's number in reading order; ``_anchor``: the
  streamed subsegment a subtree hangs from; ``has_links``);
* :func:`new_tables`: where rows go — the C scanner's buffers when it is built, else
  :class:`PythonTables`;
* :func:`to_frame`: a taken table as a DataFrame, wrapping the buffers without a copy.

>>> [c.name for c in TABLES["annotations"]]
['trace_id', 'entity_id', 'key', 'value', 'value_type', '_seq']
>>> ENTITY.fields["http"].fields["response"].fields["status"].path
'http.response.status'
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from xraykit.exceptions import ArgumentError, ArgumentTypeError, XrayKitWarning
from xraykit.io.memory import POOL as _POOL
from xraykit.schema import COLUMNS, ENTITY_FIELDS, TIME, Column

try:  # the C fast path; without a compiler xraykit still works, only slower
    import xraykit.io._scan as _scan
except ImportError as error:  # pragma: no cover - depends on the machine
    _scan = None
    _SCAN_MISSING: ImportError | None = error
else:
    _SCAN_MISSING = None

__all__ = [
    "ENTITY",
    "TABLES",
    "Field",
    "PythonTables",
    "TableColumn",
    "compile_tables",
    "json_values",
    "new_tables",
    "to_frame",
]


class Field(NamedTuple):
    """A document field: its dotted path, the JSON types it may have, its own fields (an
    object) or the field of its items (an array), and its number in :func:`field_table`."""

    path: str
    types: frozenset[str]
    fields: dict[str, Field]
    item: Field | None
    node: int


def _tree(
    spec: Any,
    path: str,
    nodes: list[tuple[int, str | None, frozenset[str]]],
    parent: int,
    key: str | None,
) -> Field:
    """Number the field declared by ``spec`` (and its own fields) after those in ``nodes``."""
    kinds = spec if isinstance(spec, tuple) else (spec,)
    types = frozenset(
        "object" if isinstance(k, dict) else "array" if isinstance(k, list) else k for k in kinds
    )
    node = len(nodes)
    nodes.append((parent, key, types))
    fields: dict[str, Field] = {}
    item = None
    for kind in kinds:
        if isinstance(kind, dict):
            for name, sub in kind.items():
                fields[name] = _tree(sub, f"{path}.{name}" if path else name, nodes, node, name)
        elif isinstance(kind, list):
            item = _tree(kind[0], path, nodes, node, None)
    return Field(path, types, fields, item, node)


_NODES: list[tuple[int, str | None, frozenset[str]]] = []
#: Every field of a segment or subsegment document (paths from the document's root).
ENTITY = _tree(ENTITY_FIELDS, "", _NODES, -1, None)


def _items(field: Field) -> Field:
    if field.item is None:  # pragma: no cover - schema.py declares these as arrays
        raise ArgumentTypeError(f"{field.path!r} must be declared as an array of objects")
    return field.item


#: An exception of ``cause.exceptions`` (paths from the exception), and a frame of its stack.
EXCEPTION = _items(ENTITY.fields["cause"].fields["exceptions"])
FRAME = _items(EXCEPTION.fields["stack"])


def _find(root: Field, path: str) -> Field:
    field = root
    for name in path.split("."):
        field = field.fields[name]
    return field


# -- columns -------------------------------------------------------------------------------------

#: How a column's source finds its value (the C scanner has the same numbers).
FIELD, FIRST, JOIN, CONTEXT = 0, 1, 2, 3

_KINDS = {
    "str": "str",
    "bool": "bool",
    "int32": "int32",
    "int64": "int64",
    "Int64": "Int64",
    "float64": "float64",
    TIME: "time",
    "object": "object",
}


class TableColumn(NamedTuple):
    """A column as the readers fill it: ``op`` says how ``fields`` (or ``context``) give it."""

    name: str
    kind: str  # str, bool, int64, Int64, float64, time, object
    op: int
    fields: tuple[Field, ...]
    context: str | None
    upper: bool


def _compile(
    name: str, dtype: str, source: str, root: Field | None, upper: bool = False
) -> TableColumn:
    kind = _KINDS[dtype]
    if source.startswith("@"):
        return TableColumn(name, kind, CONTEXT, (), source[1:], upper)
    op = FIRST if "|" in source else JOIN if "+" in source else FIELD
    parts = [p.strip() for p in source.replace("|", "+").split("+")]
    if root is None:
        raise ArgumentError(
            f"column {name!r}: this table has no document fields to read {source!r}"
        )
    return TableColumn(name, kind, op, tuple(_find(root, p) for p in parts), None, upper)


#: Columns the finishing steps need besides the declared ones (``_trace``: the trace id's
#: number; the tables number the ids they are given).
_INTERNAL = {
    "segments": {"_seq": ("int32", "@seq"), "_trace": ("int32", "@trace_code")},
    "subsegments": {
        "_anchor": ("str", "@anchor"),
        "_seq": ("int32", "@seq"),
        "_trace": ("int32", "@trace_code"),
    },
    # the original documents: their text, compressed as it comes, and what the document
    # store keeps of each (it numbers trace ids as the frames do)
    "documents": {"document": ("str", "@text")},
    "document_index": {
        "_trace": ("int32", "@trace_code"),
        "entity_id": ("str", "@entity_id"),
        "in_progress": ("bool", "@in_progress"),
        "has_links": ("bool", "@has_links"),
        "_seq": ("int32", "@seq"),
    },
    "annotations": {"_seq": ("int32", "@seq")},
    "metadata": {"_seq": ("int32", "@seq")},
    "exceptions": {"_seq": ("int32", "@seq")},
}
_DECLARED = ("segments", "subsegments", "annotations", "metadata", "exceptions")
_ROOTS = {"segments": ENTITY, "subsegments": ENTITY, "exceptions": EXCEPTION}


def compile_tables(columns: dict[str, dict[str, Column]]) -> dict[str, list[TableColumn]]:
    """Each reader table's columns, in order: the declared ones that have a source, then the
    internal ones (``columns`` as :data:`xraykit.schema.COLUMNS`)."""
    return {
        table: [
            *(
                _compile(name, c.dtype, c.source, _ROOTS.get(table), c.upper)
                for name, c in (columns[table] if table in _DECLARED else {}).items()
                if c.source is not None
            ),
            *(_compile(name, dtype, src, None) for name, (dtype, src) in internal.items()),
        ]
        for table, internal in _INTERNAL.items()
    }


#: The reader tables of the frames declared in :mod:`xraykit.schema`.
TABLES = compile_tables(COLUMNS)


def field_table() -> list[tuple[int, str | None, int]]:
    """The document fields numbered for the C scanner: ``(parent, name, types)`` each."""
    assert _scan is not None
    return [(parent, key, sum(_scan.TYPES[t] for t in types)) for parent, key, types in _NODES]


def _roles() -> dict[str, int]:
    """The fields the C scanner's own rules read (annotations, exceptions, ...)."""
    roles = {"entity": ENTITY.node, "exception": EXCEPTION.node, "frame": FRAME.node}
    for role in (
        "id",
        "name",
        "trace_id",
        "start_time",
        "end_time",
        "in_progress",
        "parent_id",
        "type",
        "subsegments",
        "annotations",
        "metadata",
        "cause",
        "cause.exceptions",
    ):
        roles[role] = _find(ENTITY, role).node
    roles["exception.stack"] = EXCEPTION.fields["stack"].node
    for part in ("path", "line", "label"):
        roles[f"frame.{part}"] = FRAME.fields[part].node
    return roles


def _native_columns(columns: list[TableColumn]) -> list[tuple[str, int, tuple[int, ...], bool]]:
    assert _scan is not None
    out = []
    for own, c in enumerate(columns):
        if c.op == CONTEXT:
            if c.context not in _scan.CONTEXTS:
                raise ArgumentError(
                    f"the C scanner has no context @{c.context}: add it to xraykit/io/_scan.c"
                )
            args: tuple[int, ...] = (_scan.CONTEXTS.index(c.context),)
            if c.context == "trace_code":  # Python gives the trace id in its place
                args += (own,)
        else:
            args = tuple(f.node for f in c.fields)
        out.append((c.kind, c.op, args, c.upper))
    return out


def new_tables(native: bool = True) -> Any:
    """Where a reader's rows go: a new C scanner (which also reads lines itself), or, without
    it, :class:`PythonTables`. Both have ``append(table, row)`` and ``take(everything)``."""
    if native and _scan is not None:
        return _scan.Scanner(
            field_table(), _roles(), {name: _native_columns(cols) for name, cols in TABLES.items()}
        )
    if native and _SCAN_MISSING is not None:
        _warn_slow()
    return PythonTables()


_WARNED = False


def _warn_slow() -> None:
    global _WARNED
    if not _WARNED:
        _WARNED = True
        warnings.warn(
            f"xraykit's C fast path could not be imported ({_SCAN_MISSING}), so files are read "
            "in Python, several times slower. Reinstall xraykit where a C compiler and the "
            "Python headers are installed (Debian: apt-get install gcc python3-dev).",
            XrayKitWarning,
            stacklevel=4,
        )


class PythonTables:
    """Rows kept as lists of values, one list per column: the tables without the C scanner.

    >>> tables = PythonTables()
    >>> tables.append("metadata", ("1-a", "s1", "ns", "k", {"x": 1}, 0))
    >>> to_frame("metadata", tables.take()["metadata"]).value.tolist()
    [{'x': 1}]
    """

    def __init__(self) -> None:
        self._values: dict[str, list[list[Any]]] = {
            t: [[] for _ in cols] for t, cols in TABLES.items()
        }
        self._codes: dict[str, int] = {}  # trace id -> its number, in the order ids come

    def append(self, table: str, row: tuple[Any, ...]) -> None:
        for values, value, column in zip(self._values[table], row, TABLES[table], strict=True):
            if column.context == "trace_code":  # the trace id, numbered
                value = self._codes.setdefault(value, len(self._codes))
            values.append(value)

    def pending(self) -> int:
        return sum(len(columns[0]) for columns in self._values.values())

    def take(self, everything: bool = True) -> dict[str, list[Any]]:
        out: dict[str, Any] = {}
        for table, columns in self._values.items():
            if everything or table == "documents":
                out[table] = [(len(values), values) for values in columns]
                self._values[table] = [[] for _ in columns]
        if everything:
            out["trace_ids"] = (len(self._codes), list(self._codes))
            self._codes = {}
        return out


class EntityIndex(NamedTuple):
    """What the finishing steps ask of entity ids, found in one pass by the C scanner's module:
    whether segments, or subsegments, repeat an id within a trace, and for each segment
    whether its parent (its caller) is an entity of its trace."""

    segments_repeat: bool
    subsegments_repeat: bool
    caller_inside: np.ndarray


def arrow(column: pd.Series) -> pa.Array:
    """A string column's Arrow array, one chunk, starting at the start of its buffers."""
    chunked = column.array._pa_array
    values = (
        chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks(memory_pool=_POOL)
    )
    if values.offset:  # a slice: its buffers start earlier
        values = pa.concat_arrays([values], memory_pool=_POOL)
    return values


def _id_buffers(column: pd.Series, codes: np.ndarray) -> tuple[Any, ...]:
    ids = arrow(column)
    validity, offsets, data = ids.buffers()
    return (len(ids), codes, offsets, data if data is not None else b"", validity)


def entity_index(segments: pd.DataFrame, subsegments: pd.DataFrame) -> EntityIndex | None:
    """The :class:`EntityIndex` of a reader's rows (with their ``_trace`` codes), or None
    without the C scanner."""
    if _scan is None:
        return None
    seg_code = np.ascontiguousarray(segments["_trace"].to_numpy(), dtype=np.int32)
    sub_code = np.ascontiguousarray(subsegments["_trace"].to_numpy(), dtype=np.int32)
    seg_repeat, sub_repeat, inside = _scan.entity_index(
        _id_buffers(segments["segment_id"], seg_code),
        _id_buffers(subsegments["subsegment_id"], sub_code),
        _id_buffers(segments["parent_id"], seg_code),
    )
    return EntityIndex(seg_repeat, sub_repeat, np.frombuffer(inside, dtype=np.bool_))


def json_values(data: bytes) -> list[Any]:
    """The elements of a JSON array, as ``orjson.loads`` gives them; with the C scanner, their
    lists and dicts are not tracked by the garbage collector (they hold no cycles), which
    keeps collections from walking them.

    >>> json_values(b'[{"a": [1, 2.5]}, "x", null]')
    [{'a': [1, 2.5]}, 'x', None]
    """
    if _scan is not None:
        try:
            values: list[Any] = _scan.json_values(data)
            return values
        except ValueError:  # beyond what it reads exactly as orjson does: orjson decides
            pass
    return orjson.loads(data)


# -- frames --------------------------------------------------------------------------------------

_UTC = pd.DatetimeTZDtype("us", "UTC")


def _strings(column: tuple[Any, ...]) -> pa.Array:
    if len(column) == 2:  # Python values
        values = column[1]
        if any(type(v) is bytes for v in values):  # document texts read from lines
            values = [v.decode() if type(v) is bytes else v for v in values]
        return pa.array(values, pa.large_string(), memory_pool=_POOL)
    rows, nulls, validity, offsets, data = column
    buffers = [
        None if validity is None else pa.py_buffer(validity),
        pa.py_buffer(offsets),
        pa.py_buffer(data),
    ]
    return pa.Array.from_buffers(pa.large_string(), rows, buffers, null_count=nulls)


def _numbers(column: tuple[Any, ...], dtype: str) -> np.ndarray:
    if len(column) == 2 and isinstance(column[1], list):
        return np.array(column[1], dtype=dtype)
    return np.frombuffer(column[1], dtype=dtype, count=column[0])


def utc_times(micros: np.ndarray) -> Any:
    """Microseconds since the epoch (the smallest int64 for none) as a UTC time array,
    without a copy (pandas' public constructors copy twice: a load's columns are large)."""
    values = micros.view("datetime64[us]")
    try:
        return pd.arrays.DatetimeArray._simple_new(values, dtype=_UTC)
    except (AttributeError, TypeError):  # pragma: no cover - a pandas without it
        return pd.array(values).tz_localize("UTC")


def to_arrow(kind: str, column: tuple[Any, ...]) -> pa.Array:
    """One taken string or bool column as an Arrow array (for the document store)."""
    if kind == "str":
        return _strings(column)
    return pa.array(to_array(kind, column), memory_pool=_POOL)


def to_array(kind: str, column: tuple[Any, ...]) -> Any:
    """One taken column as a pandas-ready array (numpy or pandas extension array)."""
    if kind == "str":
        return pd.array(_strings(column), dtype="str")
    if kind == "object":  # kept as they are (pandas would make all-string values a str column)
        values = np.empty(column[0], dtype=object)
        values[:] = column[1]
        return pd.Series(values, dtype=object, copy=False)
    if kind == "time":
        if isinstance(column[1], list):
            micros = np.array(
                [np.iinfo(np.int64).min if v is None else v for v in column[1]], dtype=np.int64
            )
        else:
            micros = _numbers(column, "int64")
        return utc_times(micros)
    if kind == "Int64":
        if isinstance(column[1], list):
            return pd.array(column[1], dtype="Int64")
        rows, values, mask = column
        return pd.arrays.IntegerArray(
            np.frombuffer(values, np.int64, count=rows), np.frombuffer(mask, np.bool_, count=rows)
        )
    if kind == "float64" and isinstance(column[1], list):
        return np.array([np.nan if v is None else v for v in column[1]], dtype="float64")
    return _numbers(
        column, {"bool": "bool", "int32": "int32", "int64": "int64", "float64": "float64"}[kind]
    )


def to_frame(table: str, columns: list[tuple[Any, ...]]) -> pd.DataFrame:
    """A taken table (:meth:`PythonTables.take` or the scanner's ``take``) as a DataFrame."""
    spec = TABLES[table]
    return pd.DataFrame(
        {
            # as Series: a frame made of bare numpy bool arrays holds a second copy of them
            c.name: pd.Series(to_array(c.kind, column), copy=False)
            for c, column in zip(spec, columns, strict=True)
        },
        copy=False,
    )
