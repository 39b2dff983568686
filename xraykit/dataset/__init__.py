"""Partitioned Parquet datasets of traces, queried out of core with DuckDB."""
