"""`bms-gateway health` against the running gateway: exit 0 while it serves, 1 when too few packs are online,
when it is frozen (SIGSTOP: the port accepts, nothing answers) and when it is gone."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.gateway_process import GatewayProcess
from tests.sites import simulated_packs

pytestmark = pytest.mark.e2e


def _health(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "health", *arguments], capture_output=True, text=True,
                          timeout=60)


def test_health_follows_the_running_gateway(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text('site_name = "health"\n' + simulated_packs("health", ["pack-a", "pack-b"]))
    gateway = GatewayProcess.start(tmp_path, config)
    url = f"http://127.0.0.1:{gateway.prometheus_port}/healthz"
    try:
        healthy = _health("--url", url)
        assert healthy.returncode == 0, healthy.stderr
        assert "ok       engine: snapshot" in healthy.stdout
        assert "services:" in healthy.stdout
        assert healthy.stderr.startswith(("ok:", "degraded:"))

        too_few = _health("--url", url, "--min-packs-online", "3")
        assert too_few.returncode == 1
        assert "fewer than --min-packs-online 3" in too_few.stdout

        gateway.process.send_signal(signal.SIGSTOP)
        try:
            frozen = _health("--url", url, "--timeout", "1")
        finally:
            gateway.process.send_signal(signal.SIGCONT)
        assert frozen.returncode == 1
        assert "unhealthy" in frozen.stderr
        assert _health("--url", url).returncode == 0  # serving again
        wrong = _health("--url", url.replace("/healthz", "/metrics"))
        assert wrong.returncode == 1
        assert "not a bms-gateway health answer" in wrong.stderr
    finally:
        gateway.stop()
    gone = _health("--url", url)
    assert gone.returncode == 1
    assert "unhealthy" in gone.stderr
    assert "refused" in gone.stderr.lower()
