"""Specification store: site-owned and program-wide specs, who may load them, which applies to
a batch, and a batch keeps the spec it was released against (issue 13 item 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from immunoreset.errors import InvalidInput, PermissionDenied
from immunoreset.manufacturing import ReleaseRefused, default_spec
from immunoreset.manufacturing.spec import spec_to_dict
from immunoreset.registry import Actor, Registry
from immunoreset.registry import schema as s
from immunoreset.registry.gmp import Gmp
from tests.factories import day
from tests.manufacturing.factories import PASSING_POST, PASSING_RELEASE
from tests.registry.gmp.factories import (
    ADMIN,
    MONA,
    QA,
    QA_ER,
    ROSA,
    add_batch,
    release,
)

ER_INV = Actor("erin", "investigator", frozenset({"ERLANGEN"}))


def _write_spec(path: Path, version: int, viability_lower: float, spec_id: str = "default") -> Path:
    data = spec_to_dict(default_spec())
    data["version"] = version
    data["spec_id"] = spec_id
    for attr in data["attributes"]:
        if attr["name"] == "cd3_viability":
            attr["lower"] = viability_lower
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _spec_rows(registry: Registry) -> list[tuple[object, ...]]:
    t = s.release_specs
    with registry.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(t).order_by(t.c.id))]


def _audit_count(registry: Registry) -> int:
    with registry.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(s.audit_log)).scalar_one()


# --------------------------------------------------------------------------- spec versions
def test_batch_keeps_the_spec_it_was_released_against(
    registry: Registry, gmp: Gmp, tmp_path: Path
) -> None:
    add_batch(registry, "BT-V1")
    add_batch(registry, "BT-V2")
    results = {**PASSING_RELEASE, "cd3_viability": 85.0}
    gmp.record_qc(ADMIN, "BT-V1", results, "QC")
    assert release(gmp, "BT-V1", when=day(-20)).spec_key == "default-v1"
    spec2 = gmp.load_spec_file(QA, _write_spec(tmp_path / "v2.yaml", 2, 90.0))
    assert gmp.current_spec(QA, "ROME").key == "default-v2" == spec2.key
    # the released batch still reads against v1, a new batch against v2
    decision = gmp.decision(ADMIN, "BT-V1")
    assert decision is not None and decision.spec_key == "default-v1"
    assert gmp.evaluate(ADMIN, "BT-V1").spec_key == "default-v1"
    assert gmp.evaluate(ADMIN, "BT-V1").result("cd3_viability").status == "pass"
    assert gmp.evaluate(ADMIN, "BT-V1", spec2).result("cd3_viability").status == "fail"
    assert gmp.record_qc(ADMIN, "BT-V1", PASSING_POST, "post").spec_key == "default-v1"
    gmp.record_qc(ADMIN, "BT-V2", results, "QC")
    with pytest.raises(ReleaseRefused, match="default-v2"):
        release(gmp, "BT-V2", when=day(-20))
    # identical reload is a no-op; different content under the same version is refused
    gmp.load_spec_file(QA, tmp_path / "v2.yaml")
    with pytest.raises(InvalidInput, match="already loaded"):
        gmp.load_spec_file(QA, _write_spec(tmp_path / "v2b.yaml", 2, 95.0))
    assert [x["key"] for x in gmp.list_specs(QA)] == ["default-v2"]
    assert gmp.spec(QA, "default-v1") == default_spec()


def test_load_spec_file_refusals(gmp: Gmp, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec_id: [unclosed", encoding="utf-8")
    with pytest.raises(InvalidInput, match="YAML"):
        gmp.load_spec_file(QA, bad)
    with pytest.raises(InvalidInput, match="readable"):
        gmp.load_spec_file(QA, tmp_path / "missing.yaml")
    with pytest.raises(InvalidInput, match=r"\.json"):
        gmp.load_spec_file(QA, tmp_path / "spec.txt")
    with pytest.raises(PermissionDenied):
        gmp.load_spec_file(MONA, bad)


def test_load_spec_from_json(gmp: Gmp, tmp_path: Path) -> None:
    data = spec_to_dict(default_spec())
    data.update(spec_id="site-rome", version=1, effective=data["effective"].isoformat())
    path = tmp_path / "rome.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert gmp.load_spec_file(QA, path).key == "site-rome-v1"
    assert gmp.current_spec(QA, "ROME").key == "site-rome-v1"


# --------------------------------------------------------------------------- site ownership
@pytest.mark.parametrize(
    ("actor", "kwargs", "why"),
    [
        (ROSA, {}, "qa role"),  # an investigator
        (MONA, {}, "qa role"),
        (ADMIN, {}, "qa role"),  # an admin loads program-wide only
        (QA, {"site": "ERLANGEN"}, "not a member of site ERLANGEN"),
        (QA, {"program_wide": True}, "only an admin"),
        (QA_ER, {"site": "ROME"}, "not a member of site ROME"),
    ],
)
def test_who_may_load_a_spec(
    registry: Registry, gmp: Gmp, tmp_path: Path, actor: Actor, kwargs: dict, why: str
) -> None:
    path = _write_spec(tmp_path / "x.yaml", 2, 90.0)
    before, audits = _spec_rows(registry), _audit_count(registry)
    with pytest.raises(PermissionDenied, match=why):
        gmp.load_spec_file(actor, path, **kwargs)
    assert _spec_rows(registry) == before and _audit_count(registry) == audits
    assert gmp.current_spec(ADMIN, "ROME").key == gmp.current_spec(ADMIN, "ERLANGEN").key


def test_site_spec_applies_to_that_site_only(registry: Registry, gmp: Gmp, tmp_path: Path) -> None:
    gmp.load_spec_file(QA_ER, _write_spec(tmp_path / "er.yaml", 1, 90.0, "site-er"))
    assert gmp.current_spec(QA_ER, "ERLANGEN").key == "site-er-v1"
    assert gmp.current_spec(QA, "ROME").key == "default-v1"
    assert gmp.evaluate(ADMIN, "BT-ER001").spec_key == "site-er-v1"
    assert gmp.evaluate(ADMIN, "BT-RM001").spec_key == "default-v1"
    # ROME's qa cannot see, reload or supersede it
    with pytest.raises(PermissionDenied):
        gmp.current_spec(QA, "ERLANGEN")
    with pytest.raises(InvalidInput, match="one of"):
        gmp.spec(QA, "site-er-v1")
    assert [x["key"] for x in gmp.list_specs(QA)] == []
    assert [x["key"] for x in gmp.list_specs(ER_INV)] == ["site-er-v1"]
    before = _spec_rows(registry)
    with pytest.raises(PermissionDenied):
        gmp.load_spec_file(QA, tmp_path / "er.yaml", site="ERLANGEN")
    assert _spec_rows(registry) == before
    # the same key at ROME is ROME's own (different content allowed: another scope)
    gmp.load_spec_file(QA, _write_spec(tmp_path / "rm.yaml", 1, 70.0, "site-er"))
    assert gmp.current_spec(QA_ER, "ERLANGEN").attribute("cd3_viability").lower == 90.0
    assert gmp.current_spec(QA, "ROME").attribute("cd3_viability").lower == 70.0


def test_program_wide_spec_applies_where_a_site_has_none(gmp: Gmp, tmp_path: Path) -> None:
    gmp.load_spec_file(ADMIN, _write_spec(tmp_path / "p.yaml", 3, 85.0), program_wide=True)
    assert gmp.current_spec(QA, "ROME").key == "default-v3"
    assert gmp.current_spec(QA_ER, "ERLANGEN").key == "default-v3"
    gmp.load_spec_file(QA_ER, _write_spec(tmp_path / "er.yaml", 1, 90.0, "site-er"))
    assert gmp.current_spec(QA_ER, "ERLANGEN").key == "site-er-v1"  # the site's own wins
    assert gmp.current_spec(QA, "ROME").key == "default-v3"
    listed = {(x["key"], x["site"], x["current"]) for x in gmp.list_specs(ADMIN)}
    assert listed == {("default-v3", None, True), ("site-er-v1", "ERLANGEN", True)}
    with pytest.raises(InvalidInput, match="no site"):
        gmp.load_spec_file(ADMIN, tmp_path / "p.yaml", site="ROME", program_wide=True)


def test_spec_audit_rows_name_the_site_for_its_users(
    registry: Registry, gmp: Gmp, tmp_path: Path
) -> None:
    gmp.load_spec_file(QA_ER, _write_spec(tmp_path / "er.yaml", 1, 90.0, "site-er"))
    gmp.load_spec_file(ADMIN, _write_spec(tmp_path / "p.yaml", 3, 85.0), program_wide=True)

    def spec_rows(actor: Actor) -> set[str]:
        return {
            e["record_key"]
            for e in registry.audit_trail(actor, limit=1000)
            if e["table_name"] == "release_specs"
        }

    assert spec_rows(ER_INV) == {"ERLANGEN/site-er-v1", "*/default-v3"}
    assert spec_rows(ROSA) == {"*/default-v3"}  # ROME sees no Erlangen row
    entry = next(
        e for e in registry.audit_trail(ER_INV, limit=1000) if e["record_key"].startswith("ERL")
    )
    assert entry["username"] == "qa.erlangen" and "site ERLANGEN" in entry["reason"]


def test_qa_with_several_sites_must_name_one(registry: Registry, gmp: Gmp, tmp_path: Path) -> None:
    both = Actor("qa.both", "qa", frozenset({"ROME", "ERLANGEN"}))
    path = _write_spec(tmp_path / "x.yaml", 2, 90.0)
    with pytest.raises(InvalidInput, match="site"):
        gmp.load_spec_file(both, path)
    with pytest.raises(InvalidInput, match="a site of the registry"):
        Gmp(registry).load_spec_file(
            Actor("qa.x", "qa", frozenset({"NOWHERE"})), path, site="NOWHERE"
        )
    assert gmp.load_spec_file(both, path, site="ROME").key == "default-v2"
