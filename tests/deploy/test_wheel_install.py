"""What the container image does, without a Docker engine: build the wheel, install it into a fresh virtual
environment, run the image's site from outside the source tree, and probe it with the HEALTHCHECK command.
This is also how the systemd unit's /opt/bms-gateway is installed (docs/operations.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.ports import free_tcp_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "deploy" / "docker" / "demo-site.toml"


def _run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=600, cwd=cwd)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def test_the_wheel_installs_and_serves_the_image_site_from_outside_the_source_tree(tmp_path: Path) -> None:
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", tmp_path / "wheels", ROOT,
         cwd=tmp_path)
    wheel = next((tmp_path / "wheels").glob("bms_gateway-*.whl"))
    # the dependencies come from this interpreter's site-packages; the gateway itself only from the wheel
    _run(sys.executable, "-m", "venv", "--system-site-packages", tmp_path / "venv", cwd=tmp_path)
    bin_dir = tmp_path / "venv" / "bin"
    _run(bin_dir / "python", "-m", "pip", "install", "--no-deps", "--quiet", wheel, cwd=tmp_path)
    where = _run(bin_dir / "python", "-c", "import gateway, gateway.settings as s; "
                 "print(gateway.__file__); print(s.DEFAULT_MAPPINGS_DIR)", cwd=tmp_path).stdout.split()
    venv = str(tmp_path / "venv")
    assert all(path.startswith(venv) for path in where), where
    assert (Path(where[1]) / "protection" / "default.yaml").is_file()

    ports = {"MODBUS": free_tcp_port(), "OPCUA": free_tcp_port(), "PROMETHEUS": free_tcp_port()}
    env = dict(os.environ, BMSGW_STORE__PATH=str(tmp_path / "state" / "state.sqlite"), BMSGW_LOG_FORMAT="json")
    for name, port in ports.items():
        env |= {f"BMSGW_{name}__PORT": str(port), f"BMSGW_{name}__HOST": "127.0.0.1"}
    with (tmp_path / "gateway.log").open("w") as log:
        gateway = subprocess.Popen([bin_dir / "bms-gateway", "run", "--config", SITE], cwd=tmp_path, env=env,
                                   stdout=subprocess.DEVNULL, stderr=log)
    try:
        probe = [str(bin_dir / "bms-gateway"), "health", "--url",
                 f"http://127.0.0.1:{ports['PROMETHEUS']}/healthz", "--timeout", "5"]
        deadline = time.monotonic() + 60
        while subprocess.run(probe, capture_output=True, timeout=30).returncode != 0:
            assert gateway.poll() is None, (tmp_path / "gateway.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "gateway.log").read_text()[-3000:]
            time.sleep(1)
        healthy = subprocess.run(probe, capture_output=True, text=True, timeout=30)
        assert "services: " in healthy.stdout
    finally:
        gateway.send_signal(signal.SIGINT)
        assert gateway.wait(timeout=30) == 0
    assert (tmp_path / "state" / "state.sqlite").is_file()


def test_the_wheel_lists_every_package_of_the_source_tree() -> None:
    """pyproject.toml names the packages one by one (mappings/ is mapped into gateway/): a new one must be added."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "gateway").rglob("__init__.py")}
    assert listed == found | {"gateway.mappings"}
