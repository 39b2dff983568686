"""Shared fixtures: data paths, a loaded sample, seeded randomness, closed figures, OTLP/JSON
of the OpenTelemetry SDK's spans."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pytest
from hypothesis import settings

import xraykit

# CI runs the same property examples every time (a red build must be reproducible);
# a developer's runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data_dir() -> Path:
    """The folder of small named edge-case files."""
    return DATA


@pytest.fixture(scope="session")
def shop() -> xraykit.TraceSet:
    """The default sample, loaded once per session (TraceSets are never mutated)."""
    return xraykit.load_sample("shop")


@pytest.fixture(scope="session")
def three() -> xraykit.TraceSet:
    """Three hand-made traces: a fault chain, throttled retries and a slow SQL query."""
    return xraykit.concat(
        [
            xraykit.load_file(DATA / f"analysis_{name}.json")
            for name in ("fault_chain", "throttled_retries", "slow_sql")
        ]
    )


@pytest.fixture(scope="session")
def otlp_json() -> Callable[[Any], dict[str, Any]]:
    """Turns an ``ExportTraceServiceRequest`` (say, the SDK's ``encode_spans``) into
    OTLP/JSON: protobuf's own JSON mapping, but ids in hex as OTLP/JSON writes them (the
    mapping gives base64)."""
    import base64

    from google.protobuf import json_format

    def convert(message: Any) -> dict[str, Any]:
        value = json_format.MessageToDict(message)
        for resource_spans in value.get("resourceSpans", []):
            for scope in resource_spans.get("scopeSpans", []):
                for span in scope.get("spans", []):
                    for item in (span, *span.get("links", [])):
                        for key in ("traceId", "spanId", "parentSpanId"):
                            if key in item:
                                item[key] = base64.b64decode(item[key]).hex()
        return dict(value)

    return convert


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261126)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(scope="session", autouse=True)
def _close_sdk_socket():
    """Importing aws_xray_sdk (the SDK tests, or moto's X-Ray module) opens a UDP socket."""
    yield
    import sys

    if "aws_xray_sdk.core" in sys.modules:
        emitter = sys.modules["aws_xray_sdk.core"].xray_recorder._emitter
        sock = getattr(emitter, "_socket", None)
        if sock is not None:
            sock.close()
