"""Athena DDL for a dataset: one ``CREATE EXTERNAL TABLE`` per frame.

Column types come from the frames' Arrow schemas (:func:`xraykit.partitions.layout.arrow_schema`):
text ``string``, times ``timestamp``, integers ``bigint``, floats ``double``, flags
``boolean``. The partitions (``date``, ``account``) are ``string`` columns, found by
partition projection (dates from a start day to now; accounts from the dataset's folders
when it is local, else given in the query), or, with ``projection=False``, loaded with
``MSCK REPAIR TABLE``.

>>> print(athena_ddl("s3://bucket/xray", frames=["problems"]))  # doctest: +ELLIPSIS
CREATE EXTERNAL TABLE IF NOT EXISTS `xray`.`xray_problems` (
  `source` string,
  `location` string,
  `reason` string
)
PARTITIONED BY (`date` string, `account` string)
STORED AS PARQUET
LOCATION 's3://bucket/xray/problems/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  ...
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from xraykit.exceptions import ArgumentError, ArgumentTypeError
from xraykit.partitions.layout import PARTITION_KEYS, STORED, arrow_schema, read_manifest

__all__ = ["athena_ddl"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _athena_type(kind: pa.DataType) -> str:
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "string"
    if pa.types.is_timestamp(kind):
        return "timestamp"
    if pa.types.is_integer(kind):
        return "bigint"
    if pa.types.is_floating(kind):
        return "double"
    if pa.types.is_boolean(kind):
        return "boolean"
    raise ArgumentError(f"No Athena type for the Arrow type {kind}.")  # pragma: no cover


def _accounts(root: Path) -> list[str]:
    folder = root / "traces"
    if not folder.is_dir():
        return []
    found = {p.name.split("=", 1)[1] for p in folder.rglob("account=*") if p.is_dir()}
    return sorted(found)


def athena_ddl(
    path_or_s3_uri: str | os.PathLike[str],
    *,
    database: str = "xray",
    table_prefix: str = "xray_",
    frames: Sequence[str] | None = None,
    partition_by: Sequence[str] | None = None,
    projection: bool = True,
    first_date: str = "2024-01-01",
) -> str:
    """Athena ``CREATE EXTERNAL TABLE`` statements for the frames of a dataset.

    Parameters
    ----------
    path_or_s3_uri : str or Path
        ``s3://bucket/prefix`` where the dataset was copied (``aws s3 sync``), or its local
        folder (its partitions and accounts are read from there; the LOCATION then names the
        local path: replace it with the S3 one).
    database, table_prefix : str
        Tables are ``database.<table_prefix><frame>``.
    frames : sequence of str, optional
        The frames (default: every stored frame).
    partition_by : sequence of str, optional
        The partition columns (default: the local dataset's, else ``("date", "account")``).
    projection : bool
        Partition projection (no partitions to load); False adds ``MSCK REPAIR TABLE``.
    first_date : str
        The first day the date projection covers (``yyyy-MM-dd``).

    Returns
    -------
    str
        The statements, separated by blank lines.
    """
    if not isinstance(path_or_s3_uri, str | os.PathLike):
        raise ArgumentTypeError(
            f"`path_or_s3_uri` must be an s3:// URI or a path, but {path_or_s3_uri!r} was passed."
        )
    for name, value in (("database", database), ("table_prefix", table_prefix)):
        if not isinstance(value, str) or (value and not _NAME.fullmatch(value)):
            raise ArgumentError(
                f"`{name}` must be letters, digits and underscores, but {value!r} was passed."
            )
    location = str(path_or_s3_uri).rstrip("/")
    accounts: list[str] = []
    if not location.startswith("s3://"):
        root = Path(location)
        manifest = read_manifest(root)
        if partition_by is None and manifest is not None:
            partition_by = manifest.get("partition_by")
        accounts = _accounts(root)
    keys = tuple(PARTITION_KEYS if partition_by is None else partition_by)
    chosen = list(STORED if frames is None else frames)
    unknown = [f for f in chosen if f not in STORED]
    if unknown:
        raise ArgumentError(f"`frames` must be among {list(STORED)}, but {unknown!r} was passed.")
    statements = []
    for frame in chosen:
        table = f"`{database}`.`{table_prefix}{frame}`"
        columns = ",\n".join(
            f"  `{field.name}` {_athena_type(field.type)}" for field in arrow_schema(frame)
        )
        lines = [f"CREATE EXTERNAL TABLE IF NOT EXISTS {table} (\n{columns}\n)"]
        if keys:
            lines.append("PARTITIONED BY (" + ", ".join(f"`{k}` string" for k in keys) + ")")
        lines += ["STORED AS PARQUET", f"LOCATION '{location}/{frame}/'"]
        if keys and projection:
            props = ["'projection.enabled' = 'true'"]
            if "date" in keys:
                props += [
                    "'projection.date.type' = 'date'",
                    "'projection.date.format' = 'yyyy-MM-dd'",
                    f"'projection.date.range' = '{first_date},NOW'",
                    "'projection.date.interval' = '1'",
                    "'projection.date.interval.unit' = 'DAYS'",
                ]
            if "account" in keys:
                if accounts:
                    props += ["'projection.account.type' = 'enum'",
                              f"'projection.account.values' = '{','.join(accounts)}'"]  # fmt: skip
                else:
                    props.append("'projection.account.type' = 'injected'")
            template = "/".join(f"{k}=${{{k}}}" for k in keys)
            props.append(f"'storage.location.template' = '{location}/{frame}/{template}/'")
            lines.append("TBLPROPERTIES (\n  " + ",\n  ".join(props) + "\n)")
        statement = "\n".join(lines) + ";"
        if keys and not projection:
            statement += f"\n-- load the partitions (again after new ones are written):\nMSCK REPAIR TABLE {table};"
        statements.append(statement)
    return "\n\n".join(statements)
