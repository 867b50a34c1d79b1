"""Measurement logs (format v1 of data/cells/FORMAT.md): reading and validation."""
