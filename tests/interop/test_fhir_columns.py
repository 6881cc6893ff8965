"""Column-wise FHIR export (``interop/_fhir_columns.py``): the same bytes as the per-resource
writer (``fhir.bundle_json`` over whole courses) on every cohort, scope and database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import uuid
from pathlib import Path

import numpy as np
import pytest

from immunoreset import course as c
from immunoreset import vocab
from immunoreset.interop import _fhir_columns as fc
from immunoreset.interop import fhir
from immunoreset.interop._columns import read_coded
from tests.interop.conftest import ADMIN, _registry


def _edge_courses(demo_courses):  # type: ignore[no-untyped-def]
    """The demo cohort with what the column-wise path must get right: free text needing
    JSON escapes (quotes, newline, backslash, non-ASCII, U+2028), labs at −0.0, a tiny and a
    long-decimal value, an LLOQ with and without "<", a course without infusion or follow-up
    and one without labs, daily assessments or anthropometrics."""
    a, b, d, *rest = demo_courses
    first = a.labs[0].date
    crp = vocab.ANALYTES["crp"][0]
    day = [first + dt.timedelta(days=k) for k in range(1000, 1004)]
    extra = [
        c.LabResult(date=day[0], analyte="ferritin", value=-0.0, unit="ng/mL"),
        c.LabResult(date=day[1], analyte="ferritin", value=1e-7, unit="ng/mL"),
        c.LabResult(date=day[1], analyte="crp", value=0.1 + 0.2, unit=crp),
        c.LabResult(date=day[2], analyte="ferritin", value=123456.78901234, unit="ng/mL", lloq=0.5),
        c.LabResult(date=day[3], analyte="crp", value=0.5, unit=crp, lloq=0.5, below_lloq=True),
    ]
    a = dataclasses.replace(
        a,
        adverse_events=tuple(
            dataclasses.replace(ae, term=f'odd, "quoted"\nterm {i} é \\ \u2028 ✓')
            for i, ae in enumerate(a.adverse_events)
        ),
        bags=tuple(dataclasses.replace(g, location='freezer 2, rack "Ä"') for g in a.bags),
        labs=(*a.labs, *extra),
    )
    b = dataclasses.replace(b, infusions=(), followup=None)
    d = dataclasses.replace(d, labs=(), daily_assessments=(), anthropometrics=())
    return [a, b, d, *rest]


def _edge_registry(url, demo_courses):  # type: ignore[no-untyped-def]
    reg = _registry(url, _edge_courses(demo_courses))
    first = demo_courses[0]
    for lab in first.labs[1:3]:  # soft-deleted rows are left out on both paths
        reg.delete_record(ADMIN, first.study_id, "labs", (lab.date, lab.analyte), reason="twice")
    reg.add_site(ADMIN, "XX", 'Site, "quoted" é')
    return reg


@pytest.fixture(scope="module")
def fhir_edge_registry(tmp_path_factory, demo_courses):  # type: ignore[no-untyped-def]
    reg = _edge_registry(tmp_path_factory.mktemp("fhir-edge") / "edge.db", demo_courses)
    yield reg
    reg.close()


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _both_paths(reg, actor, tmp_path: Path, study_ids=None, workers: int = 1):  # type: ignore[no-untyped-def]
    """(SHA-256 per file of export_fhir, of write_bundles over whole courses) for ``actor``."""
    courses = list(reg.iter_courses(actor, study_ids=study_ids))
    fhir.write_bundles(courses, tmp_path / "slow", sites=dict(reg.list_sites()))
    done = fhir.export_fhir(reg, actor, tmp_path / "fast", study_ids=study_ids, workers=workers)
    assert sorted(done) == sorted(co.study_id for co in courses) and done
    return _digests(tmp_path / "fast"), _digests(tmp_path / "slow")


@pytest.mark.parametrize("cohort", ["demo_registry", "synthetic_registry", "fhir_edge_registry"])
def test_column_wise_bundles_equal_the_per_resource_path(
    cohort, request, tmp_path, monkeypatch
) -> None:
    reg = request.getfixturevalue(cohort)
    if cohort != "synthetic_registry":  # blocks of 3 courses: labs spliced across blocks
        monkeypatch.setattr(fc, "_CHUNK", 3)
    fast, slow = _both_paths(reg, ADMIN, tmp_path)
    assert fast == slow
    if cohort == "fhir_edge_registry":
        edge = _edge_courses(request.getfixturevalue("demo_courses"))[0]
        text = (tmp_path / "fast" / f"{edge.study_id}.json").read_text(encoding="utf-8")
        assert '"value":1e-07,' in text and '"value":0.30000000000000004,' in text
        assert '"comparator":"<"' in text and "\u2028" in text
        bundle = json.loads(text)
        fhir.validate_bundle(bundle)
        labs = [
            r
            for r in (e["resource"] for e in bundle["entry"])
            if r["resourceType"] == "Observation"
            and r["category"][0]["coding"][0]["code"] == "laboratory"
        ]
        assert len(labs) == len(edge.labs) - 2


def test_column_wise_bundles_with_two_processes(synthetic_registry, tmp_path) -> None:
    """The worker processes run the same column-wise path."""
    fast, slow = _both_paths(synthetic_registry, ADMIN, tmp_path, workers=2)
    assert fast == slow and len(fast) == 200


def test_column_wise_bundles_keep_site_scope(demo_registry, tmp_path) -> None:
    """A site's investigator gets only that site's bundles, labs of only its patients."""
    name = "rome-fhir"
    if name not in {u["username"] for u in demo_registry.list_users()}:
        demo_registry.add_user(ADMIN, name, "investigator", ["ROME"])
    rome = demo_registry.actor_for(name)
    fast, slow = _both_paths(demo_registry, rome, tmp_path)
    assert fast == slow
    assert fast and {n[:3] for n in fast} == {"RM-"}
    for f in (tmp_path / "fast").iterdir():
        sid = f.stem
        for e in json.loads(f.read_text(encoding="utf-8"))["entry"]:
            assert e["resource"].get("subject", {}).get("reference", "") in ("", _patient_ref(sid))


def _patient_ref(sid: str) -> str:
    return "urn:uuid:" + fhir._uid(sid, "Patient")


def test_column_wise_bundles_for_chosen_patients(synthetic_registry, tmp_path) -> None:
    """--patient: a few patients out of many (not a contiguous id range)."""
    sids = [co.study_id for co in synthetic_registry.iter_courses(ADMIN)][::37]
    fast, slow = _both_paths(synthetic_registry, ADMIN, tmp_path, study_ids=sids)
    assert fast == slow and len(fast) == len(sids)
    one = sids[2:3]
    fast, slow = _both_paths(synthetic_registry, ADMIN, tmp_path / "one", study_ids=one)
    assert fast == slow and list(fast) == [f"{one[0]}.json"]


@pytest.mark.postgres
def test_column_wise_bundles_on_postgresql(postgres_url, demo_courses, tmp_path) -> None:
    """The same on PostgreSQL (native dates, booleans, and −0.0 kept apart from 0.0)."""
    reg = _edge_registry(postgres_url, demo_courses)
    try:
        fast, slow = _both_paths(reg, ADMIN, tmp_path)
        assert fast == slow
        sid = demo_courses[0].study_id
        assert '"value":-0.0,' in (tmp_path / "fast" / f"{sid}.json").read_text(encoding="utf-8")
    finally:
        reg.close()


# --------------------------------------------------------------------------- the parts
@pytest.mark.parametrize("entity_sids", ["all", "reversed share", "two"])
def test_read_labs_gives_the_rows_of_read_coded(synthetic_registry, entity_sids) -> None:
    sids = [co.study_id for co in synthetic_registry.iter_courses(ADMIN)]
    sids = {"all": sids, "reversed share": sids[::-7], "two": sids[3:5]}[entity_sids]
    want_pidx, want = read_coded(synthetic_registry, "labs", sids, fc.LAB_FIELDS)
    pidx, got = fc.read_labs(synthetic_registry, sids)
    assert len(pidx) > 0
    np.testing.assert_array_equal(pidx, want_pidx)
    for name in fc.LAB_FIELDS:
        g = [got[name].values[k] for k in got[name].codes.tolist()]
        w = [want[name].values[k] for k in want[name].codes.tolist()]
        assert list(map(repr, g)) == list(map(repr, w)), name


def test_read_labs_of_nobody(synthetic_registry) -> None:
    pidx, coded = fc.read_labs(synthetic_registry, [])
    assert len(pidx) == 0 and all(len(v.codes) == 0 for v in coded.values())


def test_sha1_uuid5_is_uuid5() -> None:
    """The compiled SHA-1 against the standard library: every length around the block
    boundaries (55/56/64 bytes of message with the namespace), multi-block and non-ASCII."""
    rng = np.random.default_rng(7)
    names = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in range(0, 190)]
    names += [b"AMS-000001|Observation|lab|2024-02-29|ferritin", "é✓".encode()]
    got = fc.sha1_uuid5(fhir._NS_BYTES, names)
    want = [str(uuid.UUID(bytes=hashlib.sha1(fhir._NS_BYTES + n).digest()[:16], version=5))
            for n in names]  # fmt: skip
    assert got == want
    assert got[-2] == str(uuid.uuid5(fhir._NS, names[-2].decode()))
    assert fc.sha1_uuid5(fhir._NS_BYTES, []) == []
