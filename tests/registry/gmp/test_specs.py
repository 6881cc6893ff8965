"""Specification store: a batch keeps the spec it was released against; loading YAML / JSON."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from immunoreset.errors import InvalidInput, PermissionDenied
from immunoreset.manufacturing import ReleaseRefused, default_spec
from immunoreset.manufacturing.spec import spec_to_dict
from immunoreset.registry import Registry
from immunoreset.registry.gmp import Gmp
from tests.factories import day
from tests.manufacturing.factories import PASSING_POST, PASSING_RELEASE
from tests.registry.gmp.factories import ADMIN, MONA, add_batch


# --------------------------------------------------------------------------- spec versions
def _write_spec(path: Path, version: int, viability_lower: float) -> Path:
    data = spec_to_dict(default_spec())
    data["version"] = version
    for attr in data["attributes"]:
        if attr["name"] == "cd3_viability":
            attr["lower"] = viability_lower
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_batch_keeps_the_spec_it_was_released_against(
    registry: Registry, gmp: Gmp, tmp_path: Path
) -> None:
    add_batch(registry, "BT-V1")
    add_batch(registry, "BT-V2")
    results = {**PASSING_RELEASE, "cd3_viability": 85.0}
    gmp.record_qc(ADMIN, "BT-V1", results, "QC")
    assert gmp.release(ADMIN, "BT-V1", when=day(-20)).spec_key == "default-v1"
    spec2 = gmp.load_spec_file(ADMIN, _write_spec(tmp_path / "v2.yaml", 2, 90.0))
    assert gmp.current_spec().key == "default-v2" == spec2.key
    # the released batch still reads against v1, a new batch against v2
    decision = gmp.decision(ADMIN, "BT-V1")
    assert decision is not None and decision.spec_key == "default-v1"
    assert gmp.evaluate(ADMIN, "BT-V1").spec_key == "default-v1"
    assert gmp.evaluate(ADMIN, "BT-V1").result("cd3_viability").status == "pass"
    assert gmp.evaluate(ADMIN, "BT-V1", spec2).result("cd3_viability").status == "fail"
    assert gmp.record_qc(ADMIN, "BT-V1", PASSING_POST, "post").spec_key == "default-v1"
    gmp.record_qc(ADMIN, "BT-V2", results, "QC")
    with pytest.raises(ReleaseRefused, match="default-v2"):
        gmp.release(ADMIN, "BT-V2", when=day(-20))
    # identical reload is a no-op; different content under the same version is refused
    gmp.load_spec_file(ADMIN, tmp_path / "v2.yaml")
    with pytest.raises(InvalidInput, match="already loaded"):
        gmp.load_spec_file(ADMIN, _write_spec(tmp_path / "v2b.yaml", 2, 95.0))
    assert [s["key"] for s in gmp.list_specs()] == ["default-v2"]
    assert gmp.spec("default-v1") == default_spec()


def test_load_spec_file_refusals(gmp: Gmp, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec_id: [unclosed", encoding="utf-8")
    with pytest.raises(InvalidInput, match="YAML"):
        gmp.load_spec_file(ADMIN, bad)
    with pytest.raises(InvalidInput, match="readable"):
        gmp.load_spec_file(ADMIN, tmp_path / "missing.yaml")
    with pytest.raises(InvalidInput, match=r"\.json"):
        gmp.load_spec_file(ADMIN, tmp_path / "spec.txt")
    with pytest.raises(PermissionDenied):
        gmp.load_spec_file(MONA, bad)


def test_load_spec_from_json(gmp: Gmp, tmp_path: Path) -> None:
    import json

    data = spec_to_dict(default_spec())
    data.update(spec_id="site-rome", version=1, effective=data["effective"].isoformat())
    path = tmp_path / "rome.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert gmp.load_spec_file(ADMIN, path).key == "site-rome-v1"
    assert gmp.current_spec().key == "site-rome-v1"
