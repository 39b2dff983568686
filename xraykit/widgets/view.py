"""How a course widget shows itself: the live ipywidgets view and a static HTML snapshot.

A widget object holds its ipywidgets box in ``widget`` and writes its current state as HTML
in ``_static_html()``. Its ``_repr_mimebundle_`` gives both: JupyterLab draws the live view,
while an HTML export without widget state (nbconvert, GitHub) falls back to the snapshot, so
nothing shows as an empty box. The helpers here escape every value they put in HTML.

Examples
--------
>>> import pandas as pd
>>> table = html_table(pd.DataFrame({"name": ["<b>x</b>"]}))
>>> "&lt;b&gt;x&lt;/b&gt;" in table, "<b>" in table
(True, False)
"""

from __future__ import annotations

import base64
import html
import io
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from xraykit.exceptions import require

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "FIT",
    "ShownOnce",
    "WidgetView",
    "figure_png",
    "html_table",
    "img_tag",
    "inline_code",
    "ipywidgets",
    "svg_fit",
]

#: CSS that keeps a block inside the notebook's width.
FIT = "max-width:100%;overflow-x:auto;box-sizing:border-box"
_TABLE_STYLE = "border-collapse:collapse;font-size:12px"
_CELL_STYLE = (
    "padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top;"
    "white-space:nowrap"
)
_CODE = re.compile(r"`([^`]+)`")


def ipywidgets() -> Any:
    """The ipywidgets module, or :class:`~xraykit.exceptions.MissingDependencyError`."""
    return require("ipywidgets", "widgets")


def inline_code(text: str) -> str:
    """Escape ``text`` for HTML and show its ```code``` spans in ``<code>``.

    >>> inline_code("set `AWS_XRAY_DAEMON_ADDRESS` <host>")
    'set <code>AWS_XRAY_DAEMON_ADDRESS</code> &lt;host&gt;'
    """
    return _CODE.sub(r"<code>\1</code>", html.escape(text, quote=False))


def _cell(value: Any) -> str:
    if value is None or (not isinstance(value, list | dict | tuple) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    text = str(value)
    return text if len(text) <= 300 else text[:299] + "…"


def html_table(frame: pd.DataFrame, *, limit: int = 50) -> str:
    """The first ``limit`` rows of ``frame`` as an HTML table (in a box that scrolls sideways
    rather than widen the notebook), every value escaped."""
    head = "".join(f"<th style='{_CELL_STYLE}'>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for record in frame.head(limit).itertuples(index=False, name=None):
        cells = "".join(f"<td style='{_CELL_STYLE}'>{html.escape(_cell(v))}</td>" for v in record)
        rows.append(f"<tr>{cells}</tr>")
    more = ""
    if len(frame) > limit:
        more = f"<p style='font-size:12px;color:#555'>… {len(frame) - limit:,} more rows</p>"
    return (
        f"<div style='{FIT}'><table class=\"xraykit-table\" style='{_TABLE_STYLE}'>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>{more}"
    )


def figure_png(draw: Callable[[Axes], object], *, width: float = 9.0, height: float = 3.5) -> bytes:
    """Draw on a fresh matplotlib figure (no pyplot state) and return it as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=96)
    FigureCanvasAgg(figure)
    draw(figure.add_subplot())
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def img_tag(png: bytes, alt: str) -> str:
    """An ``<img>`` holding PNG bytes inline, scaled to the notebook's width."""
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" '
        'style="max-width:100%;height:auto">'
    )


def svg_fit(svg: str) -> str:
    """An SVG (Graphviz's) scaled down to the notebook's width, never up; in a scroll box."""
    svg = re.sub(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>", "", svg, count=2).strip()
    svg = svg.replace("<svg ", '<svg style="max-width:100%;height:auto" ', 1)
    return f'<div style="{FIT}">{svg}</div>'


def _shell() -> Any:
    """The running IPython shell, or None (IPython is never imported here)."""
    module = sys.modules.get("IPython")
    return module.get_ipython() if module is not None else None


class ShownOnce:
    """An object that shows itself in Jupyter as soon as it is made (:meth:`show_now`).

    When the same object is also the value of the cell that made it, that second display is
    skipped, so ``quiz(...)`` and ``q = quiz(...)`` both show the quiz exactly once.
    """

    _shown_in: int | None = None

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        raise NotImplementedError

    def show_now(self) -> None:
        """Display now when running in IPython; do nothing elsewhere."""
        shell = _shell()
        if shell is None:
            return
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)
        self._shown_in = shell.execution_count

    def _ipython_display_(self) -> None:
        shell = _shell()
        if shell is not None and self._shown_in == shell.execution_count:
            self._shown_in = None  # shown by show_now() in this cell already
            return
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)


class WidgetView(ShownOnce):
    """Base of the course widgets: ``widget`` (the live box) and ``_static_html()``."""

    widget: Any

    def _static_html(self) -> str:
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return self._static_html()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = dict(self.widget._repr_mimebundle_() or {})
        bundle["text/html"] = self._static_html()
        bundle["text/plain"] = repr(self)
        return bundle
