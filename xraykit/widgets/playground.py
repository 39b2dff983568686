"""The sampling playground: sliders for a sampling rule and a fleet, the traces it samples, the cost.

:func:`sampling_playground` simulates one minute of steady traffic through one rule
(:func:`xraykit.sampling.simulate_sampling`) and draws requests against sampled requests per
second (:func:`xraykit.plotting.sampling.plot_sampling`) with the expected sampled rate as a
dotted line; below, what a month of it costs (:func:`xraykit.sampling.estimate_cost`). Moving a
slider redraws both. In an HTML export it shows the chart and cost at the starting values.

Examples
--------
>>> playground = sampling_playground(rate=100, reservoir=1, fixed_rate=0.05)
>>> round(playground.cost.attrs["assumptions"]["sampled_per_s"], 2)  # 1 + 5 % of the other 99
5.95
>>> playground.rate_slider.value = 200
>>> round(playground.cost.attrs["assumptions"]["sampled_per_s"], 2)
10.95
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from xraykit.arguments import check_choice
from xraykit.exceptions import ArgumentError
from xraykit.plotting.sampling import plot_sampling
from xraykit.sampling import Mode, SamplingRule, estimate_cost, simulate_sampling, traffic
from xraykit.widgets.view import FIT, WidgetView, figure_png, img_tag, ipywidgets

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["SamplingPlayground", "sampling_playground"]

MODES = ("local", "centralized")
MAX_RATE = 2000
MAX_RESERVOIR = 100
MAX_HOSTS = 50
DURATION_S = 60
RULE_NAME = "your-rule"


def _money(usd: float) -> str:
    return f"${usd:,.2f}"


def _count(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:,.1f} million"
    return f"{n:,.0f}"


class SamplingPlayground(WidgetView):
    """The widget :func:`sampling_playground` returns.

    Attributes
    ----------
    rate_slider, reservoir_slider, fixed_rate_slider, hosts_slider : ipywidgets sliders
    mode_buttons : ipywidgets.ToggleButtons
        ``"local"`` or ``"centralized"``.
    chart : ipywidgets.Image
        Requests and sampled requests per second (PNG).
    cost_box : ipywidgets.HTML
        The monthly cost.
    simulation : DataFrame
        The last simulation (:func:`~xraykit.sampling.simulate_sampling`).
    cost : DataFrame
        The last :func:`~xraykit.sampling.estimate_cost`.
    """

    def __init__(
        self, *, rate: int, reservoir: int, fixed_rate: float, hosts: int, mode: str, seed: int
    ) -> None:
        w = ipywidgets()
        self.seed = seed
        wide = w.Layout(width="100%", max_width="36em")
        style = {"description_width": "9em"}
        self.rate_slider = w.IntSlider(
            value=rate, min=1, max=MAX_RATE, description="requests/s", style=style, layout=wide
        )
        self.reservoir_slider = w.IntSlider(
            value=reservoir,
            min=0,
            max=MAX_RESERVOIR,
            description="reservoir/s",
            style=style,
            layout=wide,
        )
        self.fixed_rate_slider = w.FloatSlider(
            value=fixed_rate,
            min=0.0,
            max=1.0,
            step=0.01,
            readout_format=".2f",
            description="fixed rate",
            style=style,
            layout=wide,
        )
        self.hosts_slider = w.IntSlider(
            value=hosts, min=1, max=MAX_HOSTS, description="hosts", style=style, layout=wide
        )
        self.mode_buttons = w.ToggleButtons(
            options=list(MODES), value=mode, description="rules", style=style
        )
        controls = [
            self.rate_slider,
            self.reservoir_slider,
            self.fixed_rate_slider,
            self.hosts_slider,
            self.mode_buttons,
        ]
        for control in controls:
            control.continuous_update = False
            control.observe(lambda _: self.update(), names="value")
        self.chart = w.Image(format="png", layout=w.Layout(max_width="100%", height="auto"))
        self.cost_box = w.HTML(layout=w.Layout(max_width="100%"))
        self.widget = w.VBox(
            [*controls, self.chart, self.cost_box], layout=w.Layout(max_width="100%")
        )
        self.widget.add_class("xraykit-playground")
        self.simulation = pd.DataFrame()
        self.cost = pd.DataFrame()
        self.update()

    @property
    def rule(self) -> SamplingRule:
        """The rule the sliders describe (every request matches it)."""
        return SamplingRule(
            RULE_NAME,
            1,
            round(float(self.fixed_rate_slider.value), 4),
            int(self.reservoir_slider.value),
        )

    def update(self) -> None:
        """Simulate and cost the sliders' settings, and redraw (sliders call this)."""
        rule = self.rule
        hosts, rate = int(self.hosts_slider.value), int(self.rate_slider.value)
        mode: Mode = "local" if self.mode_buttons.value == "local" else "centralized"
        requests = traffic(rate, duration_s=DURATION_S, peaks=0, seed=self.seed)
        self.simulation = simulate_sampling(
            requests, [rule], hosts=hosts, mode=mode, seed=self.seed
        )
        self.cost = estimate_cost(float(rate), rules=[rule], hosts=hosts, mode=mode)
        expected = float(self.cost.attrs["assumptions"]["sampled_per_s"])
        self.chart.value = figure_png(lambda ax: self._draw(ax, expected), height=3.6)
        self.cost_box.value = self._cost_html()

    def _draw(self, ax: Axes, expected: float) -> None:
        plot_sampling(self.simulation, rules=[RULE_NAME], ax=ax)
        ax.axhline(expected, color="black", linestyle=":", linewidth=1.2, label="expected sampled")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
        top = max(float(self.rate_slider.value) * 1.6, expected * 1.5, 1.0)
        ax.set_ylim(0, top)

    def _cost_html(self) -> str:
        cost, facts = self.cost, self.cost.attrs["assumptions"]
        sampled = float(facts["sampled_per_s"])
        share = sampled / facts["requests_per_s"] if facts["requests_per_s"] else math.nan
        rows = "".join(
            f"<tr><td>{name}</td><td>{_count(cost.loc[name, 'traces'])}</td>"
            f"<td>{_count(cost.loc[name, 'billable'])}</td>"
            f"<td>{_money(cost.loc[name, 'cost_usd'])}</td></tr>"
            for name in ("recorded", "retrieved", "scanned")
        )
        total = float(cost.loc["total", "cost_usd"])
        return (
            f"<div class='xraykit-playground-cost' style='{FIT}'>"
            f"<p>About <b>{sampled:,.2f}</b> of {facts['requests_per_s']:,.0f} requests per "
            f"second are sampled ({share:.1%}); a 30-day month records "
            f"<b>{_count(cost.loc['recorded', 'traces'])}</b> traces and costs about "
            f"<b>{html.escape(_money(total))}</b>.</p>"
            "<table style='font-size:12px'><tr><th>traces per month</th><th>count</th>"
            f"<th>billable</th><th>cost</th></tr>{rows}</table>"
            "<p style='font-size:11px;color:#555'>Published us-east-1 prices; scans once per "
            "recorded trace, 5 % retrieved in full.</p></div>"
        )

    def __repr__(self) -> str:
        rule = self.rule
        return (
            f"<SamplingPlayground: {self.rate_slider.value} req/s, reservoir "
            f"{rule.reservoir_size}, fixed rate {rule.fixed_rate:g}, "
            f"{self.hosts_slider.value} hosts, {self.mode_buttons.value}>"
        )

    def _static_html(self) -> str:
        return (
            "<div class='xraykit-playground' style='max-width:100%'>"
            f"<p><b>Sampling playground</b> — {html.escape(repr(self)[1:-1])}</p>"
            f"{img_tag(bytes(self.chart.value), 'requests and sampled requests per second')}"
            f"{self.cost_box.value}"
            "<p style='color:#777;font-size:11px'>Run the notebook to move the sliders.</p>"
            "</div>"
        )


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ArgumentError(
            f"`{name}` must be an integer from {low} to {high}, but {value!r} was passed."
        )
    return value


def sampling_playground(
    rate: int = 100,
    reservoir: int = 1,
    fixed_rate: float = 0.05,
    hosts: int = 1,
    mode: str = "local",
    *,
    seed: int = 0,
) -> SamplingPlayground:
    """Play with a sampling rule: sliders, the sampled traces per second and the monthly cost.

    Parameters
    ----------
    rate : int
        Requests per second across the fleet (1-2000).
    reservoir : int
        The rule's reservoir: requests per second sampled before the fixed rate (0-100).
    fixed_rate : float
        The share (0-1) of the other requests sampled.
    hosts : int
        Instances running the SDK (1-50).
    mode : {"local", "centralized"}
        Rules applied by each host alone (reservoir per host) or from X-Ray (reservoir
        shared by the fleet).
    seed : int
        Randomness of the simulated traffic and draws.

    Returns
    -------
    SamplingPlayground
        Displays itself in Jupyter.

    Raises
    ------
    ArgumentError
        For a value outside the sliders' ranges.
    MissingDependencyError
        Without ipywidgets (``pip install "xraykit[widgets]"``).
    """
    _check_int("rate", rate, 1, MAX_RATE)
    _check_int("reservoir", reservoir, 0, MAX_RESERVOIR)
    _check_int("hosts", hosts, 1, MAX_HOSTS)
    if isinstance(fixed_rate, bool) or not isinstance(fixed_rate, int | float):
        raise ArgumentError(f"`fixed_rate` must be a number 0-1, but {fixed_rate!r} was passed.")
    if not 0 <= fixed_rate <= 1:
        raise ArgumentError(
            f"`fixed_rate` must be a fraction 0-1 (5 % is 0.05), but {fixed_rate!r} was passed."
        )
    check_choice("mode", mode, MODES)
    playground = SamplingPlayground(
        rate=rate,
        reservoir=reservoir,
        fixed_rate=float(fixed_rate),
        hosts=hosts,
        mode=mode,
        seed=seed,
    )
    playground.show_now()
    return playground
