"""The service graph's statistics as SQL over a dataset's stored graph rows.

:func:`service_graph_sql` aggregates ``graph_nodes`` and ``graph_edges`` (the rows of
:func:`xraykit.graph.graph_frames`, stored when written) into the ``nodes`` and ``edges``
of a :class:`~xraykit.graph.ServiceGraph`, with the rules of
:func:`xraykit.graph.service_graph`: a row without an end counts as in progress only; a fault
outranks an error, a throttle is an error; exact percentiles by linear interpolation
(``quantile_cont``); histograms of response times rounded to two significant digits (half to
even, as numpy rounds).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from xraykit.dataset.aggregate import grouped_sql
from xraykit.graph import ServiceGraph
from xraykit.graph.columns import CLIENT, EDGE_COLUMNS, NODE_COLUMNS

__all__ = ["service_graph_sql"]

_FLAGS = """
    ("end" IS NOT NULL) AS done,
    (COALESCE(fault, FALSE) AND "end" IS NOT NULL) AS f,
    (COALESCE(throttle, FALSE) AND "end" IS NOT NULL) AS th0
"""


def _rows(view: str, where: str | None, value: str) -> str:
    filt = f" WHERE trace_id IN (SELECT trace_id FROM traces t WHERE {where})" if where else ""
    return (
        f"SELECT *, CASE WHEN done THEN {value} END AS v, "
        "((COALESCE(error, FALSE) OR th0) AND NOT f AND done) AS e "
        f"FROM (SELECT *, {_FLAGS} FROM {view}{filt})"
    )


def _stats_sql(keys: list[str], rows: str, extra: Sequence[str] = ()) -> str:
    aggregates = [
        *extra,
        "COUNT(*) FILTER (WHERE done AND NOT (f OR e)) AS ok_count",
        "COUNT(*) FILTER (WHERE e) AS error_count",
        "COUNT(*) FILTER (WHERE th0 AND e) AS throttle_count",
        "COUNT(*) FILTER (WHERE f) AS fault_count",
        "COUNT(*) FILTER (WHERE done) AS total_count",
        "COUNT(*) FILTER (WHERE NOT done) AS in_progress_count",
        "sum(_v ORDER BY _v) AS total_response_time_s",
        "COUNT(_v) AS _values",
        'MIN("start") AS "start"',
        'MAX("end") AS "end"',
    ]
    names = [f"p{p}_response_time_s" for p in (50, 90, 99)]
    return grouped_sql(rows, keys, "v", [0.5, 0.9, 0.99], aggregates, names)


def _histograms(con: Any, keys: list[str], rows: str) -> dict[tuple[Any, ...], list[Any]]:
    bucket = (
        "CASE WHEN v > 0 THEN round_even(v * pow(10.0, 1 - floor(log10(v))), 0) / "
        "pow(10.0, 1 - floor(log10(v))) ELSE 0.0 END"
    )
    group = ", ".join(keys)
    frame = con.sql(
        f"SELECT {group}, {bucket} AS b, COUNT(*) AS n FROM ({rows}) WHERE v IS NOT NULL "
        f"GROUP BY {group}, b ORDER BY {group}, b"
    ).df()
    out: dict[tuple[Any, ...], list[Any]] = {}
    for row in frame.itertuples(index=False):
        key = tuple(getattr(row, k.strip('"')) for k in keys)
        out.setdefault(key, []).append((float(row.b), int(row.n)))
    return out


def _finish_stats(frame: pd.DataFrame) -> pd.DataFrame:
    values = frame.pop("_values").to_numpy()
    total_rt = frame["total_response_time_s"].to_numpy(dtype=float, na_value=np.nan)
    total = frame["total_count"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["mean_response_time_s"] = np.where(
            (values > 0) & (total > 0), total_rt / total, np.nan
        )
    for column in ("start", "end"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def _key_of(frame: pd.DataFrame, keys: list[str]) -> list[tuple[Any, ...]]:
    return list(zip(*(frame[k.strip('"')] for k in keys), strict=True))


def _order(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows sorted as the in-memory graph sorts its groups (keys joined, missing as text)."""
    joined = [
        "\x1f".join("\x00" if pd.isna(v) else str(v) for v in key) for key in _key_of(frame, keys)
    ]
    order = np.argsort(np.asarray(joined, dtype=object), kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def _typed(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    out = {}
    for column, dtype in columns.items():
        if column in frame:
            series = frame[column]
            out[column] = series if dtype == "object" else series.astype(dtype)
        else:
            out[column] = pd.Series(
                [None] * len(frame), dtype=dtype if dtype != "object" else object
            )
    return pd.DataFrame(out).reset_index(drop=True)


def service_graph_sql(
    con: Any, where: str | None, span: tuple[pd.Timestamp, pd.Timestamp] | None
) -> ServiceGraph:
    """The service graph of the dataset's traces (``where``: a condition on ``traces t``)."""
    node_rows = _rows("graph_nodes", where, "response_time_s")
    nodes = con.sql(
        _stats_sql(
            ["node_id"],
            node_rows,
            [
                "MIN(name) AS name",
                "MIN(type) AS type",
                "MIN(account_id) AS account_id",
                "BOOL_OR(COALESCE(root, FALSE)) AS root",
                "BOOL_AND(COALESCE(inferred, FALSE)) AS inferred",
            ],
        )
    ).df()
    nodes = _order(_finish_stats(nodes), ["node_id"])
    hist = _histograms(con, ["node_id"], node_rows)
    nodes["response_time_histogram"] = [hist.get(k, []) for k in _key_of(nodes, ["node_id"])]

    keys = ["source", "target", "edge_type"]
    edge_rows = _rows("graph_edges", where, "response_time_s")
    edges = _order(_finish_stats(con.sql(_stats_sql(keys, edge_rows)).df()), keys)
    hist = _histograms(con, keys, edge_rows)
    edges["response_time_histogram"] = [hist.get(k, []) for k in _key_of(edges, keys)]
    age_rows = _rows("graph_edges", where, "event_age_s") + " WHERE edge_type = 'link'"
    ages = con.sql(
        f"SELECT source, target, edge_type, sum(v ORDER BY v) AS s, COUNT(v) AS n, "
        f"COUNT(*) FILTER (WHERE done) AS d FROM ({age_rows}) GROUP BY ALL"
    ).df()
    age_hist = _histograms(con, keys, age_rows)
    mean_age = {
        (r.source, r.target, r.edge_type): (r.s / r.d if r.n > 0 and r.d > 0 else np.nan)
        for r in ages.itertuples(index=False)
    }
    edge_keys = _key_of(edges, keys)
    edges["mean_event_age_s"] = [mean_age.get(k, np.nan) for k in edge_keys]
    edges["event_age_histogram"] = [age_hist.get(k, []) for k in edge_keys]

    if (edges["source"] == CLIENT).any():
        client: dict[str, Any] = {c: 0 for c in nodes.columns if c.endswith("_count")}
        client.update(node_id=CLIENT, name=CLIENT, type="client", account_id="", root=False,
                      inferred=False, total_response_time_s=0.0, response_time_histogram=[])  # fmt: skip
        first = pd.DataFrame([client])
        nodes = pd.concat([first, nodes], ignore_index=True)
    nodes["reference_id"] = np.arange(len(nodes), dtype=np.int64)
    start, end = span if span else (None, None)
    return ServiceGraph(
        _typed(nodes, NODE_COLUMNS), _typed(edges, EDGE_COLUMNS), start=start, end=end,
        origin="traces", ts=None,
    )  # fmt: skip
