"""The readers' columns derive from xraykit.schema: checked declarations, one edit per column."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from xraykit.io import columns, formats, reader
from xraykit.schema import COLUMNS, SCHEMAS, Column

#: The JSON types a column of each dtype can be read from.
READS = {"str": "string", "bool": "boolean", "Int64": "integer", "datetime64[us, UTC]": "number"}


@pytest.mark.parametrize(
    "table", ["segments", "subsegments", "annotations", "metadata", "exceptions"]
)
def test_every_column_reads_a_declared_field_of_a_type_it_can_hold(table: str) -> None:
    declared = {name for name, c in COLUMNS[table].items() if c.source is not None}
    compiled = {c.name for c in columns.TABLES[table] if not c.name.startswith("_")}
    assert compiled == declared
    for column in columns.TABLES[table]:
        for field in column.fields:
            assert READS[SCHEMAS[table][column.name]] in field.types, (column.name, field.path)


def test_the_c_scanner_accepts_every_declared_column() -> None:
    if columns._scan is None:
        pytest.skip("the C fast path is not built here")
    assert set(columns._scan.TABLES) == set(columns.TABLES)
    for column in (c for cols in columns.TABLES.values() for c in cols if c.context):
        assert column.context in columns._scan.CONTEXTS
    columns.new_tables()  # checks each context against the column's kind


def _read(native: bool, lines: list[dict[str, Any]]) -> pd.DataFrame:
    doc_reader = reader.Reader(reader._Problems("t", "raise"), native=native)
    text = b"".join(json.dumps(v).encode() + b"\n" for v in lines)
    formats._read_lines(doc_reader, text, 0, len(text), 1, "t")
    return columns.to_frame("subsegments", doc_reader.tables.take()["subsegments"])


@pytest.mark.parametrize("native", [True, False], ids=["C scanner", "Python reader"])
def test_adding_a_column_is_one_declaration(native: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if native and columns._scan is None:
        pytest.skip("the C fast path is not built here")
    extended = {
        **COLUMNS,
        "subsegments": {
            **COLUMNS["subsegments"],
            "content_length": Column("float64", "http.response.content_length"),
            "environment": Column(
                "str", "aws.elastic_beanstalk.environment_name | aws.ecs.container"
            ),
        },
    }
    monkeypatch.setitem(
        columns.TABLES, "subsegments", columns.compile_tables(extended)["subsegments"]
    )
    child = {"name": "c", "id": "00000000000000c1", "start_time": 1.6e9, "end_time": 1.6e9 + 1}
    doc = {
        "name": "web",
        "id": "00000000000000a1",
        "trace_id": "1-5f84c7a1-6c7a8d2e9f0a1b2c3d4e5f60",
        "start_time": 1.6e9,
        "end_time": 1.6e9 + 2,
        "subsegments": [
            {
                **child,
                "http": {"response": {"content_length": 512}},
                "aws": {"ecs": {"container": "api"}},
            },
            {**child, "id": "00000000000000c2"},
        ],
    }
    frame = _read(native, [doc])
    assert frame["content_length"].tolist()[0] == 512.0 and pd.isna(frame["content_length"][1])
    assert frame["environment"].tolist()[0] == "api" and pd.isna(frame["environment"][1])
