"""The poller on a clock the test steps: schedules, timeouts and retries, the bus-load budget, keep-alives; and the
mapping checks of `polls:`."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from gateway.codec.can_decoder import FrameDecoder
from gateway.codec.can_encoder import FrameEncoder
from gateway.codec.protocol import PackProtocol, load_protocol
from gateway.domain.frames import CanFrame
from gateway.domain.measurement import ArrayField
from gateway.errors import MappingError
from gateway.runtime.bus_counters import BusCounters
from gateway.runtime.pack_link import PackLink
from gateway.runtime.poller import BusPoller, PolledPack, Staleness, frame_bits, poll_cost_bits
from gateway.settings import DEFAULT_MAPPINGS_DIR

SIZES = {ArrayField.CELL_VOLTAGE_V: 32, ArrayField.TEMPERATURE_C: 8}
STALENESS = Staleness(1.0, 3.0)


@pytest.fixture(scope="module")
def protocol() -> PackProtocol:
    return load_protocol(DEFAULT_MAPPINGS_DIR, "bmsgw-poll-v1")


class Wire:
    """What the poller sends, decoded as a pack would read it."""

    def __init__(self, protocol: PackProtocol) -> None:
        self.decoder = FrameDecoder([protocol], direction="to_pack")
        self.sent: list[tuple[int, str]] = []  # (node, message)
        self.up = True

    def send(self, arbitration_id: int, data: bytes, extended: bool) -> bool:
        assert extended
        decoded = self.decoder.decode(CanFrame("cabinet", arbitration_id, data, 0.0))
        self.sent.append((decoded.node_address, decoded.message))
        return self.up


def poller_of(protocol: PackProtocol, wire: Wire, nodes: int = 1, bitrate: int = 500_000,
              periods: dict[str, float] | None = None) -> tuple[BusPoller, BusCounters]:
    counters = BusCounters("cabinet")
    encoder = FrameEncoder(protocol)
    packs = [PolledPack(i, f"slot-{i + 1}", PackLink(i, i + 1, encoder, lambda _i, _d: True), protocol, SIZES,
                        periods or {}) for i in range(nodes)]
    return BusPoller(counters, bitrate, 0.3, packs, wire.send, STALENESS, clock=lambda: 0.0), counters


def test_an_answered_poll_counts_its_response_time(protocol: PackProtocol) -> None:
    wire = Wire(protocol)
    poller, counters = poller_of(protocol, wire)
    poller.start(0.0)
    poller.step(0.0)
    assert sorted(wire.sent) == [(1, "StatusRequest"), (1, "TemperatureRequest")]
    poller.received(0, "PackStatus", 0.004)
    poller.received(0, "CellVoltages", 0.012)
    poller.step(0.2)  # after the timeout, but the status poll was answered in full
    status = next(p for p in counters.statistics().polls if p.poll == "status")
    assert status.responses == 1
    assert status.timeouts == 0
    assert math.isclose(status.last_response_time_s, 0.012)
    assert status.recent_success_ratio == 1.0
    temperatures = next(p for p in counters.statistics().polls if p.poll == "temperatures")
    assert temperatures.timeouts == 1  # unanswered: tried again
    assert temperatures.retries == 1


def test_a_partial_answer_times_out_and_is_retried_then_fails(protocol: PackProtocol) -> None:
    wire = Wire(protocol)
    poller, counters = poller_of(protocol, wire)
    poller.start(0.0)
    now = 0.0
    poller.step(now)
    poller.received(0, "PackStatus", 0.001)  # the cell voltages never come
    for _ in range(3):
        now += 0.051
        poller.step(now)
    status = next(p for p in counters.statistics().polls if p.poll == "status")
    assert status.requests == 3
    assert status.timeouts == 3
    assert status.retries == 2
    assert status.failures == 1
    assert status.responses == 0
    assert status.recent_success_ratio == 0.0
    assert wire.sent.count((1, "StatusRequest")) == 3
    poller.step(0.25)  # the next period's poll goes out on time
    assert wire.sent.count((1, "StatusRequest")) == 4


def test_polls_run_at_a_fixed_rate_spread_over_the_packs(protocol: PackProtocol) -> None:
    wire = Wire(protocol)
    poller, _ = poller_of(protocol, wire, nodes=2, periods={"status": 0.5})
    poller.start(0.0)
    times: dict[int, list[float]] = {1: [], 2: []}
    now = 0.0
    while now < 2.0:
        before = len(wire.sent)
        poller.step(now)
        for node, message in wire.sent[before:]:
            if message == "StatusRequest":
                times[node].append(now)
                poller.received(node - 1, "PackStatus", now)
                poller.received(node - 1, "CellVoltages", now)
        now = round(now + 0.01, 6)
    assert times[1][:4] == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert times[2][:4] == pytest.approx([0.25, 0.75, 1.25, 1.75])  # the second pack half a period later


def test_an_over_budget_bus_stretches_every_period_and_defers_bursts(protocol: PackProtocol) -> None:
    wire = Wire(protocol)
    pack = PolledPack(0, "slot-1", PackLink(0, 1, FrameEncoder(protocol), lambda _i, _d: True), protocol, SIZES)
    status_cost = poll_cost_bits(pack, protocol.polls["status"])
    assert status_cost == pytest.approx(frame_bits(8, extended=True) * (1 + 1 + 11))  # request, status, 11 pages
    poller, counters = poller_of(protocol, wire, nodes=4, bitrate=50_000)
    planned = 4 * (status_cost / 0.25 + poll_cost_bits(pack, protocol.polls["temperatures"]) / 1.0)
    stretch = planned / (0.3 * 50_000)
    assert stretch > 1.0
    statistics = counters.statistics()
    assert statistics.poll_load_ratio == pytest.approx(0.3)
    assert all(p.period_s == pytest.approx((0.25 if p.poll == "status" else 1.0) * stretch) for p in statistics.polls)
    poller.start(0.0)
    poller.step(0.0)  # the first pack's two polls are due at once; the bucket holds one status poll
    assert wire.sent == [(1, "StatusRequest")]
    assert counters.polls_deferred == 1
    poller.received(0, "PackStatus", 0.01)
    poller.received(0, "CellVoltages", 0.01)
    poller.step(0.01)  # not yet refilled
    assert len(wire.sent) == 1
    poller.step(0.2)
    assert wire.sent[1] == (1, "TemperatureRequest")


def test_a_keep_alive_has_no_answer_and_fails_only_when_not_sent(protocol: PackProtocol, tmp_path: Path) -> None:
    source = tmp_path / "can"
    shutil.copytree(DEFAULT_MAPPINGS_DIR / "can", source)
    text = (source / "bmsgw-poll-v1.yaml").read_text().replace("polls:\n", """polls:
  alive:
    request: IdentityRequest
    period_s: 1.0
""").replace("protocol: bmsgw-poll-v1", "protocol: keepalive")
    (source / "keepalive.yaml").write_text(text)
    keepalive = load_protocol(tmp_path, "keepalive")
    wire = Wire(keepalive)
    poller, counters = poller_of(keepalive, wire)
    poller.start(0.0)
    poller.step(0.0)
    wire.up = False
    poller.step(1.0)
    alive = next(p for p in counters.statistics().polls if p.poll == "alive")
    assert alive.requests == 2
    assert alive.responses == 1
    assert alive.failures == 1
    assert alive.timeouts == 0


@pytest.mark.parametrize(("change", "key", "words"), [
    ("request: StatusRequest", "polls.status.request", "'PackStatus' is not a to_pack message"),
    ("responses: [PackStatus, CellVoltages]", "polls.status.responses", "'StatusRequest' is not a from_pack"),
    ("timeout_s: 0.05", "polls.status.timeout_s", "3 tries of 0.2 s do not fit in the period of 0.25 s"),
])
def test_a_bad_poll_is_refused_with_its_key(tmp_path: Path, change: str, key: str, words: str) -> None:
    source = tmp_path / "can"
    shutil.copytree(DEFAULT_MAPPINGS_DIR / "can", source)
    replacement = {"request: StatusRequest": "request: PackStatus",
                   "responses: [PackStatus, CellVoltages]": "responses: [StatusRequest]",
                   "timeout_s: 0.05": "timeout_s: 0.2"}[change]
    text = (source / "bmsgw-poll-v1.yaml").read_text()
    assert change in text
    (source / "bmsgw-poll-v1.yaml").write_text(text.replace(change, replacement, 1))
    with pytest.raises(MappingError) as error:
        load_protocol(tmp_path, "bmsgw-poll-v1")
    message = str(error.value)
    assert key in message
    assert words in message
