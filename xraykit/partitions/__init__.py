"""The on-disk layout of a partitioned dataset and its writer, below the TraceSet.

``TraceSet.save(path, partition_by=...)`` and ``xraykit.fetch(..., to=path)`` write through
this package; :mod:`xraykit.dataset` reads what it wrote (DuckDB, Dask, Athena). It needs only
the frames and the rows the analyses compute, so it sits below :mod:`xraykit.traceset`.

- ``layout``: folders, partitions (date and account of each trace), Arrow schemas and the
  manifest;
- ``write``: :class:`~xraykit.partitions.write.DatasetWriter` and
  :func:`~xraykit.partitions.write.save_dataset`.
"""
