"""From lark's parse tree to the expression tree, checking types and operators on the way."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from xraykit.exceptions import FilterExpressionError
from xraykit.query.diagnostics import STATUS_CLASS, error, status_class_fix, unknown_word_error
from xraykit.query.grammar import token_span
from xraykit.query.keywords import BOOL_OPS, NUMBER_OPS, STRING_OPS
from xraykit.query.tree import (
    And,
    Annotation,
    Edge,
    Expr,
    Group,
    Keyword,
    NodeId,
    Not,
    Or,
    RootCause,
    RootCauseJson,
    Selector,
    Service,
    Span,
    Value,
    format_value,
    quote,
    unquote,
)

if TYPE_CHECKING:
    from lark import Token, Tree

__all__ = ["ExpressionTreeBuilder"]


class ExpressionTreeBuilder:
    """Build the expression tree (:mod:`xraykit.query.tree`) from lark's parse tree.

    Checks on the way what the grammar leaves open: each keyword's operators and value type,
    annotation keys, node selectors, ``id()`` fields, group and ``rootcause.json`` values.
    """

    def __init__(self, expression: str) -> None:
        self.expression = expression

    def fail(self, span: Span | int | None, problem: str, fix: str = "") -> FilterExpressionError:
        return error(self.expression, span, problem, fix)

    # -- dispatch ----------------------------------------------------------------------
    def build(self, tree: Tree | Token) -> Expr:
        from lark import Tree

        if not isinstance(tree, Tree):  # a lone token where a clause should be
            raise self.fail(
                token_span(tree),
                f"Expected a keyword, but found the value {str(tree)!r}",
                "A value needs a keyword and an operator before it, e.g. "
                f"`user = {str(tree) if str(tree).startswith(chr(34)) else quote(str(tree))}`.",
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
            return "boolean", str(tok).lower() == "true", token_span(tok)
        span = token_span(value)
        if value.type == "STRING":
            return "string", unquote(str(value)), span
        if value.type == "NUMBER":
            text = str(value)
            number: int | float = float(text) if any(c in text for c in ".eE") else int(text)
            return "number", number, span
        return "word", str(value), span

    def _check_op(self, keyword: str, kind: str, op_tok: Token, allowed: tuple[str, ...]) -> str:
        op = str(op_tok).upper()
        if op not in allowed:
            raise self.fail(
                token_span(op_tok),
                f"{keyword!r} is a {kind} keyword and cannot be compared with {str(op_tok)!r}",
                f"Use one of: {' '.join(allowed)}.",
            )
        return op

    def _word_as_string(self, keyword: str, word: str, span: Span) -> FilterExpressionError:
        return self.fail(
            span,
            f"The string {word!r} compared with {keyword!r} is not in quotes",
            f"Strings are always double-quoted in X-Ray filter expressions: write {quote(word)}.",
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
            shown = v if vtype != "string" else quote(str(v))
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
                token_span(kw_tok),
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
                if STATUS_CLASS.fullmatch(str(v)):
                    hint = status_class_fix(str(v), f"{keyword} {op}")

            raise self.fail(
                vspan,
                f"{keyword!r} is a number keyword, but it is compared with "
                f"{format_value(v) if vtype != 'word' else v!r}",
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
                f"{vtype} {format_value(v)}",
                f"Put the value in double quotes: `{keyword} {op} {quote(format_value(v))}`.",
            )
        return Keyword(keyword, op, v, span=span)

    def _annotation_pred(self, tree: Tree) -> Expr:
        kw_tok, op_tok, value = self._comparison(tree)
        key = str(kw_tok)[len("annotation.") :]
        span = self._meta_span(tree)
        kspan = token_span(kw_tok)
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
                token_span(op_tok),
                f"{str(op_tok)!r} cannot compare {name} with the {vtype} {format_value(v)}",
                f"For a {vtype} value use one of: {' '.join(allowed)}.",
            )
        return Annotation(key, op, v, span=span)

    def _unknown_pred(self, tree: Tree) -> Expr:
        raise unknown_word_error(self.expression, cast("Token", tree.children[0]))

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
                f"Write {where}({quote(str(v))}), or use id(name: {quote(str(v))}).",
            )
        if vtype != "string":
            raise self.fail(
                vspan,
                f"{where}() takes a quoted node name or id(...), not {format_value(v)}",
                f"Write {where}({quote(format_value(v))}).",
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
                    f"Write id({key}: {quote(str(v))}).",
                )
            if key in fields:
                raise self.fail(token_span(key_tok), f"id() names {key!r} twice", "Keep one.")
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
                token_span(op_tok),
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
            raise self.fail(token_span(op_tok), "rootcause.json can only be compared with '='", "")
        text = str(tok)[1:]
        span = token_span(tok)
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
