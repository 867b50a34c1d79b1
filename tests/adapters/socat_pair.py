"""A serial CAN adapter's line for tests: two linked ptys from socat, at stable paths (`link=`), unplugged by
stopping socat and plugged in again by starting it."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from tests.external_tools import unavailable

BITRATE = 500_000  # both ends say the same (slcan sends the bitrate command; a pty ignores it)
SLCAN_OPTIONS: dict[str, str | int | float | bool] = {"sleep_after_open": 0}  # no 2 s wait for an adapter to boot


class SocatPair:
    def __init__(self, directory: Path) -> None:
        self.gateway_end = directory / "gateway-end"
        self.pack_end = directory / "pack-end"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 5.0) -> None:
        socat = shutil.which("socat")
        if socat is None:
            unavailable("socat is needed to emulate a serial (slcan) CAN adapter with a pty pair (.ci/run installs it)")
        assert socat is not None
        for link in (self.gateway_end, self.pack_end):
            link.unlink(missing_ok=True)  # left behind by a socat that was killed
        self._process = subprocess.Popen(
            [socat, f"pty,raw,echo=0,link={self.gateway_end}", f"pty,raw,echo=0,link={self.pack_end}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while not (self.gateway_end.exists() and self.pack_end.exists()):
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise AssertionError(f"socat did not make its ptys within {timeout_s} s")
            time.sleep(0.01)

    def unplug(self) -> None:
        """Stop socat: both ptys are gone, reads and writes on them fail."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=5)
            self._process = None

