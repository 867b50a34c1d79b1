"""A pack health report as one self-contained HTML file: inline CSS and SVG, no script, no external reference."""

from __future__ import annotations

import math
from html import escape

from gateway import __version__
from gateway.event_formats import TABLE_HEADER, event_record, iso_utc, table_row
from gateway.report.data import RECENT_EVENTS, ReportData, Summary, summary_of
from gateway.report.plots import report_plots

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 16px; margin: 24px 0 8px; }
.meta { color: #666; font-size: 13px; }
.summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 8px; }
.figure { border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px; }
.figure .label { color: #666; font-size: 12px; } .figure .value { font-size: 20px; font-weight: 600; }
.plots { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.plot { border: 1px solid #ddd; border-radius: 6px; padding: 8px; }
.plot.wide { grid-column: 1 / 3; } .plot svg { width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 12px; width: 100%; }
th, td { border-bottom: 1px solid #eee; padding: 3px 6px; text-align: left; white-space: nowrap; }
.critical, .trip { color: #b00020; font-weight: 600; } .warning { color: #a05a00; }
"""


def render_report(data: ReportData, generated_at: float) -> str:
    plots = report_plots(data.trends, data.cells)
    summary = summary_of(data)
    title = f"Pack health report: {escape(data.pack_id)}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{_STYLE}</style></head>
<body>
<h1>{title}</h1>
<p class="meta">{iso_utc(data.since)} to {iso_utc(data.until)} (UTC) · {len(data.trends.time)} pack samples,
{len(data.cells.time)} per-cell samples · generated {iso_utc(generated_at)} by bms-gateway {__version__}</p>
<h2>Summary</h2>
<div class="summary">{_summary_html(summary, data.trips)}</div>
<h2>Plots</h2>
<div class="plots">
<div class="plot wide" id="plot-soc-soh"><h3>SoC and SoH history</h3>{plots["soc_soh"]}</div>
<div class="plot wide" id="plot-voltage-spread"><h3>Cell voltage spread</h3>{plots["voltage_spread"]}</div>
<div class="plot" id="plot-resistance"><h3>Per-cell R0 (latest)</h3>{plots["resistance"]}</div>
<div class="plot" id="plot-temperature"><h3>Temperature histogram (all sensors, all per-cell samples)</h3>
{plots["temperature"]}</div>
</div>
<h2>Recent events (newest first, at most {RECENT_EVENTS})</h2>
{_events_html(data)}
</body></html>
"""


def _summary_html(summary: Summary, trips: int) -> str:
    figures = [
        ("SoC", _percent(summary.soc)), ("SoH (capacity)", _percent(summary.soh)),
        ("SoH (resistance)", _percent(summary.soh_resistance)),
        ("cell voltage spread", _number(summary.cell_voltage_spread_v * 1000.0, "mV", 0)),
        ("hottest sensor in window", _number(summary.temperature_max_c, "°C", 1)),
        ("highest cell R0 / median", _number(summary.resistance_ratio, "", 2)
         + (f" (cell {summary.resistance_cell})" if summary.resistance_cell else "")),
        ("trips latched in window", str(trips)),
    ]
    return "".join(f'<div class="figure"><div class="label">{escape(label)}</div>'
                   f'<div class="value">{escape(value)}</div></div>' for label, value in figures)


def _events_html(data: ReportData) -> str:
    if not data.events:
        return "<p>No events in the window.</p>"
    header = "".join(f"<th>{escape(name)}</th>" for name in TABLE_HEADER[:1] + TABLE_HEADER[2:])
    rows = []
    for event in data.events:
        record = event_record(event)
        cells = table_row(record)
        css = "trip" if record["kind"] == "latched" else str(record["severity"])
        rows.append(f'<tr class="{escape(css)}">'
                    + "".join(f"<td>{escape(cell)}</td>" for cell in cells[:1] + cells[2:]) + "</tr>")
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _percent(fraction: float) -> str:
    return _number(fraction * 100.0, "%", 1)


def _number(value: float, unit: str, decimals: int) -> str:
    return "unknown" if math.isnan(value) else f"{value:.{decimals}f} {unit}".rstrip()
