"""One Modbus TCP client connection: strict MBAP framing, requests answered at once and in order, the client known.

pymodbus 3.11's own connection handler trusts the MBAP header (it waits for up to 64 KiB a bad
length announces, and answers frames of other protocols), reads one request per TCP segment and
empties its receive buffer whenever it answers (pipelined requests are dropped), and answers an
unknown function code with a fixed frame that carries neither the request's transaction id nor
its function code. This handler frames and decodes requests itself and uses pymodbus for the PDUs:

- every complete frame in the buffer is answered, in order, inside the same `data_received`: the
  register image is in memory, so a request costs no task and no wait; when the client does not
  read its answers (the transport's write buffer passes its high-water mark) the connection stops
  being read until it does (TCP back-pressure);
- a protocol id other than 0, or a length outside 2..254 (unit id + a PDU of at most 253 bytes),
  closes the connection: the stream cannot be re-synchronised;
- an unknown function code, or one with bit 7 set, gets exception 01 echoing transaction id, unit
  id and function code;
- a PDU too short for its function code closes the connection, with one warning per client address
  and minute however often it reconnects.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Coroutine
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.server.requesthandler import ServerRequestHandler

from gateway.adapters.client_traffic import ClientTraffic
from gateway.adapters.modbus_commands import CURRENT_CLIENT, ClientInfo
from gateway.adapters.modbus_tls import peer_certificate
from gateway.adapters.per_client_interval import PerClientInterval

log = logging.getLogger(__name__)

MBAP = struct.Struct(">HHHB")  # transaction id, protocol id, length (unit id + PDU), unit id
MIN_LENGTH = 2  # unit id + function code
MAX_LENGTH = 254  # unit id + the largest PDU (253 bytes)
MODBUS_PROTOCOL_ID = 0
EXCEPTION_BIT = 0x80
WARNING_INTERVAL_S = 60.0


class ModbusConnection(ServerRequestHandler):
    """Serves one connection; every request runs with the client (address, role) in CURRENT_CLIENT."""

    def __init__(self, owner: object, traffic: ClientTraffic) -> None:
        super().__init__(owner, owner.trace_packet, owner.trace_pdu, owner.trace_connect)  # type: ignore[attr-defined,no-untyped-call]
        self.client: ClientInfo | None = None
        self._traffic = traffic
        self._counted = False

    def callback_connected(self) -> None:
        super().callback_connected()
        self.client = client_of(self.transport)
        self._traffic.connected += 1
        self._traffic.connections += 1
        self._counted = True

    def connection_lost(self, exc: Exception | None) -> None:
        # asyncio's own call, also for a connection this side closed (pymodbus then skips callback_disconnected)
        if self._counted:
            self._traffic.connected -= 1
            self._counted = False
        super().connection_lost(exc)

    def callback_data(self, data: bytes, addr: tuple[str, int] | None = None) -> int:
        used = 0
        answers: list[bytes] = []
        while len(data) - used >= MBAP.size:
            transaction_id, protocol_id, length, unit_id = MBAP.unpack_from(data, used)
            if protocol_id != MODBUS_PROTOCOL_ID or not MIN_LENGTH <= length <= MAX_LENGTH:
                self._drop(f"MBAP header {data[used:used + MBAP.size].hex(' ')} is not Modbus TCP "
                           f"(protocol id {protocol_id}, length {length}; expected 0 and 2..254)")
                return len(data)
            end = used + MBAP.size - 1 + length
            if len(data) < end:
                break
            response = self._answer(transaction_id, unit_id, data[used + MBAP.size:end])
            if response is None:
                self._write(answers)
                return len(data)
            self._traffic.requests += 1
            self._traffic.exceptions += isinstance(response, ExceptionResponse)
            answers.append(self.framer.buildFrame(response))
            used = end
        self._write(answers)
        return used

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()  # type: ignore[attr-defined]

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()  # type: ignore[attr-defined]

    def _answer(self, transaction_id: int, unit_id: int, pdu: bytes) -> ModbusPDU | None:
        """The response to one request; None when the request cannot be decoded (the connection is closed)."""
        function_code = pdu[0]
        decoder = self.framer.decoder
        if function_code == 0 or function_code & EXCEPTION_BIT or not _known(decoder, unit_id, pdu):
            response: ModbusPDU = ExceptionResponse(function_code, ExcCodes.ILLEGAL_FUNCTION)
        else:
            try:
                request: ModbusPDU | None = decoder.decode(pdu)
            except struct.error:
                request = None
            if request is None:
                self._drop(f"function code {function_code} with a {len(pdu) - 1}-byte body cannot be decoded")
                return None
            response = self._execute(request, unit_id)
        response.transaction_id = transaction_id
        response.dev_id = unit_id
        return response

    def _execute(self, request: ModbusPDU, unit_id: int) -> ModbusPDU:
        token = CURRENT_CLIENT.set(self.client)
        try:
            return _completed(request.update_datastore(self.server.context[unit_id]))
        except Exception:
            log.exception("Modbus request %s on unit %d failed; answered with exception 04", request, unit_id)
            return ExceptionResponse(request.function_code, ExcCodes.DEVICE_FAILURE)
        finally:
            CURRENT_CLIENT.reset(token)

    def _write(self, answers: list[bytes]) -> None:
        if answers and self.transport is not None:
            self.transport.write(b"".join(answers))  # type: ignore[attr-defined]

    def _drop(self, reason: str) -> None:
        self._traffic.protocol_errors += 1
        _warn_once_a_minute(self.client, f"Modbus TCP connection closed: {reason}")
        self.close()


def _completed(coroutine: Coroutine[Any, Any, ModbusPDU]) -> ModbusPDU:
    """Run a pymodbus datastore coroutine that never waits (the register image is in memory) to its result."""
    try:
        coroutine.send(None)
    except StopIteration as finished:
        result: ModbusPDU = finished.value
        return result
    coroutine.close()
    raise RuntimeError("a Modbus datastore call waited; this server answers from memory only")


def _known(decoder: object, unit_id: int, pdu: bytes) -> bool:
    try:
        return decoder.lookupPduClass(bytes((unit_id,)) + pdu) is not None  # type: ignore[attr-defined]
    except (IndexError, struct.error):
        return True  # a sub-function code cut short: known function code, refused when decoded


def client_of(transport: object) -> ClientInfo | None:
    """The client's address and, over TLS, its verified certificate's subject and role."""
    get_extra_info = getattr(transport, "get_extra_info", None)
    if get_extra_info is None:
        return None
    peer = get_extra_info("peername")
    if not peer:
        return None
    certificate = peer_certificate(transport)
    if certificate is None:
        return ClientInfo(str(peer[0]))
    return ClientInfo(str(peer[0]), tls=True, role=certificate.role, subject=certificate.subject)


_warnings = PerClientInterval(WARNING_INTERVAL_S)


def _warn_once_a_minute(client: ClientInfo | None, message: str) -> None:
    peer = "unknown client" if client is None else client.host
    log.log(logging.WARNING if _warnings.due(peer) else logging.DEBUG, "%s: %s", peer, message)
