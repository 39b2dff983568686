"""X-Ray filter expressions, parsed and evaluated offline on any TraceSet.

Filter expressions are how X-Ray users search traces: in the console's search bar, in
``GetTraceSummaries(FilterExpression=...)`` and in groups. xraykit reads the same language
(the grammar is in ``grammar.lark``, next to this module) and evaluates it over the
frames of a :class:`~xraykit.TraceSet`, vectorised, so learners practise on samples and
analysts use one query language for live and cached traces.

>>> import xraykit
>>> ts = xraykit.load_sample("shop")
>>> slow = ts.query('responsetime > 0.5 AND http.method = "POST"')
>>> bool((slow.traces.response_time_s > 0.5).all())
True
>>> str(parse('service("orders")   {fault=TRUE or responseTime>2.5} annotation.tier="gold"'))
'service("orders") { fault = true OR responsetime > 2.5 } AND annotation.tier = "gold"'

The public functions are :func:`parse`, :func:`validate`, :func:`evaluate`,
:func:`explain` and :func:`to_pandas`; ``TraceSet.query`` calls :func:`evaluate`.

Semantics
---------
Each rule below is X-Ray's where the AWS documentation states it (xray-facts.md §3, the
developer guide page "Using filter expressions"); where the documentation is silent, the
rule is xraykit's decision, marked *decision*.

**Syntax.** Clauses joined by ``AND``, ``OR`` or nothing (juxtaposition means AND);
``!`` negates; parentheses group. Precedence: ``!`` before AND before OR, so
``a OR b c`` is ``a OR (b AND c)``. Keywords, ``AND``/``OR``, ``true``/``false`` and the
word operators are case-insensitive (the docs use ``and`` and ``responseTime``; *decision*
for the rest); ``str(parse(e))`` spells them lower case (operators upper case).
Strings are double-quoted; ``\\"`` and ``\\\\`` are the only escapes (*decision*).
``NOT`` is not a keyword (undocumented; use ``!``).

**Simple keywords apply to the trace**, i.e. to its root segment and to the
``GetTraceSummaries`` fields (``traces`` frame). One status rule holds everywhere in
xraykit (traces frame, filters, service graph): fault = fault flag or 5xx, error = error
flag or 4xx (429 included), throttle = throttle flag or 429, where a flag missing from a
document is completed from the HTTP status. ``fault``/``error`` are the root's
(``has_fault``/``has_error``); ``ok`` is "the root had no fault, error or throttle"
(``!fault AND !error``, and a root's throttle flag counts as an error). ``throttle`` is
``has_throttle``: a throttle anywhere in the trace, as TraceSummary's ``HasThrottle``
(*decision*: the console docs list ``throttle`` with the simple keywords, which look at
the root, but the trace-level throttle X-Ray records is "any segment"; ask for the root's
with ``service() { root AND throttle }``), so a trace whose root
succeeded after a throttled retry is both ``ok`` and ``throttle``. ``partial`` is
``is_partial``, ``inferred`` is "some node of the trace is inferred" (an inferred
segment, or a downstream call X-Ray would infer one for), ``responsetime`` the root's
duration, ``duration`` first start to last end, ``http.*`` the root's request. A downstream
error the root handled is **not** found by bare ``error``:

>>> from xraykit.query import evaluate
>>> bool(evaluate("error", ts).sum() <= evaluate("service() { error }", ts).sum())
True

``user``, ``availabilityzone``, ``instance.id`` and ``resource.arn`` are "any segment of the
trace" (the docs say so for ``user``; *decision* for the others, which TraceSummary lists per
trace): the clause holds when some segment's value satisfies the comparison.

**A missing value satisfies no comparison** (*decision*): ``http.status != 200`` does not
match a trace without a status, ``user != "alice"`` needs some segment with another user.
A bare string keyword means "is set" (``http.url``), as does ``user CONTAINS ""``.
String comparisons are case-sensitive (*decision*); ``http.method`` is stored upper case.

**Annotations** (``annotation.KEY``; keys are ``[A-Za-z0-9_]``, case-sensitive) compare with
the operators of the value's type: ``annotation.age > 29`` looks at number values only,
``annotation.tier = "gold"`` at string values, ``annotation.vip = true`` at booleans. A value
of another type never matches (*decision*). Bare ``annotation.KEY`` is true when the key is
set on some entity of the trace, whatever its value and type (documented: "key set"), so
``annotation.is_retry`` also matches ``is_retry = false``; a boolean's value is tested with
``annotation.KEY = true``. ``!annotation.KEY`` is true when the key is set nowhere.
Annotations on any segment or subsegment of the trace count. Annotations cannot be used
inside ``service()``/``edge()`` blocks (documented).

**service(selector) { expr }** holds when some node of the trace's service graph matches
the selector and the inner expression: every segment (inferred ones included) and every
inferred downstream of an ``aws``/``remote``/SQL call, as
:func:`xraykit.graph.node_segments` lists them; the client is no node. A name selects
every node of that name (a Lambda function's ``AWS::Lambda`` and ``AWS::Lambda::Function``
nodes alike); ``id(name:, type:, account.id:)`` narrows it; ``service()`` selects every node;
the block is optional. Inside the block, keywords describe the node: ``root``, ``inferred``,
``fault``, ``responsetime``, ``name``, ``type``...

>>> n_any = evaluate("service() { fault }", ts).sum()
>>> bool(n_any >= evaluate("fault", ts).sum())
True

**edge(source, target) { expr }** holds when some call along that edge
(:func:`xraykit.graph.edge_calls`; the caller's subsegment) satisfies the inner
expression. The client node is named ``"client"`` with type ``client`` (*decision*).

**group.name = "g"** (or ``group.arn``) is replaced by the group's own filter expression,
looked up in the ``groups`` mapping (name or ARN -> expression) the caller passes.

**rootcause.KIND.LEVEL { expr }** looks at the root causes of KIND (``fault``, ``error``,
``responsetime``) computed locally by :func:`xraykit.analysis.root_cause_paths`, at one level:
``service`` (keywords ``name``, ``type``, ``inferred``, ``index``, ``first``, ``last``),
``entity`` (``name``, ``remote``, ``index``, ``first``, ``last``, and ``coverage`` for
``responsetime``) or ``exception`` (``name``, ``message``, ``remote``, ``index``, ``first``,
``last``). ``index`` is the 0-based position in the enumerated list (*decision*; the docs
do not say), ``first``/``last`` the ends of that list, counted within one root cause.
``rootcause.error.*`` is accepted, mirroring ``ErrorRootCauses`` (undocumented).
``rootcause.json = #[...]`` holds when every RootCause object in the array is found among
the trace's root causes of any kind: each listed service (``Name``, and ``Type``,
``AccountId``, ``Inferred`` when given) is on that cause, with exactly the listed
``EntityPath`` names when an ``EntityPath`` is given (*decision*).

Keywords only meaningful in a block (``name``, ``type``, ``message``, ``root``, ``remote``,
``first``, ``last``, ``index``, ``coverage``) are rejected at the top level with an
explanation (*decision*: what X-Ray does with them is not documented).
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib.resources
import json
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
import pandas as pd

from xraykit.analysis import root_cause_paths
from xraykit.exceptions import FilterExpressionError
from xraykit.graph import graph_frames
from xraykit.schema import isin as _isin

if TYPE_CHECKING:
    from lark import Lark, Token, Tree

    from xraykit.traceset import TraceSet

__all__ = [
    "And",
    "Annotation",
    "Edge",
    "Explanation",
    "Group",
    "Keyword",
    "NodeId",
    "Not",
    "Or",
    "RootCause",
    "RootCauseJson",
    "Service",
    "evaluate",
    "explain",
    "parse",
    "to_pandas",
    "validate",
]

# ---------------------------------------------------------------------------------------
# keyword tables
# ---------------------------------------------------------------------------------------

BOOL_KEYWORDS = (
    "ok",
    "error",
    "throttle",
    "fault",
    "partial",
    "inferred",
    "root",
    "remote",
    "first",
    "last",
)
NUMBER_KEYWORDS = ("responsetime", "duration", "http.status", "index", "coverage")
STRING_KEYWORDS = (
    "http.url",
    "http.method",
    "http.useragent",
    "http.clientip",
    "user",
    "name",
    "type",
    "message",
    "availabilityzone",
    "instance.id",
    "resource.arn",
)
ROOTCAUSE_KINDS = ("fault", "error", "responsetime")
ROOTCAUSE_LEVELS = ("service", "entity", "exception")
NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
STRING_OPS = ("=", "!=", "CONTAINS", "BEGINSWITH", "ENDSWITH")
BOOL_OPS = ("=", "!=")

#: Every word a learner might type at the start of a clause (for "did you mean").
_ALL_WORDS = (
    *BOOL_KEYWORDS,
    *NUMBER_KEYWORDS,
    *STRING_KEYWORDS,
    "annotation.",
    "service",
    "edge",
    "group.name",
    "group.arn",
    "rootcause.json",
    *(f"rootcause.{k}.{lv}" for k in ROOTCAUSE_KINDS for lv in ROOTCAUSE_LEVELS),
)

Scope: TypeAlias = str  # "trace", "service", "edge", "rootcause.<kind>.<level>"

# Keywords allowed in each scope; rootcause scopes are built below.
_SCOPE_KEYWORDS: dict[str, frozenset[str]] = {
    "trace": frozenset(
        {
            "ok",
            "error",
            "throttle",
            "fault",
            "partial",
            "inferred",
            "responsetime",
            "duration",
            "http.status",
            "http.url",
            "http.method",
            "http.useragent",
            "http.clientip",
            "user",
            "availabilityzone",
            "instance.id",
            "resource.arn",
        }
    ),
    "service": frozenset(
        {
            "ok",
            "error",
            "throttle",
            "fault",
            "partial",
            "inferred",
            "root",
            "responsetime",
            "duration",
            "http.status",
            "http.url",
            "http.method",
            "http.useragent",
            "http.clientip",
            "user",
            "name",
            "type",
            "availabilityzone",
            "instance.id",
            "resource.arn",
        }
    ),
    "edge": frozenset(
        {
            "ok",
            "error",
            "throttle",
            "fault",
            "partial",
            "responsetime",
            "duration",
            "http.status",
            "http.url",
            "http.method",
        }
    ),
}
for _kind in ROOTCAUSE_KINDS:
    _SCOPE_KEYWORDS[f"rootcause.{_kind}.service"] = frozenset(
        {"name", "type", "inferred", "index", "first", "last"}
    )
    _SCOPE_KEYWORDS[f"rootcause.{_kind}.entity"] = frozenset(
        {"name", "remote", "index", "first", "last"}
        | ({"coverage"} if _kind == "responsetime" else set())
    )
    _SCOPE_KEYWORDS[f"rootcause.{_kind}.exception"] = frozenset(
        {"name", "message", "remote", "index", "first", "last"}
    )

_ANNOTATION_KEY = re.compile(r"[A-Za-z0-9_]{1,500}")

# ---------------------------------------------------------------------------------------
# the tree
# ---------------------------------------------------------------------------------------

Span = tuple[int, int]
Value: TypeAlias = "bool | int | float | str"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(token: str) -> str:
    return re.sub(r'\\([\\"])', r"\1", token[1:-1])


def _format_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quote(value)
    return repr(value)


@dataclass(frozen=True)
class Or:
    """``a OR b OR ...``.

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
        return f"{self.keyword} {self.op} {_format_value(self.value)}"  # type: ignore[arg-type]


@dataclass(frozen=True)
class Annotation:
    """``annotation.KEY`` bare (the key is set) or compared with a value of its type.

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
        return f"annotation.{self.key} {self.op} {_format_value(self.value)}"  # type: ignore[arg-type]


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
            f"{label}: {_quote(v)}"
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
    return _quote(node) if isinstance(node, str) else str(node)


def _format_block(body: Expr | None) -> str:
    return "" if body is None else f" {{ {body} }}"


@dataclass(frozen=True)
class Service:
    """``service(selector) { body }``; selector ``None`` is ``service()`` (any node).

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

    >>> parse('group.name = "slow"')
    Group(attribute='name', value='slow')
    """

    attribute: Literal["name", "arn"]
    value: str
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __str__(self) -> str:
        return f"group.{self.attribute} = {_quote(self.value)}"


@dataclass(frozen=True)
class RootCause:
    """``rootcause.KIND.LEVEL { body }``.

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

_TREE_TYPES = (Or, And, Not, Keyword, Annotation, Service, Edge, Group, RootCause, RootCauseJson)

# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------


def _caret(expression: str, start: int, end: int | None = None) -> str:
    """Two lines: the expression line holding ``start`` and carets under ``start:end``."""
    line_start = expression.rfind("\n", 0, start) + 1
    line_end = expression.find("\n", start)
    line_end = len(expression) if line_end < 0 else line_end
    line = expression[line_start:line_end]
    width = max(1, min(end if end is not None else start + 1, line_end) - start)
    return f"    {line}\n    {' ' * (start - line_start)}{'^' * width}"


def _error(
    expression: str, span: Span | int | None, problem: str, fix: str
) -> FilterExpressionError:
    if isinstance(span, int):
        span = (span, span + 1)
    message = problem
    if span is not None:
        message += f" (at position {span[0]})\n{_caret(expression, span[0], span[1])}"
    if fix:
        message += f"\n{fix}"
    return FilterExpressionError(
        message, expression=expression, position=None if span is None else span[0]
    )


def _nearest(word: str, candidates: tuple[str, ...] | frozenset[str]) -> str | None:
    found = difflib.get_close_matches(word.lower(), sorted(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


# ---------------------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------------------


@functools.cache
def _parser() -> Lark:
    from lark import Lark

    grammar = importlib.resources.files("xraykit.query").joinpath("grammar.lark").read_text()
    # The basic lexer keeps keywords keywords everywhere, so errors name them correctly.
    return Lark(
        grammar, parser="lalr", lexer="basic", propagate_positions=True, maybe_placeholders=True
    )


def _tok_span(tok: Any) -> Span:
    return (int(tok.start_pos or 0), int(tok.end_pos or 0))


def _join_spans(*spans: Span | None) -> Span | None:
    real = [s for s in spans if s is not None]
    if not real:
        return None
    return (min(s[0] for s in real), max(s[1] for s in real))


_STATUS_CLASS = re.compile(r"[1-5][xX]{2}")
_BEFORE_VALUE = re.compile(r"([A-Za-z][A-Za-z_.]*)\s*(!=|<=|>=|=|<|>)\s*$")


def _status_class_fix(text: str, before: str) -> str:
    """How to write a status class such as ``2xx`` (``text``) as a number range.

    ``before`` is the expression text before the value, to find the keyword and operator.
    """
    found = _BEFORE_VALUE.search(before)
    keyword, op = (found.group(1).lower(), found.group(2)) if found else ("http.status", "=")
    if keyword != "http.status":
        return f"Write a number, e.g. `{keyword} {op} {text[0]}`."
    low = int(text[0]) * 100
    if op == "!=":
        range_ = f"({keyword} < {low} OR {keyword} >= {low + 100})"
    else:
        range_ = f"{keyword} >= {low} AND {keyword} < {low + 100}"
    also = ""
    if text[0] in "45":
        also = f" The keyword `{'fault' if text[0] == '5' else 'error'}` also finds {text.lower()} responses."
    return (
        f"X-Ray filter expressions have no status classes such as {text!r}: compare a "
        f"range instead, e.g. `{range_}`.{also}"
    )


class _Builder:
    """Turn lark's parse tree into the frozen tree, checking types and operators."""

    def __init__(self, expression: str) -> None:
        self.expression = expression

    def fail(self, span: Span | int | None, problem: str, fix: str = "") -> FilterExpressionError:
        return _error(self.expression, span, problem, fix)

    # -- dispatch ----------------------------------------------------------------------
    def build(self, tree: Tree | Token) -> Expr:
        from lark import Tree

        if not isinstance(tree, Tree):  # a lone token where a clause should be
            raise self.fail(
                _tok_span(tree),
                f"Expected a keyword, but found the value {str(tree)!r}",
                "A value needs a keyword and an operator before it, e.g. "
                f"`user = {str(tree) if str(tree).startswith(chr(34)) else _quote(str(tree))}`.",
            )
        method: Callable[[Tree], Expr] = getattr(self, f"_{tree.data}")
        return method(tree)

    def _meta_span(self, tree: Tree) -> Span | None:
        meta = tree.meta
        if getattr(meta, "empty", True):
            return None
        return (meta.start_pos, meta.end_pos)

    def _or_expr(self, tree: Tree) -> Expr:
        items: list[Expr] = []
        for child in tree.children:
            built = self.build(child)
            items.extend(built.items if isinstance(built, Or) else (built,))
        return Or(tuple(items), span=self._meta_span(tree))

    def _and_expr(self, tree: Tree) -> Expr:
        items: list[Expr] = []
        for child in tree.children:
            built = self.build(child)
            items.extend(built.items if isinstance(built, And) else (built,))
        return And(tuple(items), span=self._meta_span(tree))

    def _not_(self, tree: Tree) -> Expr:
        return Not(self.build(tree.children[0]), span=self._meta_span(tree))

    # -- keywords ----------------------------------------------------------------------
    def _comparison(self, tree: Any) -> tuple[Any, Any, Any]:
        head, op_tree, value = [*tree.children, None, None][:3]
        head_tok = head.children[0] if hasattr(head, "children") else head
        op_tok = op_tree.children[0] if op_tree is not None else None
        return head_tok, op_tok, value

    def _value(self, value: Tree | Token) -> tuple[str, Value, Span]:
        """Return (type, python value, span) of a value: string, number, boolean or word."""
        from lark import Tree

        if isinstance(value, Tree):  # boolean
            tok = value.children[0]
            return "boolean", str(tok).lower() == "true", _tok_span(tok)
        span = _tok_span(value)
        if value.type == "STRING":
            return "string", _unquote(str(value)), span
        if value.type == "NUMBER":
            text = str(value)
            number: int | float = float(text) if any(c in text for c in ".eE") else int(text)
            return "number", number, span
        return "word", str(value), span

    def _check_op(self, keyword: str, kind: str, op_tok: Token, allowed: tuple[str, ...]) -> str:
        op = str(op_tok).upper()
        if op not in allowed:
            raise self.fail(
                _tok_span(op_tok),
                f"{keyword!r} is a {kind} keyword and cannot be compared with {str(op_tok)!r}",
                f"Use one of: {' '.join(allowed)}.",
            )
        return op

    def _word_as_string(self, keyword: str, word: str, span: Span) -> FilterExpressionError:
        return self.fail(
            span,
            f"The string {word!r} compared with {keyword!r} is not in quotes",
            f"Strings are always double-quoted in X-Ray filter expressions: write {_quote(word)}.",
        )

    def _bool_pred(self, tree: Tree) -> Expr:
        kw_tok, op_tok, value = self._comparison(tree)
        keyword = str(kw_tok).lower()
        span = self._meta_span(tree)
        if op_tok is None:
            return Keyword(keyword, span=span)
        op = self._check_op(keyword, "boolean", op_tok, BOOL_OPS)
        vtype, v, vspan = self._value(value)
        if vtype != "boolean":
            shown = v if vtype != "string" else _quote(str(v))
            raise self.fail(
                vspan,
                f"{keyword!r} is a boolean keyword, but it is compared with {shown!r}",
                f"Compare it with true or false (no quotes), or use it bare: `{keyword}` or "
                f"`!{keyword}`.",
            )
        return Keyword(keyword, op, v, span=span)

    def _num_pred(self, tree: Tree) -> Expr:
        kw_tok, op_tok, value = self._comparison(tree)
        keyword = str(kw_tok).lower()
        span = self._meta_span(tree)
        if op_tok is None:
            raise self.fail(
                _tok_span(kw_tok),
                f"{keyword!r} is a number keyword and needs a comparison",
                f"Compare it with a number, e.g. `{keyword} > 1`.",
            )
        op = self._check_op(keyword, "number", op_tok, NUMBER_OPS)
        vtype, v, vspan = self._value(value)
        if vtype != "number":
            hint = f"Compare it with a number, e.g. `{keyword} {op} 1`."
            if vtype == "string":
                with contextlib.suppress(ValueError):
                    hint = f"Write the number without quotes: `{keyword} {op} {float(str(v)):g}`."
                if _STATUS_CLASS.fullmatch(str(v)):
                    hint = _status_class_fix(str(v), f"{keyword} {op}")

            raise self.fail(
                vspan,
                f"{keyword!r} is a number keyword, but it is compared with "
                f"{_format_value(v) if vtype != 'word' else v!r}",
                hint,
            )
        return Keyword(keyword, op, v, span=span)

    def _str_pred(self, tree: Tree) -> Expr:
        kw_tok, op_tok, value = self._comparison(tree)
        keyword = str(kw_tok).lower()
        span = self._meta_span(tree)
        if op_tok is None:
            return Keyword(keyword, span=span)
        op = self._check_op(keyword, "string", op_tok, STRING_OPS)
        vtype, v, vspan = self._value(value)
        if vtype == "word":
            raise self._word_as_string(keyword, str(v), vspan)
        if vtype != "string":
            raise self.fail(
                vspan,
                f"{keyword!r} is a string keyword, but it is compared with the "
                f"{vtype} {_format_value(v)}",
                f"Put the value in double quotes: `{keyword} {op} {_quote(_format_value(v))}`.",
            )
        return Keyword(keyword, op, v, span=span)

    def _annotation_pred(self, tree: Tree) -> Expr:
        kw_tok, op_tok, value = self._comparison(tree)
        key = str(kw_tok)[len("annotation.") :]
        span = self._meta_span(tree)
        kspan = _tok_span(kw_tok)
        if not key:
            raise self.fail(
                kspan,
                "`annotation.` needs a key",
                "Write the annotation's key after the dot, e.g. `annotation.customer_id`.",
            )
        bad = re.search(r"[^A-Za-z0-9_]", key)
        if bad is not None:
            pos = kspan[0] + len("annotation.") + bad.start()
            raise self.fail(
                (pos, pos + 1),
                f"The annotation key {key!r} has the character {bad.group()!r}, which X-Ray "
                "filter expressions cannot address",
                "Annotation keys that filters can reach are letters, digits and underscores "
                "only (keys such as API Gateway's 'aws:api_id' are indexed but not "
                "filterable); rename the key where it is recorded, e.g. "
                f"{re.sub(r'[^A-Za-z0-9_]', '_', key)!r}.",
            )
        if len(key) > 500:
            raise self.fail(kspan, "Annotation keys are at most 500 characters long", "")
        if op_tok is None:
            return Annotation(key, span=span)
        vtype, v, vspan = self._value(value)
        name = f"annotation.{key}"
        if vtype == "word":
            raise self._word_as_string(name, str(v), vspan)
        allowed = {"string": STRING_OPS, "number": NUMBER_OPS, "boolean": BOOL_OPS}[vtype]
        op = str(op_tok).upper()
        if op not in allowed:
            raise self.fail(
                _tok_span(op_tok),
                f"{str(op_tok)!r} cannot compare {name} with the {vtype} {_format_value(v)}",
                f"For a {vtype} value use one of: {' '.join(allowed)}.",
            )
        return Annotation(key, op, v, span=span)

    def _unknown_pred(self, tree: Tree) -> Expr:
        tok = tree.children[0]
        word = str(tok)
        span = _tok_span(tok)
        if word.lower() in ("and", "or"):
            raise self.fail(
                span,
                f"{word} needs a clause on both sides",
                "Remove it, or add the missing clause.",
            )
        if word.lower() == "not":
            raise self.fail(span, "X-Ray has no NOT keyword", "Negate with `!`, e.g. `!fault`.")
        if word.lower() in ("true", "false"):
            raise self.fail(
                span,
                f"{word!r} needs a keyword before it",
                "Compare a boolean keyword with it, e.g. `fault = true`.",
            )
        if word.lower() == "annotation":
            raise self.fail(span, "`annotation` needs a key", "Write `annotation.KEY`.")
        digit = span[0] - 1
        if word.lower() == "xx" and digit >= 0 and self.expression[digit] in "12345":
            text = self.expression[digit : span[1]]
            raise self.fail(
                (digit, span[1]),
                f"{text!r} is not a number",
                _status_class_fix(text, self.expression[:digit]),
            )
        if word.lower().startswith("rootcause."):
            suggestion = _nearest(word, tuple(w for w in _ALL_WORDS if w.startswith("rootcause.")))
        else:
            suggestion = _nearest(word, _ALL_WORDS)
        if suggestion:
            fix = f"Did you mean {suggestion!r}?"
        else:
            fix = (
                f"The keywords are {', '.join((*BOOL_KEYWORDS, *NUMBER_KEYWORDS, *STRING_KEYWORDS))}, "
                "annotation.KEY, service(), edge(), group.name, group.arn, "
                "rootcause.KIND.LEVEL and rootcause.json. If "
                f"{word!r} is a value, quote it after a keyword and an operator, e.g. "
                f"`user = {_quote(word)}`."
            )
        raise self.fail(span, f"Unknown keyword {word!r}", fix)

    # -- services and edges ------------------------------------------------------------
    def _selector(self, node: Tree | Token | None, where: str) -> Selector | None:
        from lark import Tree

        if node is None:
            return None
        if isinstance(node, Tree) and node.data == "id_function":
            return self._id_function(node)
        vtype, v, vspan = self._value(node)
        if vtype == "word":
            raise self.fail(
                vspan,
                f"The node name {v!r} in {where}() is not in quotes",
                f"Write {where}({_quote(str(v))}), or use id(name: {_quote(str(v))}).",
            )
        if vtype != "string":
            raise self.fail(
                vspan,
                f"{where}() takes a quoted node name or id(...), not {_format_value(v)}",
                f"Write {where}({_quote(_format_value(v))}).",
            )
        return str(v)

    def _id_function(self, tree: Tree) -> NodeId:
        fields: dict[str, str] = {}
        for item in tree.children:
            if item is None:
                continue
            key_tok = item.children[0].children[0]
            key = str(key_tok).lower()
            vtype, v, vspan = self._value(item.children[1])
            if vtype != "string":
                raise self.fail(
                    vspan,
                    f"id({key}: ...) takes a quoted string, not {v!r}",
                    f"Write id({key}: {_quote(str(v))}).",
                )
            if key in fields:
                raise self.fail(_tok_span(key_tok), f"id() names {key!r} twice", "Keep one.")
            fields[key] = str(v)
        if not fields:
            raise self.fail(
                self._meta_span(tree),
                "id() needs at least one field",
                'Write id(name: "...", type: "...", account.id: "...") with the fields you know.',
            )
        return NodeId(
            fields.get("name"),
            fields.get("type"),
            fields.get("account.id"),
            span=self._meta_span(tree),
        )

    def _block(self, tree: Tree | None) -> Expr | None:
        return None if tree is None else self.build(tree.children[0])

    def _service_pred(self, tree: Tree) -> Expr:
        node, block = [*tree.children, None, None][:2]
        return Service(
            self._selector(node, "service"), self._block(block), span=self._meta_span(tree)
        )

    def _edge_pred(self, tree: Tree) -> Expr:
        source, target, block = [*tree.children, None, None, None][:3]
        src = self._selector(source, "edge")
        dst = self._selector(target, "edge")
        assert src is not None and dst is not None
        return Edge(src, dst, self._block(block), span=self._meta_span(tree))

    # -- groups and root causes --------------------------------------------------------
    def _group_pred(self, tree: Tree) -> Expr:
        key_tok, op_tok, value = self._comparison(tree)
        attribute = str(key_tok).lower().split(".")[1]
        assert op_tok is not None
        if str(op_tok) != "=":
            raise self.fail(
                _tok_span(op_tok),
                f"group.{attribute} can only be compared with '='",
                f'Write `group.{attribute} = "..."`; negate with `!(group.{attribute} = "...")`.',
            )
        vtype, v, vspan = self._value(value)
        if vtype == "word":
            raise self._word_as_string(f"group.{attribute}", str(v), vspan)
        if vtype != "string":
            raise self.fail(vspan, f"group.{attribute} takes a quoted string", "")
        return Group(attribute, str(v), span=self._meta_span(tree))  # type: ignore[arg-type]

    def _rootcause_block(self, tree: Any) -> Expr:
        key_tree, block = [*tree.children, None][:2]
        _, kind, level = str(key_tree.children[0]).lower().split(".")
        return RootCause(kind, level, self._block(block), span=self._meta_span(tree))  # type: ignore[arg-type]

    def _rootcause_json(self, tree: Tree) -> Expr:
        op_tree, tok = tree.children
        op_tok = op_tree.children[0]
        if str(op_tok) != "=":
            raise self.fail(_tok_span(op_tok), "rootcause.json can only be compared with '='", "")
        text = str(tok)[1:]
        span = _tok_span(tok)
        try:
            causes = json.loads(text)
        except json.JSONDecodeError as exc:
            pos = span[0] + 1 + exc.pos
            raise self.fail(
                (pos, pos + 1),
                f"The JSON after `rootcause.json = #` is not valid: {exc.msg}",
                "Paste a root cause array as GetTraceSummaries returns it, e.g. "
                '#[{"Services": [{"Name": "orders", "EntityPath": [{"Name": "orders"}]}]}].',
            ) from None
        if not all(isinstance(c, dict) for c in causes):
            raise self.fail(span, "rootcause.json takes an array of RootCause objects", "")
        return RootCauseJson(
            json.dumps(causes, separators=(", ", ": ")), span=self._meta_span(tree)
        )


def _check_balance(expression: str) -> None:
    """Report an unclosed string, parenthesis, brace or bracket where it starts."""
    stack: list[tuple[str, int]] = []
    pairs = {")": "(", "}": "{", "]": "["}
    names = {"(": "parenthesis", "{": "brace", "[": "bracket"}
    i = 0
    while i < len(expression):
        c = expression[i]
        if c == '"':
            end = i + 1
            while end < len(expression) and expression[end] != '"':
                end += 2 if expression[end] == "\\" else 1
            if end >= len(expression):
                raise _error(
                    expression,
                    i,
                    "This string is never closed",
                    'Close it with a double quote; write \\" for a quote inside the string.',
                )
            i = end + 1
            continue
        if c in "({[":
            stack.append((c, i))
        elif c in ")}]":
            if not stack or stack[-1][0] != pairs[c]:
                opener = pairs[c]
                raise _error(
                    expression,
                    i,
                    f"This {c!r} closes a {names[opener]} that was never opened"
                    + (f" (the open one is {stack[-1][0]!r})" if stack else ""),
                    f"Remove it, or add the matching {opener!r} before it.",
                )
            stack.pop()
        i += 1
    if stack:
        c, pos = stack[-1]
        closer = {v: k for k, v in pairs.items()}[c]
        raise _error(
            expression, pos, f"This {c!r} is never closed", f"Add the matching {closer!r}."
        )


def _syntax_error(expression: str, exc: Exception) -> FilterExpressionError:
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    if isinstance(exc, UnexpectedCharacters):
        pos = int(exc.pos_in_stream or 0)
        char = expression[pos]
        if char == "'":
            return _error(
                expression,
                pos,
                "Single quotes do not make a string",
                'X-Ray strings are double-quoted: "like this".',
            )
        if expression.startswith(("&&", "||"), pos):
            word = "AND" if char == "&" else "OR"
            return _error(
                expression,
                (pos, pos + 2),
                f"{expression[pos : pos + 2]!r} is not an operator",
                f"Write {word}.",
            )
        if expression.startswith("==", pos - 1) or expression.startswith("==", pos):
            return _error(expression, pos, "'==' is not an operator", "Write a single '='.")
        return _error(
            expression,
            pos,
            f"Unexpected character {char!r}",
            "Filter expressions are made of keywords, operators (= != < <= > >= CONTAINS "
            'BEGINSWITH ENDSWITH), "quoted strings", numbers, !, AND, OR and parentheses.',
        )
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        tok = exc.token
        span = _tok_span(tok)
        text = str(tok)
        expected = set(exc.expected)
        unknown = _first_unknown_word(expression, span[0])
        if unknown is not None:
            return unknown
        if text == "=" and expression[span[0] - 1 : span[0]] == "=":
            return _error(
                expression,
                (span[0] - 1, span[0] + 1),
                "'==' is not an operator",
                "Write a single '='.",
            )
        if tok.type == "RBRACE" and expression[: span[0]].rstrip().endswith("{"):
            return _error(
                expression,
                span,
                "A block { } needs an expression inside",
                'Write e.g. service("name") { fault }, or leave the braces out.',
            )
        if text.lower() == "id":
            return _error(
                expression,
                span,
                "id(...) names a node, so it goes inside service() or edge()",
                'Write e.g. service(id(name: "orders", type: "AWS::ECS::Container")) { fault }.',
            )
        if expected == {"COMMA"}:
            return _error(
                expression,
                span,
                "edge() takes two nodes",
                'Write edge("caller", "callee"), each a quoted name or id(...).',
            )
        if tok.type in ("STRING", "NUMBER") or text.lower() in ("true", "false"):
            return _error(
                expression,
                span,
                f"The value {text} has no keyword and operator before it",
                f"Compare a keyword with it, e.g. `http.url CONTAINS {text}` or "
                f"`annotation.KEY = {text}`.",
            )
        if text.lower() in ("service", "edge", "id") and "LPAR" not in expected:
            return _error(
                expression,
                span,
                f"{text}(...) cannot appear here",
                "service() and edge() take a quoted name or id(...), and cannot be nested "
                "inside another block's parentheses.",
            )
        if text in ("AND", "OR") or text.lower() in ("and", "or"):
            return _error(
                expression,
                span,
                f"{text} needs a clause on both sides",
                "Remove it, or add the missing clause.",
            )
        if "LPAR" in expected and len(expected) <= 2:
            return _error(
                expression,
                span,
                f"Expected '(' here, found {text!r}",
                'Write e.g. service("name").',
            )
        return _error(
            expression,
            span,
            f"Unexpected {text!r}",
            _expected_hint(expected),
        )
    if isinstance(exc, (UnexpectedEOF, UnexpectedToken)):
        unknown = _first_unknown_word(expression, len(expression))
        if unknown is not None:
            return unknown
        end = len(expression.rstrip())
        return _error(
            expression,
            max(0, end - 1) if end else 0,
            "The expression ends too early",
            "Finish the last clause: an operator needs a value, `!` a clause, AND/OR a clause "
            "on each side, service( and id( a closing ')'.",
        )
    return _error(expression, None, f"Cannot parse the expression: {exc}", "")


_VALUE_BEFORE = frozenset(
    {
        "EQUAL",
        "LESSTHAN",
        "MORETHAN",
        "CONTAINS",
        "BEGINSWITH",
        "ENDSWITH",
        "COLON",
        "LPAR",
        "COMMA",
    }
)


def _first_unknown_word(expression: str, before: int) -> FilterExpressionError | None:
    """The error for the first word before ``before`` that is no keyword, if any."""
    from lark.exceptions import LarkError

    previous = None
    try:
        for tok in _parser().lex(expression):
            if int(tok.start_pos or 0) >= before:
                break
            after_value = previous is not None and (
                previous.type in _VALUE_BEFORE or previous.type.startswith("__ANON")
            )
            if tok.type == "WORD" and not after_value:
                try:
                    _Builder(expression)._unknown_pred(_lone_tree("unknown_pred", tok))
                except FilterExpressionError as exc:
                    return exc
            previous = tok
    except LarkError:
        pass
    return None


def _lone_tree(name: str, tok: Token) -> Tree:
    from lark import Tree

    return Tree(name, [tok])


_TOKEN_WORDS = {
    "LPAR": "'('",
    "RPAR": "')'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "COMMA": "','",
    "COLON": "':'",
    "STRING": 'a "quoted string"',
    "NUMBER": "a number",
    "BANG": "'!'",
}


def _expected_hint(expected: set[str]) -> str:
    words = sorted({_TOKEN_WORDS[e] for e in expected if e in _TOKEN_WORDS})
    if not words:
        return "Check the clause before this point."
    return "Expected " + ", ".join(words) + " (or a keyword) here."


def parse(expression: str) -> Expr:
    """Parse a filter expression into a tree of small frozen dataclasses.

    ``str()`` of the tree is the normalised expression: keywords lower case, operators
    spaced, explicit ``AND``, no redundant parentheses.

    Parameters
    ----------
    expression : str
        An X-Ray filter expression.

    Returns
    -------
    Or, And, Not, Keyword, Annotation, Service, Edge, Group, RootCause or RootCauseJson

    Raises
    ------
    FilterExpressionError
        With ``position`` (0-based), a caret under the expression and a suggestion.

    Examples
    --------
    >>> from xraykit.query import parse
    >>> tree = parse('ok !partial duration<3')
    >>> str(tree)
    'ok AND !partial AND duration < 3'
    >>> tree.items[2]
    Keyword(keyword='duration', op='<', value=3)
    >>> parse('reponsetime > 5')
    Traceback (most recent call last):
    ...
    xraykit.exceptions.FilterExpressionError: Unknown keyword 'reponsetime' (at position 0)
        reponsetime > 5
        ^^^^^^^^^^^
    Did you mean 'responsetime'?
    """
    if not isinstance(expression, str):
        raise FilterExpressionError(
            f"A filter expression must be a str, but {expression!r} of type "
            f"{type(expression).__name__} was passed. Write the expression as text, e.g. "
            'parse("fault AND responsetime > 1").',
            expression=repr(expression),
        )
    return _parse(expression)


@functools.lru_cache(maxsize=512)
def _parse(expression: str) -> Expr:
    from lark.exceptions import LarkError

    if not expression.strip():
        raise _error(
            expression,
            None,
            "The filter expression is empty",
            'Write at least one clause, e.g. `fault` or `responsetime > 1` or `user = "alice"`.',
        )
    _check_balance(expression)
    try:
        tree = _parser().parse(expression)
    except LarkError as exc:
        raise _syntax_error(expression, exc) from None
    expr = _Builder(expression).build(tree)
    _check_scope(expr, "trace", expression)
    return expr


def validate(expression: str) -> None:
    """Check an expression without evaluating it; raise if X-Ray would reject it.

    Use it before sending an expression to AWS (``GetTraceSummaries`` or a group), where a
    mistake costs an API call.

    Raises
    ------
    FilterExpressionError

    Examples
    --------
    >>> from xraykit.query import validate
    >>> validate('service("orders") { fault }')
    >>> validate("user = alice")
    Traceback (most recent call last):
    ...
    xraykit.exceptions.FilterExpressionError: The string 'alice' compared with 'user' is not in quotes (at position 7)
        user = alice
               ^^^^^
    Strings are always double-quoted in X-Ray filter expressions: write "alice".
    """
    parse(expression)


def _scope_name(scope: Scope) -> str:
    if scope == "trace":
        return "at the top level (the trace)"
    if scope in ("service", "edge"):
        return f"inside {scope}() {{ }}"
    return f"inside {scope} {{ }}"


def _where_allowed(keyword: str) -> str:
    places = [s for s, kws in _SCOPE_KEYWORDS.items() if keyword in kws]
    if "trace" in places:
        return "at the top level"
    shown = sorted(
        {
            (
                "service() { }"
                if p == "service"
                else "edge() { }"
                if p == "edge"
                else p.rsplit(".", 2)[0].rsplit(".", 1)[0] + ".*." + p.rsplit(".", 1)[1] + " { }"
            )
            for p in places
        }
    )
    if keyword == "coverage":
        shown = ["rootcause.responsetime.entity { }"]
    return "only inside " + " or ".join(shown)


def _check_scope(expr: Expr, scope: Scope, expression: str) -> None:
    """Check that every keyword and block is allowed where it appears."""
    if isinstance(expr, Or | And):
        for item in expr.items:
            _check_scope(item, scope, expression)
    elif isinstance(expr, Not):
        _check_scope(expr.operand, scope, expression)
    elif isinstance(expr, Keyword):
        if expr.keyword not in _SCOPE_KEYWORDS[scope]:
            raise _error(
                expression,
                expr.span,
                f"{expr.keyword!r} cannot be used {_scope_name(scope)}",
                f"{expr.keyword!r} is allowed {_where_allowed(expr.keyword)}.",
            )
    elif isinstance(expr, Annotation):
        if scope != "trace":
            raise _error(
                expression,
                expr.span,
                f"Annotations cannot be used {_scope_name(scope)}",
                "X-Ray does not combine annotation.KEY with service()/edge(); put it outside "
                'the block: `service("x") { fault } AND annotation.KEY = ...`.',
            )
    elif isinstance(expr, Service | Edge | RootCause | Group | RootCauseJson):
        if scope != "trace":
            what = type(expr).__name__.lower()
            raise _error(
                expression,
                expr.span,
                f"A {what} clause cannot be nested {_scope_name(scope)}",
                "Combine it with AND outside the block instead.",
            )
        if isinstance(expr, Service) and expr.body is not None:
            _check_scope(expr.body, "service", expression)
        elif isinstance(expr, Edge) and expr.body is not None:
            _check_scope(expr.body, "edge", expression)
        elif isinstance(expr, RootCause) and expr.body is not None:
            _check_scope(expr.body, f"rootcause.{expr.kind}.{expr.level}", expression)


def walk(expr: Expr) -> Iterator[Expr]:
    """Yield ``expr`` and every clause inside it, depth first.

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


# ---------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------

_NUMBER_FUNCS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

# trace scope: keyword -> traces column
_TRACE_COLUMNS = {
    "fault": "has_fault",
    "error": "has_error",
    "throttle": "has_throttle",
    "partial": "is_partial",
    "responsetime": "response_time_s",
    "duration": "duration_s",
    "http.status": "http_status",
    "http.url": "http_url",
    "http.method": "http_method",
    "http.useragent": "user_agent",
    "http.clientip": "client_ip",
}
# trace scope: keyword -> segments column ("any segment of the trace")
_SEGMENT_COLUMNS = {
    "user": "user",
    "availabilityzone": "availability_zone",
    "instance.id": "instance_id",
    "resource.arn": "resource_arn",
}
# service scope: keyword -> segments column of the node's own segment
_NODE_SEGMENT_COLUMNS = {
    "http.url": "http_url",
    "http.method": "http_method",
    "http.useragent": "http_user_agent",
    "http.clientip": "http_client_ip",
    "user": "user",
    "availabilityzone": "availability_zone",
    "instance.id": "instance_id",
    "resource.arn": "resource_arn",
}
# service and edge scopes: keyword -> column of the node / edge-call rows
_ROW_COLUMNS = {
    "ok": "ok",
    "error": "error",
    "throttle": "throttle",
    "fault": "fault",
    "root": "root",
    "inferred": "inferred",
    "responsetime": "response_time_s",
    "duration": "duration_s",
    "http.status": "http_status",
    "name": "name",
    "type": "type",
    "partial": "partial",
    "http.url": "http_url",
    "http.method": "http_method",
    "http.useragent": "http_user_agent",
    "http.clientip": "http_client_ip",
    "user": "user",
    "availabilityzone": "availability_zone",
    "instance.id": "instance_id",
    "resource.arn": "resource_arn",
    "remote": "remote",
    "index": "index",
    "first": "first",
    "last": "last",
    "coverage": "coverage",
    "message": "message",
}


def _keyword_type(keyword: str) -> str:
    if keyword in BOOL_KEYWORDS:
        return "boolean"
    return "number" if keyword in NUMBER_KEYWORDS else "string"


def _as_bool(values: Any) -> np.ndarray:
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if series.dtype != bool:
        series = series.astype("boolean").fillna(False)
    return series.to_numpy(dtype=bool)


def _compare(series: pd.Series, kind: str, op: str | None, value: Any) -> np.ndarray:
    """Vectorised comparison of one column; missing values satisfy nothing."""
    if kind == "boolean":
        flags = _as_bool(series)
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
    return _as_bool(out) & present


def _arrow(series: pd.Series) -> Any:
    """A string column as one Arrow ``large_string`` array (a cheap view for ``"str"``)."""
    import pyarrow as pa

    arrow = pa.array((series if series.dtype == "str" else series.astype("str")).array)
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    return arrow.cast(pa.large_string())


class _Evaluator:
    """Evaluate one expression over one TraceSet; derived frames are computed once."""

    def __init__(self, traces: TraceSet, groups: Mapping[str, str] | None, expression: str) -> None:
        self.ts = traces
        self.t = traces.traces
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
            kind = _keyword_type(expr.keyword)
            return _compare(rows[_ROW_COLUMNS[expr.keyword]], kind, expr.op, expr.value)
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
        raise TypeError(f"Not a filter-expression tree: {expr!r}")

    # -- simple keywords --------------------------------------------------------------
    def root_throttle(self) -> np.ndarray:
        """Whether each trace's root segment was throttled (throttle flag or 429)."""

        def make() -> np.ndarray:
            seg = self.ts.segments
            hit = _as_bool(seg["throttle"]) | seg["http_status"].eq(429).to_numpy(
                dtype=bool, na_value=False
            )
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
        kind = _keyword_type(expr.keyword)
        if expr.keyword == "ok":
            flags = ~(
                _as_bool(self.t["has_fault"]) | _as_bool(self.t["has_error"]) | self.root_throttle()
            )
            return _compare(pd.Series(flags), kind, expr.op, expr.value)
        if expr.keyword == "inferred":  # the trace has an inferred node (X-Ray: segment)
            nodes = self.nodes()
            has = self.isin(nodes.loc[_as_bool(nodes["inferred"]), "trace_id"])
            return _compare(pd.Series(has), kind, expr.op, expr.value)
        if expr.keyword in _SEGMENT_COLUMNS:
            seg = self.ts.segments
            column = seg[_SEGMENT_COLUMNS[expr.keyword]]
            return self.isin(seg.loc[_compare(column, kind, expr.op, expr.value), "trace_id"])
        return _compare(self.t[_TRACE_COLUMNS[expr.keyword]], kind, expr.op, expr.value)

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
            keep = typed & _compare(values, vtype, expr.op, expr.value)
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
        columns = list(_NODE_SEGMENT_COLUMNS.values())
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
            import pyarrow as pa
            import pyarrow.compute as pc

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
            return _compare(rows[f"{prefix}name"], "string", "=", node)
        for value, column in (
            (node.name, "name"),
            (node.type, "type"),
            (node.account_id, "account_id" if not prefix else "account"),
        ):
            if value is not None:
                keep &= _compare(rows[f"{prefix}{column}"], "string", "=", value)
        return keep

    def service_ids(self, expr: Service) -> pd.Series:
        nodes = self.nodes(extra=_uses(expr.body, _NODE_SEGMENT_COLUMNS))
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
            for kind in ROOTCAUSE_KINDS:
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
                    keep &= _compare(services[column], "string", "=", str(wanted[field_name]))
            if wanted.get("Inferred") is not None:
                keep &= _as_bool(services["inferred"]) == bool(wanted["Inferred"])
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
            raise _error(
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
            raise _error(
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
    expression: str | Expr, traces: TraceSet, *, groups: Mapping[str, str] | None = None
) -> pd.Series:
    """Return which traces match a filter expression, as X-Ray would find them.

    Parameters
    ----------
    expression : str or parsed tree
        An X-Ray filter expression (see the module docstring for its semantics).
    traces : TraceSet
        Not modified.
    groups : mapping of str to str, optional
        Group name (or ARN) -> the group's filter expression, for ``group.name = "..."``.

    Returns
    -------
    Series of bool
        Aligned with ``traces.traces`` (same index), named ``"match"``.

    Raises
    ------
    FilterExpressionError
        For an invalid expression, one that is neither a str nor a parsed tree, or an
        unknown group.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.query import evaluate
    >>> ts = xraykit.load_sample("shop")
    >>> match = evaluate("fault OR http.status >= 500", ts)
    >>> bool((match == ts.traces.has_fault).all())
    True
    """
    if isinstance(expression, str):
        tree = parse(expression)
    elif isinstance(expression, _TREE_TYPES):
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
    evaluator = _Evaluator(traces, groups, text)
    return pd.Series(evaluator.mask(tree), index=traces.traces.index, name="match", dtype=bool)


# ---------------------------------------------------------------------------------------
# explain
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Explanation:
    """Why one trace matched a filter expression or not, clause by clause.

    ``lines`` holds ``(depth, result, clause, detail)``; ``str()`` draws them as a tree.
    Made by :func:`explain`.

    >>> import xraykit
    >>> ts = xraykit.load_sample("shop")
    >>> why = explain("fault OR responsetime > 100", ts, ts.traces.trace_id[0])
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
    def __init__(self, evaluator: _Evaluator) -> None:
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
            return f"{kw} = {_show(rows[_ROW_COLUMNS[kw]].iloc[0])}"
        t = self.ev.t.iloc[0]
        if kw == "ok":
            return (
                f"root fault = {t['has_fault']}, error = {t['has_error']}, "
                f"throttle = {bool(self.ev.root_throttle()[0])}"
            )
        if kw == "inferred":
            nodes = self.ev.nodes()
            names = sorted(nodes.loc[_as_bool(nodes["inferred"]), "node_id"].unique())
            return f"inferred nodes: {', '.join(names) or 'none'}"
        if kw in _SEGMENT_COLUMNS:
            values = self.ev.ts.segments[_SEGMENT_COLUMNS[kw]].dropna().unique()
            return f"{kw} on the segments: {', '.join(map(_show, values)) or 'not set'}"
        return f"{kw} = {_show(t[_TRACE_COLUMNS[kw]])}"

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
    expression: str, traces: TraceSet, trace_id: str, *, groups: Mapping[str, str] | None = None
) -> Explanation:
    """Say, clause by clause, why a trace matches a filter expression or not.

    Parameters
    ----------
    expression : str
    traces : TraceSet
    trace_id : str
        One of ``traces.traces.trace_id``.
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
    LookupError
        When no trace has that id.

    Examples
    --------
    >>> import xraykit
    >>> from xraykit.query import explain
    >>> ts = xraykit.load_sample("shop")
    >>> why = explain("responsetime > 100 OR !fault", ts, ts.traces.trace_id[0])
    >>> print(str(why).splitlines()[2])
            ✘ responsetime > 100   [responsetime = ...]
    """
    tree = parse(expression)
    one = traces.trace(trace_id)
    explainer = _Explainer(_Evaluator(one, groups, expression))
    matched = explainer.explain(tree, 0)
    return Explanation(str(tree), trace_id, matched, tuple(explainer.lines))


# ---------------------------------------------------------------------------------------
# to_pandas
# ---------------------------------------------------------------------------------------

_NODE_EXTRA = (
    "http_url",
    "http_method",
    "http_user_agent",
    "http_client_ip",
    "user",
    "availability_zone",
    "instance_id",
    "resource_arn",
)


class _PandasWriter:
    """Write the pandas code equivalent to a tree, for teaching."""

    def __init__(self, groups: Mapping[str, str] | None) -> None:
        self.groups = groups or {}
        self.setup: dict[str, str] = {}

    def need(self, name: str) -> None:
        code = {
            "t": "t = ts.traces",
            "s": "s = ts.segments",
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
        deps = {"nodes_x": ("s", "nodes"), "calls": ("nodes",), "calls_x": ("calls",)}
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
        # rootcause.json has no short pandas equivalent
        self.need("t")
        return f"xraykit.query.evaluate({str(expr)!r}, ts)"

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
        kind = _keyword_type(kw)
        if scope == "trace":
            self.need("t")
            if kw == "ok":
                self.need("s")
                col = (
                    '~(t["has_fault"] | t["has_error"] | t["trace_id"].isin(s.loc[s["throttle"]'
                    ' & s["segment_id"].isin(t["root_segment_id"]), "trace_id"]))'
                )
            elif kw == "inferred":
                self.need("nodes")
                col = 't["trace_id"].isin(nodes.loc[nodes["inferred"], "trace_id"])'
            elif kw in _SEGMENT_COLUMNS:
                self.need("s")
                cond = self.compare(f's["{_SEGMENT_COLUMNS[kw]}"]', kind, expr.op, expr.value)
                return f't["trace_id"].isin(s.loc[{cond}, "trace_id"])'
            else:
                col = f't["{_TRACE_COLUMNS[kw]}"]'
            return self.compare(col, kind, expr.op, expr.value)
        column = _ROW_COLUMNS[kw]
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
    if "xraykit.graph" in "".join(writer.setup.values()):
        imports += "import xraykit.graph\n"
    if any(k.startswith("rc_") for k in writer.setup):
        imports += "import xraykit.analysis\n"
    if "xraykit.query" in mask:
        imports += "import xraykit.query\n"
    return (
        f"{imports}\n"
        + "\n".join(writer.setup.values())
        + f"\nmask = {mask}\n"
        + 'matches = ts.select(t.loc[mask.to_numpy(dtype=bool), "trace_id"])'
    )
