"""The package surface: exports, lazy imports, the error tree."""

from __future__ import annotations

import subprocess
import sys

import pytest

import xraykit
from xraykit import exceptions


def test_all_lists_exactly_the_public_names():
    assert len(xraykit.__all__) == len(set(xraykit.__all__))  # ruff (RUF022) keeps it sorted
    assert set(xraykit.__all__) == set(xraykit._EXPORTS)
    for name in xraykit.__all__:
        assert getattr(xraykit, name) is not None, name


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = xraykit.nope  # type: ignore[attr-defined]


def test_import_is_light():
    code = (
        "import sys, xraykit; xraykit.load_sample; "
        "heavy = [m for m in ('boto3', 'botocore', 'ipywidgets', 'matplotlib.pyplot', 'lark') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_loading_and_analysing_never_imports_the_aws_or_plotting_layers():
    code = (
        "import sys, xraykit; ts = xraykit.load_sample('shop'); xraykit.service_graph(ts); "
        "xraykit.percentiles(ts); "
        "print(','.join(m for m in ('xraykit.aws', 'xraykit.local', 'xraykit.plotting', 'boto3', 'matplotlib') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (exceptions.TraceParseError, ValueError),
        (exceptions.FilterExpressionError, ValueError),
        (exceptions.SampleNotFoundError, LookupError),
        (exceptions.SamplingRuleError, ValueError),
        (exceptions.LiveAccessError, RuntimeError),
        (exceptions.MissingDependencyError, ImportError),
    ],
)
def test_errors_are_xraykit_errors_and_builtins(error, builtin):
    assert issubclass(error, exceptions.XrayKitError)
    assert issubclass(error, builtin)


def test_missing_dependency_names_the_extra():
    with pytest.raises(exceptions.MissingDependencyError, match=r'pip install "xraykit\[aws\]"'):
        exceptions.require("surely_not_installed_module_xyz", "aws")
