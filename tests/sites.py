"""Site configurations for tests that run the whole gateway on simulated packs."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from gateway.config_loader import load_settings
from gateway.settings import GatewaySettings

# TOML: a site with none of the outputs (in-process tests that read the snapshots); put it before other tables
OUTPUTS_OFF = "[modbus]\nenabled = false\n[opcua]\nenabled = false\n[prometheus]\nenabled = false\n"


def simulated_packs(name: str, pack_ids: Sequence[str], faults: Mapping[str, str] | None = None) -> str:
    """TOML: a virtual bus on a channel of its own, the packs `pack_ids` at node addresses 1, 2, ... with serial
    numbers 1000, 1001, ..., and the simulator playing each at idle load; `faults`: a pack's TOML list of simulator
    faults (e.g. '[{kind = "silent", start_s = 8.0}]')."""
    faults = faults or {}
    channel = f"{name}-{time.monotonic_ns()}"
    lines = [f'[[buses]]\nname = "bus"\ninterface = "virtual"\nchannel = "{channel}"']
    lines += [f'[[packs]]\nid = "{pack_id}"\nbus = "bus"\nnode_address = {n}' for n, pack_id in enumerate(pack_ids, 1)]
    lines.append('[simulation]\nenabled = true\nload_profile = "idle"')
    for n, pack_id in enumerate(pack_ids, 1):
        fault = f"\nfaults = {faults[pack_id]}" if pack_id in faults else ""
        lines.append(f'[[simulation.packs]]\nnode_address = {n}\nbus = "bus"\nserial_number = {999 + n}{fault}')
    return "\n".join(lines) + "\n"


def site_in(directory: Path, toml: str) -> GatewaySettings:
    """The site of `toml`, written to `directory`/site.toml, with its store in `directory`."""
    config = directory / "site.toml"
    config.write_text(toml)
    loaded = load_settings(config)
    return loaded.model_copy(update={"store": loaded.store.model_copy(update={"path": directory / "s.sqlite"})})
