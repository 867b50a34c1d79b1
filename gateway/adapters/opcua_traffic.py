"""Counters of the OPC UA server's clients for the metrics: connections, activated sessions, responses.

asyncua keeps the open connections (`BinaryServer.clients`) and the activated sessions
(`InternalSession._current_connections`) but counts no responses: `count_traffic` wraps its
`UaProcessor.send_response` (a ServiceFault, or a response with a Bad ServiceResult, is a fault) and
`OPCUAProtocol.connection_made` once per process. asyncua is pinned below 2.2 for such internals.
"""

from __future__ import annotations

from functools import wraps
from typing import Any

from asyncua import ua
from asyncua.server.binary_server_asyncio import OPCUAProtocol
from asyncua.server.internal_session import InternalSession
from asyncua.server.uaprocessor import UaProcessor

from gateway.adapters.client_traffic import ClientTraffic
from gateway.adapters.opcua_types import Server

PROCESS_TRAFFIC = ClientTraffic()  # one OPC UA server per process
_installed = False


def count_traffic() -> None:
    """Count this process's OPC UA connections and responses into PROCESS_TRAFFIC (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    send_response: Any = UaProcessor.send_response  # untyped in asyncua
    connection_made = OPCUAProtocol.connection_made

    @wraps(send_response)
    def counted_send_response(self: UaProcessor, requesthandle: Any, seqhdr: Any, response: Any,
                              *args: Any, **kwargs: Any) -> Any:
        PROCESS_TRAFFIC.requests += 1
        header = getattr(response, "ResponseHeader", None)
        if isinstance(response, ua.ServiceFault) or (header is not None and not header.ServiceResult.is_good()):
            PROCESS_TRAFFIC.exceptions += 1
        return send_response(self, requesthandle, seqhdr, response, *args, **kwargs)

    @wraps(connection_made)
    def counted_connection_made(self: OPCUAProtocol, transport: Any) -> None:
        PROCESS_TRAFFIC.connections += 1
        connection_made(self, transport)

    UaProcessor.send_response = counted_send_response  # type: ignore[method-assign]
    OPCUAProtocol.connection_made = counted_connection_made  # type: ignore[method-assign]


def traffic_now(server: Server | None) -> ClientTraffic:
    """A copy of the counters with the connections and sessions open now."""
    binary = getattr(server, "bserver", None) if server is not None else None
    return ClientTraffic(connected=len(binary.clients) if binary is not None else 0,
                         connections=PROCESS_TRAFFIC.connections, requests=PROCESS_TRAFFIC.requests,
                         exceptions=PROCESS_TRAFFIC.exceptions, sessions=InternalSession._current_connections)
