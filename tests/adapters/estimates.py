"""Snapshots whose state-estimator values differ from pack to pack, for the output tests."""

from __future__ import annotations

import dataclasses

from gateway.domain.snapshot import GatewaySnapshot, PackSnapshot


def _pack_with_own_estimates(pack: PackSnapshot) -> PackSnapshot:
    """The pack with estimator values of its own (the factory gives every pack the same ones), so a
    value read from the wrong pack, cell or band cannot pass for the right one."""
    i = pack.index
    return dataclasses.replace(
        pack,
        soc_sigma=pack.soc_sigma + 0.001 * i,
        soh_resistance=pack.soh_resistance - 0.01 * i,
        current_bias_a=pack.current_bias_a + 0.25 * i,
        cell_soc_sigma=tuple(v + 0.002 * i for v in pack.cell_soc_sigma),
        cell_capacity_ah=tuple(v - 1.5 * i for v in pack.cell_capacity_ah),
        cell_resistance_ohm=tuple(v + 0.00002 * i for v in pack.cell_resistance_ohm),
        time_at_temperature_s=tuple(v + 100.0 * i + n for n, v in enumerate(pack.time_at_temperature_s)),
        time_at_soc_s=tuple(v + 1000.0 * i + 0.5 * n for n, v in enumerate(pack.time_at_soc_s)),
    )


def with_own_estimates(snapshot: GatewaySnapshot) -> GatewaySnapshot:
    """`snapshot` with estimator values of each pack's own (see `_pack_with_own_estimates`)."""
    return dataclasses.replace(snapshot, packs=tuple(_pack_with_own_estimates(p) for p in snapshot.packs))
