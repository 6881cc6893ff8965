"""REDCap: dictionary shape and constraints, lossless round trips (raw and labels, UTF-8 and
cp1252), and refusals naming record, instrument and field with nothing written."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import functools
from pathlib import Path

import pytest

from immunoreset import course as c
from immunoreset.errors import ImportRefused, InvalidInput
from immunoreset.interop import redcap
from immunoreset.registry import Registry
from tests.interop.conftest import ADMIN, assert_same_registry


def test_dictionary_has_the_18_columns_and_one_instrument_per_crf(tmp_path) -> None:
    path = tmp_path / "dict.csv"
    n = redcap.write_dictionary(path)
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == redcap.DICTIONARY_COLUMNS and len(rows[0]) == 18
    assert len(rows) == n + 1
    assert rows[1][0] == "record_id"  # REDCap requires the record ID first
    forms = [r[1] for r in rows[1:]]
    assert list(dict.fromkeys(forms)) == [f.name for f in redcap.FORMS]
    names = [r[0] for r in rows[1:]]
    assert len(names) == len(set(names))
    for name in names:
        assert name.islower() and name.replace("_", "").isalnum() and len(name) <= 26, name
    types = {r[3] for r in rows[1:]}
    assert types <= {"text", "dropdown", "checkbox", "yesno", "notes"}


def test_dictionary_validation_types_and_choices() -> None:
    rows = {r["Variable / Field Name"]: r for r in redcap.data_dictionary()}
    assert rows["da_temperature_max_c"]["Text Validation Type OR Show Slider Number"] == "number"
    assert rows["da_temperature_max_c"]["Text Validation Min"] == "25"
    assert rows["da_temperature_max_c"]["Text Validation Max"] == "45"
    assert rows["lab_date"]["Text Validation Type OR Show Slider Number"] == "date_ymd"
    assert rows["ae_grade"]["Text Validation Type OR Show Slider Number"] == "integer"
    assert rows["da_oxygen_device"]["Choices, Calculations, OR Slider Labels"].startswith(
        "1, room air | 2, blow by"
    )
    assert rows["da_vasopressors"]["Field Type"] == "checkbox"
    assert rows["sex"]["Required Field?"] == "y"


@functools.cache
def _demo_course() -> c.Course:
    from immunoreset import demo

    return demo.published_cohort()[2]


def _valid_record(entity: str) -> object:
    """A valid record of ``entity`` to perturb (from the demo cohort)."""
    co = _demo_course()
    if entity == "patients":
        return co.patient
    ent = redcap.s.ENTITIES[entity]
    value = getattr(co, ent.course_attr)
    recs = value if ent.many else (value,)
    if entity == "daily_assessments":
        # a face mask: a flow may be given (room air with a flow is a contradiction, #12)
        return dataclasses.replace(
            recs[0],
            ice_score=5,
            capd_score=None,
            oxygen_device="face_mask",
            oxygen_flow_l_min=None,
        )
    return recs[0]


@pytest.mark.parametrize(("key", "bounds"), sorted(redcap.RANGES.items()))
def test_dictionary_ranges_are_the_constructors_ranges(key, bounds) -> None:
    """Each REDCap min/max is accepted by the record constructor, and a value beyond refused
    (the labs/scores maxima are the largest over analytes/instruments: only the low side)."""
    entity, name = key
    lo, hi = bounds
    rec = _valid_record(entity)
    if entity == "labs":
        rec = c.LabResult(date=rec.date, analyte="car_t_qpcr", value=1.0, unit="copies/ug")
    if entity == "disease_assessments":
        rec = c.DiseaseAssessment(date=rec.date, instrument="sledai2k", score=4)
    if entity == "patients":  # birth may then be as late as 2100-12
        rec = dataclasses.replace(rec, diagnosis_date=dt.date(2100, 12, 31))
    integer = isinstance(getattr(rec, name), int) and name not in ("cd3_cells",)
    step = 1 if integer else 1e-6 * max(1.0, abs(hi))
    if (entity, name) not in {("apheresis", "volume_ml"), ("bags", "volume_ml"),
                              ("lymphodepletion", "dose_mg_m2")}:  # fmt: skip
        dataclasses.replace(rec, **{name: type(getattr(rec, name) or 0.0)(lo)})
    with pytest.raises(InvalidInput):
        dataclasses.replace(rec, **{name: lo - step})
    if entity not in ("labs", "disease_assessments"):
        dataclasses.replace(rec, **{name: type(getattr(rec, name) or 0.0)(hi)})
        with pytest.raises(InvalidInput):
            dataclasses.replace(rec, **{name: hi + step})


@pytest.mark.parametrize("labels", [False, True], ids=["raw", "labels"])
def test_round_trip_demo_cohort_is_lossless(demo_registry, tmp_path, labels) -> None:
    out = tmp_path / "redcap"
    info = redcap.export_redcap(demo_registry, ADMIN, out, labels=labels)
    assert info["records"] == 8
    with Registry(str(tmp_path / "copy.db"), upgrade=True) as dst:
        redcap.import_redcap(dst, ADMIN, out / "records.csv", dictionary=out / "dictionary.csv")
        assert_same_registry(demo_registry, dst)


def test_round_trip_synthetic_cohort_is_lossless(synthetic_registry, tmp_path) -> None:
    out = tmp_path / "redcap"
    redcap.export_redcap(synthetic_registry, ADMIN, out)
    with Registry(str(tmp_path / "copy.db"), upgrade=True) as dst:
        redcap.import_redcap(dst, ADMIN, out / "records.csv")
        assert_same_registry(synthetic_registry, dst)


def test_cp1252_file_from_excel(tmp_path) -> None:
    """Excel on Windows saves CSV in cp1252: a site name with 'ù' and '°' reads back."""
    course = _small_course()
    path = tmp_path / "records.csv"
    redcap.write_records([course], path, sites={"ROME": "Bambino Gesù °"}, encoding="cp1252")
    with pytest.raises(UnicodeDecodeError):
        path.read_text("utf-8")
    parsed = redcap.read_records(path)
    assert parsed.encoding == "cp1252"
    assert parsed.sites == [("ROME", "Bambino Gesù °")]
    assert parsed.courses == [course]


def test_utf8_with_bom(tmp_path) -> None:
    course = _small_course()
    path = tmp_path / "records.csv"
    redcap.write_records([course], path, sites={"ROME": "Bambino Gesù"}, encoding="utf-8-sig")
    parsed = redcap.read_records(path)
    assert parsed.sites == [("ROME", "Bambino Gesù")] and parsed.courses == [course]


def _small_course() -> c.Course:
    from tests.factories import small_course

    return small_course("RM-001")


def _export(tmp_path: Path, labels: bool = False) -> Path:
    path = tmp_path / "records.csv"
    redcap.write_records([_small_course()], path, sites={"ROME": "Rome"}, labels=labels)
    return path


def _edit(path: Path, pred, column: str, value: str) -> None:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    if column not in header:
        header.append(column)
    done = False
    for row in rows:
        if not done and pred(row):
            row[column] = value
            done = True
    assert done
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=header, restval="")
        w.writeheader()
        w.writerows(rows)


def _refused(tmp_path: Path, path: Path) -> ImportRefused:
    with Registry(str(tmp_path / "t.db"), upgrade=True) as reg:
        with pytest.raises(ImportRefused) as info:
            redcap.import_redcap(reg, ADMIN, path)
        counts = reg.count_rows()
    assert counts["patients"] == 0 and counts["labs"] == 0 and counts["audit_log"] == 0
    return info.value


def test_bad_value_refused_with_record_instrument_field(tmp_path) -> None:
    path = _export(tmp_path)
    _edit(path, lambda r: r["redcap_repeat_instrument"] == "labs", "lab_value", "-3")
    err = _refused(tmp_path, path)
    assert len(err.errors) == 1
    e = err.errors[0]
    lines = path.read_text("utf-8").splitlines()
    first_lab = next(i for i, line in enumerate(lines, 1) if line.startswith("RM-001,labs,"))
    assert e.column == "lab_value" and e.value == -3.0 and e.row == first_lab
    assert "record RM-001, instrument labs #1, field lab_value" in str(err)


def test_bad_choice_code_refused(tmp_path) -> None:
    path = _export(tmp_path)
    _edit(path, lambda r: r["redcap_repeat_instrument"] == "daily_crs_icans",
          "da_oxygen_device", "99")  # fmt: skip
    err = _refused(tmp_path, path)
    assert err.errors[0].column == "da_oxygen_device" and err.errors[0].value == "99"
    assert "1 (room_air)" in str(err)


def test_unknown_field_refused(tmp_path) -> None:
    path = _export(tmp_path)
    _edit(path, lambda r: r["redcap_repeat_instrument"] == "", "favourite_colour", "blue")
    err = _refused(tmp_path, path)
    assert err.errors[0].column == "favourite_colour"
    assert "record RM-001" in str(err) and "unknown field" in str(err)


def test_unknown_repeating_instrument_refused(tmp_path) -> None:
    path = _export(tmp_path)
    _edit(path, lambda r: r["redcap_repeat_instrument"] == "labs",
          "redcap_repeat_instrument", "pet_scans")  # fmt: skip
    err = _refused(tmp_path, path)
    e = err.errors[0]
    assert e.column == "redcap_repeat_instrument" and e.value == "pet_scans"
    assert "record RM-001, instrument pet_scans #1" in str(err)


def test_every_error_listed(tmp_path) -> None:
    path = _export(tmp_path)
    _edit(path, lambda r: r["redcap_repeat_instrument"] == "labs", "lab_value", "abc")
    _edit(path, lambda r: r["redcap_repeat_instrument"] == "", "birth_month", "13")
    err = _refused(tmp_path, path)
    assert {e.column for e in err.errors} == {"lab_value", "birth_month"}


def test_labels_read_like_raw(tmp_path) -> None:
    raw = redcap.read_records(_export(tmp_path)).courses
    (tmp_path / "l").mkdir()
    labelled = redcap.read_records(_export(tmp_path / "l", labels=True)).courses
    assert raw == labelled == [_small_course()]


def test_site_dictionary_with_own_codes(tmp_path) -> None:
    """A site's dictionary that numbers sexes differently is honoured for raw codes."""
    dpath = tmp_path / "dict.csv"
    rows = redcap.data_dictionary()
    for r in rows:
        if r["Variable / Field Name"] == "sex":
            r["Choices, Calculations, OR Slider Labels"] = "7, M | 8, F | 9, X"
    with dpath.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=redcap.DICTIONARY_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    path = _export(tmp_path)
    sex = _small_course().patient.sex
    _edit(path, lambda r: r["redcap_repeat_instrument"] == "", "sex", {"M": "7", "F": "8"}[sex])
    parsed = redcap.read_records(path, dictionary=dpath)
    assert parsed.courses[0].patient.sex == sex


def test_dictionary_with_unknown_field_refused(tmp_path) -> None:
    dpath = tmp_path / "dict.csv"
    rows = [*redcap.data_dictionary(), {**redcap.data_dictionary()[1],
                                        "Variable / Field Name": "extra_thing"}]  # fmt: skip
    with dpath.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=redcap.DICTIONARY_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(ImportRefused, match="extra_thing"):
        redcap.read_records(_export(tmp_path), dictionary=dpath)


def test_longitudinal_columns_accepted(tmp_path) -> None:
    path = _export(tmp_path)
    _edit(path, lambda r: True, "redcap_event_name", "baseline_arm_1")
    assert redcap.read_records(path).courses == [_small_course()]


def test_export_is_audited(demo_registry, tmp_path) -> None:
    redcap.export_redcap(demo_registry, ADMIN, tmp_path / "r", study_ids=["RM-002"])
    trail = demo_registry.audit_trail(ADMIN, study_id="RM-002", limit=3)
    assert trail[0]["action"] == "export" and trail[0]["field"] == "redcap"
    assert isinstance(trail[0]["ts"], dt.datetime)


def _dictwriter_bytes(courses, sites, labels: bool) -> bytes:
    """The records CSV as csv.DictWriter writes :func:`redcap.record_rows` (the oracle)."""
    import io

    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=redcap.record_columns(), restval="")
    w.writeheader()
    w.writerows(redcap.record_rows(courses, sites=sites, labels=labels))
    return buf.getvalue().encode("utf-8")


@pytest.mark.parametrize("labels", [False, True])
def test_records_writer_gives_the_csv_module_bytes(
    tmp_path, demo_courses, synthetic_courses, labels
) -> None:
    """The templated line writer writes exactly what csv.DictWriter writes, quoting included
    (free text with commas, quotes, line breaks; checkboxes; absent values)."""
    odd = _demo_course()
    odd = dataclasses.replace(
        odd,
        adverse_events=tuple(
            dataclasses.replace(ae, term=f'odd, "quoted"\nterm {i}')
            for i, ae in enumerate(odd.adverse_events)
        ),
        bags=tuple(dataclasses.replace(b, location='freezer 2, rack "A"') for b in odd.bags),
    )
    courses = [*demo_courses, *synthetic_courses[:40], odd]
    sites = {"RM": 'Rome, "Bambino Gesù"'}
    path = tmp_path / "records.csv"
    assert redcap.write_records(courses, path, sites=sites, labels=labels) == len(courses)
    assert path.read_bytes() == _dictwriter_bytes(courses, sites, labels)


def test_cell_quoting_matches_the_csv_module() -> None:
    import io

    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet=st.sampled_from(list("ab ,\"\r\n;\t'é")), max_size=12))
    def check(text: str) -> None:
        buf = io.StringIO(newline="")
        csv.writer(buf).writerow(["x", text])
        assert buf.getvalue() == f"x,{redcap._q(text)}\r\n"

    check()


# --------------------------------------------------------------------------- column-wise path
def _edge_courses(demo_courses):  # type: ignore[no-untyped-def]
    """The demo cohort with what the column-wise records must get right: free text needing
    CSV quotes, a course with no follow-up and no infusion (empty instruments), ``-0.0`` and
    values shared across patients."""
    a, b, *rest = demo_courses
    a = dataclasses.replace(
        a,
        adverse_events=tuple(
            dataclasses.replace(ae, term=f'odd, "quoted"\nterm {i}')
            for i, ae in enumerate(a.adverse_events)
        ),
        bags=tuple(dataclasses.replace(g, location='freezer 2, rack "A"') for g in a.bags),
        labs=(
            *a.labs,
            c.LabResult(
                date=a.labs[0].date + dt.timedelta(days=1000),
                analyte="ferritin",
                value=-0.0,
                unit="ng/mL",
            ),
        ),
    )
    b = dataclasses.replace(b, infusions=(), followup=None)
    return [a, b, *rest]


@pytest.fixture(scope="module")
def redcap_edge_registry(tmp_path_factory, demo_courses):
    from tests.interop.conftest import _registry

    reg = _registry(tmp_path_factory.mktemp("redcap-edge") / "edge.db", _edge_courses(demo_courses))
    first = demo_courses[0]
    lab = first.labs[1]  # a deleted record is left out on both paths
    reg.delete_record(ADMIN, first.study_id, "labs", (lab.date, lab.analyte), reason="twice")
    reg.add_site(ADMIN, "XX", 'Site, "quoted"')
    yield reg
    reg.close()


def _both_paths(reg, actor, tmp_path: Path, labels: bool) -> tuple[bytes, bytes]:
    """(export_redcap's records.csv, write_records over whole courses) for ``actor``."""
    slow = tmp_path / f"slow-{labels}.csv"
    courses = list(reg.iter_courses(actor))
    redcap.write_records(courses, slow, sites=dict(reg.list_sites()), labels=labels)
    info = redcap.export_redcap(reg, actor, tmp_path / f"fast-{labels}", labels=labels)
    assert info["records"] == len(courses) > 0
    return (tmp_path / f"fast-{labels}" / "records.csv").read_bytes(), slow.read_bytes()


@pytest.mark.parametrize("labels", [False, True], ids=["raw", "labels"])
@pytest.mark.parametrize("cohort", ["demo_registry", "synthetic_registry", "redcap_edge_registry"])
def test_column_wise_records_equal_the_object_path(cohort, labels, request, tmp_path) -> None:
    """export_redcap (repeating instruments read column-wise) writes the bytes of
    write_records over whole courses (itself tested against csv.DictWriter)."""
    import hashlib

    reg = request.getfixturevalue(cohort)
    fast, slow = _both_paths(reg, ADMIN, tmp_path, labels)
    assert hashlib.sha256(fast).hexdigest() == hashlib.sha256(slow).hexdigest()
    if cohort == "redcap_edge_registry":
        assert b'"odd, ""quoted""\nterm 0"' in fast  # (SQLite stores -0.0 as 0.0)


def test_column_wise_records_keep_site_scope(demo_registry, tmp_path) -> None:
    """A site's investigator: the repeating instruments hold only that site's patients."""
    name = "rome-redcap"
    if name not in {u["username"] for u in demo_registry.list_users()}:
        demo_registry.add_user(ADMIN, name, "investigator", ["ROME"])
    rome = demo_registry.actor_for(name)
    fast, slow = _both_paths(demo_registry, rome, tmp_path, False)
    assert fast == slow
    rows = list(csv.reader(fast.decode("utf-8").splitlines()[1:]))
    assert len(rows) > 100 and {r[0][:3] for r in rows} == {"RM-"}
    assert {r[1] for r in rows} >= {"", "labs", "daily_crs_icans"}


def test_column_wise_records_for_chosen_patients(synthetic_registry, tmp_path) -> None:
    """--patient: a few patients out of many (the database picks the rows), in the order
    the loader gives them."""
    sids = [co.study_id for co in synthetic_registry.iter_courses(ADMIN)][::37]
    out = tmp_path / "few"
    redcap.export_redcap(synthetic_registry, ADMIN, out, study_ids=sids)
    slow = tmp_path / "slow.csv"
    courses = list(synthetic_registry.iter_courses(ADMIN, study_ids=sids))
    redcap.write_records(courses, slow, sites=dict(synthetic_registry.list_sites()))
    assert (out / "records.csv").read_bytes() == slow.read_bytes()


@pytest.mark.postgres
def test_column_wise_records_on_postgresql(postgres_url, demo_courses, tmp_path) -> None:
    """The same on PostgreSQL (native dates, booleans and floats)."""
    from tests.interop.conftest import _registry

    reg = _registry(postgres_url, _edge_courses(demo_courses))
    try:
        for labels in (False, True):
            fast, slow = _both_paths(reg, ADMIN, tmp_path, labels)
            assert fast == slow
            assert b",-0.0," in fast  # kept apart from 0.0 (floats compared by their bits)
    finally:
        reg.close()
