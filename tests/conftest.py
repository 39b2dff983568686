"""Shared fixtures: data paths, a loaded sample, seeded randomness, closed figures."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pytest

import xraykit

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data_dir() -> Path:
    """The folder of small named edge-case files."""
    return DATA


@pytest.fixture(scope="session")
def shop() -> xraykit.TraceSet:
    """The default sample, loaded once per session (TraceSets are never mutated)."""
    return xraykit.load_sample("shop")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261126)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
