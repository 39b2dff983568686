"""TraceSet: X-Ray traces as pandas DataFrames.

A :class:`TraceSet` holds seven frames whose columns and dtypes are declared once in
:mod:`xraykit.schema` (and listed in ``TraceSet``'s docstring):

``traces``
    one row per trace, with ``GetTraceSummaries`` semantics: duration from the first start
    to the last end; response time, ``has_fault`` and ``has_error`` from the root segment;
    ``has_throttle`` when any entity in the trace was throttled (429).
``segments``
    one row per segment document, inferred segments included (flag ``inferred``).
``subsegments``
    one row per subsegment at any depth (``segment_id`` is the owning segment, ``parent_id``
    the enclosing entity, ``depth`` 1 directly under the segment).
``annotations`` / ``metadata``
    long frames, one row per key; annotation values keep their type, metadata its JSON value.
``exceptions``
    one row per exception recorded in any ``cause``.
``problems``
    what could not be read (``source``, ``location``, ``reason``); never silently empty.

Every source (samples, files, live pulls) ends in the same parser
(:mod:`xraykit.io.reader`), so nothing downstream knows where the data came from.

Examples
--------
>>> import xraykit
>>> ts = xraykit.load_sample("shop")
>>> one = ts.trace(ts.traces.trace_id[0])
>>> len(one)
1
>>> root = one.document(one.traces.root_segment_id[0])
>>> root["trace_id"] == one.traces.trace_id[0]
True
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import IO, Any, BinaryIO, TypeVar

import orjson
import pandas as pd

from xraykit import query as _query
from xraykit.console import trace_urls
from xraykit.exceptions import ArgumentError, ArgumentTypeError, NotFoundError, XrayKitWarning
from xraykit.io import formats as _formats
from xraykit.io import saved as _saved
from xraykit.io import source as _source
from xraykit.io.docstore import DocumentStore
from xraykit.io.reader import OnError
from xraykit.partitions.write import save_dataset
from xraykit.schema import FRAMES, SCHEMAS, conform, empty_frame

__all__ = ["TraceSet", "concat", "from_documents", "from_otlp", "from_responses", "load_file"]

T = TypeVar("T")


class TraceSet:
    """X-Ray traces as DataFrames: ``traces``, ``segments``, ``subsegments``,
    ``annotations``, ``metadata``, ``exceptions`` and ``problems``.

    Build one with :func:`load_file`, :func:`from_documents`, :func:`xraykit.load_sample`
    or ``xraykit.fetch``; the constructor is for frames that already follow the schema.
    ``len(ts)`` is the number of traces. Methods never modify the TraceSet they are
    called on; they return a new one.

    Columns (dtypes in :data:`xraykit.schema.SCHEMAS`):

    - traces: ``trace_id, start, end, duration_s, response_time_s, root_segment_id,
      root_service, root_origin, http_method, http_url, http_status, client_ip, user_agent,
      has_fault, has_error, has_throttle, is_partial, user, segment_count,
      subsegment_count, service_count``
    - segments: ``trace_id, segment_id, parent_id, name, origin, inferred, start, end,
      duration_s, in_progress, http_method, http_url, http_status, http_user_agent,
      http_client_ip, fault, error, throttle, user, account_id, resource_arn,
      availability_zone, instance_id, sdk, service_version, cause_id``
    - subsegments: ``trace_id, segment_id, subsegment_id, parent_id, depth, name,
      namespace, start, end, duration_s, in_progress, http_method, http_url, http_status,
      fault, error, throttle, traced, aws_operation, aws_region, aws_account_id,
      aws_request_id, table_name, queue_url, function_name, topic_arn, sql_url,
      sql_database_type, sql_sanitized_query, sql_user, streamed, orphan, cause_id``
    - annotations: ``trace_id, entity_id, key, value, value_type``
    - metadata: ``trace_id, entity_id, namespace, key, value``
    - exceptions: ``trace_id, entity_id, exception_id, type, message, remote, cause,
      truncated, skipped, stack_depth, top_frame``
    - problems: ``source, location, reason``

    Attributes
    ----------
    summaries : DataFrame or None
        ``GetTraceSummaries`` rows when the traces came from a live pull.
    cost : object or None
        The cost estimate of a live pull.
    region : str or None
        The AWS region the traces came from (set by ``xraykit.fetch``); with it,
        :meth:`console_links` and the HTML display link each trace to the CloudWatch console.
    """

    traces: pd.DataFrame
    segments: pd.DataFrame
    subsegments: pd.DataFrame
    annotations: pd.DataFrame
    metadata: pd.DataFrame
    exceptions: pd.DataFrame
    problems: pd.DataFrame
    _documents: DocumentStore

    def __init__(
        self,
        frames: Mapping[str, pd.DataFrame | DocumentStore | None] | None = None,
        *,
        summaries: pd.DataFrame | None = None,
        cost: Any = None,
        region: str | None = None,
    ) -> None:
        frames = frames or {}
        unknown = set(frames) - set(SCHEMAS)
        if unknown:
            raise ArgumentError(
                f"frames must be among {sorted(SCHEMAS)}, but {sorted(unknown)!r} was passed."
            )
        for name in FRAMES:
            frame = frames.get(name)
            setattr(self, name, empty_frame(name) if frame is None else conform(frame, name))
        # the original documents are kept compressed: a frame (or None) becomes a store
        docs = frames.get("documents")
        if not isinstance(docs, DocumentStore):
            docs = DocumentStore() if docs is None else DocumentStore.from_frame(docs)
        self._documents = docs
        self.summaries = summaries
        self.cost = cost
        self.region = region

    # -- basics ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.traces)

    @property
    def frames(self) -> dict[str, pd.DataFrame]:
        """The seven public frames by name."""
        return {name: getattr(self, name) for name in FRAMES}

    @property
    def document_store(self) -> DocumentStore:
        """The original segment documents, compressed, with their trace and entity ids."""
        return self._documents

    def pipe(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``func(self, *args, **kwargs)``: analyses chain left to right, as in pandas.

        Examples
        --------
        >>> import xraykit
        >>> ts = xraykit.load_sample("shop")
        >>> ts.query("fault").pipe(len) == len(ts.query("fault"))
        True
        """
        return func(self, *args, **kwargs)

    @property
    def raw_documents(self) -> pd.DataFrame:
        """The documents as received: ``trace_id, entity_id, in_progress, document`` (JSON text).

        One row per segment document, and per subsegment sent on its own; duplicates
        resolved as in the frames. :meth:`document` parses one of them. The TraceSet keeps
        the documents compressed: this frame is built (decompressed) on each access.
        """
        return self._documents.to_frame()

    @property
    def services(self) -> list[str]:
        """Names of the services (segment names, inferred ones included), sorted."""
        return sorted(self.segments["name"].dropna().unique().tolist())

    @property
    def time_span(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """First start and last end over all traces, or None when empty."""
        if self.traces.empty:
            return None
        first, last = self.traces["start"].min(), self.traces["end"].max()
        if pd.isna(last):  # every trace still in progress: nothing has ended yet
            last = self.traces["start"].max()
        return first, last

    def __repr__(self) -> str:
        counts = ", ".join(f"{len(getattr(self, n))} {n}" for n in FRAMES[:3])
        span = self.time_span
        when = f", {span[0]:%Y-%m-%d %H:%M:%S} to {span[1]:%H:%M:%S} UTC" if span else ""
        extra = f", {len(self.problems)} problems" if len(self.problems) else ""
        if self.traces["is_partial"].any():
            extra += f", {int(self.traces['is_partial'].sum())} in progress"
        return f"<TraceSet: {counts}{when}{extra}>"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td style='text-align:left'>{n}</td><td>{len(getattr(self, n)):,}</td></tr>"
            for n in FRAMES
        )
        span = self.time_span
        when = (
            f"{span[0]:%Y-%m-%d %H:%M:%S} → {span[1]:%Y-%m-%d %H:%M:%S} UTC "
            f"({(span[1] - span[0]).total_seconds() / 60:.0f} min)"
            if span
            else "empty"
        )
        services = ", ".join(html.escape(s) for s in self.services[:20])
        if len(self.services) > 20:
            services += f", … ({len(self.services)} in all)"
        note = (
            f"<p style='color:#b45309'>{len(self.problems)} problem(s): see <code>.problems</code></p>"
            if len(self.problems)
            else ""
        )
        links = ""
        if self.region and len(self.traces):
            rows = self.traces.sort_values("start").head(5)
            items = "".join(
                f"<li><a href='{html.escape(url)}' target='_blank' rel='noopener'>"
                f"{html.escape(tid)}</a></li>"
                for tid, url in zip(rows["trace_id"], self.console_links(rows), strict=True)
                if pd.notna(url)  # an id that is not an X-Ray trace id has no console page
            )
            links = (
                f"<p>First traces in the CloudWatch console ({html.escape(self.region)}; "
                f"all of them: <code>ts.console_links()</code>):</p><ul>{items}</ul>"
            )
        return (
            "<div><strong>TraceSet</strong>"
            f"<p>Time span: {when}<br>Services: {services or '—'}</p>"
            f"<table><tr><th style='text-align:left'>frame</th><th>rows</th></tr>{rows}</table>"
            f"{note}{links}</div>"
        )

    def console_links(self, traces: pd.DataFrame | None = None) -> pd.Series:
        """The CloudWatch console address of each trace, as a Series aligned with ``traces``
        (``ts.traces`` by default); needs :attr:`region` (set by ``xraykit.fetch``).

        >>> import xraykit
        >>> ts = xraykit.load_sample("shop")
        >>> ts.region = "us-east-1"
        >>> ts.console_links().iloc[0].split("#")[1][:13]
        'xray:traces/1'
        >>> ts.traces.assign(console=ts.console_links()).columns[-1]
        'console'
        """
        if not self.region:
            raise ArgumentError(
                "Console links need the traces' AWS region, but this TraceSet has none "
                "(only xraykit.fetch knows it). Set it first: ts.region = 'us-east-1'."
            )
        return trace_urls(self.traces if traces is None else traces, self.region)

    # -- selection ---------------------------------------------------------------------------

    def select(self, trace_ids: Iterable[str] | pd.Series) -> TraceSet:
        """Return the TraceSet of the given trace ids; every frame is filtered alike.

        Problems are kept whole: they belong to the load, not to a trace.

        >>> import xraykit
        >>> ts = xraykit.load_sample("shop")
        >>> len(ts.select(ts.traces.trace_id[:3]))
        3
        """
        wanted = pd.Index(pd.Series(list(trace_ids), dtype="str")).unique()
        frames: dict[str, pd.DataFrame | DocumentStore] = {
            name: getattr(self, name)[getattr(self, name)["trace_id"].isin(wanted)]
            for name in (
                "traces",
                "segments",
                "subsegments",
                "annotations",
                "metadata",
                "exceptions",
            )
        }
        frames["problems"] = self.problems
        frames["documents"] = self._documents.select_traces(wanted)
        summaries = self.summaries
        if summaries is not None and "trace_id" in summaries:
            summaries = summaries[summaries["trace_id"].isin(wanted)].reset_index(drop=True)
        return TraceSet(frames, summaries=summaries, cost=self.cost, region=self.region)

    def trace(self, trace_id: str) -> TraceSet:
        """Return the TraceSet of one trace.

        Raises
        ------
        NotFoundError
            When no trace has that id.
        """
        if not (self.traces["trace_id"] == trace_id).any():
            raise NotFoundError(
                f"No trace with id {trace_id!r} in this TraceSet of {len(self)} traces. "
                "Pick one from `ts.traces.trace_id`."
            )
        return self.select([trace_id])

    def document(self, entity_id: str) -> dict[str, Any]:
        """Return the original document (a dict) of a segment or subsegment.

        For a subsegment embedded in a segment, the subsegment's part of that segment's
        document is returned.

        Raises
        ------
        NotFoundError
            When no segment or subsegment has that id.
        """
        own = self._documents.entity_texts(entity_id)
        if own:
            return _parse_document(own[-1], entity_id)
        subs = self.subsegments
        hit = subs.loc[subs["subsegment_id"] == entity_id, "trace_id"]
        if hit.empty:
            raise NotFoundError(
                f"No segment or subsegment with id {entity_id!r}. Ids are in "
                "`ts.segments.segment_id` and `ts.subsegments.subsegment_id`."
            )
        for text in self._documents.trace_texts(hit.iloc[0]):
            found = _find_entity(_parse_document(text, entity_id), entity_id)
            if found is not None:
                return found
        raise NotFoundError(f"The document holding {entity_id!r} was not kept with this TraceSet.")

    def query(self, expression: str, *, groups: Mapping[str, str] | None = None) -> TraceSet:
        """Return the traces matching an X-Ray filter expression.

        The language and its semantics: :mod:`xraykit.query` and ``docs/filter-expressions.md``.

        >>> import xraykit
        >>> ts = xraykit.load_sample("shop")
        >>> slow = ts.query("responsetime > 1")
        >>> bool((slow.traces.response_time_s > 1).all())
        True
        """
        mask = _query.evaluate(self, expression, groups=groups)
        return self.select(self.traces.loc[mask.to_numpy(dtype=bool), "trace_id"])

    # -- persistence ---------------------------------------------------------------------------

    def save(
        self,
        path: str | Path,
        *,
        partition_by: str | Sequence[str] | None = None,
        documents: bool = True,
    ) -> Path:
        """Save every frame (and the original documents) to one file that opens fast, or, with
        ``partition_by``, as a partitioned Parquet dataset.

        ``xraykit.load_file(path)`` reads it back with nothing lost: dtypes, time zones,
        typed annotation values, metadata, the original documents and the summaries of a live
        pull. Only ``cost`` is not kept: it describes the pull, not the traces. The file is a
        zip of Arrow tables with the compressed documents as they are (see
        :mod:`xraykit.io.saved`); it is written beside ``path``, then renamed over it.

        >>> import tempfile, xraykit
        >>> ts = xraykit.load_sample("shop")
        >>> with tempfile.TemporaryDirectory() as d:
        ...     back = xraykit.load_file(ts.save(f"{d}/shop.traceset"))
        >>> back.traces.equals(ts.traces)
        True

        With ``partition_by`` (``"date"``, ``"account"`` or both), ``path`` is a folder of
        Hive-style partitioned Parquet files, one folder per frame (the layout of
        ``xraykit.fetch(..., to=path)``; see :mod:`xraykit.dataset`), which
        ``xraykit.open_dataset(path)``, DuckDB, Dask, Spark and Athena read. A trace's
        ``date`` is the UTC day of its start, its ``account`` the ``aws.account_id`` of its
        root segment (else of another of its segments, else ``unknown``). Into a new or
        empty folder, or added to a dataset with the same partitions. ``documents=False``
        leaves the original documents out. ``summaries`` and ``cost`` are not kept.
        """
        if partition_by is not None:
            return save_dataset(self, path, partition_by=partition_by, documents=documents)
        return _saved.write_saved(path, self.frames, self._documents, self.summaries)


def _parse_document(text: Any, entity_id: str) -> dict[str, Any]:
    if not isinstance(text, str):
        raise NotFoundError(
            f"The original document of {entity_id!r} could not be kept when it was loaded."
        )
    value = orjson.loads(text)
    if not isinstance(value, dict):  # pragma: no cover - only dicts are stored
        raise NotFoundError(f"The stored document of {entity_id!r} is not an object.")
    return value


def _find_entity(doc: dict[str, Any], entity_id: str) -> dict[str, Any] | None:
    stack = [doc]
    while stack:
        entity = stack.pop()
        if entity.get("id") == entity_id:
            return entity
        children = entity.get("subsegments")
        if isinstance(children, list):
            stack.extend(c for c in children if isinstance(c, dict))
    return None


def _load_saved(path: str | Path | IO[bytes]) -> TraceSet:
    saved = _saved.read_saved(path)
    return TraceSet({**saved.frames, "documents": saved.documents}, summaries=saved.summaries)


# -- construction -------------------------------------------------------------------------------


def _from_frames(
    frames: Mapping[str, pd.DataFrame | DocumentStore | None],
    on_error: OnError,
    stacklevel: int = 3,
) -> TraceSet:
    ts = TraceSet(frames)
    if len(ts.problems) and on_error == "warn":
        warnings.warn(_formats.summarise(ts.problems), XrayKitWarning, stacklevel=stacklevel)
    return ts


def load_file(
    source: str | bytes | PathLike[str] | BinaryIO,
    *,
    on_error: OnError = "warn",
    max_bytes: int | None = _source.MAX_BYTES,
    max_line_bytes: int | None = _source.MAX_LINE_BYTES,
) -> TraceSet:
    """Load a trace file of any supported format, detected from its content.

    Formats: a ``BatchGetTraces`` response (one JSON object, or one per line), one trace per
    line (``{"Id": ..., "Segments": [...]}``), a JSON array or JSON lines of segment
    documents, a daemon capture (header line, then the document, per packet), OpenTelemetry
    spans (OTLP/JSON, or the collector file exporter's protobuf and zstd files), gzip, zstd
    or UTF-16 of any of these, and a file written by :meth:`TraceSet.save`.

    Parameters
    ----------
    source : str, bytes, Path or binary file
        The file to read: its path (any name the system allows; the name does not matter, the
        bytes decide the format), or a file opened in binary mode, read once as a stream
        (pipes and standard input too: ``load_file(sys.stdin.buffer)``). A path must name a
        regular file; open a pipe or a device yourself to read from it.
    on_error : {"warn", "raise", "ignore"}
        What to do with records that cannot be read. ``"warn"`` (default) keeps every
        valid document, lists the others in ``problems`` and emits one
        :class:`~xraykit.exceptions.XrayKitWarning`; ``"raise"`` raises
        :class:`~xraykit.exceptions.TraceParseError` at the first one, naming file and
        line; ``"ignore"`` only fills ``problems``.
    max_bytes : int or None
        The most bytes read (after decompression), 8 GiB by default; what lies beyond is
        reported in ``problems``. None reads everything.
    max_line_bytes : int or None
        The longest line kept, 64 MiB by default (X-Ray's own responses stay under a few MB
        a line); a longer one is skipped without being held in memory and reported.

    Returns
    -------
    TraceSet

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ArgumentTypeError
        When ``source`` is neither a path nor a binary file.
    TraceParseError
        When a path names a directory, a pipe or a device, or a saved TraceSet is damaged;
        with ``on_error="raise"``, at the first record that cannot be read.

    Examples
    --------
    >>> import gzip, json, tempfile, xraykit
    >>> doc = {"name": "web", "id": "70de5b6f19ff9a0a", "start_time": 1478293361.271,
    ...        "trace_id": "1-581cf771-a006649127e371903a2de979", "end_time": 1478293361.449}
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with gzip.open(f"{d}/capture.bin", "wt") as f:
    ...         _ = f.write('{"format":"json","version":1}\\n' + json.dumps(doc) + "\\n")
    ...     ts = xraykit.load_file(f"{d}/capture.bin")
    >>> ts.traces[["root_service", "response_time_s"]].values.tolist()
    [['web', 0.178]]
    """
    with _source.open_source(source, max_bytes=max_bytes, max_line_bytes=max_line_bytes) as src:
        if src.kind == "saved":
            return _load_saved(src.as_file())
        frames = _formats.read_source(src, on_error=on_error)
    return _from_frames(frames, on_error)


def from_documents(
    documents: Iterable[dict[str, Any] | str | bytes],
    *,
    source: str = "<documents>",
    on_error: OnError = "warn",
) -> TraceSet:
    """Build a TraceSet from segment documents given as dicts or JSON strings.

    Items may also be ``BatchGetTraces`` responses or lists of documents. Subsegments sent
    on their own are stitched under their parents; duplicates are resolved.

    Examples
    --------
    >>> import xraykit
    >>> ts = xraykit.from_documents([
    ...     '{"name": "web", "id": "70de5b6f19ff9a0a", "trace_id": "1-581cf771-a006649127e371903a2de979",'
    ...     ' "start_time": 1478293361.271, "end_time": 1478293361.449, "http": {"response": {"status": 503}},'
    ...     ' "fault": true}'])
    >>> ts.traces[["has_fault", "http_status"]].values.tolist()
    [[True, 503]]
    """
    return _from_frames(
        _formats.frames_from_documents(documents, source=source, on_error=on_error), on_error
    )


def from_otlp(
    value: Any,
    *,
    source: str = "<otlp>",
    on_error: OnError = "warn",
    indexed_attributes: Iterable[str] = (),
    index_all_attributes: bool = False,
    validate_trace_ids: bool = True,
) -> TraceSet:
    """Build a TraceSet from OpenTelemetry spans: a decoded OTLP/JSON export request
    (``{"resourceSpans": [...]}``), a span object (Transaction Search's OTEL format), or a
    list of them. Spans become segment documents by the ADOT collector's X-Ray exporter rules
    (listed in :mod:`xraykit.io.otlp_translate`); ``indexed_attributes`` /
    ``index_all_attributes`` are the exporter's settings of those names, and
    ``validate_trace_ids=False`` keeps spans whose trace id is not an X-Ray id.

    >>> import xraykit
    >>> ts = xraykit.from_otlp({"resourceSpans": [{
    ...     "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
    ...     "scopeSpans": [{"spans": [{"traceId": "5759e988bd862e3fe1be46a994272793",
    ...         "spanId": "53995c3f42cd8ad8", "name": "GET /", "kind": 2,
    ...         "startTimeUnixNano": "1465575560000000000",
    ...         "endTimeUnixNano": "1465575560250000000"}]}]}]})
    >>> ts.traces[["root_service", "response_time_s"]].values.tolist()
    [['web', 0.25]]
    """
    frames = _formats.frames_from_otlp(
        value,
        source=source,
        on_error=on_error,
        indexed_attributes=indexed_attributes,
        index_all_attributes=index_all_attributes,
        validate_trace_ids=validate_trace_ids,
    )
    return _from_frames(frames, on_error)


def from_responses(
    responses: Iterable[dict[str, Any]],
    *,
    source: str = "BatchGetTraces",
    on_error: OnError = "warn",
) -> TraceSet:
    """Build a TraceSet from ``BatchGetTraces`` response dicts (as boto3 returns them)."""
    return _from_frames(
        _formats.frames_from_responses(responses, source=source, on_error=on_error), on_error
    )


def concat(tracesets: Sequence[TraceSet]) -> TraceSet:
    """Combine TraceSets into one.

    A trace present in several inputs is taken whole from the last one that has it (a later
    pull of the same trace is at least as complete). Problems are all kept, and the cost
    estimates of live pulls are added up.

    >>> import xraykit
    >>> ts = xraykit.load_sample("shop")
    >>> a, b = ts.select(ts.traces.trace_id[:5]), ts.select(ts.traces.trace_id[3:8])
    >>> len(xraykit.concat([a, b]))
    8
    """
    tracesets = list(tracesets)
    if not all(isinstance(t, TraceSet) for t in tracesets):
        kinds = sorted({type(t).__name__ for t in tracesets})
        raise ArgumentTypeError(f"concat() takes a list of TraceSets, but got {kinds}.")
    if not tracesets:
        return TraceSet()
    later: set[str] = set()
    parts: list[TraceSet] = []
    for ts in reversed(tracesets):
        ids = ts.traces["trace_id"]
        keep = ts if not later else ts.select(ids[~ids.isin(later)])
        parts.append(keep)
        later.update(ids)
    parts.reverse()
    frames: dict[str, pd.DataFrame | DocumentStore] = {}
    for name in FRAMES:
        pieces = [getattr(p, name) for p in parts]
        if name == "problems":
            pieces = [t.problems for t in tracesets]
        frame = pd.concat(pieces, ignore_index=True)
        if name == "traces":
            frame = frame.sort_values(["start", "trace_id"], kind="stable")
        frames[name] = frame
    frames["documents"] = DocumentStore.concat(p._documents for p in parts)
    summaries = [p.summaries for p in parts if p.summaries is not None]
    costs = [t.cost for t in tracesets if t.cost is not None]
    try:  # live cost estimates add up; anything else is dropped rather than guessed at
        cost = sum(costs[1:], costs[0]) if costs else None
    except TypeError:
        cost = None
    regions = {t.region for t in tracesets}
    return TraceSet(
        frames,
        summaries=pd.concat(summaries, ignore_index=True) if summaries else None,
        cost=cost,
        region=regions.pop() if len(regions) == 1 else None,
    )
