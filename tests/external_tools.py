"""Independent tools the tests need (node, npm, promtool, ...): a missing one skips the test with its reason, except
on CI (`CI=true`), where it fails it (DESIGN.md)."""

from __future__ import annotations

import os
import shutil

import pytest


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
