"""Diagnostics: the messages of FilterExpressionError, with a caret and a suggested fix.

Unbalanced quotes and brackets, lark's syntax errors, unknown words ("did you mean") and
status classes such as ``5xx`` each get a message that says what is wrong and how to write it.
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING

from xraykit.exceptions import FilterExpressionError
from xraykit.query.grammar import lark_parser, token_span
from xraykit.query.keywords import ALL_WORDS, BOOL_KEYWORDS, NUMBER_KEYWORDS, STRING_KEYWORDS
from xraykit.query.tree import quote

if TYPE_CHECKING:
    from lark import Token

    from xraykit.query.tree import Span

__all__ = [
    "STATUS_CLASS",
    "caret",
    "check_balance",
    "error",
    "nearest",
    "status_class_fix",
    "syntax_error",
    "unknown_word_error",
]


def caret(expression: str, start: int, end: int | None = None) -> str:
    """Two lines: the expression line holding ``start`` and carets under ``start:end``."""
    line_start = expression.rfind("\n", 0, start) + 1
    line_end = expression.find("\n", start)
    line_end = len(expression) if line_end < 0 else line_end
    line = expression[line_start:line_end]
    width = max(1, min(end if end is not None else start + 1, line_end) - start)
    return f"    {line}\n    {' ' * (start - line_start)}{'^' * width}"


def error(
    expression: str, span: Span | int | None, problem: str, fix: str
) -> FilterExpressionError:
    if isinstance(span, int):
        span = (span, span + 1)
    message = problem
    if span is not None:
        message += f" (at position {span[0]})\n{caret(expression, span[0], span[1])}"
    if fix:
        message += f"\n{fix}"
    return FilterExpressionError(
        message, expression=expression, position=None if span is None else span[0]
    )


def nearest(word: str, candidates: tuple[str, ...] | frozenset[str]) -> str | None:
    found = difflib.get_close_matches(word.lower(), sorted(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


STATUS_CLASS = re.compile(r"[1-5][xX]{2}")
_BEFORE_VALUE = re.compile(r"([A-Za-z][A-Za-z_.]*)\s*(!=|<=|>=|=|<|>)\s*$")


def status_class_fix(text: str, before: str) -> str:
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


def unknown_word_error(expression: str, tok: Token) -> FilterExpressionError:
    """The error for a word that is no keyword: a typo, ``NOT``, a value without a keyword..."""
    word = str(tok)
    span = token_span(tok)
    if word.lower() in ("and", "or"):
        return error(
            expression,
            span,
            f"{word} needs a clause on both sides",
            "Remove it, or add the missing clause.",
        )
    if word.lower() == "not":
        return error(
            expression, span, "X-Ray has no NOT keyword", "Negate with `!`, e.g. `!fault`."
        )
    if word.lower() in ("true", "false"):
        return error(
            expression,
            span,
            f"{word!r} needs a keyword before it",
            "Compare a boolean keyword with it, e.g. `fault = true`.",
        )
    if word.lower() == "annotation":
        return error(expression, span, "`annotation` needs a key", "Write `annotation.KEY`.")
    digit = span[0] - 1
    if word.lower() == "xx" and digit >= 0 and expression[digit] in "12345":
        text = expression[digit : span[1]]
        return error(
            expression,
            (digit, span[1]),
            f"{text!r} is not a number",
            status_class_fix(text, expression[:digit]),
        )
    if word.lower().startswith("rootcause."):
        suggestion = nearest(word, tuple(w for w in ALL_WORDS if w.startswith("rootcause.")))
    else:
        suggestion = nearest(word, ALL_WORDS)
    if suggestion:
        fix = f"Did you mean {suggestion!r}?"
    else:
        fix = (
            f"The keywords are {', '.join((*BOOL_KEYWORDS, *NUMBER_KEYWORDS, *STRING_KEYWORDS))}, "
            "annotation.KEY, service(), edge(), group.name, group.arn, "
            "rootcause.KIND.LEVEL and rootcause.json. If "
            f"{word!r} is a value, quote it after a keyword and an operator, e.g. "
            f"`user = {quote(word)}`."
        )
    return error(expression, span, f"Unknown keyword {word!r}", fix)


def check_balance(expression: str) -> None:
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
                raise error(
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
                raise error(
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
        raise error(expression, pos, f"This {c!r} is never closed", f"Add the matching {closer!r}.")


def syntax_error(expression: str, exc: Exception) -> FilterExpressionError:
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    if isinstance(exc, UnexpectedCharacters):
        pos = int(exc.pos_in_stream or 0)
        char = expression[pos]
        if char == "'":
            return error(
                expression,
                pos,
                "Single quotes do not make a string",
                'X-Ray strings are double-quoted: "like this".',
            )
        if expression.startswith(("&&", "||"), pos):
            word = "AND" if char == "&" else "OR"
            return error(
                expression,
                (pos, pos + 2),
                f"{expression[pos : pos + 2]!r} is not an operator",
                f"Write {word}.",
            )
        if expression.startswith("==", pos - 1) or expression.startswith("==", pos):
            return error(expression, pos, "'==' is not an operator", "Write a single '='.")
        return error(
            expression,
            pos,
            f"Unexpected character {char!r}",
            "Filter expressions are made of keywords, operators (= != < <= > >= CONTAINS "
            'BEGINSWITH ENDSWITH), "quoted strings", numbers, !, AND, OR and parentheses.',
        )
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        tok = exc.token
        span = token_span(tok)
        text = str(tok)
        expected = set(exc.expected)
        unknown = first_unknown_word(expression, span[0])
        if unknown is not None:
            return unknown
        if text == "=" and expression[span[0] - 1 : span[0]] == "=":
            return error(
                expression,
                (span[0] - 1, span[0] + 1),
                "'==' is not an operator",
                "Write a single '='.",
            )
        if tok.type == "RBRACE" and expression[: span[0]].rstrip().endswith("{"):
            return error(
                expression,
                span,
                "A block { } needs an expression inside",
                'Write e.g. service("name") { fault }, or leave the braces out.',
            )
        if text.lower() == "id":
            return error(
                expression,
                span,
                "id(...) names a node, so it goes inside service() or edge()",
                'Write e.g. service(id(name: "orders", type: "AWS::ECS::Container")) { fault }.',
            )
        if expected == {"COMMA"}:
            return error(
                expression,
                span,
                "edge() takes two nodes",
                'Write edge("caller", "callee"), each a quoted name or id(...).',
            )
        if tok.type in ("STRING", "NUMBER") or text.lower() in ("true", "false"):
            return error(
                expression,
                span,
                f"The value {text} has no keyword and operator before it",
                f"Compare a keyword with it, e.g. `http.url CONTAINS {text}` or "
                f"`annotation.KEY = {text}`.",
            )
        if text.lower() in ("service", "edge", "id") and "LPAR" not in expected:
            return error(
                expression,
                span,
                f"{text}(...) cannot appear here",
                "service() and edge() take a quoted name or id(...), and cannot be nested "
                "inside another block's parentheses.",
            )
        if text in ("AND", "OR") or text.lower() in ("and", "or"):
            return error(
                expression,
                span,
                f"{text} needs a clause on both sides",
                "Remove it, or add the missing clause.",
            )
        if "LPAR" in expected and len(expected) <= 2:
            return error(
                expression,
                span,
                f"Expected '(' here, found {text!r}",
                'Write e.g. service("name").',
            )
        return error(
            expression,
            span,
            f"Unexpected {text!r}",
            expected_hint(expected),
        )
    if isinstance(exc, (UnexpectedEOF, UnexpectedToken)):
        unknown = first_unknown_word(expression, len(expression))
        if unknown is not None:
            return unknown
        end = len(expression.rstrip())
        return error(
            expression,
            max(0, end - 1) if end else 0,
            "The expression ends too early",
            "Finish the last clause: an operator needs a value, `!` a clause, AND/OR a clause "
            "on each side, service( and id( a closing ')'.",
        )
    return error(expression, None, f"Cannot parse the expression: {exc}", "")


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


def first_unknown_word(expression: str, before: int) -> FilterExpressionError | None:
    """The error for the first word before ``before`` that is no keyword, if any."""
    from lark.exceptions import LarkError

    previous = None
    try:
        for tok in lark_parser().lex(expression):
            if int(tok.start_pos or 0) >= before:
                break
            after_value = previous is not None and (
                previous.type in _VALUE_BEFORE or previous.type.startswith("__ANON")
            )
            if tok.type == "WORD" and not after_value:
                return unknown_word_error(expression, tok)
            previous = tok
    except LarkError:
        pass
    return None


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


def expected_hint(expected: set[str]) -> str:
    words = sorted({_TOKEN_WORDS[e] for e in expected if e in _TOKEN_WORDS})
    if not words:
        return "Check the clause before this point."
    return "Expected " + ", ".join(words) + " (or a keyword) here."
