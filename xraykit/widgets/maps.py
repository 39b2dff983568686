"""The map explorer: the service map around a focus service, as many hops out as you choose.

:func:`map_explorer` draws the service map (:func:`xraykit.graph.service_map`'s drawing) with
a dropdown of the services to focus on and a slider for the hops; the map is SVG scaled to the
notebook's width. In an HTML export it shows the map at the starting focus. Without
Graphviz's ``dot`` program it says how to install it.

Examples
--------
>>> import xraykit
>>> explorer = map_explorer(xraykit.load_sample("shop"), focus="shop-api/prod", hops=1)
>>> explorer.focus_dropdown.value
'shop-api/prod'
>>> "<svg" in explorer.map_box.value or "Graphviz" in explorer.map_box.value
True
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from xraykit.arguments import check_traceset
from xraykit.exceptions import ArgumentError, NotFoundError
from xraykit.graph import ServiceGraph, service_graph
from xraykit.graph.columns import CLIENT
from xraykit.graph.render import draw
from xraykit.graph.servicegraph import INSTALL_DOT
from xraykit.widgets.view import WidgetView, ipywidgets, svg_fit

if TYPE_CHECKING:
    from xraykit.traceset import TraceSet

__all__ = ["MapExplorer", "map_explorer"]

MAX_HOPS = 6
WHOLE_MAP = "(whole map)"


def _svg(graph: ServiceGraph, focus: str | None, hops: int) -> str:
    """The map as HTML (fitted SVG), or a message saying why it could not be drawn."""
    import graphviz

    digraph = draw(graph, focus=focus, hops=hops if focus is not None else None)
    try:
        svg = digraph.pipe(format="svg").decode("utf-8")
    except graphviz.ExecutableNotFound:
        return (
            "<p><b>The service map needs Graphviz's <code>dot</code> program</b>, which was not "
            f"found. Install it ({html.escape(INSTALL_DOT)}), then run the cell again.</p>"
        )
    except graphviz.CalledProcessError as exc:
        return f"<p>Graphviz's <code>dot</code> could not draw the map: {html.escape(str(exc))}</p>"
    return svg_fit(svg)


class MapExplorer(WidgetView):
    """The widget :func:`map_explorer` returns.

    Attributes
    ----------
    graph : ServiceGraph
    focus_dropdown : ipywidgets.Dropdown
        A service name, or ``"(whole map)"``.
    hops_slider : ipywidgets.IntSlider
        Edges away from the focus to draw.
    map_box : ipywidgets.HTML
        The map (SVG).
    """

    def __init__(self, graph: ServiceGraph, *, focus: str | None, hops: int) -> None:
        w = ipywidgets()
        self.graph = graph
        nodes = graph.nodes
        names = sorted(set(nodes.loc[nodes["node_id"] != CLIENT, "name"].dropna().astype(str)))
        self.focus_dropdown = w.Dropdown(
            options=[WHOLE_MAP, *names],
            value=focus if focus is not None else WHOLE_MAP,
            description="focus",
            layout=w.Layout(width="100%", max_width="32em"),
        )
        self.hops_slider = w.IntSlider(
            value=hops,
            min=0,
            max=MAX_HOPS,
            description="hops",
            continuous_update=False,
            disabled=focus is None,
            layout=w.Layout(width="100%", max_width="32em"),
        )
        self.map_box = w.HTML(layout=w.Layout(max_width="100%", overflow="auto"))
        for control in (self.focus_dropdown, self.hops_slider):
            control.observe(lambda _: self.update(), names="value")
        self.widget = w.VBox(
            [self.focus_dropdown, self.hops_slider, self.map_box],
            layout=w.Layout(max_width="100%"),
        )
        self.widget.add_class("xraykit-map-explorer")
        self.update()

    @property
    def focus(self) -> str | None:
        """The focus service, or None for the whole map."""
        value = self.focus_dropdown.value
        return None if value == WHOLE_MAP else str(value)

    def update(self) -> None:
        """Redraw the map for the dropdown and the slider (they call this)."""
        self.hops_slider.disabled = self.focus is None
        self.map_box.value = _svg(self.graph, self.focus, int(self.hops_slider.value))

    def __repr__(self) -> str:
        where = (
            "whole map" if self.focus is None else f"{self.focus!r}, {self.hops_slider.value} hops"
        )
        return f"<MapExplorer: {len(self.graph.nodes)} nodes, {where}>"

    def _static_html(self) -> str:
        where = (
            "the whole map"
            if self.focus is None
            else f"focus <code>{html.escape(self.focus)}</code>, {self.hops_slider.value} hop(s)"
        )
        return (
            "<div class='xraykit-map-explorer' style='max-width:100%'>"
            f"<p><b>Map explorer</b> — {where}</p>{self.map_box.value}"
            "<p style='color:#777;font-size:11px'>Run the notebook to change the focus and the "
            "hops.</p></div>"
        )


def map_explorer(
    data: TraceSet | ServiceGraph, *, focus: str | None = None, hops: int = 1
) -> MapExplorer:
    """Explore the service map: choose a service to focus on and how many hops to show.

    Parameters
    ----------
    data : TraceSet or ServiceGraph
        Traces (the graph is computed with :func:`xraykit.graph.service_graph`) or a graph.
    focus : str, optional
        A service name to start from (default: the whole map).
    hops : int
        Edges away from the focus to draw (0-6).

    Returns
    -------
    MapExplorer
        Displays itself in Jupyter.

    Raises
    ------
    NotFoundError
        For a ``focus`` that names no service of the map.
    ArgumentError
        For ``hops`` outside 0-6.
    MissingDependencyError
        Without ipywidgets (``pip install "xraykit[widgets]"``).
    """
    if isinstance(data, ServiceGraph):
        graph = data
    else:
        check_traceset(data, "data")
        graph = service_graph(data)
    if isinstance(hops, bool) or not isinstance(hops, int) or not 0 <= hops <= MAX_HOPS:
        raise ArgumentError(f"`hops` must be an integer 0-{MAX_HOPS}, but {hops!r} was passed.")
    if focus is not None:
        names = graph.nodes.loc[graph.nodes["node_id"] != CLIENT, "name"].astype(str)
        if focus not in set(names):
            hit = graph.nodes.loc[graph.nodes["node_id"] == focus, "name"]
            if hit.empty:
                raise NotFoundError(
                    f"`focus` must name a service of the map, but {focus!r} was passed. "
                    f"Services: {sorted(set(names))!r}."
                )
            focus = str(hit.iloc[0])
    explorer = MapExplorer(graph, focus=focus, hops=hops)
    explorer.show_now()
    return explorer
