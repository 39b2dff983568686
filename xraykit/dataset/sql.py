"""Filter expressions as SQL: the part of an expression a dataset can answer before loading.

:func:`expression_sql` turns a parsed filter expression into a condition on the ``traces``
view (alias ``t``) and says whether that condition is *exact* (true for exactly the traces
the expression matches) or only a *pre-filter* (true for at least those). What is exact:
top-level keywords read from the traces frame (``responsetime``, ``duration``,
``http.status``, ``fault``, ``error``, ``throttle``, ``partial``, ``http.url`` ...), those
read from any segment (``user``, ``availabilityzone``, ``instance.id``, ``resource.arn``),
annotations, and ``service()`` / ``service(id(...))`` membership with a body of node
keywords (outcome flags, ``responsetime``, ``http.status``, ``name``, ``type``, ``root``,
``inferred``, ``partial``); ``AND``, ``OR`` and ``!`` of exact parts. Everything else
(``edge()``, root causes, groups, ``ok``, ``inferred`` at the top) is left to
:func:`xraykit.query.evaluate` on the loaded candidates.

Every exact condition is NULL-free (missing values satisfy nothing, as in the evaluator),
so that ``NOT`` of it is exact too.

>>> from xraykit.query import parse
>>> condition, exact = expression_sql(parse("responsetime > 2 AND fault"))
>>> print(condition)
(COALESCE(CAST(t.response_time_s AS DOUBLE) > CAST('2.0' AS DOUBLE) AND NOT isnan(CAST(t.response_time_s AS DOUBLE)), FALSE) AND COALESCE(t.has_fault, FALSE))
>>> exact
True
>>> expression_sql(parse('fault OR edge("a", "b")'))
(None, False)
"""

from __future__ import annotations

from xraykit.query.keywords import KEYWORDS
from xraykit.query.tree import And, Annotation, Expr, Keyword, NodeId, Not, Or, Service

__all__ = ["expression_sql", "literal"]

#: Keywords inside ``service()`` answered from the ``graph_nodes`` rows: keyword -> column.
NODE_COLUMNS = {
    "fault": "fault",
    "error": "error",
    "throttle": "throttle",
    "ok": "ok",
    "root": "root",
    "inferred": "inferred",
    "responsetime": "response_time_s",
    "http.status": "http_status",
    "name": "name",
    "type": "type",
}

_NUMBER_OPS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

Condition = tuple[str | None, bool]


def literal(value: object) -> str:
    """A Python value as a SQL literal.

    >>> literal("it's"), literal(2), literal(True)
    ("'it''s'", "CAST('2.0' AS DOUBLE)", 'TRUE')
    """
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        number = float(value)
        # quoted: a bare 2.5 is a DECIMAL in DuckDB
        return f"CAST('{number!r}' AS DOUBLE)"
    return "'" + str(value).replace("'", "''") + "'"


def compare_sql(column: str, kind: str, op: str | None, value: object) -> str:
    """A NULL-free comparison of one column, as :func:`xraykit.query.evaluator.compare`."""
    if kind == "boolean":
        flag = f"COALESCE({column}, FALSE)"
        if op is None:
            return flag
        return f"({flag} {'=' if op == '=' else '<>'} {literal(value)})"
    if kind == "number":
        number = f"CAST({column} AS DOUBLE)"
        if op is None:
            return f"COALESCE(NOT isnan({number}), FALSE)"
        return (
            f"COALESCE({number} {_NUMBER_OPS[op]} {literal(value)} AND NOT isnan({number}), FALSE)"
        )
    if op is None:
        return f"({column} IS NOT NULL)"
    text = literal(value)
    if op in ("=", "!="):
        return f"COALESCE({column} {'=' if op == '=' else '<>'} {text}, FALSE)"
    func = {"CONTAINS": "contains", "BEGINSWITH": "starts_with", "ENDSWITH": "ends_with"}[op]
    return f"COALESCE({func}({column}, {text}), FALSE)"


def _combine(items: list[Condition], joiner: str) -> Condition:
    if joiner == "OR" and any(sql is None for sql, _ in items):
        return None, False
    parts = [sql for sql, _ in items if sql is not None]
    exact = all(e for _, e in items)
    if not parts:
        return None, False
    return "(" + f" {joiner} ".join(parts) + ")", exact


def _trace_keyword(expr: Keyword) -> Condition:
    spec = KEYWORDS[expr.keyword]
    if spec.trace_column is not None:
        return compare_sql(f"t.{spec.trace_column}", spec.type, expr.op, expr.value), True
    if spec.segment_column is not None:  # any segment of the trace
        cond = compare_sql(f"s.{spec.segment_column}", spec.type, expr.op, expr.value)
        return (
            f"t.trace_id IN (SELECT s.trace_id FROM segments s WHERE s.trace_id IS NOT NULL "
            f"AND {cond})",
            True,
        )
    return None, False  # ok, inferred: computed by the evaluator


def _annotation(expr: Annotation) -> Condition:
    where = [f"a.key = {literal(expr.key)}", "a.trace_id IS NOT NULL"]
    if expr.op is not None:
        if isinstance(expr.value, bool):
            where.append("a.value_type = 'boolean'")
            where.append(compare_sql("(a.value = 'true')", "boolean", expr.op, expr.value))
        elif isinstance(expr.value, str):
            where.append("a.value_type = 'string'")
            where.append(compare_sql("a.value", "string", expr.op, expr.value))
        else:
            where.append("a.value_type = 'number'")
            where.append(compare_sql("TRY_CAST(a.value AS DOUBLE)", "number", expr.op, expr.value))
    return (
        f"t.trace_id IN (SELECT a.trace_id FROM annotations a WHERE {' AND '.join(where)})",
        True,
    )


def _node_condition(expr: Expr) -> Condition:
    """A condition on one ``graph_nodes`` row (alias ``n``) inside ``service()``."""
    if isinstance(expr, Or):
        return _combine([_node_condition(i) for i in expr.items], "OR")
    if isinstance(expr, And):
        return _combine([_node_condition(i) for i in expr.items], "AND")
    if isinstance(expr, Not):
        inner, exact = _node_condition(expr.operand)
        return (f"(NOT {inner})", True) if inner is not None and exact else (None, False)
    if isinstance(expr, Keyword):
        if expr.keyword == "partial":
            flag = '(n."end" IS NULL)'
            return compare_sql(flag, "boolean", expr.op, expr.value), True
        column = NODE_COLUMNS.get(expr.keyword)
        if column is not None:
            kind = KEYWORDS[expr.keyword].type
            return compare_sql(f"n.{column}", kind, expr.op, expr.value), True
    return None, False


def _selector(node: str | NodeId | None) -> list[str]:
    if node is None:
        return []
    if isinstance(node, str):
        return [compare_sql("n.name", "string", "=", node)]
    return [
        compare_sql(f"n.{column}", "string", "=", value)
        for value, column in (
            (node.name, "name"),
            (node.type, "type"),
            (node.account_id, "account_id"),
        )
        if value is not None
    ]


def _service(expr: Service) -> Condition:
    where = ["n.trace_id IS NOT NULL", *_selector(expr.node)]
    exact = True
    if expr.body is not None:
        body, exact = _node_condition(expr.body)
        if body is not None:
            where.append(body)
    return (
        f"t.trace_id IN (SELECT n.trace_id FROM graph_nodes n WHERE {' AND '.join(where)})",
        exact,
    )


def expression_sql(expr: Expr) -> Condition:
    """A condition on the ``traces`` view (alias ``t``) for ``expr``, and whether it is exact.

    ``(None, False)``: nothing can be pushed down (every trace is a candidate). Otherwise the
    condition holds for every matching trace, and for no other when it is exact.
    """
    if isinstance(expr, Or):
        return _combine([expression_sql(i) for i in expr.items], "OR")
    if isinstance(expr, And):
        return _combine([expression_sql(i) for i in expr.items], "AND")
    if isinstance(expr, Not):
        inner, exact = expression_sql(expr.operand)
        return (f"(NOT {inner})", True) if inner is not None and exact else (None, False)
    if isinstance(expr, Keyword):
        return _trace_keyword(expr)
    if isinstance(expr, Annotation):
        return _annotation(expr)
    if isinstance(expr, Service):
        return _service(expr)
    return None, False  # edge(), rootcause, group: the evaluator decides
