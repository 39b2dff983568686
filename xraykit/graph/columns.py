"""The column contracts of the graph's frames, with dtypes, and the client node.

Node occurrences and edge calls (:func:`~xraykit.graph.node_segments`,
:func:`~xraykit.graph.edge_calls`), and a :class:`~xraykit.graph.ServiceGraph`'s ``nodes``
and ``edges``: every frame the package returns has exactly these columns, empty or not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CLIENT",
    "EDGE_CALL_COLUMNS",
    "EDGE_COLUMNS",
    "NODE_COLUMNS",
    "NODE_SEGMENT_COLUMNS",
]


#: The node id of the synthetic client node.
CLIENT = "client"

_TIME = "datetime64[us, UTC]"  # X-Ray records microseconds
_NAT = np.iinfo(np.int64).min  # NaT as int64 microseconds

#: Columns of :func:`node_segments`, with dtypes.
NODE_SEGMENT_COLUMNS: dict[str, str] = {
    "trace_id": "str",
    "entity_id": "str",
    "node_id": "str",
    "name": "str",
    "type": "str",
    "account_id": "str",
    "inferred": "bool",
    "derived": "bool",
    "root": "bool",
    "linked": "bool",
    "start": _TIME,
    "end": _TIME,
    "response_time_s": "float64",
    "http_status": "Int64",
    "ok": "bool",
    "error": "bool",
    "throttle": "bool",
    "fault": "bool",
}

#: Columns of :func:`edge_calls`, with dtypes.
EDGE_CALL_COLUMNS: dict[str, str] = {
    "trace_id": "str",
    "source": "str",
    "target": "str",
    "edge_type": "str",
    "entity_id": "str",
    "target_entity_id": "str",
    "linked_trace_id": "str",
    "start": _TIME,
    "end": _TIME,
    "response_time_s": "float64",
    "event_age_s": "float64",
    "http_status": "Int64",
    "ok": "bool",
    "error": "bool",
    "throttle": "bool",
    "fault": "bool",
}

_STAT_COLUMNS: dict[str, str] = {
    "ok_count": "int64",
    "error_count": "int64",
    "throttle_count": "int64",
    "fault_count": "int64",
    "total_count": "int64",
    "in_progress_count": "int64",
    "total_response_time_s": "float64",
    "mean_response_time_s": "float64",
    "p50_response_time_s": "float64",
    "p90_response_time_s": "float64",
    "p99_response_time_s": "float64",
    "response_time_histogram": "object",
    "start": _TIME,
    "end": _TIME,
}

#: Columns of :attr:`ServiceGraph.nodes`, with dtypes.
NODE_COLUMNS: dict[str, str] = {
    "node_id": "str",
    "reference_id": "int64",
    "name": "str",
    "type": "str",
    "account_id": "str",
    "root": "bool",
    "inferred": "bool",
    **_STAT_COLUMNS,
}

#: Columns of :attr:`ServiceGraph.edges`, with dtypes.
EDGE_COLUMNS: dict[str, str] = {
    "source": "str",
    "target": "str",
    "edge_type": "str",
    **_STAT_COLUMNS,
    "mean_event_age_s": "float64",
    "event_age_histogram": "object",
}

#: Origins of services that send their own segments; other node types in a


# xraykit.schema.empty_frame / conform take the name of a TraceSet frame only; these two do the
# same for the graph's own column sets (NODE_COLUMNS, EDGE_COLUMNS, ...).
def _empty(columns: Mapping[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})


def _conform(frame: pd.DataFrame, columns: Mapping[str, str]) -> pd.DataFrame:
    out: dict[str, pd.Series] = {}
    for col, dtype in columns.items():
        if col in frame:
            s = frame[col]
            out[col] = s if str(s.dtype) == dtype else s.astype(dtype)
        elif dtype == "bool":
            out[col] = pd.Series(False, index=frame.index, dtype=bool)
        else:
            out[col] = pd.Series(None, index=frame.index, dtype=dtype)
    return pd.DataFrame(out, index=frame.index).reset_index(drop=True)


def _client_node() -> dict[str, Any]:
    return {
        "node_id": CLIENT,
        "name": CLIENT,
        "type": "client",
        "account_id": "",
        "root": False,
        "inferred": False,
        "ok_count": 0,
        "error_count": 0,
        "throttle_count": 0,
        "fault_count": 0,
        "total_count": 0,
        "in_progress_count": 0,
        "total_response_time_s": 0.0,
        "response_time_histogram": [],
    }
