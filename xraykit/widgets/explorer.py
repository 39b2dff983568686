"""The trace explorer: a filter-expression box, the matching traces, and one trace in detail.

:func:`explore` shows a text box for an X-Ray filter expression, checked as you type with the
messages of :mod:`xraykit.query` (a caret under the problem and how to fix it); the traces
that match as a table; a chooser; and for the chosen trace its timeline, its segment
documents, its annotations and its metadata. In an HTML export it shows the table and the
first trace's timeline. Every value that comes from a trace is escaped.

Examples
--------
>>> import xraykit
>>> ts = xraykit.load_sample("shop")
>>> explorer = explore(ts, expression="fault")
>>> len(explorer.matches) == len(ts.query("fault"))
True
>>> explorer.expression_box.value = "responsetime >"
>>> "Not valid" in explorer.message.value
True
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd

from xraykit.arguments import check_traceset
from xraykit.console import console_url
from xraykit.exceptions import ArgumentError, FilterExpressionError
from xraykit.plotting.timeline import plot_timeline
from xraykit.query import validate
from xraykit.status import flags, labels
from xraykit.widgets.view import FIT, WidgetView, figure_png, html_table, img_tag, ipywidgets

if TYPE_CHECKING:
    from xraykit.traceset import TraceSet

__all__ = ["TraceExplorer", "explore"]

_COLUMNS = [
    "trace_id",
    "start",
    "response_time_s",
    "outcome",
    "http_status",
    "http_method",
    "http_url",
    "root_service",
]
_MAX_CHOICES = 200
_MAX_DOCUMENT_CHARS = 20_000
_MAX_DOCUMENTS = 50


def _traces_table(ts: TraceSet) -> pd.DataFrame:
    traces = ts.traces
    outcome = labels(
        flags(
            traces["http_status"],
            fault=traces["has_fault"],
            error=traces["has_error"],
            throttle=traces["has_throttle"],
        )
    )
    return traces.assign(outcome=outcome)[_COLUMNS].sort_values("start", kind="stable")


def _pretty(text: str | None) -> str:
    if text is None:
        return "(this document could not be kept)"
    try:
        pretty = orjson.dumps(orjson.loads(text), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        pretty = text
    if len(pretty) > _MAX_DOCUMENT_CHARS:
        pretty = pretty[:_MAX_DOCUMENT_CHARS] + f"\n… ({len(pretty):,} characters in all)"
    return pretty


class TraceExplorer(WidgetView):
    """The widget :func:`explore` returns.

    Attributes
    ----------
    expression_box : ipywidgets.Text
        The filter expression; setting ``value`` filters as typing does.
    message : ipywidgets.HTML
        Whether the expression is valid, and how many traces match.
    table : ipywidgets.HTML
        The matching traces.
    chooser : ipywidgets.Dropdown
        The trace shown below (its ``value`` is a trace id).
    timeline : ipywidgets.Image
        The chosen trace's timeline (PNG).
    documents, annotations, metadata : ipywidgets.HTML
        The chosen trace's segment documents, annotations and metadata.
    matches : TraceSet
        The traces the last valid expression matched.
    """

    def __init__(
        self, ts: TraceSet, *, expression: str = "", region: str | None = None, limit: int = 20
    ) -> None:
        w = ipywidgets()
        self.ts = ts
        self.region = region
        self.limit = limit
        self.matches = ts
        fit = w.Layout(max_width="100%", width="auto")
        self.expression_box = w.Text(
            value="",
            description="filter",
            placeholder='e.g. service("orders") { fault } or annotation.tier = "gold"',
            continuous_update=True,
            layout=w.Layout(width="100%", max_width="100%"),
        )
        self.message = w.HTML(layout=fit)
        self.table = w.HTML(layout=fit)
        self.chooser = w.Dropdown(description="trace", options=[], layout=w.Layout(width="100%"))
        self.timeline = w.Image(format="png", layout=w.Layout(max_width="100%", height="auto"))
        self.timeline.add_class("xraykit-explorer-timeline")
        self.documents = w.HTML(layout=fit)
        self.annotations = w.HTML(layout=fit)
        self.metadata = w.HTML(layout=fit)
        self.link = w.HTML(layout=fit)
        tabs = w.Tab(
            children=[self.timeline, self.documents, self.annotations, self.metadata],
            layout=fit,
        )
        tabs.titles = ("Timeline", "Segment documents", "Annotations", "Metadata")
        self.widget = w.VBox(
            [self.expression_box, self.message, self.table, self.chooser, self.link, tabs],
            layout=w.Layout(max_width="100%"),
        )
        self.widget.add_class("xraykit-explorer")
        self.expression_box.observe(lambda change: self._filter(change["new"]), names="value")
        self._quiet = False
        self._shown: str | None = ""
        self.chooser.observe(self._on_choose, names="value")
        self.expression_box.value = expression
        if not expression:
            self._filter("")

    # -- filtering ---------------------------------------------------------------------------

    def _filter(self, expression: str) -> None:
        text = expression.strip()
        try:
            if text:
                validate(text)
                matches = self.ts.query(text)
            else:
                matches = self.ts
        except FilterExpressionError as exc:
            self.message.value = (
                "<div style='color:#d13212'><b>Not valid:</b>"
                f"<pre style='{FIT};white-space:pre'>{html.escape(str(exc))}</pre></div>"
            )
            return
        self.matches = matches
        what = f"match <code>{html.escape(text)}</code>" if text else "in all (no filter)"
        self.message.value = (
            f"<div style='color:#1d8102'>✓ {len(matches):,} of {len(self.ts):,} traces {what}</div>"
        )
        table = _traces_table(matches)
        self.table.value = html_table(table, limit=self.limit)
        choices = table["trace_id"].head(_MAX_CHOICES).tolist()
        labels_ = [
            f"{tid} · {row.response_time_s:.3f} s · {row.outcome}"
            for tid, row in zip(choices, table.head(_MAX_CHOICES).itertuples(), strict=True)
        ]
        previous = self.chooser.value
        wanted = previous if previous in choices else (choices[0] if choices else None)
        self._quiet = True  # the Dropdown picks a value of its own while its options change
        try:
            self.chooser.options = list(zip(labels_, choices, strict=True))
            self.chooser.value = wanted
        finally:
            self._quiet = False
        self._show_trace(wanted)

    # -- one trace ---------------------------------------------------------------------------

    @property
    def trace_id(self) -> str | None:
        """The chosen trace (None when nothing matches)."""
        value = self.chooser.value
        return str(value) if value else None

    def choose(self, trace_id: str) -> None:
        """Show one of the matching traces.

        Raises
        ------
        ArgumentError
            When the trace is not among the matching traces the chooser offers.
        """
        offered = [value for _, value in self.chooser.options]
        if trace_id not in offered:
            raise ArgumentError(
                f"`trace_id` must be one of the {len(offered)} matching traces offered, but "
                f"{trace_id!r} was passed. Change the filter expression to include it."
            )
        self.chooser.value = trace_id

    def _on_choose(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            self._show_trace(change["new"])

    def _show_trace(self, trace_id: str | None) -> None:
        if trace_id == self._shown:
            return
        self._shown = trace_id
        if not trace_id:
            self.timeline.value = b""
            for box in (self.documents, self.annotations, self.metadata, self.link):
                box.value = "<i>No trace matches.</i>" if box is not self.link else ""
            return
        one = self.ts.trace(trace_id)
        self.timeline.value = self._timeline_png(one, trace_id)
        texts = self.ts.document_store.trace_texts(trace_id)
        shown = "".join(
            f"<details><summary>document {n}</summary><pre style='{FIT};font-size:11px'>"
            f"{html.escape(_pretty(text))}</pre></details>"
            for n, text in enumerate(texts[:_MAX_DOCUMENTS], start=1)
        )
        if len(texts) > _MAX_DOCUMENTS:
            shown += (
                f"<p>… and {len(texts) - _MAX_DOCUMENTS:,} more documents: "
                f"<code>ts.document_store.trace_texts({html.escape(repr(trace_id))})</code></p>"
            )
        self.documents.value = shown or (
            "<i>The original documents were not kept with this TraceSet.</i>"
        )
        annotations = one.annotations[["entity_id", "key", "value", "value_type"]]
        metadata = one.metadata[["entity_id", "namespace", "key", "value"]]
        self.annotations.value = (
            html_table(annotations) if len(annotations) else "<i>No annotations.</i>"
        )
        self.metadata.value = html_table(metadata) if len(metadata) else "<i>No metadata.</i>"
        self.link.value = ""
        if self.region:
            url = console_url(trace_id=trace_id, region=self.region)
            self.link.value = (
                f"<a href='{html.escape(url)}' target='_blank' rel='noopener'>"
                "Open this trace in the CloudWatch console</a>"
            )

    @staticmethod
    def _timeline_png(one: TraceSet, trace_id: str) -> bytes:
        count = int(one.traces[["segment_count", "subsegment_count"]].sum(axis=1).iloc[0])
        height = min(12.0, 1.5 + 0.28 * count)
        return figure_png(lambda ax: plot_timeline(one, trace_id, ax=ax), height=height)

    # -- display -----------------------------------------------------------------------------

    def __repr__(self) -> str:
        text = self.expression_box.value
        return f"<TraceExplorer: {len(self.matches)} of {len(self.ts)} traces match {text!r}>"

    def _static_html(self) -> str:
        parts = [
            "<div class='xraykit-explorer' style='max-width:100%'>",
            f"<p><b>Trace explorer</b> — filter: <code>{html.escape(self.expression_box.value)}"
            "</code></p>",
            self.message.value,
            self.table.value,
        ]
        if self.trace_id is not None and self.timeline.value:
            parts.append(img_tag(bytes(self.timeline.value), f"timeline of {self.trace_id}"))
            if self.annotations.value:
                parts.append(
                    f"<details><summary>Annotations of {html.escape(self.trace_id)}</summary>"
                    f"{self.annotations.value}</details>"
                )
        parts.append(
            "<p style='color:#777;font-size:11px'>Run the notebook to filter and choose "
            "traces interactively.</p></div>"
        )
        return "".join(parts)


def explore(
    ts: TraceSet, *, expression: str = "", region: str | None = None, limit: int = 20
) -> TraceExplorer:
    """Explore traces: a filter-expression box, the matching traces, and one trace in detail.

    Parameters
    ----------
    ts : TraceSet
        The traces; not modified.
    expression : str
        The filter expression to start with (empty: every trace).
    region : str, optional
        The AWS region the traces came from (``ts.region`` by default, which
        ``xraykit.fetch`` sets): adds a link to the chosen trace in the console.
    limit : int
        Rows of the matching-traces table.

    Returns
    -------
    TraceExplorer
        Displays itself in Jupyter.

    Raises
    ------
    MissingDependencyError
        Without ipywidgets (``pip install "xraykit[widgets]"``).
    """
    check_traceset(ts, "ts")
    if region is None:
        region = getattr(ts, "region", None)
    if region is not None:
        console_url(region=region, service_map=True)  # ArgumentError for an unknown region
    if not isinstance(expression, str):
        raise ArgumentError(f"`expression` must be text, but {expression!r} was passed.")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ArgumentError(f"`limit` must be an integer >= 1, but {limit!r} was passed.")
    explorer = TraceExplorer(ts, expression=expression, region=region, limit=limit)
    explorer.show_now()
    return explorer
