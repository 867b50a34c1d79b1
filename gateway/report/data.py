"""What a pack health report shows, read from the store: trend samples, per-cell samples and events."""

from __future__ import annotations

import math
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gateway.adapters.event_log import EventLog
from gateway.adapters.trend_log import CellTrendSeries, PackTrendSeries, TrendLog
from gateway.domain.events import BmsEvent, EventKind
from gateway.errors import AdapterError

RECENT_EVENTS = 50


@dataclass(frozen=True)
class ReportData:
    pack_id: str
    since: float
    until: float
    trends: PackTrendSeries
    cells: CellTrendSeries
    events: tuple[BmsEvent, ...]  # newest first, at most RECENT_EVENTS
    trips: int  # trips latched in the window


@dataclass(frozen=True)
class Summary:
    """The figures at the top of a report: the latest sample's, and the window's extremes."""

    soc: float
    soh: float
    soh_resistance: float
    cell_voltage_spread_v: float
    temperature_max_c: float
    resistance_ratio: float  # the highest cell R0 over the median, latest per-cell sample
    resistance_cell: int  # 1-based, 0 when unknown


def read_report_data(store: Path, pack_id: str, since: float, until: float) -> ReportData:
    """AdapterError naming the packs that do have samples when `pack_id` has none in the window."""
    with closing(TrendLog(store, create=False)) as trend_log:
        trends = trend_log.pack_series(pack_id, since, until)
        cells = trend_log.cell_series(pack_id, since, until)
        if len(trends.time) == 0:
            known = ", ".join(trend_log.pack_ids()) or "none"
            raise AdapterError(f"report: pack {pack_id!r} has no trend samples in {store} in the window; "
                               f"packs with samples: {known}; fix: --pack with one of them, or another --since/--until")
    with closing(EventLog(store, create=False)) as event_log:
        events = event_log.query(pack_id, since, until)
    return ReportData(pack_id, since, until, trends, cells, tuple(reversed(events[-RECENT_EVENTS:])),
                      sum(1 for e in events if e.kind is EventKind.LATCHED))


def summary_of(data: ReportData) -> Summary:
    columns = data.trends.columns
    resistance = data.cells.columns["cell_resistance_ohm"]
    ratio, cell = math.nan, 0
    if len(resistance) and np.isfinite(resistance[-1]).any():
        latest = resistance[-1]
        cell = int(np.nanargmax(latest)) + 1
        ratio = float(np.nanmax(latest) / np.nanmedian(latest))
    return Summary(_last_finite(columns["soc"]), _last_finite(columns["soh"]),
                   _last_finite(columns["soh_resistance"]),
                   _last_finite(columns["cell_voltage_max_v"] - columns["cell_voltage_min_v"]),
                   float(np.nanmax(columns["temperature_max_c"])) if np.isfinite(columns["temperature_max_c"]).any()
                   else math.nan, ratio, cell)


def _last_finite(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if len(finite) else math.nan
