"""Evaluation: which traces of a TraceSet match an expression tree, vectorised over its frames.

Simple keywords read the ``traces`` and ``segments`` frames; ``service()`` and ``edge()``
blocks the node and edge-call rows of :func:`xraykit.graph.graph_frames`; root-cause blocks
the rows of :func:`xraykit.analysis.root_cause_paths`. Which column holds a keyword's value
is :data:`xraykit.query.keywords.KEYWORDS`.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xraykit.analysis import ROOT_CAUSE_KINDS, root_cause_paths
from xraykit.arguments import check_traceset
from xraykit.exceptions import ArgumentTypeError, FilterExpressionError
from xraykit.graph import graph_frames
from xraykit.query.diagnostics import error
from xraykit.query.keywords import KEYWORDS, Scope
from xraykit.query.parser import parse
from xraykit.query.tree import (
    TREE_TYPES,
    And,
    Annotation,
    Edge,
    Expr,
    Group,
    Keyword,
    Not,
    Or,
    RootCause,
    RootCauseJson,
    Selector,
    Service,
    walk,
)
from xraykit.schema import isin as _isin
from xraykit.status import flags

if TYPE_CHECKING:
    from xraykit.traceset import TraceSet

__all__ = ["NODE_SEGMENT_COLUMNS", "Evaluator", "as_bool", "compare", "evaluate"]

#: Inside ``service()``: keyword -> column of the node's own segment (joined on demand).
NODE_SEGMENT_COLUMNS = {
    k: s.segment_column for k, s in KEYWORDS.items() if s.segment_column is not None
}

_NUMBER_FUNCS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def as_bool(values: Any) -> np.ndarray:
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if series.dtype != bool:
        series = series.astype("boolean").fillna(False)
    return series.to_numpy(dtype=bool)


def compare(series: pd.Series, kind: str, op: str | None, value: Any) -> np.ndarray:
    """Vectorised comparison of one column; missing values satisfy nothing."""
    if kind == "boolean":
        flags = as_bool(series)
        if op is None:
            return flags
        return flags == value if op == "=" else flags != value
    if kind == "number":
        numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        if op is None:
            return ~np.isnan(numbers)
        with np.errstate(invalid="ignore"):
            return np.asarray(_NUMBER_FUNCS[op](numbers, float(value)), dtype=bool) & ~np.isnan(
                numbers
            )
    present = series.notna().to_numpy(dtype=bool)
    if op is None:
        return present
    text = series if series.dtype == "str" else series.astype("str")
    if op == "=":
        out = text == value
    elif op == "!=":
        out = text != value
    elif op == "CONTAINS":
        out = text.str.contains(value, regex=False)
    elif op == "BEGINSWITH":
        out = text.str.startswith(value)
    else:
        out = text.str.endswith(value)
    return as_bool(out) & present


def _arrow(series: pd.Series) -> Any:
    """A string column as one Arrow ``large_string`` array (a cheap view for ``"str"``)."""
    arrow = pa.array((series if series.dtype == "str" else series.astype("str")).array)
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    return arrow.cast(pa.large_string())


class Evaluator:
    """Evaluate one expression over one TraceSet; derived frames are computed once."""

    def __init__(self, ts: TraceSet, groups: Mapping[str, str] | None, expression: str) -> None:
        self.ts = ts
        self.t = ts.traces
        self.ids = self.t["trace_id"]
        self.groups = groups
        self.expression = expression
        self._cache: dict[Any, Any] = {}
        self._group_stack: list[str] = []

    def cached(self, key: Any, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def isin(self, trace_ids: pd.Series | set[str]) -> np.ndarray:
        return _isin(self.ids, trace_ids)

    # -- the trees --------------------------------------------------------------------
    def mask(
        self, expr: Expr, scope: Scope = "trace", rows: pd.DataFrame | None = None
    ) -> np.ndarray:
        """Boolean mask of ``expr`` over the rows of ``scope`` (traces by default)."""
        if isinstance(expr, Or):
            out = self.mask(expr.items[0], scope, rows)
            for item in expr.items[1:]:
                out = out | self.mask(item, scope, rows)
            return out
        if isinstance(expr, And):
            out = self.mask(expr.items[0], scope, rows)
            for item in expr.items[1:]:
                out = out & self.mask(item, scope, rows)
            return out
        if isinstance(expr, Not):
            return ~self.mask(expr.operand, scope, rows)
        if isinstance(expr, Keyword):
            if scope == "trace":
                return self.trace_keyword(expr)
            assert rows is not None
            spec = KEYWORDS[expr.keyword]
            return compare(rows[spec.row_column], spec.type, expr.op, expr.value)
        if isinstance(expr, Annotation):
            return self.isin(self.annotation_ids(expr))
        if isinstance(expr, Service):
            return self.isin(self.service_ids(expr))
        if isinstance(expr, Edge):
            return self.isin(self.edge_ids(expr))
        if isinstance(expr, RootCause):
            return self.isin(self.rootcause_ids(expr))
        if isinstance(expr, RootCauseJson):
            return self.isin(self.rootcause_json_ids(expr))
        if isinstance(expr, Group):
            return self.group_mask(expr)
        raise ArgumentTypeError(f"Not a filter-expression tree: {expr!r}")

    # -- simple keywords --------------------------------------------------------------
    def root_throttle(self) -> np.ndarray:
        """Whether each trace's root segment was throttled (throttle flag or 429)."""

        def make() -> np.ndarray:
            seg = self.ts.segments
            hit = flags(seg["http_status"], throttle=seg["throttle"]).throttle
            rows = seg.loc[hit, ["trace_id", "segment_id"]]
            at = pd.Index(self.ids).get_indexer(rows["trace_id"])
            roots = self.t["root_segment_id"].to_numpy(dtype=object)
            own = (at >= 0) & (
                roots[np.maximum(at, 0)] == rows["segment_id"].to_numpy(dtype=object)
            )
            out = np.zeros(len(self.t), dtype=bool)
            out[at[own]] = True
            return out

        return self.cached("root_throttle", make)

    def trace_keyword(self, expr: Keyword) -> np.ndarray:
        spec = KEYWORDS[expr.keyword]
        if expr.keyword == "ok":  # the root had no fault, error or throttle
            ok = ~(
                as_bool(self.t["has_fault"]) | as_bool(self.t["has_error"]) | self.root_throttle()
            )
            return compare(pd.Series(ok), spec.type, expr.op, expr.value)
        if expr.keyword == "inferred":  # the trace has an inferred node (X-Ray: segment)
            nodes = self.nodes()
            has = self.isin(nodes.loc[as_bool(nodes["inferred"]), "trace_id"])
            return compare(pd.Series(has), spec.type, expr.op, expr.value)
        if spec.trace_column is not None:
            return compare(self.t[spec.trace_column], spec.type, expr.op, expr.value)
        seg = self.ts.segments  # "any segment of the trace"
        column = seg[spec.segment_column]
        return self.isin(seg.loc[compare(column, spec.type, expr.op, expr.value), "trace_id"])

    def annotation_ids(self, expr: Annotation) -> pd.Series:
        ann = self.ts.annotations
        rows = ann.loc[(ann["key"] == expr.key).to_numpy(dtype=bool)]
        types = rows["value_type"]
        if expr.op is None:
            keep = np.ones(len(rows), dtype=bool)  # the key is set, whatever its value
        else:
            vtype = (
                "boolean"
                if isinstance(expr.value, bool)
                else "string"
                if isinstance(expr.value, str)
                else "number"
            )
            typed = (types == vtype).to_numpy(dtype=bool)
            values = rows["value"]
            if vtype == "string":
                values = values.where(typed, None)
            elif vtype == "boolean":
                values = values.where(typed, None).map(
                    lambda v: None if v is None else bool(v), na_action="ignore"
                )
            else:
                values = pd.to_numeric(values.where(typed, None), errors="coerce")
            keep = typed & compare(values, vtype, expr.op, expr.value)
        return rows.loc[keep, "trace_id"]

    # -- services and edges -----------------------------------------------------------
    def graph(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The service graph's node and edge rows, computed together once per evaluation."""

        def make() -> tuple[pd.DataFrame, pd.DataFrame]:
            return graph_frames(self.ts)

        return self.cached("graph", make)

    def nodes(self, *, extra: bool = False) -> pd.DataFrame:
        """Node rows; with ``extra``, also the http/user/aws fields of each node's entity."""
        if extra:
            return self.cached("nodes+", self._node_extras)

        def make() -> pd.DataFrame:
            nodes = self.graph()[0].reset_index(drop=True)
            return nodes.assign(
                duration_s=(nodes["end"] - nodes["start"]).dt.total_seconds(),
                partial=nodes["end"].isna().to_numpy(),
            )

        return self.cached("nodes", make)

    def _node_extras(self) -> pd.DataFrame:
        nodes = self.nodes()
        columns = list(NODE_SEGMENT_COLUMNS.values())
        seg = self.ts.segments[["trace_id", "segment_id", *columns]]
        seg = seg.rename(columns={"segment_id": "entity_id"})
        sub = self.ts.subsegments[["trace_id", "subsegment_id", "http_url", "http_method"]]
        sub = sub.rename(columns={"subsegment_id": "entity_id"})  # derived nodes: the call
        own = _lookup(nodes, seg, columns)
        call = _lookup(nodes, sub, ["http_url", "http_method"])
        for column in ("http_url", "http_method"):
            own[column] = own[column].fillna(call[column])
        return nodes.assign(**{c: own[c].to_numpy() for c in columns})

    def edges(self, *, extra: bool = False) -> pd.DataFrame:
        """Edge-call rows with both ends' names; with ``extra``, the call's http fields."""
        if extra:
            return self.cached("edges+", self._edge_extras)

        def make() -> pd.DataFrame:
            nodes, calls = self.graph()
            calls = calls.reset_index(drop=True)
            # name, type and account of every node id (by its first row), then the client's
            ids = _arrow(nodes["node_id"])
            known = pc.unique(ids)
            first = pc.index_in(known, value_set=ids)
            client = {"node_id": "client", "name": "client", "type": "client", "account_id": None}
            info = {
                c: pa.concat_arrays(
                    [
                        known if c == "node_id" else _arrow(nodes[c]).take(first),
                        pa.array([client[c]], pa.large_string()),
                    ]
                )
                for c in client
            }
            ends: dict[str, Any] = {}
            for end in ("source", "target"):
                at = pc.index_in(_arrow(calls[end]), value_set=info["node_id"])
                for column, label in (
                    ("name", "name"),
                    ("type", "type"),
                    ("account_id", "account"),
                ):
                    ends[f"{end}_{label}"] = pd.array(info[column].take(at), dtype="str")
            return calls.assign(
                **ends,
                duration_s=(calls["end"] - calls["start"]).dt.total_seconds(),
                partial=calls["end"].isna().to_numpy(),
            )

        return self.cached("edges", make)

    def _edge_extras(self) -> pd.DataFrame:
        calls = self.edges()
        columns = ["http_url", "http_method"]
        sub = self.ts.subsegments[["trace_id", "subsegment_id", *columns]]
        seg = self.ts.segments[["trace_id", "segment_id", *columns]]
        by_sub = _lookup(calls, sub.rename(columns={"subsegment_id": "entity_id"}), columns)
        by_seg = _lookup(calls, seg.rename(columns={"segment_id": "entity_id"}), columns)
        return calls.assign(
            **{c: by_sub[c].fillna(by_seg[c]).to_numpy() for c in columns}  # client edges: root
        )

    @staticmethod
    def select_nodes(rows: pd.DataFrame, node: Selector | None, prefix: str = "") -> np.ndarray:
        keep = np.ones(len(rows), dtype=bool)
        if node is None:
            return keep
        if isinstance(node, str):
            return compare(rows[f"{prefix}name"], "string", "=", node)
        for value, column in (
            (node.name, "name"),
            (node.type, "type"),
            (node.account_id, "account_id" if not prefix else "account"),
        ):
            if value is not None:
                keep &= compare(rows[f"{prefix}{column}"], "string", "=", value)
        return keep

    def service_ids(self, expr: Service) -> pd.Series:
        nodes = self.nodes(extra=_uses(expr.body, NODE_SEGMENT_COLUMNS))
        keep = self.select_nodes(nodes, expr.node)
        if expr.body is not None:
            keep &= self.mask(expr.body, "service", nodes)
        return nodes.loc[keep, "trace_id"]

    def edge_ids(self, expr: Edge) -> pd.Series:
        calls = self.edges(extra=_uses(expr.body, ("http.url", "http.method")))
        keep = self.select_nodes(calls, expr.source, "source_")
        keep &= self.select_nodes(calls, expr.target, "target_")
        if expr.body is not None:
            keep &= self.mask(expr.body, "edge", calls)
        return calls.loc[keep, "trace_id"]

    # -- root causes ------------------------------------------------------------------
    def rootcause_paths(self, kind: str) -> pd.DataFrame:
        def make() -> pd.DataFrame:
            paths = root_cause_paths(self.ts, kind).reset_index(drop=True)  # type: ignore[arg-type]
            if "service_index" not in paths:  # derive it: a new service where the name changes
                key = paths[["trace_id", "cause_index", "service_name", "service_type"]].astype(str)
                change = (key != key.shift()).any(axis=1)
                paths["service_index"] = (
                    change.groupby([paths["trace_id"], paths["cause_index"]]).cumsum() - 1
                )
            return paths

        return self.cached(("rootcause", kind), make)

    def rootcause_rows(self, kind: str, level: str) -> pd.DataFrame:
        def make() -> pd.DataFrame:
            paths = self.rootcause_paths(kind)
            cause = [paths["trace_id"], paths["cause_index"]]
            if level == "entity":
                index = paths["entity_index"].astype("float64")
                count = paths["entity_count"].astype("float64")
                rows = paths.assign(name=paths["entity_name"], index=index)
            elif level == "service":
                rows = paths.drop_duplicates(["trace_id", "cause_index", "service_index"])
                index = rows["service_index"].astype("float64")
                count = index.groupby([rows["trace_id"], rows["cause_index"]]).transform("max") + 1
                rows = rows.assign(
                    name=rows["service_name"], type=rows["service_type"], index=index
                )
            else:
                has = paths["exception_name"].notna() | paths["exception_message"].notna()
                rows = paths.loc[has.to_numpy(dtype=bool)]
                cause = [rows["trace_id"], rows["cause_index"]]
                index = rows.groupby(cause).cumcount().astype("float64")
                count = index.groupby(cause).transform("max") + 1
                rows = rows.assign(
                    name=rows["exception_name"], message=rows["exception_message"], index=index
                )
            return rows.assign(first=(index == 0).to_numpy(), last=(index == count - 1).to_numpy())

        return self.cached(("rootcause", kind, level), make)

    def rootcause_ids(self, expr: RootCause) -> pd.Series:
        rows = self.rootcause_rows(expr.kind, expr.level)
        if expr.body is None:
            return rows["trace_id"]
        scope = f"rootcause.{expr.kind}.{expr.level}"
        return rows.loc[self.mask(expr.body, scope, rows), "trace_id"]

    def rootcause_json_ids(self, expr: RootCauseJson) -> set[str]:
        matched: set[str] | None = None
        for cause in expr.causes:
            found: set[str] = set()
            for kind in ROOT_CAUSE_KINDS:
                found |= self._one_rootcause(kind, cause)
            matched = found if matched is None else matched & found
        return matched or set()

    def _one_rootcause(self, kind: str, cause: Mapping[str, Any]) -> set[str]:
        paths = self.rootcause_paths(kind)
        if paths.empty:
            return set()
        services = self.cached(("rootcause-json", kind), lambda: _service_paths(paths))
        keys: set[tuple[str, int]] | None = None
        for wanted in cause.get("Services") or []:
            keep = np.ones(len(services), dtype=bool)
            for field_name, column in (
                ("Name", "service_name"),
                ("Type", "service_type"),
                ("AccountId", "account_id"),
            ):
                if wanted.get(field_name) is not None:
                    keep &= compare(services[column], "string", "=", str(wanted[field_name]))
            if wanted.get("Inferred") is not None:
                keep &= as_bool(services["inferred"]) == bool(wanted["Inferred"])
            if wanted.get("EntityPath") is not None:
                path = "\x1f".join(str(e.get("Name", "")) for e in wanted["EntityPath"])
                keep &= (services["path"] == path).to_numpy(dtype=bool)
            hit = services.loc[keep]
            these = set(zip(hit["trace_id"], hit["cause_index"], strict=True))
            keys = these if keys is None else keys & these
        if keys is None:  # a RootCause without services: any cause of this kind
            return set(paths["trace_id"])
        return {trace_id for trace_id, _ in keys}

    # -- groups -----------------------------------------------------------------------
    def group_expression(self, expr: Group) -> tuple[str, str]:
        """Return (group label, its filter expression)."""
        groups = self.groups or {}
        value = expr.value
        found = groups.get(value)
        if found is None and expr.attribute == "arn":
            match = re.search(r":group/([^/]+)", value)
            if match:
                found = groups.get(match.group(1))
        if found is None:
            known = ", ".join(repr(g) for g in sorted(groups)) or "none"
            raise error(
                self.expression,
                expr.span,
                f"Unknown group {value!r}",
                "Pass the group's filter expression: evaluate(..., groups={"
                f"{value!r}: 'responsetime > 3'}}) (known groups: {known}).",
            )
        return value, found

    def group_mask(self, expr: Group) -> np.ndarray:
        label, text = self.group_expression(expr)
        if label in self._group_stack:
            raise error(
                self.expression,
                expr.span,
                f"Group {label!r} refers to itself (through {' -> '.join(self._group_stack)})",
                "Break the cycle in the groups mapping.",
            )
        try:
            inner = parse(text)
        except FilterExpressionError as exc:
            raise FilterExpressionError(
                f"The filter expression of group {label!r} is not valid:\n{exc}",
                expression=self.expression,
                position=expr.span[0] if expr.span else None,
            ) from None
        self._group_stack.append(label)
        try:
            return self.mask(inner)
        finally:
            self._group_stack.pop()


def _uses(body: Expr | None, keywords: Mapping[str, str] | tuple[str, ...]) -> bool:
    """Whether a block's body uses any of ``keywords``."""
    if body is None:
        return False
    return any(isinstance(e, Keyword) and e.keyword in keywords for e in walk(body))


def _lookup(rows: pd.DataFrame, table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``columns`` of ``table`` for each row's (trace_id, entity_id), row-aligned."""
    table = table.drop_duplicates(["trace_id", "entity_id"])
    found = rows[["trace_id", "entity_id"]].merge(table, how="left", on=["trace_id", "entity_id"])
    return found[columns].reset_index(drop=True)


def _service_paths(paths: pd.DataFrame) -> pd.DataFrame:
    """One row per service of each root cause, with its entity names joined by \\x1f."""
    keys = ["trace_id", "cause_index", "service_index"]
    ordered = paths.sort_values([*keys, "entity_index"], kind="stable")
    joined = ordered.groupby(keys, sort=False)["entity_name"].agg(
        lambda names: "\x1f".join(str(n) for n in names)
    )
    first = ordered.drop_duplicates(keys).set_index(keys)
    return first.assign(path=joined).reset_index()


def evaluate(
    ts: TraceSet, expression: str | Expr, *, groups: Mapping[str, str] | None = None
) -> pd.Series:
    """Return which traces match a filter expression, as X-Ray would find them.

    Parameters
    ----------
    ts : TraceSet
        Not modified.
    expression : str or parsed tree
        An X-Ray filter expression (its semantics: ``docs/filter-expressions.md``).
    groups : mapping of str to str, optional
        Group name (or ARN) -> the group's filter expression, for ``group.name = "..."``.

    Returns
    -------
    Series of bool
        Aligned with ``ts.traces`` (same index), named ``"match"``.

    Raises
    ------
    FilterExpressionError
        For an invalid expression, one that is neither a str nor a parsed tree, or an
        unknown group.
    ArgumentTypeError
        When ``ts`` is not a TraceSet.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.query import evaluate
    >>> ts = xraykit.load_sample("shop")
    >>> match = evaluate(ts, "fault OR http.status >= 500")
    >>> bool((match == ts.traces.has_fault).all())
    True
    """
    check_traceset(ts, "ts")
    if isinstance(expression, str):
        tree = parse(expression)
    elif isinstance(expression, TREE_TYPES):
        tree = expression
    else:
        raise FilterExpressionError(
            "A filter expression must be a str (or a tree from xraykit.query.parse), but "
            f"{expression!r} of type {type(expression).__name__} was passed. Write the "
            'expression as text, e.g. ts.query("fault") or '
            "ts.query('service(\"orders\") { error }').",
            expression=repr(expression),
        )
    text = expression if isinstance(expression, str) else str(expression)
    evaluator = Evaluator(ts, groups, text)
    return pd.Series(evaluator.mask(tree), index=ts.traces.index, name="match", dtype=bool)
