"""`bms-gateway report` on a store with a month of trends: what the page says, what it plots, what it refuses."""

from __future__ import annotations

import math
import re
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from gateway.adapters.event_log import EventLog
from gateway.adapters.trend_log import CELL_COLUMNS, PACK_COLUMNS, CellTrendRow, PackTrendRow, TrendLog
from gateway.cli import main
from gateway.domain.alarms import Severity
from gateway.domain.events import BmsEvent, EventKind
from gateway.report.data import read_report_data
from gateway.report.plots import soc_soh_figure

DAY_S = 86_400.0
CELLS = 24
HIGH_R0_CELL = 17  # 1-based
NOW = time.time()


def _pack_values(day: float, soc: float) -> tuple[float, ...]:
    values = dict.fromkeys(PACK_COLUMNS, math.nan)
    values.update(soc=soc, soh=0.95 - 0.001 * day, soh_resistance=0.9, pack_voltage_v=88.0, pack_current_a=-50.0,
                  cell_voltage_min_v=3.650, cell_voltage_max_v=3.662, temperature_min_c=24.0,
                  temperature_max_c=31.0 + 0.1 * day, charge_current_limit_a=100.0, discharge_current_limit_a=200.0,
                  cell_soc_spread=0.01)
    return tuple(values[name] for name in PACK_COLUMNS)


def _cell_vectors(day: float) -> tuple[list[float], ...]:
    resistance = [0.0008] * CELLS
    resistance[HIGH_R0_CELL - 1] = 0.0012
    return ([3.65 + 0.0005 * c for c in range(CELLS)], [25.0 + 0.2 * s + 0.05 * day for s in range(6)],
            [0.5] * CELLS, resistance, [100.0] * CELLS)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """35 days of hourly pack samples of `pack-07` (offline on days 10 and 11), daily cell samples, and events."""
    path = tmp_path_factory.mktemp("report") / "gateway.sqlite"
    hours = np.arange(35 * 24)
    hours = hours[(hours < 10 * 24) | (hours >= 12 * 24)]
    times = NOW - 35 * DAY_S + hours * 3600.0
    with closing(TrendLog(path)) as trends:
        trends.append([PackTrendRow(t, "pack-07", _pack_values((t - times[0]) / DAY_S, 0.2 + 0.6 * (h % 24) / 23))
                       for t, h in zip(times.tolist(), hours.tolist(), strict=True)],
                      [CellTrendRow(t, "pack-07", _cell_vectors((t - times[0]) / DAY_S)) for t in times[::24].tolist()])
        trends.append([PackTrendRow(NOW - 3600.0, "pack-08", _pack_values(0.0, 0.5))])
    assert len(CELL_COLUMNS) == 5
    with closing(EventLog(path)) as events:
        events.append([
            BmsEvent(NOW - 40 * DAY_S, "pack-07", EventKind.LATCHED, "cell_overtemperature", Severity.TRIP, 3, 66.0,
                     65.0),
            BmsEvent(NOW - 5 * DAY_S, "pack-07", EventKind.RAISED, "cell_overtemperature", Severity.WARNING, 3, 56.0,
                     55.0),
            BmsEvent(NOW - 4 * DAY_S, "pack-07", EventKind.LATCHED, "cell_overtemperature", Severity.TRIP, 3, 66.2,
                     65.0, detail="limits held at zero"),
            BmsEvent(NOW - 3 * DAY_S, "pack-07", EventKind.RESET, "cell_overtemperature", Severity.TRIP, 3,
                     operator="maintenance <alice>"),
            BmsEvent(NOW - 2 * DAY_S, "pack-08", EventKind.RAISED, "cell_undervoltage", Severity.WARNING, 1),
        ])
    return path


def _report(capsys: pytest.CaptureFixture[str], *arguments: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["report", *map(str, arguments)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_report_is_one_self_contained_page_with_every_plot(store: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "pack-07.html"
    code, out, err = _report(capsys, "--pack", "pack-07", "--store", store, "--output", output)
    assert (code, err) == (0, "")
    assert out == f"{output}: health report of pack-07\n"
    html = output.read_text()
    assert "<script" not in html
    assert not re.search(r'(?:src|href)\s*=\s*"(?!#)', html), "a reference outside the page"
    assert "url(http" not in html
    for plot in ("soc-soh", "voltage-spread", "resistance", "temperature"):
        block = re.search(rf'<div class="plot[^"]*" id="plot-{plot}">(.*?)</svg>', html, re.DOTALL)
        assert block is not None, plot
        assert "<svg" in block[1]
    assert "no per-cell" not in html
    assert "no temperature sample" not in html


def test_the_summary_shows_the_latest_figures_and_the_window_s_trips(store: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "report.html"
    assert _report(capsys, "--pack", "pack-07", "--store", store, "-o", output)[0] == 0
    text = _text(output.read_text())
    last_day = (34 * 24 + 23) / 24.0  # the last hourly sample, in days after the first
    assert f"SoH (capacity) {100 * (0.95 - 0.001 * last_day):.1f} %" in text
    assert "SoC 80.0 %" in text  # hour 23 of the day: the top of the daily cycle
    assert "cell voltage spread 12 mV" in text
    assert f"highest cell R0 / median 1.50 (cell {HIGH_R0_CELL})" in text
    assert "trips latched in window 1" in text  # the one 40 days ago is outside the default 30 days
    assert "671 pack samples" in text  # hours 121..839 after the first sample, less the 48 offline ones


def test_recent_events_are_the_pack_s_newest_first_and_escaped(store: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "report.html"
    assert _report(capsys, "--pack", "pack-07", "--store", store, "-o", output)[0] == 0
    html = output.read_text()
    table = html[html.index("<table>"):]
    kinds = re.findall(r"<td>(raised|latched|reset)</td>", table)
    assert kinds == ["reset", "latched", "raised"]
    assert '<tr class="trip">' in table
    assert "maintenance &lt;alice&gt;" in table
    assert "cell_undervoltage" not in table  # pack-08's


def test_the_window_limits_the_samples(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "report.html"
    assert _report(capsys, "--pack", "pack-07", "--store", store, "--since", "2d", "-o", output)[0] == 0
    text = _text(output.read_text())
    assert "47 pack samples, 1 per-cell samples" in text
    assert "trips latched in window 0" in text


def test_an_offline_stretch_is_a_gap_in_the_history_not_a_line(store: Path) -> None:
    data = read_report_data(store, "pack-07", NOW - 40 * DAY_S, NOW)
    soc_line = soc_soh_figure(data.trends).axes[0].lines[0]
    assert int(np.isnan(np.asarray(soc_line.get_ydata(), dtype=float)).sum()) == 1


def test_a_pack_without_samples_names_the_packs_that_have_some(store: Path, capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    code, out, err = _report(capsys, "--pack", "pack-99", "--store", store)
    assert code == 2
    assert out == ""
    assert "pack 'pack-99' has no trend samples" in err
    assert "packs with samples: pack-07, pack-08" in err


def test_bad_windows_and_missing_stores_are_refused_with_the_fix(store: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _report(capsys, "--pack", "pack-07", "--store", store, "--since", "1d", "--until", "2d")
    assert code == 2
    assert "--since is not before --until; fix" in err
    code, _, err = _report(capsys, "--pack", "pack-07", "--store", store, "--since", "50d", "--until", "36d")
    assert code == 2  # samples exist, but none in the window
    assert "pack 'pack-07' has no trend samples" in err
    code, _, err = _report(capsys, "--pack", "pack-07", "--store", tmp_path / "nothing.sqlite")
    assert code == 2
    assert "no such database file; fix" in err
    assert not (tmp_path / "pack-07-health.html").exists()


def test_standard_output_gets_the_page_with_dash(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _report(capsys, "--pack", "pack-08", "--store", store, "-o", "-")
    assert code == 0
    assert out.startswith("<!DOCTYPE html>")
    assert "Pack health report: pack-08" in out
    assert "no per-cell sample yet" in out  # pack-08 has pack samples only
