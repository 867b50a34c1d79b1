"""Reading a YAML mapping file into plain data, with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gateway.errors import MappingError, Problem


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise MappingError([Problem(str(path), "(file)", f"cannot be read ({error.strerror})",
                                    "check the mappings_dir setting and the file name")]) from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise MappingError([Problem(str(path), "(syntax)", f"is not valid YAML ({error})",
                                    "fix the YAML syntax at the position shown")]) from error
    if not isinstance(data, dict):
        raise MappingError([Problem(str(path), "(top level)", "is not a mapping of keys to values",
                                    "start the file with `key: value` entries")])
    return data
