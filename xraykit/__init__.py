"""xraykit: learn and explore AWS X-Ray in Jupyter.

Traces from shipped samples, files, or a real AWS account become pandas DataFrames
(a :class:`TraceSet`); service maps, latency charts, filter expressions and a sampling
simulator work on top of them, offline.

Public names are imported lazily, so ``import xraykit`` stays fast and never imports
boto3 or ipywidgets.

Examples
--------
>>> import xraykit
>>> ts = xraykit.load_sample("shop")
>>> len(ts) > 0
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # data model and loaders
    "TraceSet": "traceset",
    "concat": "traceset",
    "from_documents": "traceset",
    "load_file": "traceset",
    "load_sample": "samples",
    "sample_names": "samples",
    # errors
    "FilterExpressionError": "exceptions",
    "LiveAccessError": "exceptions",
    "MissingDependencyError": "exceptions",
    "SampleNotFoundError": "exceptions",
    "SamplingRuleError": "exceptions",
    "TraceParseError": "exceptions",
    "XrayKitError": "exceptions",
    "XrayKitWarning": "exceptions",
}

if TYPE_CHECKING:
    from xraykit.exceptions import (
        FilterExpressionError,
        LiveAccessError,
        MissingDependencyError,
        SampleNotFoundError,
        SamplingRuleError,
        TraceParseError,
        XrayKitError,
        XrayKitWarning,
    )
    from xraykit.samples import load_sample, sample_names
    from xraykit.traceset import TraceSet, concat, from_documents, load_file

__all__ = [
    "FilterExpressionError",
    "LiveAccessError",
    "MissingDependencyError",
    "SampleNotFoundError",
    "SamplingRuleError",
    "TraceParseError",
    "TraceSet",
    "XrayKitError",
    "XrayKitWarning",
    "concat",
    "from_documents",
    "load_file",
    "load_sample",
    "sample_names",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'xraykit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"xraykit.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
