"""The built-in demo: 4 simulated 32S packs on an in-process virtual bus, all outputs on loopback.

Pack 3 loses its cooling and warms up slowly until the over-temperature warning (45 degC) and
then the alarm (60 degC) show; the other packs drive a repeating load profile.
"""

from __future__ import annotations

from typing import Any

DEMO_BUS = "demo"
DEMO_PACKS = 4


def demo_settings_overrides(store_path: str = "bms-gateway-demo.sqlite") -> dict[str, Any]:
    """Settings for `bms-gateway run` without a config file (environment variables still override)."""
    packs = [{"id": f"pack-{n:02d}", "bus": DEMO_BUS, "node_address": n, "series_cells": 32,
              "temperature_sensors": 8, "cell_model": "nmc-200ah"} for n in range(1, DEMO_PACKS + 1)]
    simulated = [{"node_address": n, "bus": DEMO_BUS, "series_cells": 32, "temperature_sensors": 8,
                  "cell_model": "nmc-200ah", "initial_soc": 0.45 + 0.1 * n, "serial_number": 24_001_000 + n,
                  "faults": [{"kind": "warming", "start_s": 20.0, "magnitude": 1.0}] if n == 3 else []}
                 for n in range(1, DEMO_PACKS + 1)]
    return {
        "site_name": "demo-site",
        "buses": [{"name": DEMO_BUS, "interface": "virtual", "channel": "bms-gateway-demo", "bitrate": None}],
        "packs": packs,
        "store": {"path": store_path},
        "trends": {"interval_s": 5.0, "cell_interval_s": 30.0},  # a report has something to plot after a minute
        "opcua": {"security": {"anonymous": True}},  # browsable with any client, no setup (viewer role only)
        "simulation": {"enabled": True, "packs": simulated, "load_profile": "drive", "load_scale_c": 0.5},
    }
