"""Thresholds of the predictive warnings (docs/predictive.md gives the reasoning and the measured figures)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ResistanceRiseSettings:
    """A cell's R0 above the mean of its peers', from the voltage steps at current steps, relative to the model's
    10 s pulse resistance (about 1.2 x R0)."""

    excess: float = 0.15  # (R0 - mean R0 of the other cells) / pulse resistance; manufacturing spread: up to 0.09
    clear: float = 0.12  # an active warning clears below this
    hold_s: float = 300.0
    min_step_c_rate: float = 0.1  # current steps smaller than this are left out
    max_step_interval_s: float = 2.5  # two samples further apart than this are no step
    time_constant_s: float = 1800.0  # old steps fade: the statistic follows a rise within about this time
    min_excitation_c2: float = 5.0  # sum of the squared steps (in C^2, faded) before a verdict: 20 steps of 0.5 C
    period_s: float = 10.0  # the threshold is checked every period, not every tick


@dataclass(frozen=True)
class LocalHeatingSettings:
    """A sensor warmer than the median of the pack's other sensors, low-pass filtered."""

    excess_c: float = 5.0  # sensor offsets (+-1 degC) and uneven I^2 R heating stay below about 2 degC
    clear_c: float = 4.0
    filter_time_constant_s: float = 60.0
    hold_s: float = 60.0
    period_s: float = 1.0  # temperatures arrive about once a second


@dataclass(frozen=True)
class SocDriftSettings:
    """A cell's SoC falling away from its peers' median while the pack rests: a leak (self-discharge, soft short).

    Only settled rest counts: under load, capacity spread moves cells apart by far more than a leak does. How
    noisy the leak estimates are depends on the rest's length and on the OCV's slope at the pack's SoC (four times
    noisier at 90 % than at 50 % for NMC), so a cell must also stand out from the spread of its pack's estimates:
    z = (leak - median) / (1.4826 x median absolute deviation) over the pack's cells.
    """

    rest_current_c_rate: float = 0.02  # the pack rests while |current| stays below this ...
    rest_filter_time_constant_s: float = 10.0  # ... low-pass filtered with this time constant
    settle_s: float = 1800.0  # relaxation after load moves the estimated SoC; wait before sampling
    sample_period_s: float = 60.0
    max_soc_sigma: float = 0.05  # cells less certain than this are left out
    leak_c_rate: float = 5e-4  # warn above this leak (C/2000, half the C/1000 target) ...
    min_z: float = 6.0  # ... standing out this far from the pack's other cells (in robust sigmas, see below)
    noise_floor_c_rate: float = 5e-5  # the robust sigma is taken as at least this
    clear_c_rate: float = 4e-4
    min_rest_s: float = 3600.0  # equivalent continuous settled rest before a leak estimate is given
    max_segment_s: float = 6 * 3600.0  # a longer rest is cut into segments so that old ones can fade
    memory_s: float = 24 * 3600.0  # segments fade with this time constant
    hold_s: float = 600.0


@dataclass(frozen=True)
class UnstableCurrentSettings:
    """Reversals of large current steps: the current swinging back and forth, beyond the pack's own habit."""

    step_c_rate: float = 0.1  # a step at least this large counts; the sensor's noise is about 0.004 C
    reversal_gap_s: float = 2.5  # a step opposite to the previous one within this time is a reversal
    rate_time_constant_s: float = 120.0
    baseline_time_constant_s: float = 3600.0
    ratio: float = 3.0  # warn above this multiple of the pack's baseline reversal rate ...
    floor_per_min: float = 30.0  # ... and above this rate (a drive cycle reaches about 15 per minute)
    clear_fraction: float = 0.8  # of the threshold: an active warning clears below it
    hold_s: float = 30.0


@dataclass(frozen=True)
class PredictiveSettings:
    resistance: ResistanceRiseSettings = field(default_factory=ResistanceRiseSettings)
    heating: LocalHeatingSettings = field(default_factory=LocalHeatingSettings)
    drift: SocDriftSettings = field(default_factory=SocDriftSettings)
    current: UnstableCurrentSettings = field(default_factory=UnstableCurrentSettings)
    min_peers: int = 3  # a peer-relative statistic needs at least this many other known cells or sensors


DEFAULT_PREDICTIVE = PredictiveSettings()
