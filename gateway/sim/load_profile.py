"""The current the simulated load asks of a pack: a pure function of time (and, for "drive", a seed).

"drive" repeats a seeded cycle of discharge pulses, cruise, regenerative charge and rests whose mean
slowly discharges the pack; "constant" discharges at scale_c; "idle" asks nothing. Amplitudes are in
C (multiples of the nominal capacity per hour) times scale_c. Positive current = charging.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from gateway.sim.seeding import seeded_rng

LoadProfileKind = Literal["drive", "constant", "idle"]

DRIVE_BLOCKS = 6
# (c-rate range, duration range in s) of the four phases of one block; regen is bounded so that
# every block's net charge is negative.
_PULSE = ((-2.0, -1.2), (5.0, 15.0))
_CRUISE = ((-0.6, -0.3), (20.0, 60.0))
_REGEN = ((0.2, 0.5), (4.0, 10.0))
_REST = ((0.0, 0.0), (10.0, 30.0))


@dataclass(frozen=True)
class DriveCycle:
    starts_s: tuple[float, ...]
    c_rates: tuple[float, ...]
    period_s: float

    def c_rate_at(self, time_s: float) -> float:
        phase = time_s % self.period_s
        return self.c_rates[bisect_right(self.starts_s, phase) - 1]

    @property
    def mean_c_rate(self) -> float:
        ends = (*self.starts_s[1:], self.period_s)
        phases = zip(self.c_rates, self.starts_s, ends, strict=True)
        charge = sum(c * (end - start) for c, start, end in phases)
        return charge / self.period_s


@lru_cache(maxsize=32)
def drive_cycle(seed: int) -> DriveCycle:
    rng = seeded_rng(seed, 0xD21E)
    starts: list[float] = []
    rates: list[float] = []
    time_s = 0.0
    for _ in range(DRIVE_BLOCKS):
        for (c_low, c_high), (d_low, d_high) in (_PULSE, _CRUISE, _REGEN, _REST):
            starts.append(time_s)
            rates.append(round(float(rng.uniform(c_low, c_high)), 3))
            time_s += round(float(rng.uniform(d_low, d_high)), 1)
    return DriveCycle(tuple(starts), tuple(rates), time_s)


@dataclass(frozen=True)
class LoadProfile:
    kind: LoadProfileKind
    scale_c: float
    nominal_capacity_ah: float
    seed: int = 1

    def current_a(self, time_s: float) -> float:
        amps_per_c = self.scale_c * self.nominal_capacity_ah
        if self.kind == "idle":
            return 0.0
        if self.kind == "constant":
            return -amps_per_c
        return drive_cycle(self.seed).c_rate_at(time_s) * amps_per_c
