"""Per-service percentiles of a dataset with Dask: the same numbers on a cluster.

:func:`percentiles_dask` reads the stored request rows (``requests_<level>``) with
``dask.dataframe.read_parquet`` and computes each group's count, mean and exact percentiles
(linear interpolation, as pandas), one group per task after a shuffle: the result equals
``open_dataset(path).percentiles(level=...)`` and :func:`xraykit.analysis.percentiles`.
Dask and distributed are the ``dask`` extra.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xraykit.analysis.requests import LEVELS
from xraykit.arguments import check_choice
from xraykit.exceptions import require
from xraykit.partitions.layout import require_dataset

__all__ = ["percentiles_dask"]

_MISSING = "\x00missing"
_KEYS = {"trace": [], "service": ["service", "service_type"], "edge": ["edge"]}


def _summary(group: pd.DataFrame, percentiles: Sequence[float]) -> pd.DataFrame:
    latency = group["latency_s"].astype("float64")
    row: dict[str, Any] = {"count": len(group), "mean_s": latency.mean()}
    for p in percentiles:
        row[f"p{p:g}_s"] = latency.quantile(p / 100) if latency.notna().any() else np.nan
    return pd.DataFrame([row])


def percentiles_dask(
    path: str | os.PathLike[str] | Path,
    client: Any = None,
    *,
    level: str = "service",
    percentiles: Sequence[float] = (50, 90, 99),
) -> pd.DataFrame:
    """Latency percentiles and counts per service (or edge) of a dataset, computed by Dask.

    Parameters
    ----------
    path : str or Path
        The dataset's folder.
    client : distributed.Client, optional
        Where to compute (default: Dask's current scheduler).
    level : {"service", "edge", "trace"}
    percentiles : sequence of float

    Returns
    -------
    DataFrame
        As :func:`xraykit.analysis.percentiles` with ``by=None``.
    """
    check_choice("level", level, LEVELS)
    dd: Any = require("dask.dataframe", "dask")
    root, _ = require_dataset(path)
    keys = _KEYS[level]
    folder = root / f"requests_{level}"
    columns = [*keys, "latency_s"]
    if not folder.is_dir() or next(folder.rglob("*.parquet"), None) is None:
        frame = pd.DataFrame({c: pd.Series(dtype="str") for c in keys})
        return frame.assign(count=pd.Series(dtype="int64"), mean_s=pd.Series(dtype="float64"))
    ddf = dd.read_parquet(str(folder), columns=columns, engine="pyarrow")
    group_on = keys or ["_all"]
    if keys:
        ddf = ddf.assign(**{k: ddf[k].astype(object).fillna(_MISSING) for k in keys})
    else:
        ddf = ddf.assign(_all=0)
    meta = pd.DataFrame(
        {"count": pd.Series(dtype="int64"), "mean_s": pd.Series(dtype="float64"),
         **{f"p{p:g}_s": pd.Series(dtype="float64") for p in percentiles}}
    )  # fmt: skip
    result = ddf.groupby(group_on).apply(_summary, list(percentiles), meta=meta)
    frame = client.compute(result).result() if client is not None else result.compute()
    frame = frame.reset_index(level=list(range(len(group_on))))
    frame = frame.reset_index(drop=True)
    if keys:
        for k in keys:
            frame[k] = frame[k].where(frame[k] != _MISSING, None).astype("str")
        frame = frame.sort_values(keys, na_position="last", kind="stable")
    else:
        frame = frame.drop(columns="_all")
    frame["count"] = frame["count"].astype("int64")
    return frame.reset_index(drop=True)
