"""The container files, checked without a Docker engine (none runs here): the Dockerfile's final stage is slim,
non-root and health-checked, its default site is valid and matches what it exposes; compose's mounts exist,
its images are pinned (Grafana to the schema the dashboards are checked against), its Prometheus config passes
promtool and scrapes the gateway's port, and no secret is written in it. The image's install steps themselves
run in test_wheel_install.py."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from gateway.config_loader import load_settings
from tests.deploy.promtool import promtool

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
IMAGE_SITE = "/etc/bms-gateway/site.toml"
STATE = "/var/lib/bms-gateway"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (DOCKER / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return document


def test_the_base_image_is_pinned_to_a_slim_patch_release() -> None:
    arguments = dict(argument.split("=", 1) for name, argument in _instructions() if name == "ARG")
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", arguments["PYTHON_IMAGE"])
    assert [argument for name, argument in _instructions() if name == "FROM"] == [
        "${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]  # the build tools stay in the first stage


def test_the_final_stage_runs_as_an_unprivileged_user_with_a_health_check() -> None:
    final = dict(_final_stage())
    user, group = final["USER"].split(":")
    assert int(user) >= 1000
    assert int(group) >= 1000
    health = final["HEALTHCHECK"]
    assert re.search(r'CMD \["bms-gateway", "health", "--config", "' + IMAGE_SITE, health)
    assert "--start-period=" in health
    assert final["ENTRYPOINT"] == '["bms-gateway"]'
    assert final["STOPSIGNAL"] == "SIGINT"  # a clean stop writes the last checkpoint
    assert final["VOLUME"] == f'["{STATE}"]'
    assert final["WORKDIR"] == STATE  # the OPC UA PKI's relative paths land in the volume


def test_every_copied_file_exists_and_the_context_leaves_local_state_out() -> None:
    sources = [argument.split()[:-1] for name, argument in _instructions() if name == "COPY"]
    for source in (s for group in sources for s in group if not s.startswith("--")):
        assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"**/*.sqlite*", "opcua-pki", ".git"} <= set(ignored)


def test_the_image_s_site_is_valid_and_its_ports_are_exposed() -> None:
    copied = [argument.split() for name, argument in _final_stage() if name == "COPY"]
    site = next(ROOT / source for source, target in copied if target == IMAGE_SITE)
    settings = load_settings(site)
    assert {settings.modbus.host, settings.opcua.host, settings.prometheus.host} == {"0.0.0.0"}
    exposed = {int(port) for name, argument in _final_stage() if name == "EXPOSE" for port in argument.split()}
    assert exposed == {settings.modbus.port, settings.opcua.port, settings.prometheus.port}
    assert str(settings.store.path).startswith(STATE + "/")
    compose_ports = {int(mapping.split(":")[1]) for mapping in _compose()["services"]["gateway"]["ports"]}
    assert compose_ports == exposed


def test_compose_images_are_pinned_and_grafana_matches_the_checked_schema() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        image = service["image"]
        assert re.search(r":v?\d+\.\d+\.\d+$", image), f"{name}: {image} is not pinned to a release"
    schema = json.loads((ROOT / "tests" / "external" / "package.json").read_text())["dependencies"]["@grafana/schema"]
    assert services["grafana"]["image"] == f"grafana/grafana:{schema}"


def test_compose_mounts_exist_and_wire_prometheus_and_grafana_to_the_gateway() -> None:
    services = _compose()["services"]
    mounts: dict[str, str] = {}
    for service in services.values():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                assert (DOCKER / source).exists(), source
                mounts[target] = source
    config_flag = next(a for a in services["prometheus"]["command"] if a.startswith("--config.file="))
    config_in_container = Path(config_flag.split("=", 1)[1])
    config = DOCKER / mounts[str(config_in_container.parent)] / config_in_container.name
    checked = promtool("check", "config", str(config), cwd=config.parent)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout  # the alert rules resolve in the mounted folder
    assert re.search(r"SUCCESS: [1-9]\d* rules found", checked.stdout)
    targets = yaml.safe_load(config.read_text())["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == [f"gateway:{load_settings(DOCKER / 'demo-site.toml').prometheus.port}"]
    datasource = yaml.safe_load((DOCKER / "grafana-datasource.yml").read_text())["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/bms-gateway.yml").read_text())
    assert mounts[provider["providers"][0]["options"]["path"]] == "../grafana/dashboards"


def test_no_secret_is_written_in_compose() -> None:
    environment = _compose()["services"]["grafana"]["environment"]
    assert environment["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
