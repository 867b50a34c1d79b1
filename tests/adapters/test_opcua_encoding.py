"""The writer's lean DataValue encoding gives asyncua's own bytes, for every data type and quality."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from asyncua import ua
from asyncua.ua.ua_binary import struct_to_binary

from gateway.adapters.opcua_encoding import Stamps, encode_bad, encode_good, encode_text
from gateway.adapters.opcua_types import StatusCodes
from gateway.codec.node_model import DataType

SOURCE = datetime(2026, 11, 21, 9, 30, 15, 123_456, tzinfo=UTC)
SERVER = datetime(2026, 11, 21, 9, 30, 15, 987_654, tzinfo=UTC)
STAMPS = Stamps.of(SOURCE, SERVER)
VARIANT = {DataType.DOUBLE: ua.VariantType.Double, DataType.BOOLEAN: ua.VariantType.Boolean,
           DataType.INT32: ua.VariantType.Int32, DataType.UINT32: ua.VariantType.UInt32,
           DataType.STRING: ua.VariantType.String}


def asyncua_bytes(variant: ua.Variant, status: int = StatusCodes.Good) -> bytes:
    return struct_to_binary(ua.DataValue(variant, StatusCode=ua.StatusCode(ua.UInt32(status)),
                                         SourceTimestamp=SOURCE, ServerTimestamp=SERVER))


@pytest.mark.parametrize(("data_type", "value"), [
    (DataType.DOUBLE, 3.6125), (DataType.DOUBLE, -1e-300), (DataType.DOUBLE, float("inf")), (DataType.DOUBLE, 0.0),
    (DataType.BOOLEAN, True), (DataType.BOOLEAN, False),
    (DataType.INT32, -(2**31)), (DataType.INT32, 2**31 - 1), (DataType.UINT32, 0), (DataType.UINT32, 2**32 - 1),
    (DataType.STRING, ""), (DataType.STRING, "NMC 200 Ah, 25 °C"), (DataType.STRING, "x" * 70_000),
])
def test_a_good_value_is_encoded_as_asyncua_does(data_type: DataType, value: float | int | bool | str) -> None:
    assert encode_good(data_type, value, STAMPS) == asyncua_bytes(ua.Variant(value, VARIANT[data_type]))


@pytest.mark.parametrize("status", [StatusCodes.BadNoCommunication, StatusCodes.BadWaitingForInitialData])
def test_a_bad_value_has_no_number_like_asyncua(status: int) -> None:
    assert encode_bad(status, STAMPS) == asyncua_bytes(ua.Variant(), status)


def test_a_text_value_is_a_localized_text_without_locale() -> None:
    text = ua.Variant(ua.LocalizedText("Ladebetrieb"), ua.VariantType.LocalizedText)
    assert encode_text("Ladebetrieb", STAMPS) == asyncua_bytes(text)


def test_the_stamps_are_the_pass_times_in_100_ns_ticks_since_1601() -> None:
    assert STAMPS.source == ua.datetime_to_win_epoch(SOURCE)
    assert STAMPS.server - STAMPS.source == 8_641_980  # 0.864198 s
