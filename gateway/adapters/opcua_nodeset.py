"""The gateway's namespace as a NodeSet2 XML document (OPC UA Part 6, Annex F), for engineering tools.

The document is written by asyncua's XmlExporter from a server whose address space the real output
built (`OpcUaOutput.prepare`), so it holds exactly what a client browses: the object types with their
InstanceDeclarations, the enumerations, the gateway object, the site, its packs and their array
elements. Only the nodes of the gateway's namespace are exported; the OPC UA namespace (0) is the one
required model. Values are exported where they are constant (EURange, EngineeringUnits, EnumValues,
BandEdges, the gateway's identity); variables that wait for a snapshot have none, and neither has
StartTime, which describes a running server rather than the model.

asyncua's exporter writes NamespaceUris and Aliases but no model table: `Models` (this namespace as the
model, at the software's version and build date, requiring the OPC UA namespace) and the document's
LastModified are added here, where the NodeSet2 schema wants them; and it names an ExtensionObject's
DataType where the XML encoding belongs, which is corrected.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as Et
from datetime import UTC, datetime

from asyncua import ua
from asyncua.common.xmlexporter import XmlExporter
from asyncua.ua.object_ids import ObjectIdNames

from gateway.adapters.opcua_types import ObjectIds, Server, StatusCodes, UaError, node_id, ns0, status
from gateway.codec.node_model import gateway_path
from gateway.errors import AdapterError

UA_NAMESPACE_URI = "http://opcfoundation.org/UA/"
NODESET_XML_NAMESPACE = "http://opcfoundation.org/UA/2011/03/UANodeSet.xsd"
# The OPC UA version the model needs (DataTypeDefinition and MultiStateValueDiscreteType are 1.04).
REQUIRED_UA_VERSION = "1.04"
REQUIRED_UA_PUBLICATION_DATE = "2017-11-22T00:00:00Z"
RUNTIME_VALUES = (gateway_path("start_time"),)  # NodeId paths whose value is not part of the model
_EXPORTER_LOG = "asyncua.common.xmlexporter"


async def export_nodeset(server: Server, namespace: int) -> bytes:
    """The NodeSet2 XML (UTF-8) of every node in `namespace`, in the order they were added."""
    for path in RUNTIME_VALUES:
        await server.write_attribute_value(node_id(path, namespace), ua.DataValue(
            StatusCode=status(StatusCodes.BadWaitingForInitialData)))
    node_ids = namespace_node_ids(server, namespace)
    exporter_log = logging.getLogger(_EXPORTER_LOG)
    exporter_log.addFilter(_drop_values_warning)  # values are exported on purpose, and only simple ones
    try:
        exporter = XmlExporter(server, export_values=True)
        await exporter.build_etree([server.get_node(nid) for nid in node_ids])  # type: ignore[no-untyped-call]
    except UaError as error:
        raise AdapterError(f"the NodeSet cannot be exported ({error})") from error
    finally:
        exporter_log.removeFilter(_drop_values_warning)
    version, built = await _build_info(server)
    namespace_uri = (await server.get_namespace_array())[namespace]
    root = exporter.etree.getroot()
    if root is None:
        raise AdapterError("the NodeSet cannot be exported (asyncua's exporter built no document)")
    _use_xml_encodings(root)
    root.set("LastModified", _xml_time(built))
    _insert_models(root, namespace_uri, version, _xml_time(built))
    Et.indent(root, space="  ")
    document: bytes = Et.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def namespace_node_ids(server: Server, namespace: int) -> list[ua.NodeId]:
    """Every node of `namespace` in the server's address space, in the order they were added."""
    every = server.iserver.aspace.keys()  # asyncua's address space is no mapping: keys() is its only listing
    return [nid for nid in every if nid.NamespaceIndex == namespace]


def _insert_models(root: Et.Element, namespace_uri: str, version: str, published: str) -> None:
    """`Models` after NamespaceUris (and ServerUris), before Aliases, as the schema's sequence wants."""
    models = Et.Element("Models")
    model = Et.SubElement(models, "Model", ModelUri=namespace_uri, Version=version, PublicationDate=published)
    Et.SubElement(model, "RequiredModel", ModelUri=UA_NAMESPACE_URI, Version=REQUIRED_UA_VERSION,
                  PublicationDate=REQUIRED_UA_PUBLICATION_DATE)
    position = sum(1 for child in root if child.tag in ("NamespaceUris", "ServerUris"))
    root.insert(position, models)


def _use_xml_encodings(root: Et.Element) -> None:
    """An ExtensionObject's TypeId names the DataType's DefaultXml encoding (as in the OPC Foundation's own
    NodeSets: EnumValueType is i=7616, not i=7594); asyncua writes the DataType, which loaders such as
    node-opcua then cannot decode (the EURange, EngineeringUnits and EnumValues would arrive empty)."""
    for type_id in root.iter("uax:TypeId"):
        for identifier in type_id:
            if identifier.tag == "uax:Identifier" and identifier.text is not None:
                identifier.text = _xml_encoding(identifier.text)


def _xml_encoding(data_type: str) -> str:
    node = ua.NodeId.from_string(data_type)
    if node.NamespaceIndex != 0 or not isinstance(node.Identifier, int) or node.Identifier not in ObjectIdNames:
        return data_type
    encoding = getattr(ObjectIds, f"{ObjectIdNames[node.Identifier]}_Encoding_DefaultXml", None)
    return data_type if encoding is None else f"i={encoding}"


async def _build_info(server: Server) -> tuple[str, datetime]:
    """The server's BuildInfo: the software version and build date the model is published with."""
    version = await server.get_node(ns0(ObjectIds.Server_ServerStatus_BuildInfo_SoftwareVersion)).read_value()
    built = await server.get_node(ns0(ObjectIds.Server_ServerStatus_BuildInfo_BuildDate)).read_value()
    return str(version), built


def _xml_time(moment: datetime) -> str:
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def _drop_values_warning(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Exporting values of variables is limited")
