"""Finding Prometheus's own tools for the deployment tests: skipped when missing, except in CI (DESIGN.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = DEPLOY / "rules" / "bms-gateway.rules.yml"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required in CI (Debian package `prometheus`)")
        pytest.skip(f"{name} not installed (apt-get install prometheus)")
    return path


def promtool(*arguments: str, cwd: Path = DEPLOY) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("promtool"), *arguments], capture_output=True, text=True, timeout=60, cwd=cwd,
                          check=False)
