"""One error tree: every error xraykit raises on purpose is an XrayKitError and a builtin.

The first test reads the package's source and fails on any ``raise`` of a bare builtin
exception, so the rule holds for code written after it; the others call public functions
with bad arguments the way a learner would, and check what comes back.
"""

from __future__ import annotations

import ast
import builtins
import inspect
from pathlib import Path

import pandas as pd
import pytest

import xraykit
from xraykit import exceptions

PACKAGE = Path(xraykit.__file__).parent
BUILTIN_ERRORS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}
# raised for the protocol they belong to, never as a message to a user
PROTOCOL = {"NotImplementedError", "StopIteration", "StopAsyncIteration", "GeneratorExit"}


def _raised_name(node: ast.Raise) -> str | None:
    exc = node.exc
    if isinstance(exc, ast.Call):
        exc = exc.func
    return exc.id if isinstance(exc, ast.Name) else None


class _Raises(ast.NodeVisitor):
    """Each ``raise`` of a bare builtin exception, with the function it is in."""

    def __init__(self) -> None:
        self.functions: list[str] = []
        self.found: list[tuple[int, str]] = []

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Raise(self, node: ast.Raise) -> None:
        name = _raised_name(node) if node.exc is not None else None
        inside = self.functions[-1] if self.functions else ""
        protocol = name in PROTOCOL or (name == "AttributeError" and inside == "__getattr__")
        if name in BUILTIN_ERRORS and not protocol:
            self.found.append((node.lineno, name))


def _bare_builtin_raises(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    raises = _Raises()
    raises.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    where = path.relative_to(root)
    return [f"{where}:{line} raise {name}" for line, name in sorted(raises.found)]


def test_no_module_raises_a_bare_builtin_exception() -> None:
    offenders = [
        hit for path in sorted(PACKAGE.rglob("*.py")) for hit in _bare_builtin_raises(path)
    ]
    assert offenders == [], (
        "raise a class from xraykit.exceptions instead (ArgumentError for a bad value, "
        "ArgumentTypeError for a wrong type, NotFoundError for something missing): "
        + ", ".join(offenders)
    )


def test_the_walker_sees_a_bare_raise(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f(x):\n    if x:\n        raise ValueError('no')\n    raise KeyError\n"
        "def __getattr__(name):\n    raise AttributeError(name)\n"
    )
    hits = _bare_builtin_raises(sample, tmp_path)
    assert hits == ["sample.py:3 raise ValueError", "sample.py:4 raise KeyError"]


def test_every_error_class_is_an_xraykit_error_and_a_builtin() -> None:
    classes = [
        value
        for value in vars(exceptions).values()
        if isinstance(value, type)
        and issubclass(value, Exception)
        and value.__module__ == exceptions.__name__
    ]
    assert len(classes) >= 10
    for cls in classes:
        if issubclass(cls, Warning):
            continue
        assert issubclass(cls, exceptions.XrayKitError), cls
        if cls is not exceptions.XrayKitError:
            builtin = [b for b in inspect.getmro(cls) if b.__module__ == "builtins"]
            assert builtin[0] is not Exception, f"{cls.__name__} derives from no specific builtin"


@pytest.mark.parametrize(
    ("call", "builtin"),
    [
        (lambda ts: xraykit.load_file("/nonexistent/traces.jsonl"), FileNotFoundError),
        (lambda ts: xraykit.load_file(12), TypeError),
        (lambda ts: xraykit.load_file("x", max_bytes=-1), ValueError),
        (lambda ts: xraykit.load_sample("no-such-sample"), LookupError),
        (lambda ts: xraykit.from_documents(None), TypeError),
        (lambda ts: ts.document("0000000000000000"), LookupError),
        (lambda ts: ts.query("responsetime >"), ValueError),
        (lambda ts: xraykit.concat([ts, "x"]), TypeError),
        (lambda ts: xraykit.TraceSet({"nope": pd.DataFrame()}), ValueError),
        (lambda ts: xraykit.service_graph(ts.traces), TypeError),
        (lambda ts: xraykit.root_causes(ts, "nope"), ValueError),
        (lambda ts: xraykit.sla(ts, -1), ValueError),
        (lambda ts: xraykit.load_rules({"version": 2, "rules": "x"}), ValueError),
    ],
    ids=lambda value: "" if callable(value) else value.__name__,
)
def test_public_functions_raise_the_tree(shop: xraykit.TraceSet, call, builtin) -> None:
    with pytest.raises(builtin) as caught:
        call(shop)
    assert isinstance(caught.value, xraykit.XrayKitError), type(caught.value)
    assert str(caught.value), "an error without a message"
