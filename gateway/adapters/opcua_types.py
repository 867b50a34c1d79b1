"""The few asyncua names and typed constructors the OPC UA adapter uses, imported from where they are
defined (asyncua's package modules do not re-export them for a strict type checker)."""

from __future__ import annotations

from datetime import datetime

from asyncua import ua
from asyncua.server.server import Server
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaError

__all__ = ["ObjectIds", "Server", "StatusCodes", "UaError", "node_id", "ns0", "status", "ua_time"]


def ns0(identifier: int) -> ua.NodeId:
    """A node of the OPC UA namespace (types, reference types, standard folders)."""
    return ua.NodeId(ua.Int32(identifier), ua.Int16(0))


def node_id(path: str, namespace: int) -> ua.NodeId:
    """A string NodeId, e.g. ns=2;s=site/packs/pack-01/soc."""
    return ua.NodeId(ua.String(path), ua.Int16(namespace))


def status(code: int) -> ua.StatusCode:
    return ua.StatusCode(ua.UInt32(code))


def ua_time(moment: datetime) -> ua.DateTime:
    return ua.DateTime.fromtimestamp(moment.timestamp(), moment.tzinfo)
