"""The grammar: ``grammar.lark`` loaded once into a LALR parser, and token positions.

lark is imported on first use, so ``import xraykit`` does not load it.
"""

from __future__ import annotations

import functools
import importlib.resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lark import Lark

    from xraykit.query.tree import Span

__all__ = ["lark_parser", "token_span"]


@functools.cache
def lark_parser() -> Lark:
    """The parser of ``grammar.lark`` (built on the first call, then reused).

    >>> [t.type for t in lark_parser().lex("fault AND responsetime > 1")]
    ['FAULT', '_AND', 'RESPONSETIME', 'MORETHAN', 'NUMBER']
    """
    from lark import Lark

    grammar = importlib.resources.files("xraykit.query").joinpath("grammar.lark").read_text()
    # The basic lexer keeps keywords keywords everywhere, so errors name them correctly.
    return Lark(
        grammar, parser="lalr", lexer="basic", propagate_positions=True, maybe_placeholders=True
    )


def token_span(tok: Any) -> Span:
    """``(start, end)`` of a lark token in the expression text."""
    return (int(tok.start_pos or 0), int(tok.end_pos or 0))
