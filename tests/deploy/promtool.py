"""Finding Prometheus's own tools for the deployment tests: skipped when missing, except in CI (DESIGN.md)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.external_tools import unavailable

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = DEPLOY / "rules" / "bms-gateway.rules.yml"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} not installed (Debian package `prometheus`: apt-get install prometheus)")
    assert path is not None
    return path


def promtool(*arguments: str, cwd: Path = DEPLOY) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("promtool"), *arguments], capture_output=True, text=True, timeout=60, cwd=cwd,
                          check=False)
