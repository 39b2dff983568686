"""Segment documents and BatchGetTraces responses, in the shape and key order X-Ray returns.

The building blocks every scenario uses: a trace's documents (:class:`TraceDocuments`),
segments, subsegments, inferred segments, exception objects, the flags of an HTTP status, and
the 5-trace batches of a response; plus the checks of the scenarios' common arguments.
``docs/sample-generator.md`` lists the modelling decisions and the sources that the
bracketed citations in comments (``[facts §2.2]``, ``[sdk]``) refer to.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from typing import Any

from xraykit.exceptions import ArgumentError, ArgumentTypeError
from xraykit.samples.generate.rng import Rng
from xraykit.status import flags

__all__ = [
    "BATCH",
    "DEFAULT_START",
    "REGION",
    "Doc",
    "TraceDocuments",
    "batch_responses",
    "check_count",
    "compact_json",
    "exception_doc",
    "inferred_segment",
    "segment",
    "start_epoch",
    "status_flags",
    "subsegment",
]

#: A segment document, subsegment or response as a dict.
Doc = dict[str, Any]

#: Start of each scenario unless ``start`` is given (a Tuesday; no wall clock is read).
DEFAULT_START = "2025-03-04T09:00:00+00:00"
REGION = "us-east-1"
BATCH = 5  # BatchGetTraces returns at most 5 traces per call [facts §2.2]


def start_epoch(start: datetime | str | float | None) -> float:
    """Return ``start`` as epoch seconds (a naive datetime or string is taken as UTC)."""
    if start is None:
        start = DEFAULT_START
    if isinstance(start, bool):
        raise ArgumentTypeError(
            f"`start` must be a datetime, an ISO 8601 string or epoch seconds, "
            f"but {start!r} was passed."
        )
    if isinstance(start, int | float):
        return float(start)
    if isinstance(start, str):
        try:
            start = datetime.fromisoformat(start)
        except ValueError:
            raise ArgumentError(
                f"`start` must be an ISO 8601 time such as '2025-03-04T09:00:00Z', but "
                f"{start!r} was passed."
            ) from None
    if isinstance(start, datetime):
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        return start.timestamp()
    raise ArgumentTypeError(
        f"`start` must be a datetime, an ISO 8601 string or epoch seconds, but {start!r} "
        f"was passed."
    )


def check_count(name: str, value: int) -> int:
    """Return ``value`` if it is a positive integer (a count of traces), else raise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ArgumentError(f"`{name}` must be a positive integer, but {value!r} was passed.")
    return value


def _t(x: float) -> float:
    return round(x, 6)


def status_flags(status: int) -> Doc:
    """Return the flags of an HTTP status as an SDK writes them: only the true ones.

    The rule is :func:`xraykit.status.flags`; 5xx is a fault, 429 an error and a throttle,
    other 4xx an error.

    >>> status_flags(429), status_flags(503), status_flags(200)
    ({'error': True, 'throttle': True}, {'fault': True}, {})
    """
    return dict.fromkeys(_true_flags(status), True)


@functools.lru_cache(maxsize=64)
def _true_flags(status: int) -> tuple[str, ...]:
    outcome = flags([status])
    return tuple(name for name in ("error", "throttle", "fault") if getattr(outcome, name)[0])


def compact_json(doc: Any) -> str:
    """JSON with no spaces, as X-Ray returns documents (non-ASCII kept as is)."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


class TraceDocuments:
    """The segment documents of one trace, collected while it is being built."""

    def __init__(self, trace_id: str) -> None:
        self.trace_id = trace_id
        self.docs: list[Doc] = []

    def add(self, doc: Doc) -> Doc:
        self.docs.append(doc)
        return doc

    def record(self) -> Doc:
        starts = [d["start_time"] for d in self.docs]
        ends = [d["end_time"] for d in self.docs]
        ordered = sorted(self.docs, key=lambda d: d["id"])
        return {
            "Id": self.trace_id,
            "Duration": round(max(ends) - min(starts), 3),
            "LimitExceeded": False,
            "Segments": [{"Id": d["id"], "Document": compact_json(d)} for d in ordered],
        }


def segment(
    rng: Rng, tr: TraceDocuments, name: str, start: float, end: float, **fields: Any
) -> Doc:
    """Start a segment document with X-Ray's leading keys; more keys follow in ``fields``."""
    doc: Doc = {
        "id": fields.pop("id", None) or rng.entity_id(),
        "name": name,
        "start_time": _t(start),
        "end_time": _t(end),
    }
    parent = fields.pop("parent_id", None)
    if parent:
        doc["parent_id"] = parent
    doc.update({k: v for k, v in fields.items() if k not in ("origin", "subsegments")})
    doc["trace_id"] = tr.trace_id
    if "origin" in fields:
        doc["origin"] = fields["origin"]
    if fields.get("subsegments"):
        doc["subsegments"] = fields["subsegments"]
    return tr.add(doc)


def subsegment(rng: Rng, name: str, start: float, end: float, **fields: Any) -> Doc:
    doc: Doc = {
        "id": fields.pop("id", None) or rng.entity_id(),
        "name": name,
        "start_time": _t(start),
        "end_time": _t(end),
    }
    doc.update({k: v for k, v in fields.items() if v is not None and v != []})
    return doc


def inferred_segment(rng: Rng, tr: TraceDocuments, sub: Doc, *, name: str, origin: str) -> Doc:
    """Add the inferred segment X-Ray makes from ``sub`` (docs/sample-generator.md says how)."""
    doc: Doc = {
        "id": rng.entity_id(),
        "name": name,
        "start_time": sub["start_time"],
        "end_time": sub["end_time"],
        "parent_id": sub["id"],
        "inferred": True,
    }
    for key in ("error", "throttle", "fault", "http", "aws", "sql"):
        if key in sub:
            doc[key] = sub[key]
    doc["trace_id"] = tr.trace_id
    doc["origin"] = origin
    return tr.add(doc)


def batch_responses(records: list[Doc]) -> list[Doc]:
    return [
        {"Traces": records[i : i + BATCH], "UnprocessedTraceIds": []}
        for i in range(0, len(records), BATCH)
    ]


def exception_doc(
    rng: Rng,
    etype: str,
    message: str,
    stack: list[tuple[str, int, str]],
    *,
    remote: bool = False,
    cause: str | None = None,
) -> Doc:
    exc: Doc = {"id": rng.entity_id(), "message": message, "type": etype}
    if remote:
        exc["remote"] = True
    if cause:
        exc["cause"] = cause
    exc["stack"] = [{"path": p, "line": ln, "label": lb} for p, ln, lb in stack]
    return exc
