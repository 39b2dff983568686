"""Partitioned Parquet datasets of traces, queried out of core with DuckDB.

A dataset is what ``ts.save(path, partition_by=...)`` and ``xraykit.fetch(..., to=path)``
write: Hive-style partitioned Parquet (by date and account), one folder per frame, which
DuckDB, Dask, Spark and Athena all read. The layout and the writer live in
:mod:`xraykit.partitions` (below the TraceSet, which saves through them); this package reads.
Modules, in data-flow order:

- ``read``: DuckDB views over the files, frames back as a TraceSet;
- ``sql``: filter expressions pushed down as SQL;
- ``aggregate``: grouped percentiles and sums with the in-memory arithmetic;
- ``latency``: percentiles, SLA and comparison as SQL;
- ``servicegraph``: the service graph's statistics as SQL;
- ``handle``: :func:`open_dataset` and the lazy :class:`Dataset`;
- ``dask``: per-service percentiles on a Dask cluster;
- ``athena``: Athena DDL for the dataset's tables.
"""

from __future__ import annotations

from xraykit.dataset.athena import athena_ddl
from xraykit.dataset.dask import percentiles_dask
from xraykit.dataset.handle import Dataset, open_dataset
from xraykit.partitions.layout import PARTITION_KEYS, STORED
from xraykit.partitions.write import DatasetWriter, save_dataset

__all__ = [
    "PARTITION_KEYS",
    "STORED",
    "Dataset",
    "DatasetWriter",
    "athena_ddl",
    "open_dataset",
    "percentiles_dask",
    "save_dataset",
]
