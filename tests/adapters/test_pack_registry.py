"""The pack registry file: what it reads, and errors that name the file, line, key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.adapters.pack_registry import load_pack_registry
from gateway.bms.admission_settings import BlockedPack, KnownPack, PackRegistry, UnknownPackPolicy
from gateway.domain.states import Chemistry
from gateway.errors import ConfigError, Problem

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pack-registry.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(ConfigError) as raised:
        load_pack_registry(path)
    return raised.value.problems


def test_the_example_registry_loads() -> None:
    registry = load_pack_registry(EXAMPLE)
    assert registry.unknown is UnknownPackPolicy.REFUSE
    assert registry.source == "pack-registry.yaml"
    assert registry.lookup("0000001001") == KnownPack("0000001001", Chemistry.NMC, 32, 200.0,
                                                      "fleet A, bought 2024-03")
    assert registry.lookup("0000001003") == KnownPack("0000001003", note="loan pack from the supplier, "
                                                      "no datasheet values on file")
    assert registry.is_blocked("0000001013")
    assert registry.blocked_entry("0000001027") == BlockedPack("0000001027", "reported stolen")
    assert registry.lookup("0000001013") is None
    assert registry.lookup("0000004242") is None
    assert not registry.is_blocked("0000001001")


def test_serials_keep_their_leading_zeros_quoted_or_not_and_digit_serials_compare_as_numbers(tmp_path: Path) -> None:
    registry = load_pack_registry(write(tmp_path, """\
known:
  - serial: 0000001001
  - serial: AB-0042
blocked:
  - {serial: 0017, reason: stolen}
"""))
    assert registry.lookup("1001") == KnownPack("0000001001")  # not the octal 513 YAML would make of it
    assert registry.lookup("0000001001") is not None
    assert registry.lookup("AB-0042") is not None
    assert registry.lookup("ab-0042") is None  # other serials compare as written
    assert registry.is_blocked("0000000017")


def test_policy_defaults_to_refuse_and_empty_sections_are_empty(tmp_path: Path) -> None:
    registry = load_pack_registry(write(tmp_path, "known:\nblocked: []\n"))
    assert registry == PackRegistry.of(source="registry.yaml")
    lenient = load_pack_registry(write(tmp_path, "policy:\n  unknown: admit_if_healthy\n"))
    assert lenient.unknown is UnknownPackPolicy.ADMIT_IF_HEALTHY


def test_every_invalid_entry_is_reported_with_its_line_key_and_fix(tmp_path: Path) -> None:
    path = write(tmp_path, """\
policy:
  unknown: maybe
known:
  - serial: "0000001001"
    chemistry: NiCd
    cell_count: -3
    nominal_capacity_ah: lots
    colour: red
  - note: no serial
blocked:
  - serial: "0000001013"
  - serial: "0000001014"
    reason: ""
  - serial: "has space"
    reason: typo
""")
    found = {(p.source, p.key): p for p in problems_of(path)}
    assert sorted(found) == sorted([
        (f"{path}:2", "policy.unknown"),
        (f"{path}:5", "known[0].chemistry"),
        (f"{path}:6", "known[0].cell_count"),
        (f"{path}:7", "known[0].nominal_capacity_ah"),
        (f"{path}:8", "known[0].colour"),
        (f"{path}:9", "known[1].serial"),
        (f"{path}:11", "blocked[0].reason"),
        (f"{path}:13", "blocked[1].reason"),
        (f"{path}:14", "blocked[2].serial"),
    ])
    assert found[(f"{path}:2", "policy.unknown")].fix == "use one of 'refuse' or 'admit_if_healthy'"
    assert found[(f"{path}:6", "known[0].cell_count")].fix == "use a value >= 1"
    assert found[(f"{path}:8", "known[0].colour")].fix.startswith("remove this key")
    assert found[(f"{path}:9", "known[1].serial")].fix == "add this key"
    assert found[(f"{path}:13", "blocked[1].reason")].fix.startswith("say why the pack is blocked")
    assert str(path) in str(problems_of(path)[0])


def test_a_serial_listed_twice_or_both_known_and_blocked_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, """\
known:
  - serial: "0000001001"
  - serial: "0000001002"
  - serial: "1001"
blocked:
  - serial: "0000001002"
    reason: stolen
""")
    problems = problems_of(path)
    assert [(p.source, p.key) for p in problems] == [(f"{path}:4", "known[2].serial"),
                                                    (f"{path}:6", "blocked[0].serial")]
    assert problems[0].message == "serial '1001' is also known[0]"
    assert problems[0].fix.startswith("list each pack once")
    assert problems[1].message == "serial '0000001002' is both blocked and known (known[1])"
    assert "remove it from `known`" in problems[1].fix


def test_a_key_given_twice_is_refused_rather_than_silently_overwritten(tmp_path: Path) -> None:
    path = write(tmp_path, 'known:\n  - serial: "1"\nknown:\n  - serial: "2"\n')
    assert [(p.source, p.key, p.message) for p in problems_of(path)] == [(f"{path}:3", "known", "is given twice")]


@pytest.mark.parametrize(("text", "key", "fix"), [
    pytest.param("known: [serial: 1\n", "(syntax)", "fix the YAML syntax at the position shown", id="syntax"),
    pytest.param("", "(top level)", "start with `known:`, `blocked:` and `policy:` entries "
                 "(see examples/pack-registry.yaml)", id="empty"),
    pytest.param("- serial: 1\n", "(top level)", "start with `known:`, `blocked:` and `policy:` entries "
                 "(see examples/pack-registry.yaml)", id="list"),
])
def test_a_file_that_is_not_a_registry_is_refused(tmp_path: Path, text: str, key: str, fix: str) -> None:
    path = write(tmp_path, text)
    [problem] = problems_of(path)
    assert problem.source.startswith(str(path))
    assert (problem.key, problem.fix) == (key, fix)


def test_a_missing_file_names_the_setting_to_fix(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path / "nowhere.yaml")
    assert (problem.source, problem.key) == (str(tmp_path / "nowhere.yaml"), "(file)")
    assert "[admission] registry" in problem.fix


def test_the_registry_model_refuses_a_serial_listed_twice() -> None:
    with pytest.raises(ValueError, match="more than once"):
        PackRegistry.of([KnownPack("0001")], [BlockedPack("1", "stolen")])
