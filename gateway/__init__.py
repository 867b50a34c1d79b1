"""bms-gateway: battery-management logic for heavy-duty lithium packs, published to the plant."""

__version__ = "0.1.0"
