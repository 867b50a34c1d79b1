"""The pack registry file (YAML): known and blocked packs, and the policy for unknown ones (docs/admission.md).

    policy:
      unknown: refuse            # or admit_if_healthy
    known:
      - {serial: "0000001001", chemistry: nmc, cell_count: 32, nominal_capacity_ah: 200, note: "truck 7"}
    blocked:
      - {serial: "0000001013", reason: "swollen cell found at inspection"}

Every scalar is read as the text written (YAML's own typing is not applied, except that an empty value or an
unquoted `null` / `~` is empty), so a serial keeps its leading zeros whether quoted or not (YAML would read
0000001001 as the octal number 513). Every problem is reported at once as a
`ConfigError` naming the file and line, the key (`known[2].serial`) and the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from gateway.bms.admission_settings import BlockedPack, KnownPack, PackRegistry, UnknownPackPolicy, serial_key
from gateway.domain.states import Chemistry
from gateway.errors import ConfigError, Problem
from gateway.validation_problems import EntryError, dotted_key, problems_from_validation_error

_SETTING = "the [admission] registry setting"
_EXAMPLE = "see examples/pack-registry.yaml"
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})

Serial = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Known(_Entry):
    serial: Serial
    chemistry: Literal["nmc", "lfp", "lto", "nca"] | None = None
    cell_count: int | None = Field(default=None, ge=1, le=255)
    nominal_capacity_ah: float | None = Field(default=None, gt=0.0, le=10_000.0)
    note: str = ""

    @field_validator("chemistry", mode="before")
    @classmethod
    def _lower_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("note", mode="before")
    @classmethod
    def _no_note(cls, value: Any) -> Any:
        return "" if value is None else value


class _Blocked(_Entry):
    serial: Serial
    reason: str = Field(max_length=500)

    @field_validator("reason", mode="before")
    @classmethod
    def _given(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            raise EntryError((), "is empty", "say why the pack is blocked (it is shown in the event log)")
        return value


class _Policy(_Entry):
    unknown: Literal["refuse", "admit_if_healthy"] = "refuse"


class _RegistryFile(_Entry):
    policy: _Policy = _Policy()
    known: tuple[_Known, ...] = ()
    blocked: tuple[_Blocked, ...] = ()

    @field_validator("known", "blocked", "policy", mode="before")
    @classmethod
    def _empty(cls, value: Any, info: ValidationInfo) -> Any:
        """`known:` with nothing after it is an empty list (an empty `policy:` takes the defaults)."""
        if value is None:
            return {} if info.field_name == "policy" else ()
        return value


def load_pack_registry(path: Path) -> PackRegistry:
    """Read and validate a registry file; ConfigError lists every problem with file:line, key and fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError([Problem(str(path), "(file)", f"cannot be read ({error.strerror})",
                                   f"check the path in {_SETTING} (relative paths start at the working directory)")]
                          ) from error
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        raise ConfigError([Problem(str(path), "(syntax)", f"is not valid YAML ({error})",
                                   "fix the YAML syntax at the position shown")]) from error
    if not isinstance(root, yaml.MappingNode):
        line = f":{root.start_mark.line + 1}" if root is not None else ""
        raise ConfigError([Problem(f"{path}{line}", "(top level)", "is empty or not a mapping of keys to values",
                                   f"start with `known:`, `blocked:` and `policy:` entries ({_EXAMPLE})")])
    problems: list[Problem] = []
    data = _plain(root, (), problems, path)
    if problems:
        raise ConfigError(problems)

    def source_of(location: tuple[int | str, ...]) -> str:
        return _source(path, root, location)
    try:
        model = _RegistryFile.model_validate(data)
    except ValidationError as error:
        raise ConfigError(problems_from_validation_error(error, source_of)) from error
    problems = _duplicates(model, source_of)
    if problems:
        raise ConfigError(problems)
    known = [KnownPack(k.serial, None if k.chemistry is None else Chemistry[k.chemistry.upper()], k.cell_count,
                       k.nominal_capacity_ah, k.note) for k in model.known]
    blocked = [BlockedPack(b.serial, b.reason) for b in model.blocked]
    return PackRegistry.of(known, blocked, UnknownPackPolicy(model.policy.unknown), path.name)


def _plain(node: yaml.Node, location: tuple[int | str, ...], problems: list[Problem], path: Path) -> Any:
    """The node as plain data with every scalar a string; a key given twice in one mapping is a problem."""
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in result:
                problems.append(Problem(f"{path}:{key_node.start_mark.line + 1}", dotted_key((*location, key)),
                                        "is given twice", "keep one of the two entries"))
            result[key] = _plain(value_node, (*location, key), problems, path)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, (*location, i), problems, path) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.ScalarNode) and node.style is None and node.value in _NULLS:  # unquoted null / empty
        return None
    return str(node.value)


def _source(path: Path, root: yaml.Node, location: tuple[int | str, ...]) -> str:
    """`file:line` of the deepest node of `location` that exists (a missing key: its parent's line)."""
    node = root
    for part in location:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((value for key, value in node.value if key.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
    return f"{path}:{node.start_mark.line + 1}"


def _duplicates(model: _RegistryFile, source_of: Callable[[tuple[int | str, ...]], str]) -> list[Problem]:
    """A serial listed twice under `known` or `blocked`, or under both."""
    problems = []
    first: dict[str, tuple[str, int]] = {}
    entries: list[tuple[str, int, str]] = [("known", i, k.serial) for i, k in enumerate(model.known)]
    entries += [("blocked", i, b.serial) for i, b in enumerate(model.blocked)]
    for section, index, serial in entries:
        key = serial_key(serial)
        if key not in first:
            first[key] = (section, index)
            continue
        other_section, other_index = first[key]
        location: tuple[int | str, ...] = (section, index, "serial")
        if other_section == section:
            problems.append(Problem(source_of(location), dotted_key(location),
                                    f"serial {serial!r} is also {other_section}[{other_index}]",
                                    "list each pack once (serials of digits only compare as numbers: "
                                    "'0001001' is '1001')"))
        else:
            problems.append(Problem(source_of(location), dotted_key(location),
                                    f"serial {serial!r} is both blocked and known ({other_section}[{other_index}])",
                                    "remove it from `known` (a blocked pack is never admitted) or from `blocked`"))
    return problems
