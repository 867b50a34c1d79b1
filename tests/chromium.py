"""Headless Chromium (Debian's, installed by .ci/run) for tests that look at a rendered page."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from tests.external_tools import unavailable

# Without the background-networking flags Chromium keeps trying to reach Google's hosts on this closed network.
_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars")


def screenshot(page: Path, png: Path, width: int, height: int) -> None:
    """`page` rendered at width x height CSS pixels into `png`; AssertionError with Chromium's output if it failed."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        unavailable("chromium is needed to render the page (Debian package chromium)")
    assert binary is not None
    result = subprocess.run([binary, *_FLAGS, f"--user-data-dir={png.parent / 'chromium-profile'}",
                             f"--window-size={width},{height}", f"--screenshot={png}", page.resolve().as_uri()],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert png.is_file(), result.stderr[-3000:]


def pixels_of_colour(png: Path, colour: str, tolerance: int = 6) -> int:
    """How many pixels of the image are `colour` (#rrggbb), each channel within `tolerance`."""
    image = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    target = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    return int((np.abs(image - target) <= tolerance).all(axis=2).sum())
