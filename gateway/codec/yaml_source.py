"""Reading a YAML mapping file into plain data, with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from gateway.errors import MappingError, Problem
from gateway.validation_problems import problems_from_validation_error

ModelT = TypeVar("ModelT", bound=BaseModel)


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


def load_validated_mapping(path: Path, model: type[ModelT]) -> ModelT:
    """Read a YAML mapping file and validate it into `model`; every problem names the file and key."""
    raw = load_yaml_mapping(path)
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise MappingError(problems_from_validation_error(error, lambda _: str(path))) from error
