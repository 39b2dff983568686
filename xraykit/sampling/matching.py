"""Which sampling rule a request matches, as the X-Ray SDK decides it.

X-Ray wildcards (``*`` any run of characters, ``?`` exactly one, case ignored), the request
fields and their accepted spellings, and the vectorised first-match over a frame of requests.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xraykit.exceptions import ArgumentError

if TYPE_CHECKING:
    from xraykit.sampling.rules import SamplingRule


# request field -> the SamplingRule attribute that matches it (the SDK's order)
_MATCH_FIELDS: dict[str, str] = {
    "host": "host",
    "method": "http_method",
    "path": "url_path",
    "service": "service_name",
    "service_type": "service_type",
}
# accepted spellings of the request fields
_REQUEST_ALIASES: dict[str, str] = {
    "host": "host",
    "method": "method",
    "http_method": "method",
    "path": "path",
    "url_path": "path",
    "service": "service",
    "service_name": "service",
    "service_type": "service_type",
    "origin": "service_type",
}


@functools.lru_cache(maxsize=4096)
def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    """Compile an X-Ray wildcard pattern (``*`` any run, ``?`` one character)."""
    parts = (".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _request_fields(request: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, value in request.items():
        canonical = _REQUEST_ALIASES.get(key)
        if canonical is not None:
            fields[canonical] = value
        elif key not in {"upstream", "trace_header", "time", "instance"}:
            raise ArgumentError(
                f"Unknown request field {key!r}; a request has any of "
                f'{sorted(_MATCH_FIELDS)} plus \'upstream\' ("1", "0" or "?") or '
                "'trace_header' (an X-Amzn-Trace-Id value)."
            )
    return fields


def _match_frame(rules: Sequence[SamplingRule], frame: pd.DataFrame) -> np.ndarray:
    """Index (into ``rules``) of the first rule matching each row, vectorised."""
    n = len(frame)
    chosen = np.full(n, -1, dtype=np.int64)
    columns = {key: _frame_column(frame, key) for key in _MATCH_FIELDS}
    encoded: dict[str, tuple[np.ndarray, pd.Index]] = {}
    for key, column in columns.items():
        if column is not None:
            codes, uniques = pd.factorize(column, use_na_sentinel=True)
            encoded[key] = (codes, pd.Index(uniques))
    for index, rule in enumerate(rules):
        if not rule.sdk_supported:
            continue
        open_rows = chosen < 0
        if not open_rows.any():
            break
        mask = open_rows.copy()
        if not rule.is_default:
            for key, attribute in _MATCH_FIELDS.items():
                pattern = getattr(rule, attribute)
                if pattern == "*" or key not in encoded:
                    continue
                codes, uniques = encoded[key]
                regex = _wildcard_regex(pattern)
                hit = np.fromiter(
                    (value == "" or bool(regex.fullmatch(str(value))) for value in uniques),
                    dtype=bool,
                    count=len(uniques),
                )
                hit = np.append(hit, True)  # code -1 (missing) matches anything
                mask &= hit[codes]
        chosen[mask] = index
    return chosen


def _frame_column(frame: pd.DataFrame, key: str) -> pd.Series | None:
    for name, canonical in _REQUEST_ALIASES.items():
        if canonical == key and name in frame.columns:
            return frame[name]
    return None
