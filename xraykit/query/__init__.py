"""X-Ray filter expressions, parsed and evaluated offline on any TraceSet.

The language of the X-Ray console's search bar, ``GetTraceSummaries`` and groups
(semantics: ``docs/filter-expressions.md``). Modules, in data-flow order:

- ``keywords``: the semantic table of keywords, operators and scopes;
- ``grammar`` (+ ``grammar.lark``): the lark parser;
- ``tree``: the parse-tree node types;
- ``diagnostics``: error messages with a caret and a fix;
- ``builder``: lark's tree to the expression tree, with type and operator checks;
- ``parser``: :func:`parse` and :func:`validate`;
- ``evaluator``: :func:`evaluate` (``TraceSet.query`` calls it);
- ``explanation``: :func:`explain`;
- ``pandas_code``: :func:`to_pandas`.

>>> import xraykit
>>> ts = xraykit.load_sample("shop")
>>> slow = ts.query('responsetime > 0.5 AND http.method = "POST"')
>>> bool((slow.traces.response_time_s > 0.5).all())
True
>>> str(parse('service("orders")   {fault=TRUE or responseTime>2.5} annotation.tier="gold"'))
'service("orders") { fault = true OR responsetime > 2.5 } AND annotation.tier = "gold"'
"""

from __future__ import annotations

from xraykit.query.evaluator import evaluate
from xraykit.query.explanation import Explanation, explain
from xraykit.query.keywords import (
    BOOL_KEYWORDS,
    BOOL_OPS,
    KEYWORDS,
    NUMBER_KEYWORDS,
    NUMBER_OPS,
    ROOT_CAUSE_LEVELS,
    SCOPE_KEYWORDS,
    STRING_KEYWORDS,
    STRING_OPS,
)
from xraykit.query.pandas_code import to_pandas
from xraykit.query.parser import parse, validate
from xraykit.query.tree import (
    And,
    Annotation,
    Edge,
    Group,
    Keyword,
    NodeId,
    Not,
    Or,
    RootCause,
    RootCauseJson,
    Service,
    walk,
)

__all__ = [
    "BOOL_KEYWORDS",
    "BOOL_OPS",
    "KEYWORDS",
    "NUMBER_KEYWORDS",
    "NUMBER_OPS",
    "ROOT_CAUSE_LEVELS",
    "SCOPE_KEYWORDS",
    "STRING_KEYWORDS",
    "STRING_OPS",
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
    "walk",
]
