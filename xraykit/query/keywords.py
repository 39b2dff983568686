"""The keywords of the filter language: one table of what each means and where it applies.

:data:`KEYWORDS` is the single semantic table: a keyword's type, the scopes (top level,
``service()``, ``edge()``, root-cause blocks) that accept it, and the frame column that
holds its value in each scope. The parser, the evaluator and :func:`to_pandas` all read it.

>>> KEYWORDS["user"].segment_column, KEYWORDS["http.status"].type
('user', 'number')
>>> sorted(SCOPE_KEYWORDS["rootcause.fault.exception"])
['first', 'index', 'last', 'message', 'name', 'remote']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from xraykit.analysis import ROOT_CAUSE_KINDS

__all__ = [
    "ALL_WORDS",
    "BOOL_KEYWORDS",
    "BOOL_OPS",
    "KEYWORDS",
    "NUMBER_KEYWORDS",
    "NUMBER_OPS",
    "ROOT_CAUSE_LEVELS",
    "SCOPE_KEYWORDS",
    "STRING_KEYWORDS",
    "STRING_OPS",
    "KeywordSpec",
    "Scope",
    "keyword_type",
]

#: Where a clause is evaluated: "trace", "service", "edge" or "rootcause.<kind>.<level>".
Scope: TypeAlias = str

ROOT_CAUSE_LEVELS = ("service", "entity", "exception")
NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
STRING_OPS = ("=", "!=", "CONTAINS", "BEGINSWITH", "ENDSWITH")
BOOL_OPS = ("=", "!=")

_T, _S, _E = "trace", "service", "edge"
_RS, _RE, _RX = "rootcause.service", "rootcause.entity", "rootcause.exception"


@dataclass(frozen=True)
class KeywordSpec:
    """One keyword: its type, where it is allowed, and where its value is read.

    ``trace_column`` is the column of the ``traces`` frame read at the top level;
    ``segment_column`` the column of the ``segments`` frame ("any segment of the trace" at
    the top level; the node's own segment inside ``service()``); ``row_column`` the column
    of the node, edge-call and root-cause rows the evaluator builds for a block. A keyword
    with neither column at the top level (``ok``, ``inferred``) is computed there.
    """

    name: str
    type: Literal["boolean", "number", "string"]
    scopes: frozenset[str]
    row_column: str
    trace_column: str | None = None
    segment_column: str | None = None
    #: The root-cause kinds whose blocks accept it (``coverage``: responsetime only).
    root_cause_kinds: tuple[str, ...] = ROOT_CAUSE_KINDS


def _spec(
    name: str,
    type_: Literal["boolean", "number", "string"],
    scopes: tuple[str, ...],
    row_column: str,
    **columns: str,
) -> KeywordSpec:
    return KeywordSpec(name, type_, frozenset(scopes), row_column, **columns)  # type: ignore[arg-type]


# Order: booleans, numbers, strings, each as error messages list them.
KEYWORDS: dict[str, KeywordSpec] = {
    k.name: k
    for k in (
        _spec("ok", "boolean", (_T, _S, _E), "ok"),
        _spec("error", "boolean", (_T, _S, _E), "error", trace_column="has_error"),
        _spec("throttle", "boolean", (_T, _S, _E), "throttle", trace_column="has_throttle"),
        _spec("fault", "boolean", (_T, _S, _E), "fault", trace_column="has_fault"),
        _spec("partial", "boolean", (_T, _S, _E), "partial", trace_column="is_partial"),
        _spec("inferred", "boolean", (_T, _S, _RS), "inferred"),
        _spec("root", "boolean", (_S,), "root"),
        _spec("remote", "boolean", (_RE, _RX), "remote"),
        _spec("first", "boolean", (_RS, _RE, _RX), "first"),
        _spec("last", "boolean", (_RS, _RE, _RX), "last"),
        _spec(
            "responsetime",
            "number",
            (_T, _S, _E),
            "response_time_s",
            trace_column="response_time_s",
        ),
        _spec("duration", "number", (_T, _S, _E), "duration_s", trace_column="duration_s"),
        _spec("http.status", "number", (_T, _S, _E), "http_status", trace_column="http_status"),
        _spec("index", "number", (_RS, _RE, _RX), "index"),
        KeywordSpec(
            "coverage", "number", frozenset({_RE}), "coverage", root_cause_kinds=("responsetime",)
        ),
        _spec(
            "http.url",
            "string",
            (_T, _S, _E),
            "http_url",
            trace_column="http_url",
            segment_column="http_url",
        ),
        _spec(
            "http.method",
            "string",
            (_T, _S, _E),
            "http_method",
            trace_column="http_method",
            segment_column="http_method",
        ),
        _spec(
            "http.useragent",
            "string",
            (_T, _S),
            "http_user_agent",
            trace_column="user_agent",
            segment_column="http_user_agent",
        ),
        _spec(
            "http.clientip",
            "string",
            (_T, _S),
            "http_client_ip",
            trace_column="client_ip",
            segment_column="http_client_ip",
        ),
        _spec("user", "string", (_T, _S), "user", segment_column="user"),
        _spec("name", "string", (_S, _RS, _RE, _RX), "name"),
        _spec("type", "string", (_S, _RS), "type"),
        _spec("message", "string", (_RX,), "message"),
        _spec(
            "availabilityzone",
            "string",
            (_T, _S),
            "availability_zone",
            segment_column="availability_zone",
        ),
        _spec("instance.id", "string", (_T, _S), "instance_id", segment_column="instance_id"),
        _spec("resource.arn", "string", (_T, _S), "resource_arn", segment_column="resource_arn"),
    )
}

BOOL_KEYWORDS = tuple(k for k, s in KEYWORDS.items() if s.type == "boolean")
NUMBER_KEYWORDS = tuple(k for k, s in KEYWORDS.items() if s.type == "number")
STRING_KEYWORDS = tuple(k for k, s in KEYWORDS.items() if s.type == "string")

#: Every word a learner might type at the start of a clause (for "did you mean").
ALL_WORDS = (
    *KEYWORDS,
    "annotation.",
    "service",
    "edge",
    "group.name",
    "group.arn",
    "rootcause.json",
    *(f"rootcause.{k}.{lv}" for k in ROOT_CAUSE_KINDS for lv in ROOT_CAUSE_LEVELS),
)

#: The keywords allowed in each scope.
SCOPE_KEYWORDS: dict[Scope, frozenset[str]] = {
    scope: frozenset(k for k, s in KEYWORDS.items() if scope in s.scopes) for scope in (_T, _S, _E)
}
for _kind in ROOT_CAUSE_KINDS:
    for _level in ROOT_CAUSE_LEVELS:
        SCOPE_KEYWORDS[f"rootcause.{_kind}.{_level}"] = frozenset(
            k
            for k, s in KEYWORDS.items()
            if f"rootcause.{_level}" in s.scopes and _kind in s.root_cause_kinds
        )


def keyword_type(keyword: str) -> Literal["boolean", "number", "string"]:
    """The type of a keyword's values.

    >>> keyword_type("fault"), keyword_type("duration"), keyword_type("user")
    ('boolean', 'number', 'string')
    """
    return KEYWORDS[keyword].type
