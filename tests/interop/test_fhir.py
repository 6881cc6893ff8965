"""FHIR R4 bundles: R4B validation of every resource shape, lossless round trips, refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from immunoreset import course as c
from immunoreset.errors import ImportRefused, InvalidInput
from immunoreset.interop import fhir
from immunoreset.registry import Registry
from tests.interop.conftest import ADMIN, assert_same_registry


def _shape(res: dict[str, Any]) -> tuple[Any, ...]:
    """A resource's structure: type, code, its keys and those of its quantities/components."""
    code = res.get("code") or res.get("productCode") or {}
    comps = tuple(sorted({json.dumps(x.get("code")) for x in res.get("component", ())}))
    q = tuple(sorted(res.get("valueQuantity", {})))
    ext = tuple(sorted(e["url"] for e in res.get("extension", ())))
    codes = tuple(x.get("code") for x in code.get("coding", ()))
    return (res["resourceType"], codes, tuple(sorted(res)), comps, q, ext)


def test_every_resource_shape_validates_with_r4b(demo_courses, synthetic_courses) -> None:
    """Each distinct resource structure (type, code, keys, components, extensions) of the demo
    cohort and 40 synthetic courses passes R4B (all ≈ 25,000 resources would take minutes)."""
    from fhir.resources.R4B import get_fhir_model_class

    seen: dict[Any, dict[str, Any]] = {}
    types: set[str] = set()
    for co in [*demo_courses, *synthetic_courses[:40]]:
        for e in fhir.course_bundle(co)["entry"]:
            res = e["resource"]
            types.add(res["resourceType"])
            seen.setdefault(_shape(res), res)
    assert len(seen) >= 50
    for res in seen.values():
        rtype = res["resourceType"]
        model = get_fhir_model_class(rtype).model_validate(res)
        assert model.get_resource_type() == rtype
    assert types == {
        "Patient", "Organization", "Condition", "Observation", "Procedure",
        "BiologicallyDerivedProduct", "MedicationAdministration", "MedicationStatement",
        "AdverseEvent", "Encounter",
    }  # fmt: skip


def test_a_whole_bundle_validates(demo_courses) -> None:
    bundle = fhir.course_bundle(demo_courses[2])
    fhir.validate_bundle(bundle)
    assert bundle["type"] == "collection"
    assert bundle["entry"][0]["resource"]["resourceType"] == "Patient"


def test_validate_bundle_names_the_problem() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection"}
    bundle["entry"] = [{"resource": {"resourceType": "Observation", "status": "final"}}]
    with pytest.raises(InvalidInput, match=r"entry\.0\.resource\.code must be valid FHIR R4B"):
        fhir.validate_bundle(bundle)


def test_bundle_is_pseudonymous_and_coded(demo_courses) -> None:
    co = demo_courses[0]
    bundle = fhir.course_bundle(co)
    patient = bundle["entry"][0]["resource"]
    assert patient["identifier"][0]["value"] == co.study_id
    assert len(patient["birthDate"]) == 7  # year-month only
    assert "name" not in patient and "address" not in patient
    assert patient["meta"]["tag"][0]["code"] == "HTEST"  # synthetic data is tagged
    labs = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and e["resource"]["category"][0]["coding"][0]["code"] == "laboratory"
    ]
    anc = [r for r in labs if r["code"]["coding"][0]["code"] == "751-8"]
    assert anc and anc[0]["code"]["coding"][0]["system"] == "http://loinc.org"
    assert anc[0]["valueQuantity"]["code"] == "/uL"
    assert anc[0]["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    car = [r for r in labs if r["code"]["coding"][0]["code"] == "car_t_flow"]
    assert car and len(car[0]["code"]["coding"]) == 1  # local code only: no LOINC exists


def test_bundles_are_deterministic(demo_courses) -> None:
    assert fhir.bundle_json(demo_courses[1]) == fhir.bundle_json(demo_courses[1])


def _round_trip(src: Registry, tmp_path: Path, *, validate: bool, again: bool = True) -> None:
    out = tmp_path / "bundles"
    done = fhir.export_fhir(src, ADMIN, out)
    assert len(done) == len(list(out.glob("*.json")))
    with Registry(str(tmp_path / "copy.db"), upgrade=True) as dst:
        fhir.import_fhir(dst, ADMIN, [out], validate=validate)
        assert_same_registry(src, dst)  # every collection, infections and visits included
        if not again:
            return
        second = tmp_path / "again"
        fhir.export_fhir(dst, ADMIN, second)
        for path in out.glob("*.json"):
            assert (second / path.name).read_text("utf-8") == path.read_text("utf-8"), path.name


def test_round_trip_demo_cohort_is_lossless(demo_registry, tmp_path) -> None:
    _round_trip(demo_registry, tmp_path, validate=False)


def test_round_trip_synthetic_cohort_is_lossless(synthetic_registry, tmp_path) -> None:
    # field by field; the byte-identical re-export is checked on the demo cohort (CI time)
    _round_trip(synthetic_registry, tmp_path, validate=False, again=False)


def test_export_is_audited(demo_registry, tmp_path) -> None:
    fhir.export_fhir(demo_registry, ADMIN, tmp_path / "x", study_ids=["RM-001"])
    trail = demo_registry.audit_trail(ADMIN, study_id="RM-001", limit=5)
    assert trail[0]["action"] == "export" and trail[0]["field"] == "fhir"
    assert trail[0]["username"] == ADMIN.username and trail[0]["ts"] is not None


def _bundle_dict(demo_courses, i: int = 0) -> dict[str, Any]:
    return fhir.course_bundle(demo_courses[i])


def _first(bundle: dict[str, Any], pred) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if pred(e["resource"]))


def test_bad_value_refused_naming_entry_and_field_nothing_written(demo_courses, tmp_path) -> None:
    bundle = _bundle_dict(demo_courses)
    lab = _first(bundle, lambda r: r.get("valueQuantity", {}).get("code") == "/uL")
    lab["valueQuantity"]["value"] = -5.0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bundle))
    with Registry(str(tmp_path / "t.db"), upgrade=True) as reg:
        with pytest.raises(ImportRefused) as info:
            fhir.import_fhir(reg, ADMIN, [path])
        assert reg.count_rows()["patients"] == 0
        assert reg.count_rows()["labs"] == 0
    err = info.value.errors[0]
    assert err.file == "bad.json" and err.field == "value" and err.value == -5.0
    assert f"Observation/{lab['id']}" in str(info.value)


def test_every_error_listed(demo_courses, tmp_path) -> None:
    bundle = _bundle_dict(demo_courses)
    _first(bundle, lambda r: r["resourceType"] == "Patient")["gender"] = "unknown"
    _first(bundle, lambda r: r["resourceType"] == "AdverseEvent")["extension"][0][
        "valueInteger"
    ] = 7
    with (
        Registry(str(tmp_path / "t.db"), upgrade=True) as reg,
        pytest.raises(ImportRefused) as info,
    ):
        fhir.import_fhir(reg, ADMIN, [bundle], validate=False)
    fields_ = {e.field for e in info.value.errors}
    assert {"gender", "grade"} <= fields_, fields_


def test_unknown_resource_type_refused(demo_courses, tmp_path) -> None:
    bundle = _bundle_dict(demo_courses)
    bundle["entry"].append({"fullUrl": "urn:uuid:x", "resource": {"resourceType": "Flag"}})
    with (
        Registry(str(tmp_path / "t.db"), upgrade=True) as reg,
        pytest.raises(ImportRefused, match="Flag"),
    ):
        fhir.import_fhir(reg, ADMIN, [bundle], validate=False)


def _with_infection(demo_courses) -> tuple[Any, dict[str, Any]]:
    co = next(co for co in demo_courses if co.infections and co.followup_visits)
    return co, fhir.course_bundle(co)


def test_infections_and_visits_are_carried(demo_courses) -> None:
    """Infections are AdverseEvents coded by site (category infection), visits Encounters
    (class AMB / VR, type the visit code, one extension per collected item)."""
    co, bundle = _with_infection(demo_courses)
    inf, visit = co.infections[0], co.followup_visits[0]
    ae = _first(bundle, lambda r: "infection-site" in json.dumps(r.get("event", {})))
    assert ae["event"]["coding"][0]["code"] == inf.site
    assert ae["category"][0]["coding"][0]["code"] == "infection"
    assert ae["date"] == inf.onset.isoformat()
    ext = {e["url"].rsplit("/", 1)[1]: e for e in ae["extension"]}
    assert ext["ctcae-grade"]["valueInteger"] == inf.ctcae_grade
    assert ext["organism-class"]["valueCode"] == inf.organism_class
    enc = _first(bundle, lambda r: r["resourceType"] == "Encounter")
    assert enc["type"][0]["coding"][0]["code"] == visit.visit
    assert enc["class"]["code"] == {"visit": "AMB", "remote": "VR"}[visit.contact]
    assert enc["period"] == {"start": visit.date.isoformat(), "end": visit.date.isoformat()}
    assert [e["valueCode"] for e in enc.get("extension", ())] == list(visit.items)
    encounters = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter"]
    assert len(encounters) == len(co.followup_visits)
    fhir.validate_bundle(bundle)


def test_an_adverse_event_of_category_infection_stays_an_adverse_event(demo_courses, tmp_path):
    """A hospital's AdverseEvent 'infection' without the site coding is an adverse-event
    record, not an infection record (only the site code marks one)."""
    co, bundle = _with_infection(demo_courses)
    ae = _first(bundle, lambda r: "infection-site" in json.dumps(r.get("event", {})))
    ae["event"] = {"text": "Pneumonia"}
    with Registry(str(tmp_path / "t.db"), upgrade=True) as reg:
        fhir.import_fhir(reg, ADMIN, [bundle], validate=False)
        got = reg.load_course(ADMIN, co.study_id)
    assert len(got.infections) == len(co.infections) - 1
    new = set(got.adverse_events) - set(co.adverse_events)
    assert [(a.term, a.category) for a in new] == [("Pneumonia", "infection")]
    assert len(got.adverse_events) == len(co.adverse_events) + 1


@pytest.mark.parametrize(
    "edit, field_",
    [
        (lambda ae, enc: ae["extension"].pop(1), "organism-class"),  # no organism class
        (lambda ae, enc: ae["event"]["coding"][0].update(code="lung"), "site"),
        (lambda ae, enc: ae["extension"][0].update(valueInteger=6), "ctcae_grade"),
        (lambda ae, enc: enc["type"][0]["coding"][0].update(code="M4"), "visit"),
        (lambda ae, enc: enc.update(type=[{"text": "clinic"}]), "type"),
        (lambda ae, enc: enc["class"].update(code="IMP"), "class"),
        (lambda ae, enc: enc.update(status="planned"), "status"),
        (lambda ae, enc: enc["period"].update(start="2024-13-01"), "period.start"),
        (lambda ae, enc: enc["extension"].append({"url": enc["extension"][0]["url"],
                                                  "valueCode": "x-ray"}), "items"),
    ],
)  # fmt: skip
def test_bad_infection_or_visit_refused_nothing_written(demo_courses, tmp_path, edit, field_):
    _, bundle = _with_infection(demo_courses)
    ae = _first(bundle, lambda r: "infection-site" in json.dumps(r.get("event", {})))
    enc = _first(bundle, lambda r: r["resourceType"] == "Encounter" and r.get("extension"))
    edit(ae, enc)
    with Registry(str(tmp_path / "t.db"), upgrade=True) as reg:
        with pytest.raises(ImportRefused) as info:
            fhir.import_fhir(reg, ADMIN, [bundle], validate=False)
        assert reg.count_rows()["patients"] == 0
    assert [e.field for e in info.value.errors] == [field_], str(info.value)
    assert "Traceback" not in str(info.value)


def test_transaction_bundle_from_a_hospital(demo_registry, tmp_path) -> None:
    """A hospital's transaction: a lab in 10*9/L for a registered patient, by study ID."""
    from immunoreset.registry.csvio import export_csv, import_csv

    export_csv(demo_registry, ADMIN, tmp_path / "csv")
    with Registry(str(tmp_path / "h.db"), upgrade=True) as reg:
        import_csv(reg, ADMIN, tmp_path / "csv")
        before = reg.load_course(ADMIN, "RM-002")
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": "urn:uuid:8a3c9d9e-0f1b-4a55-9a36-2d7c1e0e6a01",
                    "request": {"method": "POST", "url": "Observation"},
                    "resource": {
                        "resourceType": "Observation",
                        "status": "final",
                        "code": {"coding": [{"system": "http://loinc.org", "code": "751-8"}]},
                        "subject": {
                            "identifier": {"system": fhir.SYS["study_id"], "value": "RM-002"}
                        },
                        "effectiveDateTime": "2025-01-05T08:30:00Z",  # a future date is refused
                        "valueQuantity": {
                            "value": 1.2,
                            "unit": "10*9/L",
                            "system": "http://unitsofmeasure.org",
                            "code": "10*9/L",
                        },
                    },
                }
            ],
        }
        fhir.import_fhir(reg, ADMIN, [bundle])
        after = reg.load_course(ADMIN, "RM-002")
    new = set(after.labs) - set(before.labs)
    assert new == {
        c.LabResult(date=c.dt.date(2025, 1, 5), analyte="anc", value=1200.0, unit="cells/uL")
    }
    assert after.daily_assessments == before.daily_assessments


def test_monitor_may_not_import(demo_courses, tmp_path) -> None:
    from immunoreset.errors import PermissionDenied
    from immunoreset.registry.access import Actor

    with Registry(str(tmp_path / "t.db"), upgrade=True) as reg, pytest.raises(PermissionDenied):
        fhir.import_fhir(reg, Actor("mon", "monitor", frozenset()), [_bundle_dict(demo_courses)])


def test_import_is_audited_and_idempotent(demo_courses, tmp_path) -> None:
    bundle = _bundle_dict(demo_courses, 1)
    with Registry(str(tmp_path / "t.db"), upgrade=True) as reg:
        fhir.import_fhir(reg, ADMIN, [bundle])
        trail = reg.audit_trail(ADMIN, study_id=demo_courses[1].study_id, limit=5000)
        assert trail and all(t["action"] == "insert" for t in trail)
        assert all(t["reason"] == "FHIR import" for t in trail)
        stats = fhir.import_fhir(reg, ADMIN, [bundle], validate=False)
        assert stats.total_inserted == 0 and stats.total_updated == 0


def test_import_on_each_database(demo_courses, db_url) -> None:
    """The shared import path on SQLite and on the real PostgreSQL cluster."""
    with Registry(db_url, upgrade=True) as reg:
        fhir.import_fhir(reg, ADMIN, [_bundle_dict(demo_courses, 3)], validate=False)
        assert reg.load_course(ADMIN, demo_courses[3].study_id) == demo_courses[3]


def test_vital_sign_in_another_unit_is_refused(demo_courses, tmp_path) -> None:
    bundle = _bundle_dict(demo_courses)
    temp = _first(bundle, lambda r: r.get("valueQuantity", {}).get("code") == "Cel")
    temp["valueQuantity"].update(value=101.3, unit="degF", code="[degF]")
    with (
        Registry(str(tmp_path / "t.db"), upgrade=True) as reg,
        pytest.raises(ImportRefused) as info,
    ):
        fhir.import_fhir(reg, ADMIN, [bundle], validate=False)
    assert info.value.errors[0].value == "[degF]" and "Cel" in str(info.value)


def test_parallel_export_writes_the_same_bundles(synthetic_registry, tmp_path) -> None:
    one = fhir.export_fhir(synthetic_registry, ADMIN, tmp_path / "one")
    two = fhir.export_fhir(synthetic_registry, ADMIN, tmp_path / "two", workers=2)
    assert one == two and len(two) == 200
    for sid in one[::20]:
        name = f"{sid}.json"
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()


def test_resource_ids_are_uuid5_of_the_record_key(demo_courses) -> None:
    """Ids are uuid.uuid5 (the standard library's) of the parts joined by '|' — for the labs'
    inlined computation too — so they stay what earlier exports wrote."""
    import datetime as dt
    import uuid

    ns = fhir._NS
    for parts in [("RM-001", "Patient"), ("X", "Observation", 3, dt.date(2024, 2, 29)), ("é", "")]:
        want = str(uuid.uuid5(ns, "|".join(map(str, parts))))
        assert fhir._uid(*parts) == want
    for i in range(2000):  # every value of the hex digit the variant bits change
        assert fhir._uid("S", i) == str(uuid.uuid5(ns, f"S|{i}"))
    co = demo_courses[0]
    labs = {
        e["resource"]["id"]: e["resource"]
        for e in json.loads(fhir.bundle_json(co))["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and e["resource"]["category"][0]["coding"][0]["code"] == "laboratory"
    }
    assert len(labs) == len(co.labs) > 0
    for r in co.labs:
        rid = str(uuid.uuid5(ns, f"{co.study_id}|Observation|lab|{r.date.isoformat()}|{r.analyte}"))
        assert labs[rid]["effectiveDateTime"] == r.date.isoformat()
