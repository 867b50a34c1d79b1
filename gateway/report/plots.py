"""The report's plots as inline SVG (matplotlib's object API: no pyplot state, no display needed).

Each plot's main series has a colour of its own (PLOT_COLOURS); the report test looks for them in a
Chromium screenshot to see that every plot was drawn.
"""

from __future__ import annotations

import io
import re

import numpy as np
import numpy.typing as npt
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gateway.adapters.trend_log import CellTrendSeries, PackTrendSeries

FloatArray = npt.NDArray[np.float64]

PLOT_COLOURS = {
    "soc_soh": "#1f5fd1",  # SoC line
    "voltage_spread": "#e07b1a",  # per-cell deviation bars
    "resistance": "#7a3fc4",  # per-cell R0 bars
    "temperature": "#d62f2f",  # temperature histogram
}
_SOH_COLOUR = "#2a9d3a"
_SOH_RESISTANCE_COLOUR = "#6b6b6b"
_GAP_FACTOR = 3.0  # samples further apart than this many typical intervals are a gap (the pack was offline)
_XML_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.DOTALL)


def report_plots(trends: PackTrendSeries, cells: CellTrendSeries) -> dict[str, str]:
    """Every plot of a report as an inline <svg> element, by the names of PLOT_COLOURS."""
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "bms-gateway", "font.size": 9, "axes.grid": True,
                     "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False}):
        return {"soc_soh": _svg_of(soc_soh_figure(trends)),
                "voltage_spread": _svg_of(voltage_spread_figure(trends, cells)),
                "resistance": _svg_of(resistance_figure(cells)),
                "temperature": _svg_of(temperature_figure(cells))}


def _svg_of(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return _XML_PROLOGUE.sub("", buffer.getvalue(), count=1)


def soc_soh_figure(trends: PackTrendSeries) -> Figure:
    figure, axes = _figure(9.0, 3.2)
    columns = trends.columns
    axes.plot(*_gapped(trends.time, columns["soc"] * 100.0), color=PLOT_COLOURS["soc_soh"], lw=1.6, label="SoC")
    axes.plot(*_gapped(trends.time, columns["soh"] * 100.0), color=_SOH_COLOUR, lw=1.6, label="SoH (capacity)")
    axes.plot(*_gapped(trends.time, columns["soh_resistance"] * 100.0), color=_SOH_RESISTANCE_COLOUR, lw=1.2,
              ls="--", label="SoH (resistance)")
    axes.set_ylabel("%")
    axes.set_ylim(0.0, 105.0)
    axes.legend(loc="lower left", ncols=3, frameon=False)
    figure.autofmt_xdate()
    return figure


def voltage_spread_figure(trends: PackTrendSeries, cells: CellTrendSeries) -> Figure:
    figure = Figure(figsize=(9.0, 3.2), layout="constrained")
    over_time, per_cell = figure.subplots(1, 2, width_ratios=(3, 2))
    columns = trends.columns
    spread_mv = (columns["cell_voltage_max_v"] - columns["cell_voltage_min_v"]) * 1000.0
    over_time.plot(*_gapped(trends.time, spread_mv), color="#444444", lw=1.2)
    over_time.set_ylabel("highest - lowest cell (mV)")
    over_time.set_title("spread over time", fontsize=9)
    over_time.tick_params(axis="x", labelrotation=30)
    voltages = _latest_row(cells.columns["cell_voltage_v"])
    if voltages is None:
        _no_data(per_cell, "no per-cell sample yet")
    else:
        deviation_mv = (voltages - np.nanmean(voltages)) * 1000.0
        per_cell.bar(np.arange(1, len(voltages) + 1), np.nan_to_num(deviation_mv), color=PLOT_COLOURS["voltage_spread"])
        per_cell.axhline(0.0, color="#444444", lw=0.8)
        per_cell.set_xlabel("cell")
        per_cell.set_ylabel("from the mean (mV)")
        per_cell.set_title("latest per-cell sample", fontsize=9)
    return figure


def resistance_figure(cells: CellTrendSeries) -> Figure:
    figure, axes = _figure(4.4, 3.2)
    resistance = _latest_row(cells.columns["cell_resistance_ohm"])
    if resistance is None:
        _no_data(axes, "no per-cell resistance yet")
        return figure
    milliohm = resistance * 1000.0
    axes.bar(np.arange(1, len(milliohm) + 1), np.nan_to_num(milliohm), color=PLOT_COLOURS["resistance"])
    axes.axhline(float(np.nanmedian(milliohm)), color="#444444", lw=0.8, ls="--", label="median")
    axes.set_xlabel("cell")
    axes.set_ylabel("R0 at 50 % SoC, 25 °C (mΩ)")
    axes.legend(loc="lower right", frameon=False)
    return figure


def temperature_figure(cells: CellTrendSeries) -> Figure:
    figure, axes = _figure(4.4, 3.2)
    temperatures = cells.columns["temperature_c"]
    finite = temperatures[np.isfinite(temperatures)]
    if finite.size == 0:
        _no_data(axes, "no temperature sample yet")
        return figure
    low, high = np.floor(finite.min()), np.ceil(finite.max())
    bins = np.arange(low, max(high, low + 1.0) + 1.0, 1.0)
    axes.hist(finite, bins=bins.tolist(), color=PLOT_COLOURS["temperature"])
    axes.set_xlabel("sensor temperature (°C)")
    axes.set_ylabel("samples")
    return figure


def _figure(width_in: float, height_in: float) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(width_in, height_in), layout="constrained")
    return figure, figure.subplots()


def _gapped(time_s: FloatArray, values: FloatArray) -> tuple[npt.NDArray[np.datetime64], FloatArray]:
    """Dates and values with a NaN point inside each gap (samples much further apart than usual: the pack was
    offline), so no line is drawn across it."""
    if len(time_s) >= 3:
        steps = np.diff(time_s)
        after = (steps > _GAP_FACTOR * float(np.median(steps))).nonzero()[0] + 1
        time_s = np.insert(time_s, after, time_s[after - 1] + steps[after - 1] / 2.0)
        values = np.insert(values, after, np.nan)
    return (time_s * 1000.0).astype("datetime64[ms]"), values


def _latest_row(matrix: FloatArray) -> FloatArray | None:
    if len(matrix) == 0 or not np.isfinite(matrix[-1]).any():
        return None
    row: FloatArray = matrix[-1]
    return row


def _no_data(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color="#777777")
    axes.set_xticks([])
    axes.set_yticks([])
