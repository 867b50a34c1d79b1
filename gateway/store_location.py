"""Which database file an offline command (`events`, `ack`, `reset`) works on: `--store`, or a site
configuration's `[store] path`, or the built-in demo's."""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.config_loader import load_settings
from gateway.demo import demo_settings_overrides
from gateway.errors import AdapterError


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--store", type=Path, metavar="PATH", help="the gateway's database file")
    source.add_argument("--config", type=Path, metavar="FILE", help="site configuration whose [store] path to use "
                        "(default: the built-in demo's, or BMSGW_STORE__PATH)")


def existing_store(arguments: argparse.Namespace) -> Path:
    """The database file the arguments name; AdapterError with the fix when it does not exist."""
    path: Path = arguments.store if arguments.store is not None else configured_store(arguments.config)
    if not path.is_file():
        raise AdapterError(f"store {path}: no such database file; fix: give the gateway's [store] path with "
                           "--store PATH, or its site configuration with --config FILE")
    return path


def configured_store(config: Path | None) -> Path:
    """The store the gateway uses with the same --config (or, without one, the demo `run` starts)."""
    if config is not None:
        return load_settings(config).store.path
    return load_settings(None, demo_settings_overrides()).store.path
