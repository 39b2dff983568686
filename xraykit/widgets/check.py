"""Checking an exercise's answer: right or wrong with a hint, never the solution.

:func:`check` compares a learner's value with the expected one and returns a
:class:`CheckResult` that shows ✓ or ✗ (and, when wrong, the hint) in Jupyter. The result
keeps no trace of the expected value, so neither its HTML nor its repr can give it away;
solutions stay in the notebook's folded ``<details>`` cells. ``theme=`` records which exam
themes (xray-facts §10, 1-15) the exercise practises.

Examples
--------
>>> check(0.1 + 0.2, 0.3, theme=3).correct
True
>>> check(" Annotation ", "annotation", theme=1).correct
True
>>> check(["b", "a"], ["a", "b"], ordered=False, theme=12).correct
True
>>> result = check(49, 50, hint="Count every annotation key in the trace.", theme=1)
>>> result.correct, "50" in result._repr_html_()
(False, False)
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xraykit.exceptions import ArgumentError
from xraykit.widgets.quizzes import THEMES
from xraykit.widgets.view import ShownOnce, inline_code

__all__ = ["CheckResult", "check"]

_MAX_ITEMS = 1_000_000  # elements compared one by one; more is not an exercise answer


class _Mismatch(Exception):
    """Raised inside the comparison with a note that never quotes the expected value."""


@dataclass(eq=False)
class CheckResult(ShownOnce):
    """The verdict of :func:`check`: ``correct``, the ``hint`` and the ``themes`` practised.

    ``note`` says why a value could not match (a wrong type, a different length) without
    quoting the expected value. True in a boolean context when correct.
    """

    correct: bool
    hint: str = ""
    themes: tuple[int, ...] = ()
    note: str = ""

    def __bool__(self) -> bool:
        return self.correct

    def __repr__(self) -> str:
        return f"CheckResult(correct={self.correct})"

    def _repr_html_(self) -> str:
        if self.correct:
            return (
                "<div class='xraykit-check' style='color:#1d8102;font-weight:bold'>✓ Correct.</div>"
            )
        parts = ["<b>✗ Not yet.</b>"]
        if self.note:
            parts.append(html.escape(self.note))
        if self.hint:
            parts.append(f"Hint: {inline_code(self.hint)}")
        return "<div class='xraykit-check' style='color:#d13212'>" + " ".join(parts) + "</div>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        text = "✓ Correct." if self.correct else "✗ Not yet."
        if not self.correct and self.note:
            text += f" {self.note}"
        if not self.correct and self.hint:
            text += f" Hint: {self.hint}"
        return {"text/plain": text, "text/html": self._repr_html_()}


def _themes(theme: int | Sequence[int] | None) -> tuple[int, ...]:
    if theme is None:
        return ()
    values = [theme] if isinstance(theme, int) else list(theme)
    if not values or any(
        isinstance(t, bool) or not isinstance(t, int) or t not in THEMES for t in values
    ):
        raise ArgumentError(
            f"`theme` must be an exam theme number 1-15 or a list of them, but {theme!r} was "
            "passed (the numbers of xray-facts §10)."
        )
    return tuple(values)


def _kind(value: Any) -> str:
    return "a " + type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool | np.bool_)


def _as_items(value: Any) -> list[Any] | None:
    """A sequence's elements as a list (Series by values, frames by rows); None otherwise."""
    if isinstance(value, pd.DataFrame):
        return [list(row) for row in value.itertuples(index=False, name=None)]
    if isinstance(value, pd.Series | pd.Index | np.ndarray):
        return list(np.asarray(value, dtype=object).tolist())
    if isinstance(value, list | tuple):
        return list(value)
    return None


def _sort_key(value: Any) -> tuple[str, Any]:
    if _is_number(value):
        return ("0", float(value))
    if isinstance(value, str):
        return ("1", value.strip().casefold())
    return ("2", repr(value))


def _same(value: Any, expected: Any, tolerance: float | None, ordered: bool) -> None:
    """Raise :class:`_Mismatch` unless ``value`` matches ``expected``."""
    if expected is None or isinstance(expected, bool | np.bool_):
        if value is None and expected is None:
            return
        if isinstance(value, bool | np.bool_) and bool(value) == bool(expected):
            return
        raise _Mismatch("" if isinstance(value, bool | np.bool_) else f"{_kind(value)} was given.")
    if _is_number(expected):
        if not _is_number(value):
            raise _Mismatch(f"A number was expected, but {_kind(value)} was given.")
        _same_number(value, expected, tolerance)
        return
    if isinstance(expected, str):
        if not isinstance(value, str):
            raise _Mismatch(f"Text was expected, but {_kind(value)} was given.")
        if value.strip().casefold() != expected.strip().casefold():
            raise _Mismatch("")
        return
    if isinstance(expected, Set):
        if not isinstance(value, Set | list | tuple | pd.Series | pd.Index | np.ndarray):
            raise _Mismatch(f"A set of values was expected, but {_kind(value)} was given.")
        _same_items(list(set(_as_items(value) or value)), list(expected), tolerance, False)
        return
    if isinstance(expected, Mapping):
        if not isinstance(value, Mapping):
            raise _Mismatch(f"A dict was expected, but {_kind(value)} was given.")
        if set(value) != set(expected):
            raise _Mismatch("The keys differ from the ones expected.")
        for key in expected:
            _same(value[key], expected[key], tolerance, ordered)
        return
    if isinstance(expected, pd.DataFrame):
        if not isinstance(value, pd.DataFrame):
            raise _Mismatch(f"A DataFrame was expected, but {_kind(value)} was given.")
        if value.shape[1] != expected.shape[1]:
            raise _Mismatch(f"Your frame has {value.shape[1]} columns, not the number expected.")
    expected_items = _as_items(expected)
    if expected_items is None:  # anything else: equality
        try:
            equal = bool(value == expected)
        except (TypeError, ValueError):
            equal = False
        if not equal:
            raise _Mismatch("")
        return
    items = _as_items(value) if not isinstance(value, Set) else list(value)
    if items is None:
        raise _Mismatch(f"A sequence of values was expected, but {_kind(value)} was given.")
    _same_items(items, expected_items, tolerance, ordered)


def _same_items(
    items: list[Any], expected: list[Any], tolerance: float | None, ordered: bool
) -> None:
    if len(items) != len(expected):
        raise _Mismatch(f"Yours has {len(items)} items, not the number expected.")
    if len(items) > _MAX_ITEMS:
        raise _Mismatch(f"More than {_MAX_ITEMS:,} items: not an answer this can check.")
    if not ordered:
        items, expected = sorted(items, key=_sort_key), sorted(expected, key=_sort_key)
    for mine, theirs in zip(items, expected, strict=True):
        _same(mine, theirs, tolerance, True)


def _same_number(value: Any, expected: Any, tolerance: float | None) -> None:
    mine, theirs = complex(value), complex(expected)
    if mine.imag or theirs.imag:
        if mine != theirs:
            raise _Mismatch("")
        return
    a, b = float(value), float(expected)
    if math.isnan(a) and math.isnan(b):
        return
    if tolerance is not None:  # with a relative 1e-9 more: binary floats miss by a hair
        ok = abs(a - b) <= tolerance + 1e-9 * max(abs(a), abs(b))
    elif isinstance(value, numbers.Integral) and isinstance(expected, numbers.Integral):
        ok = int(value) == int(expected)
    else:
        ok = math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
    if not ok:
        raise _Mismatch("")


def check(
    value: Any,
    expected: Any,
    *,
    hint: str = "",
    theme: int | Sequence[int] | None = None,
    tolerance: float | None = None,
    ordered: bool = True,
) -> CheckResult:
    """Check an exercise's answer; show ✓ or ✗ and, when wrong, the hint — never ``expected``.

    Parameters
    ----------
    value
        The learner's answer.
    expected
        The solution (computed in the notebook, not shown).
    hint : str
        Shown when the answer is wrong; ```code``` spans show as code.
    theme : int or list of int
        The exam themes (xray-facts §10, 1-15) the exercise practises.
    tolerance : float, optional
        Absolute tolerance for numbers. Default: exact for integers, a relative 1e-9 for
        floats.
    ordered : bool
        Compare sequences (lists, tuples, arrays, Series, frame rows) in order; False
        compares them as multisets. Sets always compare as sets.

    Returns
    -------
    CheckResult
        Displays itself in Jupyter (once, even when it is also the cell's value).

    Notes
    -----
    Strings compare stripped and case-insensitive; a Series by its values (not its index);
    a DataFrame by its rows' values (same number of columns; names and index are not
    compared); dicts key by key; booleans exactly.
    """
    if tolerance is not None and (
        isinstance(tolerance, bool) or not _is_number(tolerance) or not tolerance >= 0
    ):
        raise ArgumentError(f"`tolerance` must be a number >= 0, but {tolerance!r} was passed.")
    themes = _themes(theme)
    try:
        _same(value, expected, tolerance, ordered)
        result = CheckResult(True, hint, themes)
    except _Mismatch as mismatch:
        result = CheckResult(False, hint, themes, str(mismatch))
    result.show_now()
    return result
