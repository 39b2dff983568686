"""Tests of xraykit.query: the language, its errors, and its evaluation on hand-built traces.

tests/data/filters_traces.json holds nine traces, numbered by the last digits of their ids:

1 web 200 fast; user alice; annotations tier="gold", age=30, vip=true; DynamoDB call (no segment)
2 web 500 fault, user bob, POST; orders-api (account 111111111111) faults, AccessDeniedException;
  annotations tier="silver", age=25
3 web 200; orders-api answers 404 (error handled by web); annotation vip=false
4 web 200 https://.../v2/search; DynamoDB throttled (429) then retried
5 web 200 but 6 s; SQL call 5 s with annotation query_kind; SNS to a worker (user dave) ending at 7 s
6 web still in progress (partial)
7 API Gateway 502 -> Lambda checkout (AWS::Lambda, AWS::Lambda::Function 222222222222 faults)
8 web 404 DELETE, user carol, client ip 192.168.1.5
9 web 201 POST; SNS with an inferred segment document; annotation tier="gold"
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xraykit
from xraykit import analysis, graph, query
from xraykit.exceptions import ArgumentTypeError, FilterExpressionError
from xraykit.query import (
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
    evaluate,
    explain,
    parse,
    to_pandas,
    validate,
)

DATA = Path(__file__).parent / "data" / "filters_traces.json"
ALL = [1, 2, 3, 4, 5, 6, 7, 8, 9]
GROUPS = {
    "slow": "responsetime > 3",
    "arn:aws:xray:us-east-1:123456789012:group/failing/ABCDEF": "fault OR error",
    "loop": 'group.name = "loop"',
    "broken": "responsetime >",
}


def tid(n: int) -> str:
    return f"1-6553f100-{n:024d}"


@pytest.fixture(scope="module")
def ts() -> Iterator[xraykit.TraceSet]:
    """The hand-built traces; the other modules' derived frames are memoised for them.

    Filters computes node, edge and root-cause frames once per evaluation; across the
    hundreds of evaluations here, computing them once per TraceSet keeps the suite fast.
    """
    traces = xraykit.from_documents(json.loads(DATA.read_text()), source=DATA.name)
    with pytest.MonkeyPatch.context() as patch:
        for module, name in (
            (graph, "graph_frames"),
            (query.evaluator, "graph_frames"),
            (graph, "node_segments"),
            (graph, "edge_calls"),
            (analysis, "root_cause_paths"),
            (query.evaluator, "root_cause_paths"),
        ):
            patch.setattr(module, name, _memoised(getattr(module, name), traces))
        yield traces


def _memoised(function: Callable[..., Any], traces: xraykit.TraceSet) -> Callable[..., Any]:
    """``function`` (returning a frame or a tuple of frames), computed once for ``traces``."""
    cache: dict[tuple[object, ...], Any] = {}

    def wrapper(frames: xraykit.TraceSet, *args: object) -> Any:
        if frames is not traces:
            return function(frames, *args)
        if args not in cache:
            cache[args] = function(frames, *args)
        found = cache[args]
        return tuple(f.copy() for f in found) if isinstance(found, tuple) else found.copy()

    return wrapper


def matching(expression: str, traces: xraykit.TraceSet) -> list[int]:
    mask = evaluate(traces, expression, groups=GROUPS)
    return sorted(int(t[-2:]) for t in traces.traces.loc[mask.to_numpy(), "trace_id"])


# expression -> exact matching trace numbers
TABLE: list[tuple[str, list[int]]] = [
    # boolean keywords (trace level: the root)
    ("ok", [1, 3, 4, 5, 6, 9]),
    ("!ok", [2, 7, 8]),
    ("ok = false", [2, 7, 8]),
    ("ok != false", [1, 3, 4, 5, 6, 9]),
    ("error", [8]),
    ("fault", [2, 7]),
    ("fault = true", [2, 7]),
    ("FAULT != TRUE", [1, 3, 4, 5, 6, 8, 9]),
    ("throttle", [4]),
    ("partial", [6]),
    ("!partial", [1, 2, 3, 4, 5, 7, 8, 9]),
    ("inferred", [1, 4, 5, 9]),
    # number keywords
    ("responsetime > 5", [5]),
    ("responseTime >= 1.2", [2, 5]),
    ("responsetime < 0.1", [8]),
    ("responsetime <= 0.3", [1, 8, 9]),
    ("duration >= 5 AND duration <= 8", [5]),
    ("duration = 0.5", [7]),
    ("duration != 0.5", [1, 2, 3, 4, 5, 8, 9]),
    ("http.status != 200", [2, 7, 8, 9]),
    ("http.status >= 500", [2, 7]),
    ("http.status = 404", [8]),
    # string keywords
    ('http.url CONTAINS "/api/"', [1, 2, 3, 5, 6, 9]),
    ('http.url BEGINSWITH "https://"', [4, 7]),
    ('http.url ENDSWITH "items"', [1, 6]),
    ('http.url = "http://shop.example.com/api/cart"', [3]),
    ('http.url != "http://shop.example.com/api/items"', [2, 3, 4, 5, 7, 8, 9]),
    ("http.url", ALL),
    ('http.method = "POST"', [2, 7, 9]),
    ('http.method contains "ET"', [1, 3, 4, 5, 6, 8]),
    ('http.useragent BEGINSWITH "Mozilla"', [1, 3]),
    ('http.clientip = "192.168.1.5"', [8]),
    ("!http.clientip", [4, 5, 6, 7, 9]),
    ('user = "dave"', [5]),
    ('user CONTAINS ""', [1, 2, 5, 8]),
    ("user", [1, 2, 5, 8]),
    ("!user", [3, 4, 6, 7, 9]),
    ('user != "alice"', [2, 5, 8]),
    ('availabilityzone = "us-east-1c"', [5]),
    ('availabilityzone ENDSWITH "a"', [1, 3]),
    ('instance.id BEGINSWITH "i-0"', [1, 2, 3, 5]),
    ('instance.id = "i-0worker"', [5]),
    ('resource.arn CONTAINS ":lambda:"', [7]),
    # boolean operators, precedence and juxtaposition
    ("ok !partial duration < 3", [1, 3, 4, 9]),
    ("fault OR error", [2, 7, 8]),
    ('fault OR error AND user = "carol"', [2, 7, 8]),
    ('(fault OR error) AND user = "bob"', [2]),
    ('fault or error and user = "bob"', [2, 7]),
    ("!(fault OR error)", [1, 3, 4, 5, 6, 9]),
    ("!!fault", [2, 7]),
    ("fault AND error", []),
    # annotations
    ('annotation.tier = "gold"', [1, 9]),
    ('annotation.tier != "gold"', [2]),
    ('annotation.tier BEGINSWITH "s"', [2]),
    ("annotation.tier", [1, 2, 9]),
    ("!annotation.tier", [3, 4, 5, 6, 7, 8]),
    ("annotation.age > 29", [1, 5]),
    ("annotation.age <= 30", [1, 2]),
    ("annotation.age = 25", [2]),
    ('annotation.age = "25"', []),
    ("annotation.vip", [1, 3]),  # the key is set, whatever its value
    ("!annotation.vip", [2, 4, 5, 6, 7, 8, 9]),
    ("annotation.vip = true", [1]),
    ("annotation.vip = false", [3]),
    ("annotation.vip != false", [1]),
    ('annotation.query_kind = "report"', [5]),
    ("annotation.missing", []),
    # service()
    ('service("orders-api")', [2, 3]),
    ('service("orders-api") { error }', [3]),
    ('service("orders-api") { fault = true OR responsetime > 2.5 }', [2]),
    ("service() { fault }", [2, 7]),
    ("service() { error }", [3, 4, 8]),
    ("service() { throttle }", [4]),
    ('!service("orders-api")', [1, 4, 5, 6, 7, 8, 9]),
    ('service("checkout") { fault }', [7]),
    ('service(id(name: "checkout", type: "AWS::Lambda::Function")) { fault }', [7]),
    ('service(id(name: "checkout", type: "AWS::Lambda")) { fault }', []),
    ('service(id(type: "AWS::Lambda::Function"))', [7]),
    ('service(id(account.id: "111111111111"))', [2, 3]),
    (
        'service(id(account.id: "111111111111")) OR service(id(account.id: "222222222222"))',
        [2, 3, 7],
    ),
    ("service() { inferred }", [1, 4, 5, 9]),
    ('service("SNS") { inferred }', [9]),
    ('service("web") { root = true and fault = true }', [2]),
    ("service() { !root AND responsetime > 1 }", [5]),
    ('service() { type = "Database::SQL" AND duration > 4 }', [5]),
    ('service() { name BEGINSWITH "orders" AND http.status = 404 }', [3]),
    ('service("web") { http.url CONTAINS "/v2/" }', [4, 8]),
    ('service() { user = "dave" AND availabilityzone = "us-east-1c" }', [5]),
    ('service() { resource.arn ENDSWITH ":checkout" AND !root }', [7]),
    ('service("web") { partial }', [6]),
    ('service("web") { ok } AND !ok', []),
    (
        'http.url BEGINSWITH "http://shop" AND http.url CONTAINS "/api/" AND !service("orders-api")',
        [1, 5, 6, 9],
    ),
    ('service("orders-api") { fault } AND annotation.tier = "silver"', [2]),
    # edge()
    ('edge("web", "orders-api") { error }', [3]),
    ('edge("web", "orders-api")', [2, 3]),
    ('edge("web", "orders-api") { http.url ENDSWITH "/orders" }', [2]),
    ('edge("client", "web") { fault }', [2]),
    ('edge("client", "shop-api/prod") { http.status = 502 AND http.method = "POST" }', [7]),
    ('edge(id(type: "AWS::Lambda"), id(type: "AWS::Lambda::Function"))', [7]),
    ('edge("web", "items") { throttle }', [4]),
    ('edge("web", "items") { http.status = 429 OR responsetime > 0.12 }', [4]),
    ('!edge("web", "items")', [2, 3, 5, 6, 7, 8, 9]),
    ('edge("web", "reports@db.internal") { duration > 4 }', [5]),
    # groups
    ('group.name = "slow"', [5]),
    ('group.name = "slow" AND user = "dave"', [5]),
    ('group.arn = "arn:aws:xray:us-east-1:123456789012:group/failing/ABCDEF"', [2, 7, 8]),
    ('!group.name = "slow"', [1, 2, 3, 4, 6, 7, 8, 9]),
    # root causes
    ('rootcause.fault.service { name = "orders-api" }', [2]),
    ('rootcause.fault.service { last AND type = "AWS::Lambda::Function" }', [7]),
    ("rootcause.fault.service { index > 1 }", [7]),
    ('rootcause.fault.entity { last and name = "checkout" }', [7]),
    ('rootcause.fault.entity { remote AND name = "Lambda" }', [7]),
    (
        'rootcause.fault.exception { last and message = "Access Denied for account_id: 1234567890" }',
        [2],
    ),
    ('rootcause.fault.exception { name = "TimeoutError" AND first }', [7]),
    ("rootcause.fault.exception", [2, 7]),
    ("rootcause.error.service { inferred }", [4]),
    ('rootcause.error.entity { first and name = "web" }', [3, 4, 8]),
    ('rootcause.error.service { last AND name = "orders-api" }', [3]),
    ("rootcause.responsetime.entity { last and coverage > 0.8 }", [3, 4, 5, 8]),
    ("rootcause.responsetime.entity { remote and coverage > 0.7 }", [2, 5, 7]),
    ('rootcause.responsetime.service { last and type = "Database::SQL" }', [5]),
    ("rootcause.responsetime.service { inferred AND index = 1 }", [1, 5, 9]),
    (
        'rootcause.json = #[{"Services": [{"Name": "orders-api", "EntityPath": [{"Name": "orders-api"}]}]}]',
        [2, 3],
    ),
    (
        'rootcause.json = #[{"Services": [{"Name": "web", "EntityPath": [{"Name": "web"}, '
        '{"Name": "orders-api"}]}, {"Name": "orders-api", "Type": "AWS::ECS::Container"}]}]',
        [2, 3],
    ),
    ('rootcause.json = #[{"Services": [{"Name": "checkout", "AccountId": "222222222222"}]}]', [7]),
    ('rootcause.json = #[{"Services": [{"Name": "items", "Inferred": true}]}] AND throttle', [4]),
]


def test_table_is_large_enough() -> None:
    assert len(TABLE) >= 60
    assert len({e for e, _ in TABLE}) == len(TABLE)


@pytest.mark.parametrize(("expression", "expected"), TABLE, ids=[e for e, _ in TABLE])
def test_table(ts: xraykit.TraceSet, expression: str, expected: list[int]) -> None:
    assert matching(expression, ts) == expected


def test_every_keyword_is_in_the_table() -> None:
    used = " ".join(e.lower() for e, _ in TABLE)
    words = [*query.BOOL_KEYWORDS, *query.NUMBER_KEYWORDS, *query.STRING_KEYWORDS]
    words += [
        "annotation.",
        "service(",
        "edge(",
        "id(",
        "group.name",
        "group.arn",
        "rootcause.json",
    ]
    words += [
        f"rootcause.{k}.{lv}"
        for k in ("fault", "error", "responsetime")
        for lv in ("service", "entity")
    ]
    words += ["rootcause.fault.exception", "contains", "beginswith", "endswith", "!=", "<=", ">="]
    assert [w for w in words if w not in used] == []


# errors: expression, position, words the message must contain
ERRORS: list[tuple[str, int | None, list[str]]] = [
    ("", None, ["empty"]),
    ("   ", None, ["empty"]),
    ("reponsetime > 5", 0, ["Unknown keyword 'reponsetime'", "'responsetime'", "^^^^^^^^^^^"]),
    ("fault AND htp.url", 10, ["'http.url'"]),
    ('rootcause.fault.servce { name = "x" }', 0, ["'rootcause.fault.service'"]),
    ("okay", 0, ["'ok'"]),
    ("NOT ok", 0, ["NOT", "!"]),
    ("user = alice", 7, ["not in quotes", '"alice"']),
    ("name = traces", None, ["not in quotes"]),
    ("service(orders)", 8, ["not in quotes", 'service("orders")']),
    ("annotation.tier = gold", 18, ["not in quotes"]),
    ('responsetime > "5"', 15, ["number keyword", "responsetime > 5"]),
    ('http.status = "abc"', 14, ["number keyword"]),
    ("http.url > 5", 9, ["string keyword", "CONTAINS"]),
    ("http.url = 5", 11, ["string keyword", '"5"']),
    ('ok = "true"', 5, ["boolean keyword", "true or false"]),
    ("fault > 1", 6, ["boolean keyword"]),
    ("responsetime", 0, ["needs a comparison"]),
    ('annotation.aws:api_id = "abc"', 14, ["':'", "letters, digits and underscores"]),
    ("annotation.my-key", 13, ["'-'"]),
    ("annotation. = 3", 0, ["needs a key"]),
    ("annotation.x CONTAINS 5", 13, ["number"]),
    ('annotation.x > "a"', 13, ["string"]),
    ("(ok", 0, ["never closed", "')'"]),
    ("ok)", 2, ["never opened"]),
    ('service("a") { fault', 13, ["never closed", "'}'"]),
    ('service("a") { fault )', 21, ["never opened"]),
    ('user = "abc', 7, ["string is never closed"]),
    ("user = 'abc'", 7, ["double"]),
    ("ok && fault", 3, ["AND"]),
    ("ok || fault", 3, ["OR"]),
    ("ok == true", 3, ["single '='"]),
    ("ok AND", 5, ["ends too early"]),
    ("ok OR OR fault", 6, ["both sides"]),
    ("!", 0, ["ends too early"]),
    ('"abc"', 0, ["no keyword"]),
    ('service("a") {}', 14, ["needs an expression"]),
    ('edge("a") { error }', 8, ["two nodes"]),
    ('id(name: "a")', 0, ["inside service() or edge()"]),
    ("service(id())", 8, ["at least one field"]),
    ('service(id(name: "a", name: "b"))', 22, ["twice"]),
    ('name = "x"', 0, ["cannot be used at the top level", "service() { }"]),
    ("first", 0, ["cannot be used at the top level"]),
    ("coverage > 0.5", 0, ["rootcause.responsetime.entity"]),
    (
        "rootcause.fault.entity { coverage > 0.5 }",
        25,
        ["cannot be used inside rootcause.fault.entity"],
    ),
    ('service("a") { annotation.x = 1 }', 15, ["Annotations cannot be used"]),
    ('service("a") { service("b") }', 15, ["cannot be nested"]),
    ('edge("a", "b") { root }', 17, ["cannot be used inside edge()"]),
    ('group.name != "x"', 11, ["only be compared with '='"]),
    ("group.name = slow", 13, ["not in quotes"]),
    ('rootcause.json = #[{"a": }]', 25, ["not valid"]),
    ("rootcause.json = #[1, 2]", 17, ["RootCause objects"]),
    ("5 > duration", 0, ["no keyword"]),
    ("ok @ fault", 3, ["Unexpected character"]),
    (
        "http.status = 2xx",
        14,
        ["'2xx' is not a number", "http.status >= 200 AND http.status < 300"],
    ),
    ("http.status=5XX OR ok", 12, ["no status classes", "http.status < 600", "`fault`"]),
    ("http.status != 4xx", 15, ["(http.status < 400 OR http.status >= 500)", "`error`"]),
    ('service() { http.status = "5xx" }', 26, ["number keyword", "http.status >= 500"]),
]


@pytest.mark.parametrize(
    ("expression", "position", "words"), ERRORS, ids=[e or "<empty>" for e, _, _ in ERRORS]
)
def test_errors(expression: str, position: int | None, words: list[str]) -> None:
    with pytest.raises(FilterExpressionError) as info:
        validate(expression)
    err = info.value
    assert err.expression == expression
    if position is not None:
        assert err.position == position
        assert "^" in str(err)
    for word in words:
        assert word in str(err)


def test_error_is_a_value_error_with_caret_under_the_position() -> None:
    with pytest.raises(ValueError, match="Did you mean 'duration'") as info:
        parse("ok AND\n  duratoin < 3")
    lines = str(info.value).splitlines()
    caret = next(i for i, line in enumerate(lines) if line.strip().startswith("^"))
    assert lines[caret - 1].strip() == "duratoin < 3"
    assert lines[caret - 1].index("duratoin") == lines[caret].index("^")


def test_non_string_expression(ts: xraykit.TraceSet) -> None:
    with pytest.raises(FilterExpressionError, match="must be a str"):
        parse(["fault"])  # type: ignore[arg-type]
    calls: list[Callable[[Any], object]] = [
        ts.query,
        lambda bad: evaluate(ts, bad),
        lambda bad: explain(ts, bad, tid(1)),
    ]
    for bad, shown in ((None, "None of type NoneType"), (5, "5 of type int")):
        for call in calls:
            with pytest.raises(FilterExpressionError, match="must be a str") as info:
                call(bad)
            assert shown in str(info.value)
            assert "Write the expression as text" in str(info.value)


@pytest.mark.parametrize(
    ("groups", "words"),
    [
        (None, ["Unknown group 'slow'", "groups="]),
        ({"loop": 'group.name = "loop"', "slow": 'group.name = "loop"'}, ["refers to itself"]),
        ({"slow": "responsetime >"}, ["group 'slow' is not valid", "ends too early"]),
    ],
)
def test_group_errors(
    ts: xraykit.TraceSet, groups: dict[str, str] | None, words: list[str]
) -> None:
    with pytest.raises(FilterExpressionError) as info:
        evaluate(ts, 'group.name = "slow"', groups=groups)
    for word in words:
        assert word in str(info.value)


# -- the tree -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "normalised"),
    [
        ("ok !partial duration<3", "ok AND !partial AND duration < 3"),
        ("a_b", None),
        ("responseTime > 2 or http.url", "responsetime > 2 OR http.url"),
        ("(ok OR fault) error", "(ok OR fault) AND error"),
        ("ok OR (fault error)", "ok OR fault AND error"),
        ("((ok))", "ok"),
        ("!(ok AND fault)", "!(ok AND fault)"),
        ('user contains "a\\"b"', 'user CONTAINS "a\\"b"'),
        ("http.status >= 5e2", "http.status >= 500.0"),
        ("service()", "service()"),
        ('service(id(type:"t",name:"n")){fault}', 'service(id(name: "n", type: "t")) { fault }'),
        ('edge("a",id(account.id:"1")){error}', 'edge("a", id(account.id: "1")) { error }'),
        ('rootcause.json=#[ {"Services" : [ ]} ]', 'rootcause.json = #[{"Services": []}]'),
        ('GROUP.NAME="x"', 'group.name = "x"'),
        ("rootcause.Fault.Entity {LAST}", "rootcause.fault.entity { last }"),
    ],
)
def test_normalised_text(expression: str, normalised: str | None) -> None:
    if normalised is None:
        with pytest.raises(FilterExpressionError):
            parse(expression)
        return
    assert str(parse(expression)) == normalised
    assert parse(normalised) == parse(expression)


def test_tree_shape_and_positions() -> None:
    tree = parse('service("orders") { fault } AND annotation.tier = "gold"')
    assert tree == And((Service("orders", Keyword("fault")), Annotation("tier", "=", "gold")))
    assert isinstance(tree, And)
    assert tree.items[1].span == (32, 56)
    assert parse("a_ok" if False else "ok").span == (0, 2)
    assert parse('edge("a", "b")') == Edge("a", "b")
    assert parse('service(id(name: "f", type: "AWS::Lambda::Function"))') == Service(
        NodeId("f", "AWS::Lambda::Function")
    )
    assert parse('group.arn = "x"') == Group("arn", "x")
    assert parse("rootcause.error.exception") == RootCause("error", "exception")
    assert parse("!fault OR ok") == Or((Not(Keyword("fault")), Keyword("ok")))
    assert parse("rootcause.json = #[{}]") == RootCauseJson("[{}]")
    assert [str(e) for e in query.walk(parse("!(ok OR fault)"))] == [
        "!(ok OR fault)",
        "ok OR fault",
        "ok",
        "fault",
    ]


# -- property: parse(str(parse(e))) == parse(e) -------------------------------------------

_text = st.text(alphabet=st.sampled_from('ab c"\\/:.-_é'), max_size=6)
_number = st.one_of(
    st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 3))
)
_key = st.text(alphabet=st.sampled_from("abcXYZ_019"), min_size=1, max_size=6)


def _keywords(
    scope: str, *, text: st.SearchStrategy = _text, number: st.SearchStrategy = _number
) -> st.SearchStrategy:
    allowed = sorted(query.SCOPE_KEYWORDS[scope])
    bools = [k for k in allowed if k in query.BOOL_KEYWORDS]
    nums = [k for k in allowed if k in query.NUMBER_KEYWORDS]
    strs = [k for k in allowed if k in query.STRING_KEYWORDS]
    options = [
        st.builds(Keyword, st.sampled_from(bools)),
        st.builds(Keyword, st.sampled_from(bools), st.sampled_from(query.BOOL_OPS), st.booleans()),
    ]
    if nums:
        options.append(
            st.builds(Keyword, st.sampled_from(nums), st.sampled_from(query.NUMBER_OPS), number)
        )
    if strs:
        options.append(st.builds(Keyword, st.sampled_from(strs)))
        options.append(
            st.builds(Keyword, st.sampled_from(strs), st.sampled_from(query.STRING_OPS), text)
        )
    return st.one_of(options)


def _combine(leaf: st.SearchStrategy) -> st.SearchStrategy:
    def extend(children: st.SearchStrategy) -> st.SearchStrategy:
        many = st.lists(children, min_size=2, max_size=3).map(tuple)
        return st.one_of(st.builds(Not, children), st.builds(And, many), st.builds(Or, many))

    return st.recursive(leaf, extend, max_leaves=5)


_node = st.one_of(
    _text,
    st.builds(NodeId, st.none() | _text, st.none() | _text, st.none() | _text).filter(
        lambda n: (n.name, n.type, n.account_id) != (None, None, None)
    ),
)
_annotation = st.one_of(
    st.builds(Annotation, _key),
    st.builds(Annotation, _key, st.sampled_from(query.STRING_OPS), _text),
    st.builds(Annotation, _key, st.sampled_from(query.NUMBER_OPS), _number),
    st.builds(Annotation, _key, st.sampled_from(query.BOOL_OPS), st.booleans()),
)
_rootcause = st.tuples(
    st.sampled_from(analysis.ROOT_CAUSE_KINDS), st.sampled_from(query.ROOT_CAUSE_LEVELS)
).flatmap(
    lambda kl: st.builds(
        RootCause,
        st.just(kl[0]),
        st.just(kl[1]),
        st.none() | _combine(_keywords(f"rootcause.{kl[0]}.{kl[1]}")),
    )
)
_trees = _combine(
    st.one_of(
        _keywords("trace"),
        _annotation,
        st.builds(Service, st.none() | _node, st.none() | _combine(_keywords("service"))),
        st.builds(Edge, _node, _node, st.none() | _combine(_keywords("edge"))),
        st.builds(Group, st.sampled_from(["name", "arn"]), _text),
        _rootcause,
    )
)


def _messy(expr: object, draw: st.DrawFn) -> str:
    """Print a tree the way a person might type it: other case, spacing, parentheses."""
    pad = draw(st.sampled_from(["", " ", "  "]))
    if isinstance(expr, Or | And):
        joiner = (
            draw(st.sampled_from([" OR ", " or "]))
            if isinstance(expr, Or)
            else draw(st.sampled_from([" AND ", " and ", " "]))
        )
        return joiner.join(f"({_messy(i, draw)})" for i in expr.items)
    if isinstance(expr, Not):
        return f"!{pad}({_messy(expr.operand, draw)})"
    text = str(expr)
    if isinstance(expr, Keyword) and draw(st.booleans()):
        text = text.replace(expr.keyword, expr.keyword.upper(), 1)
    return f"{pad}{text}{pad}"


@st.composite
def expressions(draw: st.DrawFn) -> str:
    return _messy(draw(_trees), draw)


@settings(max_examples=200, deadline=None)
@given(expressions())
def test_parse_of_printed_tree_round_trips(expression: str) -> None:
    tree = parse(expression)
    assert parse(str(tree)) == tree
    assert str(parse(str(tree))) == str(tree)


@settings(max_examples=150, deadline=None)
@given(_trees)
def test_printed_tree_parses_to_its_normal_form(tree: object) -> None:
    printed = str(tree)
    assert parse(str(parse(printed))) == parse(printed)


# -- evaluation API -----------------------------------------------------------------------------


def test_evaluate_is_aligned_with_the_traces_frame(ts: xraykit.TraceSet) -> None:
    match = evaluate(ts, "responsetime > 1")
    assert match.dtype == bool
    assert match.name == "match"
    assert match.index.equals(ts.traces.index)
    assert ts.traces.loc[match, "trace_id"].tolist() == [tid(2), tid(5)]


def test_evaluate_accepts_a_parsed_tree(ts: xraykit.TraceSet) -> None:
    assert evaluate(ts, parse("fault")).tolist() == evaluate(ts, "fault").tolist()


def test_query_filters_every_frame(ts: xraykit.TraceSet) -> None:
    out = ts.query('service("orders-api")')
    assert sorted(out.traces.trace_id) == [tid(2), tid(3)]
    assert set(out.segments.trace_id) == {tid(2), tid(3)}
    assert set(out.annotations.trace_id) <= {tid(2), tid(3)}
    assert len(ts.query("fault AND error")) == 0


def test_evaluate_on_an_empty_traceset() -> None:
    empty = xraykit.TraceSet()
    for expression in [
        "fault",
        'annotation.x = "y"',
        "user",
        'service("a") { fault }',
        "rootcause.fault.service",
    ]:
        assert evaluate(empty, expression).tolist() == []


def test_explain_says_why(ts: xraykit.TraceSet) -> None:
    why = explain(
        ts, '(fault OR error) AND service("orders-api") { fault } AND annotation.age > 20', tid(2)
    )
    assert why.matched and bool(why)
    text = str(why)
    assert text.splitlines()[0].startswith(f"Trace {tid(2)} matches")
    assert "✔ fault   [fault = True]" in text
    assert "✘ error   [error = False]" in text
    assert "node orders-api|AWS::ECS::Container|111111111111" in text
    assert "annotation.age: 25 (number)" in text
    assert repr(why) == text


def test_explain_a_miss(ts: xraykit.TraceSet) -> None:
    why = explain(ts, 'responsetime > 1 OR group.name = "slow"', tid(1), groups=GROUPS)
    assert not why.matched
    assert "does not match" in str(why)
    assert "responsetime = 0.2" in str(why)
    assert "group 'slow' is: responsetime > 3" in str(why)


def test_explain_root_cause_rows(ts: xraykit.TraceSet) -> None:
    why = explain(ts, 'rootcause.fault.service { name = "orders-api" }', tid(2))
    assert why.matched
    assert any("orders-api #1" in clause for _, hit, clause, _ in why.lines if hit)


def test_the_traceset_comes_first_and_is_checked(ts: xraykit.TraceSet) -> None:
    frame = ts.traces
    with pytest.raises(ArgumentTypeError, match="`ts` must be a TraceSet"):
        evaluate(frame, "fault")  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="`ts` must be a TraceSet"):
        explain(frame, "fault", tid(1))  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # keyword-only options
        evaluate(ts, "fault", GROUPS)  # type: ignore[misc]


def test_explain_unknown_trace(ts: xraykit.TraceSet) -> None:
    with pytest.raises(LookupError):
        explain(ts, "fault", "1-00000000-000000000000000000000000")


# -- to_pandas: the code it writes selects the same traces ----------------------------------


@pytest.mark.parametrize(("expression", "expected"), TABLE, ids=[e for e, _ in TABLE])
def test_to_pandas_agrees_with_evaluate(
    ts: xraykit.TraceSet, expression: str, expected: list[int]
) -> None:
    assert [int(t[-2:]) for t in _run_to_pandas(ts, expression)] == expected


def test_to_pandas_needs_group_expressions() -> None:
    with pytest.raises(FilterExpressionError, match="groups="):
        to_pandas('group.name = "slow"')


def _run_to_pandas(ts: xraykit.TraceSet, expression: str, *, select: bool = True) -> list[str]:
    """The trace ids the code of ``to_pandas(expression)`` selects, run as printed.

    With ``select=False`` the last line (``matches = ts.select(...)``, the same for every
    expression and the slowest) is left out and the ids are read from ``mask``.
    """
    code = to_pandas(expression, groups=GROUPS)
    if "xraykit.query.evaluate" in code:  # a clause it cannot write must be said so
        notes = [line for line in code.splitlines() if "has no short pandas equivalent" in line]
        assert notes and all(line.startswith("# ") for line in notes), code
    body, last = code.rsplit("\n", 1)
    assert last == 'matches = ts.select(t.loc[mask.to_numpy(dtype=bool), "trace_id"])'
    namespace: dict[str, Any] = {"ts": ts}
    exec(code if select else body, namespace)
    if not select:
        mask = namespace["mask"].to_numpy(dtype=bool)
        return sorted(ts.traces.loc[mask, "trace_id"])
    matches = namespace["matches"]
    assert isinstance(matches, xraykit.TraceSet)
    return sorted(matches.traces["trace_id"])


def test_to_pandas_says_what_it_leaves_to_the_evaluator(ts: xraykit.TraceSet) -> None:
    expression = 'rootcause.json = #[{"Services": [{"Name": "checkout"}]}] OR error'
    code = to_pandas(expression)
    note = f"# {parse(expression).items[0]} has no short pandas equivalent"
    assert note in code
    assert "xraykit.query.evaluate(ts, " in code
    assert _run_to_pandas(ts, expression) == [tid(7), tid(8)]


# Values found in the hand-built traces, so random clauses select some traces and not others.
_real_text = st.sampled_from(
    ["", "web", "orders-api", "checkout", "items", "GET", "POST", "alice", "dave", "/api/",
     "https://", "items", "us-east-1a", "i-0", ":lambda:", "Database::SQL", "AWS::Lambda",
     "gold", "Mozilla", "192.168.1.5", "TimeoutError", "Access"]
)  # fmt: skip
_real_number = st.sampled_from([0, 0.1, 0.2, 0.5, 0.8, 1, 1.2, 2.5, 5, 200, 404, 429, 500, 502])
_real_node = st.one_of(
    st.sampled_from(["web", "orders-api", "items", "checkout", "SNS", "client", "shop-api/prod"]),
    st.sampled_from(
        [
            NodeId(type="AWS::Lambda"),
            NodeId(type="AWS::Lambda::Function"),
            NodeId(name="checkout", type="AWS::Lambda::Function"),
            NodeId(account_id="111111111111"),
        ]
    ),
)


def _real_keywords(scope: str) -> st.SearchStrategy:
    return _keywords(scope, text=_real_text, number=_real_number)


_real_clauses = st.one_of(
    _real_keywords("trace"),
    st.builds(Annotation, st.sampled_from(["tier", "age", "vip", "query_kind", "missing"])),
    st.builds(Annotation, st.sampled_from(["tier", "query_kind"]), st.sampled_from(query.STRING_OPS), _real_text),
    st.builds(Annotation, st.just("age"), st.sampled_from(query.NUMBER_OPS), st.sampled_from([25, 29, 30])),
    st.builds(Annotation, st.just("vip"), st.sampled_from(query.BOOL_OPS), st.booleans()),
    st.builds(Service, st.none() | _real_node, st.none() | _combine(_real_keywords("service"))),
    st.builds(Edge, _real_node, _real_node, st.none() | _combine(_real_keywords("edge"))),
    st.builds(Group, st.just("name"), st.just("slow")),
    st.tuples(
        st.sampled_from(analysis.ROOT_CAUSE_KINDS), st.sampled_from(query.ROOT_CAUSE_LEVELS)
    ).flatmap(
        lambda kl: st.builds(
            RootCause,
            st.just(kl[0]),
            st.just(kl[1]),
            st.none() | _combine(_real_keywords(f"rootcause.{kl[0]}.{kl[1]}")),
        )
    ),
)  # fmt: skip


@settings(max_examples=80, deadline=None, derandomize=True)
@given(_combine(_real_clauses))
def test_to_pandas_agrees_with_evaluate_on_random_expressions(
    ts: xraykit.TraceSet, tree: object
) -> None:
    expression = str(tree)
    expected = sorted(ts.traces.loc[evaluate(ts, expression, groups=GROUPS), "trace_id"])
    assert _run_to_pandas(ts, expression, select=False) == expected, expression


# -- samples ---------------------------------------------------------------------------------------


def _expected_status(traces: xraykit.TraceSet) -> dict[str, np.ndarray]:
    """Trace-level fault/error/throttle/ok computed from the segment rows, not from the
    traces frame's has_* columns: the root segment's flags or HTTP status (throttle: any
    entity's flag or a 429)."""
    t = traces.traces
    seg = traces.segments.set_index(["trace_id", "segment_id"])
    root = seg.reindex(list(zip(t["trace_id"], t["root_segment_id"], strict=True)))
    status = root["http_status"].to_numpy(dtype="float64", na_value=np.nan)
    flag = {f: root[f].to_numpy(dtype=bool, na_value=False) for f in ("fault", "error", "throttle")}
    fault = flag["fault"] | (status >= 500)
    error = flag["error"] | flag["throttle"] | ((status >= 400) & (status < 500))
    entities = [traces.segments, traces.subsegments]
    throttled = set()
    for frame in entities:
        hit = frame["throttle"].to_numpy(dtype=bool) | (
            frame["http_status"].to_numpy(dtype="float64", na_value=np.nan) == 429
        )
        throttled |= set(frame.loc[hit, "trace_id"])
    return {
        "fault": fault,
        "error": error,
        "throttle": np.array([x in throttled for x in t["trace_id"]], dtype=bool),
        "ok": ~(fault | error),
        "response_time_s": (root["end"] - root["start"]).dt.total_seconds().to_numpy(),
    }


@pytest.mark.parametrize("name", xraykit.sample_names())
def test_samples(name: str) -> None:
    sample = xraykit.load_sample(name)
    t = sample.traces
    expected = _expected_status(sample)
    for keyword in ("fault", "error", "throttle", "ok"):
        assert np.array_equal(evaluate(sample, keyword).to_numpy(), expected[keyword]), keyword
        assert np.array_equal(evaluate(sample, f"!{keyword}").to_numpy(), ~expected[keyword])
    if name == "shop":  # the checks above see every status
        assert all(
            expected[k].any() and not expected[k].all() for k in ("fault", "error", "throttle")
        )
    assert (evaluate(sample, "service() { fault }") | ~evaluate(sample, "fault")).all()
    slow = evaluate(sample, "responsetime > 0.5 OR !ok").to_numpy()
    assert np.array_equal(slow, (expected["response_time_s"] > 0.5) | ~expected["ok"])
    # service(X) { root } is exactly the traces whose root is X (linked consumers included)
    for root in t["root_service"].dropna().unique():
        hit = evaluate(sample, f"service({json.dumps(str(root))}) {{ root }}").to_numpy()
        assert np.array_equal(hit, (t["root_service"] == root).to_numpy(dtype=bool, na_value=False))


def test_an_sqs_linked_consumer_is_the_root_of_its_trace() -> None:
    # the consumer Lambda's trace starts at its AWS::Lambda segment, which carries `links`
    shop = xraykit.load_sample("shop")
    roots = (shop.traces["root_service"] == "order-worker").to_numpy()
    assert roots.any()
    hit = evaluate(shop, 'service("order-worker") { root }').to_numpy()
    assert np.array_equal(hit, roots)
    assert np.array_equal(evaluate(shop, 'service("order-worker") { !root }').to_numpy(), roots)
    assert not evaluate(shop, 'edge("client", "order-worker")').any()
    assert np.array_equal(evaluate(shop, 'edge("order-events", "order-worker")').to_numpy(), roots)


def test_statuses_without_flags_agree_in_traces_filters_and_graph() -> None:
    # documents with an HTTP status but no fault/error/throttle flags (as some SDKs and
    # proxies write them): 503, 429, 404 at the root; a 429 downstream only; a 200
    def web(n: int, status: int, subsegments: list[dict] | None = None) -> dict:
        doc = {
            "trace_id": tid(n),
            "id": f"{n:016x}",
            "name": "web",
            "start_time": 1700000000.0 + n,
            "end_time": 1700000000.5 + n,
            "http": {"response": {"status": status}},
        }
        return doc | ({"subsegments": subsegments} if subsegments else {})

    call = {
        "id": "00000000000000aa",
        "name": "api",
        "namespace": "remote",
        "start_time": 1700000004.1,
        "end_time": 1700000004.2,
        "http": {"response": {"status": 429}},
    }
    traces = xraykit.from_documents(
        [web(1, 503), web(2, 429), web(3, 404), web(4, 200, [call]), web(5, 200)], on_error="raise"
    )
    expected = {"fault": [1], "error": [2, 3], "throttle": [2, 4], "ok": [4, 5]}
    t = traces.traces
    numbers = np.array([int(x[-2:]) for x in t["trace_id"]])
    columns = {"fault": "has_fault", "error": "has_error", "throttle": "has_throttle"}
    for keyword, want in expected.items():
        assert matching(keyword, traces) == want, keyword
        if keyword in columns:  # the traces frame says the same
            assert sorted(numbers[t[columns[keyword]].to_numpy(dtype=bool)]) == want
    assert (
        sorted(numbers[~(t["has_fault"] | t["has_error"]).to_numpy(dtype=bool)]) == expected["ok"]
    )
    # the graph: each root occurrence and each client call carries its trace's root status
    nodes, calls = graph.graph_frames(traces)
    root = nodes[nodes["root"]].set_index("trace_id").loc[t["trace_id"]]
    client = calls[calls["source"] == "client"].set_index("trace_id").loc[t["trace_id"]]
    for keyword in ("fault", "error", "ok"):
        in_bucket = np.isin(numbers, expected[keyword])
        assert np.array_equal(root[keyword].to_numpy(dtype=bool), in_bucket), keyword
        assert np.array_equal(client[keyword].to_numpy(dtype=bool), in_bucket), keyword
    assert root["throttle"].tolist() == [False, True, False, False, False]
    service_graph = graph.service_graph(traces)
    web_node = service_graph.nodes.set_index("node_id").loc["web||"]
    buckets = ["ok_count", "error_count", "throttle_count", "fault_count", "total_count"]
    assert web_node[buckets].tolist() == [2, 2, 1, 1, 5]
    edge = service_graph.edges.set_index(["source", "target"]).loc[("web||", "api|remote|")]
    assert edge[buckets].tolist() == [0, 1, 1, 0, 1]
    # the node and edge blocks see the same buckets
    assert matching("service() { throttle }", traces) == [2, 4]
    assert matching('service("web") { throttle }', traces) == [2]
    assert matching('edge("web", "api") { throttle AND error AND !ok }', traces) == [4]
    assert matching('service("web") { fault }', traces) == [1]
    assert matching('service("web") { error AND !fault }', traces) == [2, 3]


def test_bare_annotation_means_the_key_is_set_whatever_its_value() -> None:
    shop = xraykit.load_sample("shop")
    ann = shop.annotations[shop.annotations["key"] == "is_retry"]
    assert set(ann["value_type"]) == {"boolean"} and {True, False} <= set(ann["value"])
    with_key = shop.traces["trace_id"].isin(set(ann["trace_id"])).to_numpy()
    retried = shop.traces["trace_id"].isin(set(ann.loc[ann["value"] == True, "trace_id"]))  # noqa: E712
    assert with_key.any() and not with_key.all()
    assert np.array_equal(evaluate(shop, "annotation.is_retry").to_numpy(), with_key)
    assert np.array_equal(evaluate(shop, "!annotation.is_retry").to_numpy(), ~with_key)
    assert np.array_equal(
        evaluate(shop, "annotation.is_retry = true").to_numpy(), retried.to_numpy()
    )
    # the pandas translation agrees
    scope: dict[str, Any] = {"ts": shop}
    exec(to_pandas("!annotation.is_retry"), scope)
    assert list(scope["matches"].traces["trace_id"]) == list(shop.traces.loc[~with_key, "trace_id"])
