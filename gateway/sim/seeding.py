"""Seeded random generators: every random choice of the simulator derives from settings.seed."""

from __future__ import annotations

import numpy as np


def seeded_rng(*keys: int) -> np.random.Generator:
    """A generator determined by `keys` (any integers, negative ones included)."""
    return np.random.default_rng([key % (1 << 64) for key in keys])
