"""The errors xraykit raises.

Every error derives from :class:`XrayKitError` and also from the builtin a caller would
naturally catch, so ``except ValueError`` keeps working around a bad filter expression::

    XrayKitError(Exception)
    ├── ArgumentError(XrayKitError, ValueError)          an argument value a function cannot use
    │   ├── TraceParseError                              a document or file that cannot be read
    │   ├── FilterExpressionError                        with the position of the problem
    │   │   └── LiveFilterExpressionError                rejected before or by AWS (also a LiveAccessError)
    │   └── SamplingRuleError                            a rule X-Ray or the SDK would reject
    ├── ArgumentTypeError(XrayKitError, TypeError)       an argument of the wrong type
    ├── NotFoundError(XrayKitError, LookupError)         a trace, entity, node or name not there
    │   └── SampleNotFoundError                          lists sample_names()
    ├── TraceFileNotFoundError(XrayKitError, FileNotFoundError)
    ├── LiveAccessError(XrayKitError, RuntimeError)      credentials, IAM, region; says the fix
    └── MissingDependencyError(XrayKitError, ImportError) names the extra to install
    XrayKitWarning(UserWarning)

Messages say what was expected, what came in, and how to fix it.

Examples
--------
>>> from xraykit.exceptions import TraceParseError
>>> issubclass(TraceParseError, ValueError)
True
"""

from __future__ import annotations

import importlib

__all__ = [
    "ArgumentError",
    "ArgumentTypeError",
    "FilterExpressionError",
    "LiveAccessError",
    "LiveFilterExpressionError",
    "MissingDependencyError",
    "NotFoundError",
    "SampleNotFoundError",
    "SamplingRuleError",
    "TraceFileNotFoundError",
    "TraceParseError",
    "XrayKitError",
    "XrayKitWarning",
]


class XrayKitError(Exception):
    """Base class of every error xraykit raises."""


class ArgumentError(XrayKitError, ValueError):
    """An argument whose value the function cannot use; the message says which values can."""


class ArgumentTypeError(XrayKitError, TypeError):
    """An argument of the wrong type; the message says which type was expected."""


class NotFoundError(XrayKitError, LookupError):
    """A trace id, entity id, node, edge or name that is not in the data asked."""

    def __str__(self) -> str:  # LookupError would otherwise quote the message like a KeyError
        return str(self.args[0]) if self.args else ""


class TraceFileNotFoundError(XrayKitError, FileNotFoundError):
    """A trace file that does not exist."""


class TraceParseError(ArgumentError):
    """A segment document or trace file that cannot be read.

    ``source`` and ``location`` say where (a file and ``file:line``, or an entity id).
    """

    def __init__(self, message: str, *, source: str = "", location: str = "") -> None:
        super().__init__(message)
        self.source = source
        self.location = location


class FilterExpressionError(ArgumentError):
    """A filter expression that X-Ray would reject; ``position`` is the 0-based offset."""

    def __init__(self, message: str, *, expression: str = "", position: int | None = None) -> None:
        super().__init__(message)
        self.expression = expression
        self.position = position


class SampleNotFoundError(NotFoundError):
    """A sample name that is not shipped with xraykit."""


class SamplingRuleError(ArgumentError):
    """A sampling rule or rules file that X-Ray or the SDK would reject."""


class LiveAccessError(XrayKitError, RuntimeError):
    """AWS could not be reached or refused the call; the message says how to fix it."""


class LiveFilterExpressionError(LiveAccessError, FilterExpressionError):
    """A filter expression rejected before (or by) AWS.

    Both a :class:`~xraykit.exceptions.LiveAccessError` and a
    :class:`~xraykit.exceptions.FilterExpressionError`, so either ``except`` catches it.

    Examples
    --------
    >>> from xraykit.aws import fetch
    >>> try:  # checked offline: no credentials needed, no API call made
    ...     fetch(filter_expression="responsetime >", cache=False, progress=False)
    ... except FilterExpressionError as exc:
    ...     print(isinstance(exc, LiveFilterExpressionError), exc.expression)
    True responsetime >
    """


class MissingDependencyError(XrayKitError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class XrayKitWarning(UserWarning):
    """Something was skipped or guessed; the details are in ``TraceSet.problems``."""


def require(module: str, extra: str) -> object:
    """Import an optional dependency or raise :class:`MissingDependencyError`.

    >>> require("json", "aws").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module!r} is needed for this but is not installed. "
            f'Install it with: pip install "xraykit[{extra}]"'
        ) from exc
