"""The trace timeline: one trace as the console's waterfall of segments and subsegments.

Rows follow the entity tree (:func:`xraykit.analysis.entities_frame`), bars are coloured by
outcome (:data:`xraykit.status.COLORS`), and the critical path is underlined.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xraykit.analysis import critical_path, entities_frame
from xraykit.arguments import check_traceset
from xraykit.plotting._common import _EPOCH, _axes, _format_s, _legend, _outcomes, _shorten
from xraykit.schema import isin
from xraykit.status import COLORS, STATUSES

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from xraykit.traceset import TraceSet

__all__ = ["plot_timeline"]


def _tree_order(ent: pd.DataFrame) -> pd.Series:
    """A sort key giving depth-first order (children by start time), built level by level."""
    levels = ent["depth"]
    order = pd.Series("", index=ent.index, dtype="object")
    for depth in range(int(levels.max()) + 1 if len(levels) else 0):
        at = ent.loc[levels == depth]
        rank = (
            at.sort_values(["start_s", "key"])
            .groupby(at["parent_key"].fillna(""), sort=False)
            .cumcount()
        )
        parent_order = at["parent_key"].map(pd.Series(order.to_numpy(), index=ent["key"]))
        order.loc[at.index] = parent_order.fillna("") + rank.reindex(at.index).map("{:06d}/".format)
    return order


def plot_timeline(
    ts: TraceSet,
    trace_id: str,
    *,
    critical: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Draw one trace as the console's timeline: a waterfall of segments and subsegments.

    Rows are in tree order (each entity under its parent, children by start time; a segment
    under the subsegment that called it), indented by depth, coloured by outcome, labelled with
    the duration. The critical path (see :func:`xraykit.analysis.critical_path`) is drawn as a
    black line under the part of each bar that was on it. Entities still in progress are
    drawn hatched up to the end of the trace.

    Parameters
    ----------
    ts : TraceSet
    trace_id : str
        A trace in ``ts``.
    critical : bool
        Mark the critical path.
    ax : matplotlib Axes, optional
        The height is not changed; for a tall trace make the figure taller.

    Returns
    -------
    matplotlib Axes
        One bar per entity (``ax.patches`` in row order, top row first) and, with
        ``critical``, a LineCollection labelled ``"critical path"``.

    When ``ts.region`` is known (a pull with ``xraykit.fetch``), the title and a small "open
    in console" label link to the trace in the CloudWatch console (in SVG and PDF output).

    Raises
    ------
    NotFoundError
        When ``trace_id`` is not in ``ts`` (as :meth:`TraceSet.trace`).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> import xraykit
    >>> from xraykit.plotting import plot_timeline
    >>> ts = xraykit.load_sample("shop")
    >>> one = ts.traces.trace_id.iloc[0]
    >>> fig, ax = plt.subplots()
    >>> ax = plot_timeline(ts, one, ax=ax)
    >>> counts = ts.trace(one).traces[["segment_count", "subsegment_count"]]
    >>> len(ax.patches) == int(counts.sum(axis=1).iloc[0])
    True
    >>> plt.close(fig)
    """
    check_traceset(ts)
    one = ts.trace(trace_id)  # NotFoundError for an unknown id
    ax = _axes(ax)
    everything = entities_frame(one)
    ent = everything.loc[~everything["key"].str.endswith("#inferred")].copy()
    t0 = float(np.nanmin(ent["start_s"])) if len(ent) else 0.0
    t_end = float(np.nanmax(ent[["start_s", "end_s"]].to_numpy())) if len(ent) else 0.0
    ent = ent.assign(_order=_tree_order(ent), _depth=ent["depth"])
    ent = ent.sort_values("_order", kind="stable").reset_index(drop=True)
    in_progress = ent["end_s"].isna()
    left = ent["start_s"] - t0
    width = ent["end_s"].fillna(t_end) - ent["start_s"]
    status = _outcomes(ent)
    rows = np.arange(len(ent))
    bars = ax.barh(
        rows,
        width,
        left=left,
        height=0.7,
        color=[COLORS[s] for s in status],
        edgecolor="none",
    )
    for bar, busy in zip(bars, in_progress, strict=True):
        if busy:
            bar.set_hatch("//")
    for row, (x, w, busy) in enumerate(zip(left, width, in_progress, strict=True)):
        ax.text(
            x + w,
            row,
            " " + ("in progress" if busy else _format_s(w)),
            va="center",
            ha="left",
            fontsize="small",
        )
    ax.set_yticks(rows)
    names = [
        ("   " * d) + _shorten(str(n)) for d, n in zip(ent["_depth"], ent["name"], strict=True)
    ]
    ax.set_yticklabels(names, fontsize="small")
    # left-aligned labels keep the indentation visible; pad by the longest label
    ax.tick_params(axis="y", pad=5.2 * max((len(n) for n in names), default=0))
    for label, is_segment in zip(ax.get_yticklabels(), ent["is_segment"], strict=True):
        label.set_horizontalalignment("left")
        if is_segment:
            label.set_fontweight("bold")
    if critical and len(ent):
        # an inferred downstream's part of the path is drawn on the call that reached it
        path = critical_path(one, trace_id)
        key = path["trace_id"] + "/" + path["entity_id"]
        row_of = pd.Series(rows, index=ent["key"].to_numpy())
        path = path.assign(
            key=key,
            left=(path["start"] - _EPOCH) / pd.Timedelta(1, "s") - t0,
            right=(path["end"] - _EPOCH) / pd.Timedelta(1, "s") - t0,
        )
        path = path.loc[isin(key, ent["key"]) & (path["end"] > path["start"])]
        path = path.drop_duplicates("key")
        y = path["key"].map(row_of).to_numpy(dtype="float64") + 0.42
        ax.hlines(
            y, path["left"], path["right"], colors="black", linewidth=2.5, label="critical path"
        )
    handles = [_legend_patch(COLORS[s], s) for s in STATUSES if (status == s).any()]
    if critical and len(ent):
        from matplotlib.lines import Line2D  # heavy and optional

        handles.append(Line2D([], [], color="black", linewidth=2.5, label="critical path"))
    _legend(ax, handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_ylim(max(len(ent), 1) - 0.5, -0.5)
    ax.set_xlim(0, max(t_end - t0, 1e-6) * 1.18)
    ax.set_xlabel("time since trace start (s)")
    title = ax.set_title(f"Trace {trace_id}")
    region = getattr(ts, "region", None)
    url = ts.console_links(ts.traces[ts.traces["trace_id"] == trace_id]).iloc[0] if region else None
    if url is not None and pd.notna(url):  # a pulled trace: title and label link to the console
        title.set_url(url)
        ax.text(1.0, 1.01, "open in console ↗", transform=ax.transAxes, ha="right",
                va="bottom", fontsize=8, color="#0073bb", url=url)  # fmt: skip
    return ax


def _legend_patch(color: str, label: str) -> Any:
    from matplotlib.patches import Patch  # heavy and optional

    return Patch(color=color, label=label)
