"""The on-disk cache of pulled data, per account and region: the summaries of settled
queries (Parquet) and every complete trace pulled (saved TraceSets with a Parquet index),
each file written atomically; never credentials. ``docs/aws.md`` describes the layout.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import platformdirs

from xraykit.partitions.layout import write_atomically
from xraykit.traceset import TraceSet, concat, load_file

if TYPE_CHECKING:
    from xraykit.aws.pull import Query

__all__ = ["SETTLED_AFTER"]

#: A window that ended longer ago than this is settled: its summaries are cached.
SETTLED_AFTER = timedelta(minutes=15)


def _cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get("XRAYKIT_CACHE_DIR"):
        return Path(os.environ["XRAYKIT_CACHE_DIR"])
    return Path(platformdirs.user_cache_dir("xraykit"))


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", part) or "_"


class _Cache:
    """Summaries per settled query and complete traces, for one account and region."""

    def __init__(self, root: Path, account: str, region: str) -> None:
        self.folder = root / "xray" / _safe(account) / _safe(region or "default")
        self.traces_dir = self.folder / "traces"
        self.queries_dir = self.folder / "summaries"
        self._index_path = self.traces_dir / "index.parquet"

    def index(self) -> pd.DataFrame:
        if self._index_path.exists():
            return pd.read_parquet(self._index_path)
        return pd.DataFrame({"trace_id": pd.Series(dtype="str"), "part": pd.Series(dtype="str")})

    def traces(self, trace_ids: Iterable[str]) -> TraceSet | None:
        """The cached traces among ``trace_ids`` (None when there are none)."""
        index = self.index()
        hits = index[index["trace_id"].isin(pd.Index(list(trace_ids)))]
        if hits.empty:
            return None
        parts = []
        for part, rows in hits.groupby("part", sort=True):
            path = self.traces_dir / str(part)
            if path.exists():
                parts.append(load_file(path).select(rows["trace_id"]))
        if not parts:
            return None
        found = concat(parts)
        found.problems = found.problems.iloc[0:0]  # problems of old pulls are not this pull's
        return found

    def add_traces(self, ts: TraceSet) -> None:
        """Store the complete traces of ``ts`` (in-progress ones change, so are not kept)."""
        complete = ts.traces.loc[~ts.traces["is_partial"], "trace_id"]
        if complete.empty:
            return
        self.traces_dir.mkdir(parents=True, exist_ok=True)
        part = f"part-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.traceset"
        chosen = ts.select(complete)
        bare = TraceSet(
            {**chosen.frames, "documents": chosen.document_store, "problems": None},
        )
        write_atomically(self.traces_dir / part, bare.save)
        index = pd.concat(
            [self.index(), pd.DataFrame({"trace_id": complete.astype("str"), "part": part})],
            ignore_index=True,
        ).drop_duplicates("trace_id", keep="last")
        write_atomically(self._index_path, lambda p: index.to_parquet(p, index=False))

    def _query_paths(self, query: Query) -> tuple[Path, Path]:
        key = query.cache_key()
        return self.queries_dir / f"{key}.parquet", self.queries_dir / f"{key}.json"

    def summaries(self, query: Query) -> tuple[list[dict[str, Any]], int] | None:
        """The raw summaries and scanned count of a settled query, if cached."""
        data, meta = self._query_paths(query)
        if not (data.exists() and meta.exists()):
            return None
        info = json.loads(meta.read_text())
        frame = pd.read_parquet(data)
        records = [json.loads(text) for text in frame["summary"]]
        return records, int(info.get("traces_scanned", 0))

    def add_summaries(self, query: Query, summaries: list[dict[str, Any]], scanned: int) -> None:
        data, meta = self._query_paths(query)
        self.queries_dir.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame(
            {
                "trace_id": pd.Series([s.get("Id") for s in summaries], dtype="str"),
                "summary": pd.Series([json.dumps(_plain(s)) for s in summaries], dtype="str"),
            }
        )
        write_atomically(data, lambda p: frame.to_parquet(p, index=False))
        info = {
            "start": query.start.isoformat(),
            "end": query.end.isoformat(),
            "filter_expression": query.expression,
            "time_range_type": query.time_range_type,
            "max_traces": query.max_traces,
            "traces_scanned": scanned,
        }
        write_atomically(meta, lambda p: p.write_text(json.dumps(info, indent=1)))


def _plain(value: Any) -> Any:
    """A summary with datetimes turned into epoch seconds, for JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.timestamp()
    return value
