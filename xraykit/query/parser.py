"""Parsing: text to expression tree, with a diagnostic for every mistake, and scope checks."""

from __future__ import annotations

import functools

from xraykit.exceptions import FilterExpressionError
from xraykit.query.builder import ExpressionTreeBuilder
from xraykit.query.diagnostics import check_balance, error, syntax_error
from xraykit.query.grammar import lark_parser
from xraykit.query.keywords import SCOPE_KEYWORDS, Scope
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
    RootCauseJson,
    Service,
)

__all__ = ["check_scope", "parse", "validate"]


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
        raise error(
            expression,
            None,
            "The filter expression is empty",
            'Write at least one clause, e.g. `fault` or `responsetime > 1` or `user = "alice"`.',
        )
    check_balance(expression)
    try:
        tree = lark_parser().parse(expression)
    except LarkError as exc:
        raise syntax_error(expression, exc) from None
    expr = ExpressionTreeBuilder(expression).build(tree)
    check_scope(expr, "trace", expression)
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
    places = [s for s, kws in SCOPE_KEYWORDS.items() if keyword in kws]
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


def check_scope(expr: Expr, scope: Scope, expression: str) -> None:
    """Check that every keyword and block is allowed where it appears."""
    if isinstance(expr, Or | And):
        for item in expr.items:
            check_scope(item, scope, expression)
    elif isinstance(expr, Not):
        check_scope(expr.operand, scope, expression)
    elif isinstance(expr, Keyword):
        if expr.keyword not in SCOPE_KEYWORDS[scope]:
            raise error(
                expression,
                expr.span,
                f"{expr.keyword!r} cannot be used {_scope_name(scope)}",
                f"{expr.keyword!r} is allowed {_where_allowed(expr.keyword)}.",
            )
    elif isinstance(expr, Annotation):
        if scope != "trace":
            raise error(
                expression,
                expr.span,
                f"Annotations cannot be used {_scope_name(scope)}",
                "X-Ray does not combine annotation.KEY with service()/edge(); put it outside "
                'the block: `service("x") { fault } AND annotation.KEY = ...`.',
            )
    elif isinstance(expr, Service | Edge | RootCause | Group | RootCauseJson):
        if scope != "trace":
            what = type(expr).__name__.lower()
            raise error(
                expression,
                expr.span,
                f"A {what} clause cannot be nested {_scope_name(scope)}",
                "Combine it with AND outside the block instead.",
            )
        if isinstance(expr, Service) and expr.body is not None:
            check_scope(expr.body, "service", expression)
        elif isinstance(expr, Edge) and expr.body is not None:
            check_scope(expr.body, "edge", expression)
        elif isinstance(expr, RootCause) and expr.body is not None:
            check_scope(expr.body, f"rootcause.{expr.kind}.{expr.level}", expression)
