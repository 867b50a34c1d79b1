"""`bms-gateway cell fit`: cell models from OCV and HPPC characterization tests."""
