"""The shipped samples and their loader."""

from __future__ import annotations

import pytest

import xraykit
from xraykit.exceptions import SampleNotFoundError


def test_sample_names_lists_the_shipped_samples():
    names = xraykit.sample_names()
    assert names == sorted(names)
    assert {"shop", "lambda-cold-starts", "cross-account", "sdk-capture"} <= set(names)


@pytest.mark.parametrize("name", xraykit.sample_names())
def test_every_sample_loads_without_problems(name):
    ts = xraykit.load_sample(name)
    assert len(ts) > 0
    assert ts.problems.empty, ts.problems.head().to_string()


def test_unknown_sample_lists_the_names():
    with pytest.raises(SampleNotFoundError) as info:
        xraykit.load_sample("shopp")
    message = str(info.value)
    assert "'shopp'" in message
    for name in xraykit.sample_names():
        assert name in message


def test_loaded_samples_are_independent_copies():
    a = xraykit.load_sample("shop")
    a.traces["extra"] = 1
    a.segments.loc[0, "name"] = "changed"
    b = xraykit.load_sample("shop")
    assert "extra" not in b.traces
    assert b.segments.loc[0, "name"] != "changed"


def test_sdk_capture_is_real_sdk_output():
    ts = xraykit.load_sample("sdk-capture")
    assert ts.subsegments.streamed.any()  # the SDK streamed subsegments on its own
    assert ts.segments.sdk.str.startswith("X-Ray for Python").all()
    assert ts.segments.cause_id.notna().any()  # a bare-string cause


def test_editing_a_metadata_value_does_not_edit_the_next_load():
    a = xraykit.load_sample("shop")
    i = next(j for j, v in enumerate(a.metadata.value) if isinstance(v, dict))
    a.metadata.value.iloc[i]["poisoned"] = True
    assert "poisoned" not in xraykit.load_sample("shop").metadata.value.iloc[i]
