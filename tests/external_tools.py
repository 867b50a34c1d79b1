"""Independent tools the tests need (node, npm, promtool, ...): a missing one skips the test with its reason, except
on CI (`CI=true`), where it fails it (DESIGN.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

EXTERNAL_DIR = Path(__file__).resolve().parent / "external"  # package.json of the node tools


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required on CI)")
    pytest.skip(reason)


def node_and_npm(purpose: str) -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        unavailable(f"node and npm are needed {purpose}")
    assert node is not None
    assert npm is not None
    return node, npm


def node_with(packages: Sequence[str], purpose: str) -> str:
    """The node executable, with `packages` installed in tests/external/node_modules (npm install when missing)."""
    node, npm = node_and_npm(purpose)
    if not all((EXTERNAL_DIR / "node_modules" / package).is_dir() for package in packages):
        try:
            subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=EXTERNAL_DIR, check=True,
                           capture_output=True, text=True, timeout=600)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            output = error.stderr if isinstance(error.stderr, str) else ""
            unavailable(f"npm install of {', '.join(packages)} failed: {output[-2000:]}")
    return node
