"""Explanations: why one trace matches an expression or not, clause by clause."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xraykit.arguments import check_traceset
from xraykit.query.evaluator import Evaluator, as_bool
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
    Service,
)

if TYPE_CHECKING:
    from xraykit.traceset import TraceSet

__all__ = ["Explanation", "explain"]


@dataclass(frozen=True)
class Explanation:
    """Why one trace matched a filter expression or not, clause by clause.

    ``lines`` holds ``(depth, result, clause, detail)``; ``str()`` draws them as a tree.
    Made by :func:`explain`.

    >>> import xraykit
    >>> ts = xraykit.load_sample("shop")
    >>> why = explain(ts, "fault OR responsetime > 100", ts.traces.trace_id[0])
    >>> bool(why), why.lines[0][:3]
    (False, (0, False, 'fault OR responsetime > 100'))
    """

    expression: str
    trace_id: str
    matched: bool
    lines: tuple[tuple[int, bool, str, str], ...]

    def __str__(self) -> str:
        verdict = "matches" if self.matched else "does not match"
        out = [f"Trace {self.trace_id} {verdict}: {self.expression}"]
        for depth, result, clause, detail in self.lines:
            mark = "✔" if result else "✘"
            out.append(
                f"{'    ' * (depth + 1)}{mark} {clause}" + (f"   [{detail}]" if detail else "")
            )
        return "\n".join(out)

    __repr__ = __str__

    def __bool__(self) -> bool:
        return self.matched


def _show(value: Any) -> str:
    if value is None or (not isinstance(value, str | bool) and pd.isna(value)):
        return "not set"
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


class _Explainer:
    def __init__(self, evaluator: Evaluator) -> None:
        self.ev = evaluator
        self.lines: list[tuple[int, bool, str, str]] = []

    def add(self, depth: int, result: bool, clause: Expr | str, detail: str = "") -> None:
        self.lines.append((depth, bool(result), str(clause), detail))

    def explain(
        self, expr: Expr, depth: int, scope: Scope = "trace", rows: pd.DataFrame | None = None
    ) -> bool:
        result = bool(self.ev.mask(expr, scope, rows)[0])
        if isinstance(expr, Or | And | Not):
            word = {Or: "any of", And: "all of", Not: "not"}[type(expr)]
            self.add(depth, result, expr, word)
            for item in expr.items if isinstance(expr, Or | And) else (expr.operand,):
                self.explain(item, depth + 1, scope, rows)
        elif isinstance(expr, Keyword):
            self.add(depth, result, expr, self.keyword_detail(expr, scope, rows))
        elif isinstance(expr, Annotation):
            ann = self.ev.ts.annotations
            vals = ann.loc[(ann["key"] == expr.key).to_numpy(dtype=bool)]
            shown = ", ".join(
                f"{_show(v)} ({t})" for v, t in zip(vals["value"], vals["value_type"], strict=True)
            )
            self.add(depth, result, expr, f"annotation.{expr.key}: {shown or 'not set'}")
        elif isinstance(expr, Service | Edge | RootCause):
            self.block(expr, depth, result)
        elif isinstance(expr, Group):
            label, text = self.ev.group_expression(expr)
            self.add(depth, result, expr, f"group {label!r} is: {text}")
            self.explain(parse(text), depth + 1)
        else:
            self.add(depth, result, expr, "compared with the root causes computed locally")
        return result

    def keyword_detail(self, expr: Keyword, scope: Scope, rows: pd.DataFrame | None) -> str:
        kw = expr.keyword
        if scope != "trace":
            assert rows is not None
            return f"{kw} = {_show(rows[KEYWORDS[kw].row_column].iloc[0])}"
        t = self.ev.t.iloc[0]
        if kw == "ok":
            return (
                f"root fault = {t['has_fault']}, error = {t['has_error']}, "
                f"throttle = {bool(self.ev.root_throttle()[0])}"
            )
        if kw == "inferred":
            nodes = self.ev.nodes()
            names = sorted(nodes.loc[as_bool(nodes["inferred"]), "node_id"].unique())
            return f"inferred nodes: {', '.join(names) or 'none'}"
        spec = KEYWORDS[kw]
        if spec.trace_column is None:
            values = self.ev.ts.segments[spec.segment_column].dropna().unique()
            return f"{kw} on the segments: {', '.join(map(_show, values)) or 'not set'}"
        return f"{kw} = {_show(t[spec.trace_column])}"

    def block(self, expr: Service | Edge | RootCause, depth: int, result: bool) -> None:
        if isinstance(expr, Service):
            rows = self.ev.nodes(extra=True)
            keep = self.ev.select_nodes(rows, expr.node)
            scope: Scope = "service"
            label = rows["node_id"]
            what = "node"
        elif isinstance(expr, Edge):
            rows = self.ev.edges(extra=True)
            keep = self.ev.select_nodes(rows, expr.source, "source_")
            keep &= self.ev.select_nodes(rows, expr.target, "target_")
            scope = "edge"
            label = rows["source"] + " -> " + rows["target"]
            what = "call"
        else:
            rows = self.ev.rootcause_rows(expr.kind, expr.level)
            keep = np.ones(len(rows), dtype=bool)
            scope = f"rootcause.{expr.kind}.{expr.level}"
            label = (
                "cause "
                + rows["cause_index"].astype(str)
                + ": "
                + rows["name"].astype(str)
                + " #"
                + rows["index"].astype(int).astype(str)
            )
            what = expr.level
        selected = rows.loc[keep]
        labels = label.loc[keep]
        if expr.body is not None and len(selected):  # the rows that satisfy the block first
            hits = self.ev.mask(expr.body, scope, selected)
            order = np.argsort(~hits, kind="stable")
            selected, labels = selected.iloc[order], labels.iloc[order]
        self.add(depth, result, expr, f"{len(selected)} {what}(s) selected")
        for i in range(min(len(selected), 12)):
            one = selected.iloc[[i]]
            if expr.body is None:
                self.add(depth + 1, True, f"{what} {labels.iloc[i]}")
                continue
            hit = bool(self.ev.mask(expr.body, scope, one)[0])
            self.add(depth + 1, hit, f"{what} {labels.iloc[i]}")
            self.explain(expr.body, depth + 2, scope, one)
        if len(selected) > 12:
            self.add(depth + 1, result, f"... and {len(selected) - 12} more")


def explain(
    ts: TraceSet, expression: str, trace_id: str, *, groups: Mapping[str, str] | None = None
) -> Explanation:
    """Say, clause by clause, why a trace matches a filter expression or not.

    Parameters
    ----------
    ts : TraceSet
    expression : str
    trace_id : str
        One of ``ts.traces.trace_id``.
    groups : mapping of str to str, optional
        As for :func:`evaluate`.

    Returns
    -------
    Explanation
        Prints as a tree of clauses with ✔/✘ and the values that decided them;
        ``bool(explanation)`` is whether the trace matched.

    Raises
    ------
    FilterExpressionError
    NotFoundError
        When no trace has that id (a LookupError).

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.query import explain
    >>> ts = xraykit.load_sample("shop")
    >>> why = explain(ts, "responsetime > 100 OR !fault", ts.traces.trace_id[0])
    >>> print(str(why).splitlines()[2])
            ✘ responsetime > 100   [responsetime = ...]
    """
    check_traceset(ts, "ts")
    tree = parse(expression)
    one = ts.trace(trace_id)
    explainer = _Explainer(Evaluator(one, groups, expression))
    matched = explainer.explain(tree, 0)
    return Explanation(str(tree), trace_id, matched, tuple(explainer.lines))
