"""Settings: the one place defaults live.

Sources, highest priority first: BMSGW_* environment variables (nested keys joined with `__`,
e.g. `BMSGW_MODBUS__PORT=1502`), then the TOML file given to the CLI, then the defaults below.
Loading and error translation live in `gateway.config_loader`.
"""

from __future__ import annotations

from contextvars import ContextVar
from ipaddress import IPv4Network
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from gateway.bms.admission_settings import DEFAULT_ADMISSION, AdmissionSettings
from gateway.bms.balancing_settings import DEFAULT_BALANCING, BalancingSettings
from gateway.bms.derating import DeratingTable
from gateway.bms.limits_settings import DEFAULT_LIMITS, LimitsSettings

_PACKAGE_DIR = Path(__file__).resolve().parent
# installed from a wheel: gateway/mappings; a source checkout (also installed editable): the top-level mappings/
DEFAULT_MAPPINGS_DIR = (_PACKAGE_DIR / "mappings" if (_PACKAGE_DIR / "mappings").is_dir()
                        else _PACKAGE_DIR.parent / "mappings")

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
PollPeriod = Annotated[float, Field(gt=0.0, le=3600.0)]

_toml_file: ContextVar[Path | None] = ContextVar("bmsgw_toml_file", default=None)
_base_values: ContextVar[dict[str, Any] | None] = ContextVar("bmsgw_base_values", default=None)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BusSettings(_Section):
    """One CAN bus, opened with python-can (any interface python-can supports)."""

    name: Identifier
    interface: str = "socketcan"
    channel: str = "can0"
    bitrate: int | None = Field(default=500_000, ge=10_000, le=8_000_000)
    receive_own_messages: bool = False
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)
    queue_size: int = Field(default=65_536, ge=64, description="bounded receive queue; oldest dropped")
    reconnect_initial_delay_s: float = Field(default=0.5, gt=0.0, le=60.0,
                                             description="wait before reopening a lost bus; doubles per failed try")
    reconnect_max_delay_s: float = Field(default=30.0, gt=0.0, le=3600.0,
                                         description="longest wait between tries; a bus up this long starts over")
    reconnect_jitter_ratio: float = Field(default=0.0, ge=0.0, le=1.0,
                                          description="each wait shortened by up to this fraction, at random")
    poll_budget_ratio: float = Field(default=0.3, gt=0.0, le=1.0,
                                     description="share of the bit rate that polls (requests and answers) may use")


class PackSettings(_Section):
    """One battery pack: where it talks, which protocol and which cells it has."""

    id: Identifier
    bus: Identifier
    node_address: int = Field(ge=0, le=255)
    protocol: Identifier = "bmsgw-ref-v1"
    cell_model: Identifier = "nmc-200ah"
    series_cells: int = Field(default=32, ge=24, le=32)
    temperature_sensors: int = Field(default=8, ge=1, le=48)
    modbus_unit_id: int | None = Field(default=None, ge=1, le=247)
    poll_periods_s: dict[str, PollPeriod] = Field(default_factory=dict,
                                             description="this pack's own period per poll of its protocol")


class EngineSettings(_Section):
    tick_hz: float = Field(default=10.0, gt=0.0, le=100.0)
    stale_timeout_s: float = Field(default=1.0, gt=0.0, le=60.0, description="cell voltages, pack V and I")
    temperature_stale_timeout_s: float = Field(default=3.0, gt=0.0, le=600.0,
                                               description="temperature sensors (packs send them at ~1 Hz)")
    identity_request_interval_s: float = Field(default=5.0, gt=0.0)
    checkpoint_interval_s: float = Field(default=10.0, gt=0.0, le=3600.0)


class StoreSettings(_Section):
    path: Path = Path("bms-gateway.sqlite")


class EventLogSettings(_Section):
    """Retention of the safety event log (in the store's database file)."""

    retention_days: float = Field(default=365.0, gt=0.0, description="events older than this are pruned")
    max_events: int = Field(default=1_000_000, ge=1000, description="beyond this many, the oldest are pruned")


class TrendSettings(_Section):
    """The trend log (in the store's database file): what `bms-gateway report` plots."""

    enabled: bool = True
    interval_s: float = Field(default=300.0, ge=1.0, description="a row of pack figures per online pack this often")
    cell_interval_s: float = Field(default=3600.0, ge=1.0,
                                   description="per-cell voltages, temperatures, SoC, R0 and capacity this often")
    retention_days: float = Field(default=400.0, gt=0.0, description="samples older than this are pruned")


class ProtectionSettings(_Section):
    table: str = Field(default="default", min_length=1,
                       description="mappings/protection/<name>.yaml, or a path to a .yaml protection table")


class DeratingTableSection(_Section):
    """A datasheet temperature derating curve: factor 0..1 at each temperature, linear in between."""

    temperature_c: tuple[float, ...] = Field(min_length=2)
    factor: tuple[float, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _consistent(self) -> DeratingTableSection:
        self.resolved()  # equal lengths, increasing temperatures, factors within 0..1
        return self

    def resolved(self) -> DeratingTable:
        return DeratingTable(self.temperature_c, self.factor)


class LimitsSection(_Section):
    """The current-limit pipeline (docs/limits.md)."""

    temperature_ramp_c: float = Field(default=DEFAULT_LIMITS.temperature_ramp_c, gt=0.0)
    voltage_taper_v: float = Field(default=DEFAULT_LIMITS.voltage_taper_v, gt=0.0)
    charge_soc_taper: tuple[float, float] = DEFAULT_LIMITS.charge_soc_taper
    discharge_soc_taper: tuple[float, float] = DEFAULT_LIMITS.discharge_soc_taper
    ramp_up_c_rate_per_s: float = Field(default=DEFAULT_LIMITS.ramp_up_c_rate_per_s, gt=0.0)
    predicted_cells_per_step: int = Field(default=DEFAULT_LIMITS.predicted_cells_per_step, ge=1)
    charge_derating: dict[Identifier, DeratingTableSection] = Field(
        default_factory=dict, description="per cell model id: replaces the datasheet window's default ramp")
    discharge_derating: dict[Identifier, DeratingTableSection] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> LimitsSection:
        self.resolved()  # the pipeline's own checks (e.g. a taper whose ends coincide)
        return self

    def resolved(self) -> LimitsSettings:
        values = self.model_dump(exclude={"charge_derating", "discharge_derating"})
        return LimitsSettings(**values,
                              charge_derating={k: t.resolved() for k, t in self.charge_derating.items()},
                              discharge_derating={k: t.resolved() for k, t in self.discharge_derating.items()})


class AdmissionSection(_Section):
    """Pack admission (docs/admission.md): identity against the registry, and the health gate."""

    enabled: bool = Field(default=True, description="false: every pack is admitted (packs that report no identity)")
    registry: Path | None = Field(default=None, description="known / blocked packs (YAML); absent: every pack "
                                                            "that fits its slot is known")
    confirm_s: float = Field(default=DEFAULT_ADMISSION.confirm_s, ge=0.0)
    min_soh: float = Field(default=DEFAULT_ADMISSION.min_soh, ge=0.0, le=1.0)
    min_soh_resistance: float | None = Field(default=DEFAULT_ADMISSION.min_soh_resistance, ge=0.0, le=1.0)
    max_cell_spread_v: float = Field(default=DEFAULT_ADMISSION.max_cell_spread_v, gt=0.0)
    max_soc_spread: float | None = Field(default=DEFAULT_ADMISSION.max_soc_spread, gt=0.0, le=1.0)
    capacity_tolerance: float = Field(default=DEFAULT_ADMISSION.capacity_tolerance, ge=0.0, lt=1.0)

    def resolved(self) -> AdmissionSettings:
        return AdmissionSettings(**self.model_dump(exclude={"enabled", "registry"}))


HeartbeatReaction = Literal["zero_limits", "disconnect"]


class ModbusCommandSettings(_Section):
    """The Modbus command path (docs/modbus.md, Commands): off unless enabled."""

    enabled: bool = False
    allowed_clients: tuple[IPvAnyNetwork, ...] = Field(
        default=(IPv4Network("127.0.0.1/32"),),
        description="client addresses or networks (CIDR) whose writes are considered; others get exception 01")
    unlock_code: int | None = Field(default=None, ge=1, le=65535,
                                    description="written to the unlock register before state-changing commands")
    unlock_window_s: float = Field(default=30.0, gt=0.0, le=3600.0,
                                   description="how long an unlock lasts for that client (renewed by each command)")
    heartbeat_timeout_s: float | None = Field(default=None, gt=0.0, le=3600.0,
                                              description="EMS heartbeat supervision; none: not supervised")
    heartbeat_reaction: HeartbeatReaction = Field(
        default="zero_limits", description="on a lost heartbeat: zero every limit, or also open the contactors")

    @model_validator(mode="after")
    def _unlock_code_when_enabled(self) -> ModbusCommandSettings:
        if self.enabled and self.unlock_code is None:
            raise ValueError("commands are enabled without an unlock_code: set unlock_code = <1..65535>")
        return self


class ModbusSecuritySettings(_Section):
    """Modbus/TCP Security: TLS 1.2+ with mutual certificates, the client's role from its certificate
    (docs/modbus.md, Security). Off unless enabled."""

    enabled: bool = False
    port: int = Field(default=802, ge=1, le=65535, description="802 is the port the Modbus/TCP Security spec names")
    certificate: Path | None = Field(default=None, description="the gateway's certificate (PEM, chain allowed)")
    private_key: Path | None = Field(default=None, description="its private key (PEM, unencrypted)")
    client_ca: Path | None = Field(default=None, description="CA certificate(s) (PEM) that sign client certificates")
    write_roles: tuple[str, ...] = Field(
        default=("operator",), description="certificate roles whose writes the command path considers")
    plain_tcp: bool = Field(default=False, description="also serve unencrypted Modbus TCP on modbus.port, "
                                                       "read-only (commands only over TLS)")

    @model_validator(mode="after")
    def _files_when_enabled(self) -> ModbusSecuritySettings:
        missing = [key for key in ("certificate", "private_key", "client_ca") if getattr(self, key) is None]
        if self.enabled and missing:
            raise ValueError(f"security is enabled without {', '.join(missing)}: set them to PEM file paths")
        return self


class ModbusSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=5020, ge=1, le=65535)
    site_unit_id: int = Field(default=1, ge=1, le=247)
    first_pack_unit_id: int = Field(default=2, ge=1, le=247)
    map: Identifier = "native"
    sunspec: bool = Field(default=True, description="SunSpec models 1, 802, 803, 804 on the site unit from 40000")
    commands: ModbusCommandSettings = ModbusCommandSettings()
    security: ModbusSecuritySettings = ModbusSecuritySettings()


class OpcUaSecuritySettings(_Section):
    """OPC UA security (docs/opcua.md, Security): endpoints, the server's certificate, trusted clients, users."""

    none_endpoint: bool = Field(default=True, description="offer the endpoint with security policy None (no "
                                                          "signing, no encryption)")
    signed_endpoints: bool = Field(default=True, description="offer Basic256Sha256 and Aes256_Sha256_RsaPss, each "
                                                             "with Sign and with SignAndEncrypt")
    certificate: Path = Field(default=Path("opcua-pki/own/cert.der"),
                              description="the server's certificate (DER or PEM); created with the key when both "
                                          "are missing")
    private_key: Path = Field(default=Path("opcua-pki/own/key.pem"),
                              description="its RSA private key (PEM or DER, unencrypted; created with mode 0600)")
    trusted_clients_dir: Path = Field(
        default=Path("opcua-pki/trusted"),
        description="client certificates (or the CAs that issued them) accepted on signed endpoints; a refused "
                    "client's certificate is copied to the folder `rejected` beside this one")
    users_file: Path | None = Field(default=None, description="user names, roles and password hashes (TOML, "
                                                              "`bms-gateway opcua-user`); none: no user logins")
    anonymous: bool = Field(default=False, description="accept anonymous sessions, with the viewer role")

    @model_validator(mode="after")
    def _usable(self) -> OpcUaSecuritySettings:
        if not self.none_endpoint and not self.signed_endpoints:
            raise ValueError("both none_endpoint and signed_endpoints are off: no endpoint is left, turn one on")
        if self.users_file is not None and not self.signed_endpoints:
            raise ValueError("a users_file needs signed_endpoints = true (the server's certificate encrypts the "
                             "passwords; without it they would travel in plain text)")
        return self


class OpcUaSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=4840, ge=1, le=65535)
    namespace_uri: str = "urn:bms-gateway:site"
    update_interval_s: float = Field(default=0.1, gt=0.0, le=60.0, description="one batch of writes per interval")
    map: Identifier = "native"
    separate_process: bool = Field(default=True, description="serve OPC UA from a child process, so that its "
                                                             "CPU time never delays the engine")
    history_window_s: float = Field(default=3600.0, ge=0.0, le=7 * 86400.0,
                                    description="how far back HistoryRead reaches for the site's and packs' values "
                                                "(0: no history)")
    history_interval_s: float = Field(default=10.0, gt=0.0, le=3600.0,
                                      description="at most one history sample per value and interval")
    security: OpcUaSecuritySettings = OpcUaSecuritySettings()


class PrometheusSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=1, le=65535)
    cell_series: bool = Field(default=True, description="per-cell and per-sensor series (bmsgw_cell_*); 64 packs "
                              "x 32 cells add ~12,000 series: turn off for large sites")


_FAULT_FIELDS = {"dtc": ({"spn", "fmi"}, {"lamp"}), "readdress": ({"address"}, set())}  # kind: (required, optional)


class SimulatedFault(_Section):
    """A fault the built-in simulator injects into one pack (gateway/sim/faults.py describes each kind)."""

    kind: Literal["silent", "hot_cell", "weak_cell", "warming", "garbage_frames", "bad_crc", "bad_counter",
                  "contact_resistance", "leak", "unstable_current", "dtc", "readdress"]
    start_s: float = Field(default=0.0, ge=0.0)
    duration_s: float | None = Field(default=None, gt=0.0)
    cell: int = Field(default=1, ge=1)
    magnitude: float = 1.0
    spn: int | None = Field(default=None, ge=0, le=0x7FFFF, description="dtc: the trouble code's SPN (19 bits)")
    fmi: int | None = Field(default=None, ge=0, le=31, description="dtc: its failure mode identifier")
    lamp: Literal["amber_warning", "red_stop"] | None = Field(default=None, description="dtc: default amber_warning")
    address: int | None = Field(default=None, ge=0, le=253, description="readdress: the address the pack claims")

    @model_validator(mode="after")
    def _fields_of_its_kind(self) -> SimulatedFault:
        required, optional = _FAULT_FIELDS.get(self.kind, (set(), set()))
        for name in sorted({"spn", "fmi", "lamp", "address"} - required - optional):
            if getattr(self, name) is not None:
                raise ValueError(f"a {self.kind} fault has no {name}: remove it")
        missing = [name for name in sorted(required) if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind} fault needs {' and '.join(missing)}: set {', '.join(missing)} = ...")
        return self


class SimulatedPack(_Section):
    """A pack the built-in simulator plays on a bus, speaking a mapping like a real pack would."""

    node_address: int = Field(ge=0, le=255)
    bus: Identifier
    protocol: Identifier = "bmsgw-ref-v1"
    cell_model: Identifier = "nmc-200ah"
    series_cells: int = Field(default=32, ge=1, le=48)
    temperature_sensors: int = Field(default=8, ge=1, le=48)
    initial_soc: float = Field(default=0.6, ge=0.0, le=1.0)
    ambient_c: float = 25.0
    serial_number: int = Field(default=1000, ge=0, le=0xFFFFFFFF)
    faults: tuple[SimulatedFault, ...] = ()


class SimulationSettings(_Section):
    """In-process pack simulator (the demo, tests, commissioning rehearsals)."""

    enabled: bool = False
    seed: int = 1
    load_profile: Literal["drive", "constant", "idle"] = "drive"
    load_scale_c: float = Field(default=0.5, ge=0.0, le=3.0)
    status_period_s: float = Field(default=0.1, gt=0.0)
    temperature_period_s: float = Field(default=1.0, gt=0.0)
    time_scale: float = Field(default=1.0, gt=0.0, le=1000.0, description="simulated seconds per real second")
    truth_file: Path | None = None
    packs: tuple[SimulatedPack, ...] = ()


class InverterCanSettings(_Section):
    """The site as one battery to an inverter or charger, on the common battery CAN protocol (docs/battery-can.md)."""

    enabled: bool = False
    bus: Identifier = "inverter"  # a [[buses]] entry; packs may share it
    mapping: Identifier = "battery-can-v1"  # mappings/inverter/<mapping>.yaml
    period_s: float = Field(default=1.0, ge=0.1, le=5.0, description="the whole frame set, also the keep-alive")
    stale_after_s: float = Field(default=3.0, gt=0.0, le=60.0,
                                 description="an older snapshot (engine stalled) sends the safe state")
    safe_charge_voltage_v: float | None = Field(
        default=None, gt=0.0, description="CVL in the safe state; default: the lowest pack's series cells x nominal")
    safe_discharge_voltage_v: float | None = Field(
        default=None, gt=0.0, description="DVL in the safe state; default: the highest pack's minimum voltage")
    manufacturer: str = Field(default="BMS-GW", pattern=r"^[ -~]{1,8}$", description="frame 0x35E, ASCII")
    shutdown_repeats: int = Field(default=3, ge=1, le=20, description="safe frame sets sent when the gateway stops")
    keepalive_timeout_s: float | None = Field(default=10.0, gt=0.0,
                                              description="warn when the inverter's 0x305 stops; None: not watched")


class GatewaySettings(BaseSettings):
    """Everything the gateway needs to run; validated once at start."""

    model_config = SettingsConfigDict(
        env_prefix="BMSGW_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    site_name: Identifier = "site"
    mappings_dir: Path = DEFAULT_MAPPINGS_DIR
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"  # json: one object per line, for a log shipper (gateway/log_setup.py)
    buses: tuple[BusSettings, ...] = ()
    packs: tuple[PackSettings, ...] = ()
    engine: EngineSettings = EngineSettings()
    store: StoreSettings = StoreSettings()
    events: EventLogSettings = EventLogSettings()
    trends: TrendSettings = TrendSettings()
    protection: ProtectionSettings = ProtectionSettings()
    limits: LimitsSection = LimitsSection()
    balancing: BalancingSettings = DEFAULT_BALANCING
    admission: AdmissionSection = AdmissionSection()
    modbus: ModbusSettings = ModbusSettings()
    opcua: OpcUaSettings = OpcUaSettings()
    prometheus: PrometheusSettings = PrometheusSettings()
    simulation: SimulationSettings = SimulationSettings()
    inverter_can: InverterCanSettings = InverterCanSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _toml_file.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        base_values = _base_values.get()
        if base_values is not None:
            sources.append(InitSettingsSource(settings_cls, init_kwargs=base_values))
        return tuple(sources)

    @classmethod
    def from_sources(cls, toml_file: Path | None, base_values: dict[str, Any] | None = None) -> GatewaySettings:
        """Build from base values (lowest priority), an optional TOML file, then the environment.

        Raises pydantic's ValidationError; `gateway.config_loader` turns it into a ConfigError.
        """
        file_token = _toml_file.set(toml_file)
        base_token = _base_values.set(base_values)
        try:
            return cls()
        finally:
            _toml_file.reset(file_token)
            _base_values.reset(base_token)

    def unit_id_of(self, pack: PackSettings) -> int:
        """The Modbus unit id of a pack: configured, or assigned in configuration order."""
        if pack.modbus_unit_id is not None:
            return pack.modbus_unit_id
        return self.modbus.first_pack_unit_id + self.packs.index(pack)
