"""The SunSpec holding-register block of the site unit, encoded when first read after each new snapshot.

Encoding every model for every snapshot would cost the engine's tick rate times the packs' point count even when
nobody reads SunSpec; a read encodes at most once per snapshot and later reads slice the same image.
"""

from __future__ import annotations

from gateway.codec.sunspec_device import SunSpecDevice
from gateway.codec.sunspec_values import Image
from gateway.domain.snapshot import GatewaySnapshot


class SunSpecRegion:
    def __init__(self, device: SunSpecDevice) -> None:
        self.device = device
        self.start = device.layout.base_address
        self.end = device.layout.end_address
        self._snapshot: GatewaySnapshot | None = None
        self._image: Image = device.encode(None)
        self._encoded: GatewaySnapshot | None = None

    def publish(self, snapshot: GatewaySnapshot | None) -> None:
        self._snapshot = snapshot

    def contains(self, address: int, count: int) -> bool:
        return self.start <= address and address + count <= self.end

    def read(self, address: int, count: int) -> list[int]:
        if self._encoded is not self._snapshot:
            self._image = self.device.encode(self._snapshot)
            self._encoded = self._snapshot
        offset = address - self.start
        values: list[int] = self._image[offset : offset + count].tolist()
        return values
