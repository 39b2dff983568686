"""The parse tree of a filter expression: small frozen dataclasses, one per kind of clause.

``str()`` of any node is its normalised text; :func:`walk` visits a tree depth first. The
nodes are made by :func:`xraykit.query.parse` and read by the evaluator, ``explain`` and
``to_pandas``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

__all__ = [
    "TREE_TYPES",
    "And",
    "Annotation",
    "Edge",
    "Expr",
    "Group",
    "Keyword",
    "NodeId",
    "Not",
    "Or",
    "RootCause",
    "RootCauseJson",
    "Selector",
    "Service",
    "Span",
    "Value",
    "format_value",
    "quote",
    "unquote",
    "walk",
]

Span = tuple[int, int]
Value: TypeAlias = "bool | int | float | str"


def quote(text: str) -> str:
    """``text`` as a double-quoted filter string, ``\\`` and ``"`` escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote(token: str) -> str:
    """The text of a double-quoted string token (the inverse of :func:`quote`)."""
    return re.sub(r'\\([\\"])', r"\1", token[1:-1])


def format_value(value: Value) -> str:
    """A value as the filter language writes it: ``true``, ``"text"``, ``2.5``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote(value)
    return repr(value)


@dataclass(frozen=True)
class Or:
    """``a OR b OR ...``.

    >>> from xraykit.query import parse
    >>> parse("fault OR error")
    Or(items=(Keyword(keyword='fault', op=None, value=None), Keyword(keyword='error', op=None, value=None)))
    """

    items: tuple[Expr, ...]
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __str__(self) -> str:
        return " OR ".join(str(i) for i in self.items)


@dataclass(frozen=True)
class And:
    """``a AND b AND ...`` (also written ``a b``).

    >>> str(And((Keyword("ok"), Not(Keyword("partial")))))
    'ok AND !partial'
    """

    items: tuple[Expr, ...]
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __str__(self) -> str:
        return " AND ".join(f"({i})" if isinstance(i, Or) else str(i) for i in self.items)


@dataclass(frozen=True)
class Not:
    """``!operand``.

    >>> from xraykit.query import parse
    >>> parse("!(fault OR error)").operand == parse("fault OR error")
    True
    """

    operand: Expr
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __str__(self) -> str:
        inner = str(self.operand)
        return f"!({inner})" if isinstance(self.operand, And | Or) else f"!{inner}"


@dataclass(frozen=True)
class Keyword:
    """A boolean, number or string keyword, bare or compared: ``fault``, ``duration > 3``.

    >>> from xraykit.query import parse
    >>> parse("responseTime >= 2.5")
    Keyword(keyword='responsetime', op='>=', value=2.5)
    """

    keyword: str
    op: str | None = None
    value: Value | None = None
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __str__(self) -> str:
        if self.op is None:
            return self.keyword
        return f"{self.keyword} {self.op} {format_value(self.value)}"  # type: ignore[arg-type]


@dataclass(frozen=True)
class Annotation:
    """``annotation.KEY`` bare (the key is set) or compared with a value of its type.

    >>> from xraykit.query import parse
    >>> parse('annotation.tier = "gold"')
    Annotation(key='tier', op='=', value='gold')
    >>> parse("annotation.is_retry")
    Annotation(key='is_retry', op=None, value=None)
    """

    key: str
    op: str | None = None
    value: Value | None = None
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __str__(self) -> str:
        if self.op is None:
            return f"annotation.{self.key}"
        return f"annotation.{self.key} {self.op} {format_value(self.value)}"  # type: ignore[arg-type]


@dataclass(frozen=True)
class NodeId:
    """``id(name: "...", type: "...", account.id: "...")``: a node of the service graph.

    >>> str(NodeId(name="checkout", type="AWS::Lambda::Function"))
    'id(name: "checkout", type: "AWS::Lambda::Function")'
    """

    name: str | None = None
    type: str | None = None
    account_id: str | None = None
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __str__(self) -> str:
        parts = [
            f"{label}: {quote(v)}"
            for label, v in (
                ("name", self.name),
                ("type", self.type),
                ("account.id", self.account_id),
            )
            if v is not None
        ]
        return f"id({', '.join(parts)})"


Selector: TypeAlias = "str | NodeId"


def _format_selector(node: Selector | None) -> str:
    if node is None:
        return ""
    return quote(node) if isinstance(node, str) else str(node)


def _format_block(body: Expr | None) -> str:
    return "" if body is None else f" {{ {body} }}"


@dataclass(frozen=True)
class Service:
    """``service(selector) { body }``; selector ``None`` is ``service()`` (any node).

    >>> from xraykit.query import parse
    >>> tree = parse('service("orders") { fault }')
    >>> tree.node, tree.body
    ('orders', Keyword(keyword='fault', op=None, value=None))
    """

    node: Selector | None = None
    body: Expr | None = None
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __str__(self) -> str:
        return f"service({_format_selector(self.node)}){_format_block(self.body)}"


@dataclass(frozen=True)
class Edge:
    """``edge(source, target) { body }``.

    >>> str(Edge("web", NodeId(type="AWS::Lambda"), Keyword("error")))
    'edge("web", id(type: "AWS::Lambda")) { error }'
    """

    source: Selector
    target: Selector
    body: Expr | None = None
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __str__(self) -> str:
        nodes = f"{_format_selector(self.source)}, {_format_selector(self.target)}"
        return f"edge({nodes}){_format_block(self.body)}"


@dataclass(frozen=True)
class Group:
    """``group.name = "..."`` or ``group.arn = "..."``.

    >>> from xraykit.query import parse
    >>> parse('group.name = "slow"')
    Group(attribute='name', value='slow')
    """

    attribute: Literal["name", "arn"]
    value: str
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __str__(self) -> str:
        return f"group.{self.attribute} = {quote(self.value)}"


@dataclass(frozen=True)
class RootCause:
    """``rootcause.KIND.LEVEL { body }``.

    >>> from xraykit.query import parse
    >>> tree = parse('rootcause.fault.service { name = "payments" }')
    >>> tree.kind, tree.level, str(tree.body)
    ('fault', 'service', 'name = "payments"')
    """

    kind: Literal["fault", "error", "responsetime"]
    level: Literal["service", "entity", "exception"]
    body: Expr | None = None
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __str__(self) -> str:
        return f"rootcause.{self.kind}.{self.level}{_format_block(self.body)}"


@dataclass(frozen=True)
class RootCauseJson:
    """``rootcause.json = #[...]``; ``json`` is the array as compact JSON text.

    >>> from xraykit.query import parse
    >>> parse('rootcause.json = #[{"Services": [{"Name": "auth"}]}]').causes
    [{'Services': [{'Name': 'auth'}]}]
    """

    json: str
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __str__(self) -> str:
        return f"rootcause.json = #{self.json}"

    @property
    def causes(self) -> list[Any]:
        """The RootCause objects, decoded."""
        return list(json.loads(self.json))


Expr: TypeAlias = (
    "Or | And | Not | Keyword | Annotation | Service | Edge | Group | RootCause | RootCauseJson"
)

TREE_TYPES = (Or, And, Not, Keyword, Annotation, Service, Edge, Group, RootCause, RootCauseJson)


def walk(expr: Expr) -> Iterator[Expr]:
    """Yield ``expr`` and every clause inside it, depth first.

    >>> from xraykit.query import parse
    >>> [str(e) for e in walk(parse("fault OR !ok"))]
    ['fault OR !ok', 'fault', '!ok', 'ok']
    """
    yield expr
    if isinstance(expr, Or | And):
        for item in expr.items:
            yield from walk(item)
    elif isinstance(expr, Not):
        yield from walk(expr.operand)
    elif isinstance(expr, Service | Edge | RootCause) and expr.body is not None:
        yield from walk(expr.body)
