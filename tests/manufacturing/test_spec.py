"""Release specification as data: the shipped default-v1 and validation of site files."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from immunoreset.errors import InvalidInput
from immunoreset.manufacturing.spec import (
    ReleaseSpec,
    available_specs,
    default_spec,
    load_spec,
    parse_spec,
    spec_to_dict,
)

FI = "Front Immunol 2024;15:1328368, Table 1"

# (attribute, limit as written, stage, source) — peer-data.md §4.1
DEFAULT_ROWS = [
    ("cd3_viability", "≥ 80 %", "release", FI),
    ("cd3_purity", "≥ 80 %", "release", FI),
    ("car_transduction", "≥ 10 %", "release", FI),
    ("vcn", "< 5 copies/transduced cell", "post_release", FI),
    ("endotoxin", "< 5 EU/mL", "release", FI),
    ("sterility_interim", "negative", "release", FI),
    ("sterility_final", "negative", "post_release", FI),
    ("mycoplasma_interim", "negative", "release", FI),
    ("mycoplasma_final", "negative", "post_release", FI),
    ("dose_deviation", "≥ -20 and ≤ 20 %", "release", FI),
]


def test_default_spec_identity() -> None:
    spec = default_spec()
    assert (spec.spec_id, spec.version, spec.key) == ("default", 1, "default-v1")
    assert isinstance(spec.effective, dt.date)
    assert spec.names == tuple(r[0] for r in DEFAULT_ROWS)
    assert "default-v1" in available_specs()
    assert any("PMC11461191" in n for n in spec.source_notes)


@pytest.mark.parametrize(("name", "limit", "stage", "source"), DEFAULT_ROWS)
def test_default_spec_attributes(name: str, limit: str, stage: str, source: str) -> None:
    attr = default_spec().attribute(name)
    assert attr.limit_text == limit
    assert attr.stage == stage
    assert attr.blocking is (stage == "release")
    assert source in attr.source
    assert attr.method


def test_load_by_id_and_by_path_agree(tmp_path: Path) -> None:
    path = tmp_path / "site-v1.yaml"
    path.write_text(yaml.safe_dump(spec_to_dict(default_spec())), encoding="utf-8")
    assert load_spec(path) == load_spec("default-v1") == default_spec()
    assert load_spec(str(path)) == default_spec()


def test_round_trip_through_plain_data() -> None:
    spec = default_spec()
    assert parse_spec(spec_to_dict(spec)) == spec


def test_unknown_id_lists_available() -> None:
    with pytest.raises(InvalidInput) as err:
        load_spec("default-v9")
    assert err.value.field == "spec"
    assert "default-v1" in str(err.value)


def test_missing_file() -> None:
    with pytest.raises(InvalidInput) as err:
        load_spec(Path("/nonexistent/site.yaml"))
    assert err.value.field == "path"


def test_malformed_yaml(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("spec_id: x\nattributes: [\n  - name: a\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as err:
        load_spec(path)
    assert err.value.field == "spec"
    assert "valid YAML" in str(err.value)


def _set(index: int, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        d["attributes"][index][key] = value

    return edit


def _drop(index: int, key: str) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        del d["attributes"][index][key]

    return edit


def _top(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        d[key] = value

    return edit


# index 0 = cd3_viability (min), 3 = vcn (max), 5 = sterility_interim (equals),
# 9 = dose_deviation (range)
BAD = [
    (_set(0, "limit_type", "between"), "attributes[cd3_viability].limit_type"),
    (_drop(0, "lower"), "attributes[cd3_viability].lower"),
    (_set(0, "upper", 100), "attributes[cd3_viability].upper"),
    (_set(0, "lower", "80"), "attributes[cd3_viability].lower"),
    (_set(0, "lower", 120), "attributes[cd3_viability].lower"),
    (_set(0, "lower_inclusive", "yes"), "attributes[cd3_viability].lower_inclusive"),
    (_set(0, "stage", "later"), "attributes[cd3_viability].stage"),
    (_set(0, "source", ""), "attributes[cd3_viability].source"),
    (_set(0, "method", None), "attributes[cd3_viability].method"),
    (_set(0, "colour", "red"), "attributes[cd3_viability].colour"),
    (_set(0, "result_range", [100, 0]), "attributes[cd3_viability].result_range"),
    (_set(0, "expected", "negative"), "attributes[cd3_viability].expected"),
    (_set(0, "name", "CD3 viability"), "attributes[CD3 viability].name"),
    (_drop(3, "upper"), "attributes[vcn].upper"),
    (_set(5, "expected", "sterile"), "attributes[sterility_interim].expected"),
    (_set(5, "allowed_results", ["negative"]), "attributes[sterility_interim].allowed_results"),
    (_set(5, "result_range", [0, 1]), "attributes[sterility_interim].result_range"),
    (_set(9, "upper", -30), "attributes[dose_deviation].upper"),
    (_set(1, "name", "cd3_viability"), "attributes[cd3_viability].name"),
    (_top("version", 0), "version"),
    (_top("version", "1"), "version"),
    (_top("version", True), "version"),
    (_top("effective", "2025-01-01"), "effective"),
    (_top("spec_id", "my spec"), "spec_id"),
    (_top("attributes", []), "attributes"),
    (_top("owner", "QA"), "owner"),
]


@pytest.mark.parametrize(("edit", "field"), BAD)
def test_bad_spec_names_attribute_and_key(
    edit: Callable[[dict[str, Any]], None], field: str
) -> None:
    data = copy.deepcopy(spec_to_dict(default_spec()))
    edit(data)
    with pytest.raises(InvalidInput) as err:
        parse_spec(data)
    assert err.value.field == field


def test_bad_yaml_file_names_attribute_and_key(tmp_path: Path) -> None:
    data = spec_to_dict(default_spec())
    data["attributes"][4]["limit_type"] = "maximum"
    path = tmp_path / "site-v2.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(InvalidInput) as err:
        load_spec(path)
    assert err.value.field == "attributes[endotoxin].limit_type"
    assert "did you mean" in str(err.value)


@pytest.mark.parametrize("data", [None, [], "spec", 3])
def test_not_a_mapping(data: Any) -> None:
    with pytest.raises(InvalidInput):
        parse_spec(data)


def test_attribute_lookup_unknown() -> None:
    with pytest.raises(InvalidInput) as err:
        default_spec().attribute("viability")
    assert err.value.field == "attribute"


def test_spec_to_dict_refuses_other_types() -> None:
    with pytest.raises(InvalidInput):
        spec_to_dict({"spec_id": "x"})  # type: ignore[arg-type]


def test_spec_is_frozen() -> None:
    spec: ReleaseSpec = default_spec()
    with pytest.raises(AttributeError):
        spec.version = 2  # type: ignore[misc]
