"""Issue 13 item 5: no clinical record dated after today or before the patient's birth month,
on every writer path (save_courses, single-record add and update, CSV, FHIR, REDCap) — refused
with the reason and the field, nothing stored. (Web form and API: tests/web.)"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from immunoreset import course as c
from immunoreset.errors import InvalidInput
from immunoreset.interop import fhir, redcap
from immunoreset.registry import Registry, system_actor
from immunoreset.registry.csvio import export_csv, import_csv
from immunoreset.registry.rules import ImplausibleDate, latest_today
from tests.factories import day, small_course

ADMIN = system_actor("tester")
#: small_course's patient is born 2012-05: the first possible date is 2012-05-01
BIRTH_FLOOR = dt.date(2012, 5, 1)
LAB_DAY = day(7)  # the date of exactly one record of small_course (a CD19 count)


def _future() -> dt.date:
    return latest_today() + dt.timedelta(days=1)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with Registry(str(tmp_path / "r.db"), upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Rome")
        yield reg


def _with_lab_on(course: c.Course, when: dt.date) -> c.Course:
    labs = tuple(
        dataclasses.replace(lab, date=when) if lab.date == LAB_DAY else lab for lab in course.labs
    )
    return dataclasses.replace(course, labs=labs)


def _snapshot(registry: Registry) -> tuple[object, ...]:
    return (registry.count_rows(), list(registry.iter_courses(ADMIN)))


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        (BIRTH_FLOOR - dt.timedelta(days=1), "before_birth"),  # 2012-04-30
        (dt.date(2083, 1, 1), "future_date"),  # the assessment in 2083 / lab in 2031
        (dt.date(2031, 6, 1), "future_date"),
    ],
)
def test_save_courses_refuses_an_implausible_date(
    registry: Registry, when: dt.date, reason: str
) -> None:
    before = _snapshot(registry)
    with pytest.raises(ImplausibleDate) as err:
        registry.save_courses(ADMIN, [_with_lab_on(small_course(), when)], reason="entry")
    assert err.value.reason == reason and err.value.entity == "labs"
    assert err.value.field == "date" and isinstance(err.value, InvalidInput)
    assert when.isoformat() in str(err.value) and "RM-001" in str(err.value)
    assert _snapshot(registry) == before


def test_boundaries_of_the_plausible_range(registry: Registry) -> None:
    """The first day of the birth month and "today" (UTC+14) are accepted; a day beyond not."""
    registry.save_courses(ADMIN, [_with_lab_on(small_course(), BIRTH_FLOOR)], reason="entry")
    lab = c.LabResult(date=latest_today(), analyte="crp", value=1.0, unit="mg/dL")
    registry.add_record(ADMIN, "RM-001", "labs", lab, reason="today's lab")
    with pytest.raises(ImplausibleDate, match="after today"):
        registry.add_record(
            ADMIN, "RM-001", "labs", dataclasses.replace(lab, date=_future()), reason="x"
        )


@pytest.mark.parametrize(
    ("entity", "record"),
    [
        ("daily_assessments", c.DailyAssessment(date=dt.date(2083, 1, 1), temperature_max_c=37.0)),
        ("labs", c.LabResult(date=dt.date(2031, 1, 1), analyte="crp", value=1.0, unit="mg/dL")),
        ("anthropometrics", c.Anthropometric(date=dt.date(2011, 1, 1), weight_kg=10.0)),
        (
            "adverse_events",
            c.AdverseEvent(
                term="fever", category="other", grade=1, onset=day(3), resolution=_future()
            ),
        ),
    ],
)
def test_single_record_add_is_refused(registry: Registry, entity: str, record: object) -> None:
    registry.save_courses(ADMIN, [small_course()], reason="entry")
    before = _snapshot(registry)
    with pytest.raises(ImplausibleDate) as err:
        registry.add_record(ADMIN, "RM-001", entity, record, reason="typed")
    assert err.value.entity == entity
    assert _snapshot(registry) == before


def test_single_record_update_is_refused(registry: Registry) -> None:
    registry.save_courses(ADMIN, [small_course()], reason="entry")
    before = _snapshot(registry)
    with pytest.raises(ImplausibleDate, match="after today") as err:
        registry.update_record(
            ADMIN,
            "RM-001",
            "adverse_events",
            ("cytokine release syndrome", day(2).isoformat()),
            {"resolution": dt.date(2031, 1, 1)},
            reason="retyped",
        )
    assert err.value.field == "resolution"
    assert _snapshot(registry) == before


def test_moving_the_birth_month_after_stored_records_is_refused(registry: Registry) -> None:
    course = small_course()
    early = c.Anthropometric(date=dt.date(2015, 1, 1), weight_kg=18.0, height_cm=105.0)
    course = dataclasses.replace(course, anthropometrics=(early, *course.anthropometrics))
    registry.save_courses(ADMIN, [course], reason="entry")
    before = _snapshot(registry)
    moved = dataclasses.replace(course.patient, birth_year=2016, birth_month=1)
    with pytest.raises(ImplausibleDate, match="before the patient's birth month") as err:
        registry.save_courses(ADMIN, [dataclasses.replace(course, patient=moved)], reason="x")
    assert err.value.entity == "anthropometrics" and err.value.reason == "before_birth"
    assert _snapshot(registry) == before


def _replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.mark.parametrize("bad", ["2031-03-08", "2012-04-30"])
def test_csv_import_names_file_row_and_column(registry: Registry, tmp_path: Path, bad: str) -> None:
    with Registry(str(tmp_path / "src.db"), upgrade=True) as src:
        src.add_site(ADMIN, "ROME", "Rome")
        src.save_courses(ADMIN, [small_course()], reason="entry")
        export_csv(src, ADMIN, tmp_path / "out")
    _replace_in(tmp_path / "out" / "labs.csv", LAB_DAY.isoformat(), bad)
    before = _snapshot(registry)
    with pytest.raises(InvalidInput) as err:
        import_csv(registry, ADMIN, tmp_path / "out")
    text = str(err.value)
    assert text.startswith("labs.csv, row ") and "column date" in text and bad in text
    assert _snapshot(registry) == before


def test_fhir_import_is_refused(registry: Registry) -> None:
    bundle = json.loads(
        json.dumps(fhir.course_bundle(small_course())).replace(LAB_DAY.isoformat(), "2031-03-08")
    )
    before = _snapshot(registry)
    with pytest.raises(ImplausibleDate) as err:
        fhir.import_fhir(registry, ADMIN, [bundle], validate=False)
    assert err.value.reason == "future_date" and err.value.entity == "labs"
    assert _snapshot(registry) == before


def test_redcap_import_is_refused(registry: Registry, tmp_path: Path) -> None:
    with Registry(str(tmp_path / "src.db"), upgrade=True) as src:
        src.add_site(ADMIN, "ROME", "Rome")
        src.save_courses(ADMIN, [small_course()], reason="entry")
        redcap.export_redcap(src, ADMIN, tmp_path / "rc")
    _replace_in(tmp_path / "rc" / "records.csv", LAB_DAY.isoformat(), "2012-04-30")
    before = _snapshot(registry)
    with pytest.raises(ImplausibleDate) as err:
        redcap.import_redcap(registry, ADMIN, tmp_path / "rc" / "records.csv")
    assert err.value.reason == "before_birth" and "2012-05" in str(err.value)
    assert _snapshot(registry) == before
