"""to_pandas: the pandas code that selects the same traces as an expression, for teaching.

Columns come from the same keyword table as the evaluator's
(:data:`xraykit.query.keywords.KEYWORDS`); ``tests/test_query.py`` runs the code against
:func:`xraykit.query.evaluate` on the whole filter table and on random expressions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xraykit.exceptions import FilterExpressionError
from xraykit.query.evaluator import NODE_SEGMENT_COLUMNS
from xraykit.query.keywords import KEYWORDS, Scope
from xraykit.query.parser import parse
from xraykit.query.tree import (
    And,
    Annotation,
    Edge,
    Expr,
    Group,
    Keyword,
    Not,
    Or,
    RootCause,
    Selector,
    Service,
)

__all__ = ["to_pandas"]

#: Inside ``service()``: the node-segment columns joined onto the node rows.
_NODE_EXTRA = tuple(NODE_SEGMENT_COLUMNS.values())


class _PandasWriter:
    """Write the pandas code equivalent to a tree, for teaching."""

    def __init__(self, groups: Mapping[str, str] | None) -> None:
        self.groups = groups or {}
        self.setup: dict[str, str] = {}
        self.notes: list[str] = []  # what the code leaves to the evaluator, and why

    def need(self, name: str) -> None:
        code = {
            "t": "t = ts.traces",
            "s": "s = ts.segments",
            "throttled": (
                "# X-Ray's rule: a throttle flag or HTTP 429\n"
                'throttled = xraykit.status.flags(s["http_status"], throttle=s["throttle"]).throttle'
            ),
            "a": "a = ts.annotations",
            "nodes": "nodes = xraykit.graph.node_segments(ts).reset_index(drop=True)",
            "nodes_x": (
                'nodes = nodes.merge(s[["trace_id", "segment_id", '
                + ", ".join(f'"{c}"' for c in _NODE_EXTRA)
                + ']].rename(columns={"segment_id": "entity_id"}), how="left")'
            ),
            "calls": (
                "calls = xraykit.graph.edge_calls(ts).reset_index(drop=True)\n"
                'info = nodes.drop_duplicates("node_id").set_index("node_id")'
                '[["name", "type", "account_id"]]\n'
                'info.loc["client"] = ["client", "client", ""]\n'
                'src = info.reindex(calls["source"]).reset_index(drop=True)\n'
                'dst = info.reindex(calls["target"]).reset_index(drop=True)'
            ),
            "calls_x": (
                "# the caller's subsegment, or the root segment for client -> root calls\n"
                'http = pd.concat([ts.subsegments.rename(columns={"subsegment_id": "entity_id"}),'
                ' ts.segments.rename(columns={"segment_id": "entity_id"})])\n'
                'calls = calls.merge(http[["trace_id", "entity_id", "http_url", "http_method"]]'
                '.drop_duplicates(["trace_id", "entity_id"]), how="left")'
            ),
        }
        deps = {
            "throttled": ("s",),
            "nodes_x": ("s", "nodes"),
            "calls": ("nodes",),
            "calls_x": ("calls",),
        }
        for dep in deps.get(name, ()):
            self.need(dep)
        if name in code:
            self.setup.setdefault(name, code[name])
        elif name.startswith("rc_"):
            kind = name[3:]
            self.setup.setdefault(
                name,
                f'{name} = xraykit.analysis.root_cause_paths(ts, "{kind}").reset_index(drop=True)',
            )
        elif name.startswith(("svc_", "exc_")):
            kind = name[4:]
            self.need(f"rc_{kind}")
            by = '["trace_id", "cause_index"]'
            if name.startswith("svc_"):
                body = (
                    f'{name} = rc_{kind}.drop_duplicates(["trace_id", "cause_index", '
                    f'"service_index"]).reset_index(drop=True)\n'
                    f'{name}["index"] = {name}["service_index"]\n'
                    f'{name}["count"] = {name}.groupby({by})["index"].transform("max") + 1'
                )
            else:
                body = (
                    f'{name} = rc_{kind}[rc_{kind}["exception_name"].notna()]'
                    f".reset_index(drop=True)\n"
                    f'{name}["index"] = {name}.groupby({by}).cumcount()\n'
                    f'{name}["count"] = {name}.groupby({by})["index"].transform("max") + 1'
                )
            self.setup.setdefault(name, body)

    # -- expressions ------------------------------------------------------------------
    def code(self, expr: Expr, scope: Scope = "trace", frame: str = "t") -> str:
        if isinstance(expr, Or | And):
            joiner = " | " if isinstance(expr, Or) else " & "
            return "(" + joiner.join(self.code(i, scope, frame) for i in expr.items) + ")"
        if isinstance(expr, Not):
            return f"~{self.code(expr.operand, scope, frame)}"
        if isinstance(expr, Keyword):
            return self.keyword(expr, scope, frame)
        if isinstance(expr, Annotation):
            self.need("a")
            return f'{self.ids()}.isin(a.loc[{self.annotation(expr)}, "trace_id"])'
        if isinstance(expr, Service):
            self.need("nodes")
            cond = self.selector(expr.node, "nodes")
            if expr.body is not None:
                cond.append(self.code(expr.body, "service", "nodes"))
            where = " & ".join(cond) if cond else ":"
            return f'{self.ids()}.isin(nodes.loc[{where}, "trace_id"])'
        if isinstance(expr, Edge):
            self.need("calls")
            cond = self.selector(expr.source, "src") + self.selector(expr.target, "dst")
            if expr.body is not None:
                cond.append(self.code(expr.body, "edge", "calls"))
            return f'{self.ids()}.isin(calls.loc[{" & ".join(cond)}, "trace_id"])'
        if isinstance(expr, RootCause):
            rows = {
                "entity": f"rc_{expr.kind}",
                "service": f"svc_{expr.kind}",
                "exception": f"exc_{expr.kind}",
            }[expr.level]
            self.need(rows)
            where = (
                ":"
                if expr.body is None
                else self.code(expr.body, f"rootcause.{expr.kind}.{expr.level}", rows)
            )
            return f'{self.ids()}.isin({rows}.loc[{where}, "trace_id"])'
        if isinstance(expr, Group):
            text = self.groups.get(expr.value)
            if text is None:
                raise FilterExpressionError(
                    f"to_pandas needs the expression of group {expr.value!r}: pass "
                    f"groups={{{expr.value!r}: '...'}}.",
                    expression=str(expr),
                )
            return self.code(parse(text))
        self.need("t")
        self.notes.append(
            f"# {expr} has no short pandas equivalent: the code asks xraykit.query.evaluate."
        )
        return f"xraykit.query.evaluate(ts, {str(expr)!r})"

    def ids(self) -> str:
        self.need("t")
        return 't["trace_id"]'

    @staticmethod
    def compare(col: str, kind: str, op: str | None, value: Any) -> str:
        if kind == "boolean":
            if op is None or (op == "=") == bool(value):
                return col
            return f"~{col}"
        if op is None:
            return f"{col}.notna()"
        v = repr(value) if not isinstance(value, bool) else str(value)
        if kind == "number":
            if op == "!=":
                return f"({col}.notna() & ({col} != {v}))"
            py = "==" if op == "=" else op
            return f"({col} {py} {v}).fillna(False)"
        if op == "=":
            return f"({col} == {v})"
        if op == "!=":
            return f"({col}.notna() & ({col} != {v}))"
        method = {"CONTAINS": "contains", "BEGINSWITH": "startswith", "ENDSWITH": "endswith"}[op]
        extra = ", regex=False" if method == "contains" else ""
        return f"{col}.str.{method}({v}{extra}).fillna(False)"

    def keyword(self, expr: Keyword, scope: Scope, frame: str) -> str:
        kw = expr.keyword
        spec = KEYWORDS[kw]
        kind = spec.type
        if scope == "trace":
            self.need("t")
            if kw == "ok":
                self.need("s")
                self.need("throttled")
                col = (
                    '~(t["has_fault"] | t["has_error"] | t["trace_id"].isin(s.loc[throttled'
                    ' & s["segment_id"].isin(t["root_segment_id"]), "trace_id"]))'
                )
            elif kw == "inferred":
                self.need("nodes")
                col = 't["trace_id"].isin(nodes.loc[nodes["inferred"], "trace_id"])'
            elif spec.trace_column is None:  # any segment of the trace
                self.need("s")
                cond = self.compare(f's["{spec.segment_column}"]', kind, expr.op, expr.value)
                return f't["trace_id"].isin(s.loc[{cond}, "trace_id"])'
            else:
                col = f't["{spec.trace_column}"]'
            return self.compare(col, kind, expr.op, expr.value)
        column = spec.row_column
        if kw == "partial":
            col = f'{frame}["end"].isna()'
        elif kw == "duration":
            col = f'({frame}["end"] - {frame}["start"]).dt.total_seconds()'
        elif scope == "service" and column in _NODE_EXTRA:
            self.need("nodes_x")
            col = f'{frame}["{column}"]'
        elif scope == "edge" and column in ("http_url", "http_method"):
            self.need("calls_x")
            col = f'{frame}["{column}"]'
        elif scope.startswith("rootcause."):
            level = scope.rsplit(".", 1)[1]
            if kw == "first":
                col = f'({frame}["{"entity_index" if level == "entity" else "index"}"] == 0)'
            elif kw == "last":
                col = (
                    f'({frame}["entity_index"] == {frame}["entity_count"] - 1)'
                    if level == "entity"
                    else f'({frame}["index"] == {frame}["count"] - 1)'
                )
            else:
                names = {
                    "name": {
                        "entity": "entity_name",
                        "service": "service_name",
                        "exception": "exception_name",
                    }[level],
                    "type": "service_type",
                    "message": "exception_message",
                    "index": "entity_index" if level == "entity" else "index",
                }
                col = f'{frame}["{names.get(kw, column)}"]'
        else:
            col = f'{frame}["{column}"]'
        return self.compare(col, kind, expr.op, expr.value)

    def annotation(self, expr: Annotation) -> str:
        key = f'(a["key"] == {expr.key!r})'
        if expr.op is None:  # the key is set
            return key
        if isinstance(expr.value, bool):
            vtype, col = "boolean", 'a["value"]'
        elif isinstance(expr.value, str):
            vtype, col = "string", 'a["value"]'
        else:
            vtype, col = "number", 'pd.to_numeric(a["value"], errors="coerce")'
        cond = self.compare(col, "boolean" if vtype == "boolean" else vtype, None, None)
        if vtype == "boolean":
            cond = (
                f'(a["value"] == {expr.value})'
                if expr.op == "="
                else f'(a["value"] != {expr.value})'
            )
        else:
            cond = self.compare(col, vtype, expr.op, expr.value)
        return f'{key} & (a["value_type"] == "{vtype}") & {cond}'

    @staticmethod
    def selector(node: Selector | None, frame: str) -> list[str]:
        if node is None:
            return []
        if isinstance(node, str):
            return [f'({frame}["name"] == {node!r})']
        return [
            f'({frame}["{col}"] == {v!r})'
            for col, v in (
                ("name", node.name),
                ("type", node.type),
                ("account_id", node.account_id),
            )
            if v is not None
        ]


def to_pandas(expression: str, *, groups: Mapping[str, str] | None = None) -> str:
    """Return pandas code that selects the same traces as a filter expression.

    The code expects a TraceSet named ``ts`` and ends with ``matches``, the TraceSet of the
    matching traces. It is for reading (how each keyword maps onto the frames) and runs as is.
    A clause with no short pandas equivalent (``rootcause.json``) is left to
    :func:`evaluate`, and a comment at the top of the code says so.

    Parameters
    ----------
    expression : str
    groups : mapping of str to str, optional
        Group expressions to inline for ``group.name = "..."``.

    Returns
    -------
    str

    Examples
    --------
    >>> from xraykit.query import to_pandas
    >>> print(to_pandas('responsetime > 2 AND annotation.tier = "gold"'))
    import pandas as pd
    import xraykit
    <BLANKLINE>
    t = ts.traces
    a = ts.annotations
    mask = ((t["response_time_s"] > 2).fillna(False) & t["trace_id"].isin(a.loc[(a["key"] == 'tier') & (a["value_type"] == "string") & (a["value"] == 'gold'), "trace_id"]))
    matches = ts.select(t.loc[mask.to_numpy(dtype=bool), "trace_id"])
    """
    tree = parse(expression)
    writer = _PandasWriter(groups)
    mask = writer.code(tree)
    imports = "import pandas as pd\nimport xraykit\n"
    setup = "".join(writer.setup.values())
    for module in ("analysis", "graph", "status"):
        if f"xraykit.{module}." in setup:
            imports += f"import xraykit.{module}\n"
    if "xraykit.query" in mask:
        imports += "import xraykit.query\n"
    notes = "".join(f"{note}\n" for note in dict.fromkeys(writer.notes))
    return (
        f"{imports}\n{notes}"
        + "\n".join(writer.setup.values())
        + f"\nmask = {mask}\n"
        + 'matches = ts.select(t.loc[mask.to_numpy(dtype=bool), "trace_id"])'
    )
