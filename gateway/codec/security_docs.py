"""The Modbus/TCP Security section of the generated docs/modbus.md."""

from __future__ import annotations

from gateway.settings import ModbusSettings

ROLE_EXTENSION_OID = "1.3.6.1.4.1.50316.802.1"


def security_section(modbus: ModbusSettings) -> list[str]:
    security = modbus.security
    if security.enabled:
        plain = (f"plain Modbus TCP stays on {modbus.port}, read-only" if security.plain_tcp
                 else "plain Modbus TCP is off")
        state = f"on in these settings: TLS on port **{security.port}**, {plain}"
    else:
        state = "off in these settings (the default)"
    return [
        "## Modbus/TCP Security",
        "",
        f"Modbus/TCP Security (TLS, the Modbus Organization's MB-TCP-Security spec) is {state}. "
        "Settings `[modbus.security]`:",
        "",
        "```toml",
        "[modbus.security]",
        "enabled = true",
        "port = 802                                 # the port the spec names; same host as [modbus]",
        'certificate = "/etc/bms-gateway/modbus.pem"   # the gateway\'s certificate (PEM, chain allowed)',
        'private_key = "/etc/bms-gateway/modbus.key"   # its private key (PEM, unencrypted: protect the file)',
        'client_ca = "/etc/bms-gateway/plant-ca.pem"   # the CA(s) that sign client certificates',
        'write_roles = ["operator"]                 # roles whose writes the command path considers',
        "plain_tcp = false                          # true: also plain Modbus TCP on modbus.port, read-only",
        "```",
        "",
        "- TLS 1.2 or 1.3 only. Every client must present a certificate that chains to `client_ca` and is within "
        "its validity period; otherwise the handshake fails and the connection is closed before any Modbus "
        "request is read (refused handshakes are not logged: diagnose with `openssl s_client`, below).",
        f"- The client's **role** is the certificate extension `{ROLE_EXTENSION_OID}` (an ASN.1 UTF8String, as "
        "the spec defines it). A role in `write_roles` may write the command registers (*Commands*: allowed "
        "clients, unlock and validation still apply); any other role, no role extension, or one that is not a "
        "UTF8String reads everything and gets exception 01 for every write.",
        "- With security on, writes over plain Modbus TCP are refused (exception 01) even from an allowed "
        "address; a refused writer is an event (`bms-gateway events`, code `write`) once a minute per client. "
        "Events name TLS clients as `modbus/tls <address> (<certificate subject>, role <role>)`.",
        "- `check-config` loads the certificate, key and CA and names the file and key of any that cannot be "
        "used; the gateway warns at start when its certificate expires within 30 days.",
        "",
        "A client certificate with the operator role, signed by the plant CA (OpenSSL 3):",
        "",
        "```sh",
        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ems.key -out ems.csr \\",
        '  -subj "/CN=ems-1"',
        "cat > ems.ext <<'END'",
        "basicConstraints = critical, CA:FALSE",
        "extendedKeyUsage = clientAuth",
        f"{ROLE_EXTENSION_OID} = ASN1:UTF8String:operator",
        "END",
        "openssl x509 -req -in ems.csr -CA plant-ca.pem -CAkey plant-ca.key -CAcreateserial -days 365 \\",
        "  -extfile ems.ext -out ems.pem",
        "```",
        "",
        "Check a connection by hand (reads site input registers 0-3; the reply is the MBAP frame in hex):",
        "",
        "```sh",
        "printf '\\x00\\x01\\x00\\x00\\x00\\x06\\x01\\x04\\x00\\x00\\x00\\x04' | openssl s_client -quiet \\",
        f"  -connect gateway:{security.port} -CAfile plant-ca.pem -cert ems.pem -key ems.key | xxd",
        "```",
        "",
    ]
