"""End to end: the running gateway records trends of simulated packs, survives a kill -9 with them, and
`bms-gateway report` turns them into a page that headless Chromium renders with every plot drawn."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.report.plots import PLOT_COLOURS
from tests.chromium import pixels_of_colour, screenshot
from tests.e2e.gateway_process import GatewayProcess
from tests.sites import simulated_packs

pytestmark = pytest.mark.e2e

RECORD_S = 9.0
PAGE_SIZE = (1400, 2600)  # CSS pixels: the whole report of one pack, events included
MIN_PLOT_PIXELS = 300  # a drawn plot shows far more of its colour; a missing one none


def _plots_drawn(png: Path) -> dict[str, int]:
    return {name: pixels_of_colour(png, colour) for name, colour in PLOT_COLOURS.items()}


def test_a_report_of_live_trends_renders_every_plot_in_chromium(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text('site_name = "report"\n[trends]\ninterval_s = 1.0\ncell_interval_s = 2.0\n'
                      + simulated_packs("report", ["pack-a", "pack-b"],
                                        {"pack-b": '[{kind = "hot_cell", cell = 5, magnitude = 2.0}]'}))
    gateway = GatewayProcess.start(tmp_path, config)
    time.sleep(RECORD_S)
    gateway.process.send_signal(signal.SIGKILL)  # what was recorded must still be there
    gateway.process.wait()

    page = tmp_path / "pack-b.html"
    result = subprocess.run([sys.executable, "-m", "gateway", "report", "--pack", "pack-b", "--store",
                             str(tmp_path / "state.sqlite"), "--output", str(page)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    html = page.read_text()
    samples = re.search(r"(\d+) pack samples,\s*(\d+) per-cell samples", html)
    assert samples is not None
    assert int(samples[1]) >= RECORD_S - 5  # one a second once the packs are online
    assert int(samples[2]) >= 2

    png = tmp_path / "pack-b.png"
    screenshot(page, png, *PAGE_SIZE)
    drawn = _plots_drawn(png)
    assert all(count >= MIN_PLOT_PIXELS for count in drawn.values()), drawn


def test_the_screenshot_check_sees_a_plot_that_is_missing(tmp_path: Path) -> None:
    """The check above can fail: the same kind of page with the R0 plot's SVG taken out."""
    page = tmp_path / "broken.html"
    bars = "".join(f'<rect x="{20 + 30 * i}" y="20" width="20" height="200" fill="{colour}"/>'
                   for i, colour in enumerate(c for n, c in PLOT_COLOURS.items() if n != "resistance"))
    page.write_text(f'<!DOCTYPE html><html><body><svg width="400" height="300">{bars}</svg></body></html>')
    png = tmp_path / "broken.png"
    screenshot(page, png, 600, 400)
    drawn = _plots_drawn(png)
    assert drawn["resistance"] == 0
    assert all(count >= MIN_PLOT_PIXELS for name, count in drawn.items() if name != "resistance")
