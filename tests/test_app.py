from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.app import build_gateway
from gateway.config_loader import load_settings
from gateway.errors import MappingError
from gateway.settings import DEFAULT_MAPPINGS_DIR


def test_a_bad_output_mapping_is_reported_before_anything_is_opened(tmp_path: Path) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(DEFAULT_MAPPINGS_DIR, mappings)
    native = mappings / "modbus" / "native.yaml"
    native.write_text(native.read_text().replace("source: soc,", "source: state_of_charge,", 1))
    store = tmp_path / "state.sqlite"
    config = tmp_path / "site.toml"
    config.write_text(f"""
mappings_dir = "{mappings}"
[store]
path = "{store}"
[[buses]]
name = "bus"
interface = "virtual"
channel = "bad-map"
[[packs]]
id = "pack-a"
bus = "bus"
node_address = 1
""")
    with pytest.raises(MappingError) as error:
        build_gateway(load_settings(config))
    assert "native.yaml" in str(error.value)
    assert not store.exists()  # the store (and the buses) were never opened
