"""SDTM: SDTMIG rules relied on (tested here, as the CDISC rules engine's rules cannot be had
offline), ISO 8601 dates, study days without day 0, XPT v5 read back, Define-XML 2.1."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from immunoreset.interop import sdtm
from tests.interop.conftest import ADMIN

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PARTIAL = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
TESTCD = re.compile(r"^[A-Z][A-Z0-9_]{0,7}$")


@pytest.mark.parametrize(
    ("day0", "when", "expected"),
    [
        (dt.date(2024, 3, 10), dt.date(2024, 3, 10), 1),  # infusion (clinical day 0) = Day 1
        (dt.date(2024, 3, 10), dt.date(2024, 3, 11), 2),  # clinical day 1
        (dt.date(2024, 3, 10), dt.date(2024, 3, 9), -1),  # clinical day -1 stays -1
        (dt.date(2024, 3, 10), dt.date(2024, 2, 9), -30),
        (dt.date(2024, 3, 10), dt.date(2025, 3, 10), 366),  # leap year
        (None, dt.date(2024, 3, 10), None),  # not infused: no study day
    ],
)
def test_sdtm_day_has_no_day_zero(day0, when, expected) -> None:
    assert sdtm.sdtm_day(day0, when) == expected


def test_every_dataset_and_required_variable(exported) -> None:
    _, data = exported
    for name, dom in sdtm.DOMAINS.items():
        frame = data[name]
        assert list(frame.columns) == list(dom.names), name
        assert len(frame), name
        for v in dom.variables:
            assert len(v.name) <= 8 and len(v.label) <= 40, v
            if v.core == "Req":
                assert (frame[v.name] != "").all(), (name, v.name)
        assert (frame["DOMAIN"] == name).all()
        assert (frame["STUDYID"] == "IMMUNORESET").all()


def test_seq_unique_within_subject(exported) -> None:
    _, data = exported
    for name, frame in data.items():
        if name == "DM":
            assert frame["USUBJID"].is_unique
            continue
        if name == "SV":  # no --SEQ in SV (SDTMIG §5.4): one record per visit
            assert not frame.duplicated(["USUBJID", "VISITNUM"]).any()
            continue
        assert not frame.duplicated(["USUBJID", f"{name}SEQ"]).any(), name


def test_dates_are_iso_8601(exported) -> None:
    _, data = exported
    for name, frame in data.items():
        for col in frame.columns:
            if col.endswith("DTC"):
                values = frame.loc[frame[col] != "", col]
                pattern = PARTIAL if col == "BRTHDTC" else DATE
                bad = values[~values.str.match(pattern)]
                assert bad.empty, (name, col, bad.head().tolist())
                for v in values.head(50):
                    dt.date.fromisoformat(v if len(v) == 10 else v + "-01")
    assert data["DM"]["BRTHDTC"].str.len().eq(7).all()  # year-month only: pseudonymous


def test_study_days_never_zero_and_match_rfstdtc(exported) -> None:
    _, data = exported
    ref = dict(zip(data["DM"]["USUBJID"], data["DM"]["RFSTDTC"], strict=True))
    checked = 0
    for name, frame in data.items():
        for col in frame.columns:
            if not (col.endswith("DY") and col[:-2] in ("LB", "VS", "QS", "FA", "ZP", "")) and not (
                col.endswith(("STDY", "ENDY"))
            ):
                continue
            dtc = col.replace("STDY", "STDTC").replace("ENDY", "ENDTC")
            dtc = dtc if dtc != col else col[:-2] + "DTC"
            for u, day, when in zip(frame["USUBJID"], frame[col], frame[dtc], strict=True):
                if day == "":
                    assert when == "" or ref[u] == ""
                    continue
                assert int(float(day)) != 0, (name, col)
                assert int(float(day)) == sdtm.sdtm_day(
                    dt.date.fromisoformat(ref[u]), dt.date.fromisoformat(when)
                )
                checked += 1
    assert checked > 1000


def test_infusion_is_study_day_1(exported) -> None:
    _, data = exported
    ex = data["EX"]
    infusions = ex[ex["EXCAT"] == "CAR T CELL INFUSION"]
    first = infusions.groupby("USUBJID")["EXSTDY"].min()
    assert (first.astype(float) == 1).all()


def test_controlled_terms_and_testcds(exported) -> None:
    _, data = exported
    for name, dom in sdtm.DOMAINS.items():
        frame = data[name]
        for v in dom.variables:
            if v.codelist:
                used = set(frame[v.name]) - {""}
                assert used <= set(v.codelist), (name, v.name, used - set(v.codelist))
        code = f"{name}TESTCD"
        if code in frame:
            bad = [x for x in set(frame[code]) if not TESTCD.match(x)]
            assert not bad, (name, bad)
            # one test name per test code
            assert (frame.groupby(code)[f"{name}TEST"].nunique() == 1).all(), name
    assert set(data["DM"]["SEX"]) <= {"F", "M", "UNDIFFERENTIATED"}


def test_manufacturing_domain_holds_release_qc(exported) -> None:
    _, data = exported
    zp = data["ZP"]
    qc = zp[zp["ZPCAT"] == "RELEASE QC"]
    assert not qc.empty
    assert set(qc["ZPNRIND"]) <= {"PASS", "FAIL", "PENDING"}
    assert {"CD3VIAB", "STERFIN"} <= set(qc["ZPTESTCD"])
    assert set(zp["ZPCAT"]) == {"APHERESIS", "BATCH", "BAG", "RELEASE QC"}


def test_xpt_reads_back_to_the_same_values(exported) -> None:
    out, data = exported
    for name, dom in sdtm.DOMAINS.items():
        frame, meta = pyreadstat.read_xport(str(out / f"{name.lower()}.xpt"))
        assert list(frame.columns) == list(dom.names)
        assert meta.table_name == name
        assert meta.column_labels == [v.label for v in dom.variables]
        csv = data[name]
        assert len(frame) == len(csv)
        for v in dom.variables:
            if v.type == "Num":
                want = pd.to_numeric(csv[v.name].replace("", np.nan)).to_numpy(dtype=float)
                got = frame[v.name].to_numpy(dtype=float)
                assert np.array_equal(got, want, equal_nan=True), (name, v.name)
            else:
                assert frame[v.name].fillna("").tolist() == csv[v.name].tolist(), (name, v.name)
                assert frame[v.name].str.len().max() <= 200


def test_export_is_audited(exported, demo_registry) -> None:
    trail = demo_registry.audit_trail(ADMIN, study_id="RM-001", limit=20)
    assert any(t["action"] == "export" and t["field"] == "sdtm" for t in trail)


def test_item_testcds_follow_the_published_numbering() -> None:
    assert sdtm.item_testcd("cmas", "head_elevation") == "CMAS01"
    assert sdtm.item_testcd("cmas", None) == "CMASTOT"
    assert TESTCD.match(sdtm.item_testcd("sledai2k", "unlisted_item"))
    assert sdtm.qc_testcd("cd3_viability") == "CD3VIAB"
    assert TESTCD.match(sdtm.qc_testcd("9_new_attribute"))


def test_set_wise_qc_equals_per_batch_evaluation(tmp_path, demo_courses) -> None:
    """load_qc (two queries) gives what Gmp.evaluate gives batch by batch: stored results,
    pending attributes, and batches judged against a release decision's spec snapshot."""
    import numpy.random as npr

    from immunoreset.demo.gmp import seed_demo_qc
    from immunoreset.registry.gmp import Gmp
    from tests.interop.conftest import _registry

    reg = _registry(tmp_path / "qc.db", demo_courses)
    try:
        courses = list(reg.iter_courses(ADMIN))
        seed_demo_qc(reg, ADMIN, courses, npr.default_rng(1))
        got = sdtm.load_qc(reg, ADMIN, courses)
        gmp = Gmp(reg)
        want = {}
        for co in courses:
            for b in co.batches:
                qc = gmp.evaluate(ADMIN, b.batch_id)
                if qc.attributes:
                    want[b.batch_id] = qc.attributes
        assert got == want
        assert any(a.status != "pending" for attrs in got.values() for a in attrs)
    finally:
        reg.close()


def test_csv_writer_gives_the_pandas_bytes(exported, tmp_path) -> None:
    """write_csv == DataFrame.to_csv(index=False) on every domain and on awkward values."""
    out, _ = exported
    frames = [
        pyreadstat.read_xport(str(out / f"{name.lower()}.xpt"))[0].fillna(
            {v.name: "" for v in dom.variables if v.type == "Char"}
        )
        for name, dom in sdtm.DOMAINS.items()
    ]
    frames.append(
        pd.DataFrame(
            {
                "N": [1.0, np.nan, 1e16, 1e-5, 0.1, 123456789012.0, -0.0, 0.0],
                "T": ["x", "a,b", 'q"x', "", " s", "é", "two\nlines", "z"],
            }
        )
    )
    frames.append(pd.DataFrame({"N": np.array([], float), "T": np.array([], object)}))
    for i, frame in enumerate(frames):
        sdtm.write_csv(frame, tmp_path / "ours.csv")
        frame.to_csv(tmp_path / "pandas.csv", index=False, encoding="utf-8")
        assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes(), i


def test_every_daily_assessment_field_has_an_sdtm_home() -> None:
    """Each DailyAssessment field is exported: VS (vitals), QS (neuro), FA (daily findings) or
    CM (drugs given that day) — a new field without a mapping fails here."""
    from dataclasses import fields

    from immunoreset.course import DailyAssessment
    from immunoreset.interop._codes import codes

    c = codes()
    homes = {
        *(k for k in c["vitals"] if k.endswith(("_c", "_l_min"))),
        *c["neuro"],
        *c["daily_findings"],
        *sdtm._DAILY_DRUGS,
        "vasopressors",
    }
    assert {f.name for f in fields(DailyAssessment)} - {"date"} == homes


def test_daily_findings_in_fa_one_row_per_finding_per_day(exported, demo_courses) -> None:
    """FA holds the hypotension, oxygen device and neurological findings of every stored daily
    assessment with the stored value; the FA study day is the SDTM day of the assessment."""
    _, data = exported
    fa = data["FA"]
    meta = sdtm._FA_META
    want = []
    for co in demo_courses:
        for d in co.daily_assessments:
            for name, (code, _, cat, obj) in meta.items():
                value = getattr(d, name)
                text = ("Y" if value else "N") if isinstance(value, bool) else value
                want.append(
                    (
                        f"IMMUNORESET-{co.study_id}",
                        code,
                        obj,
                        cat,
                        text.replace("_", " ").upper(),
                        d.date.isoformat(),
                        sdtm.sdtm_day(co.day0, d.date),
                    )
                )
    cols = ["USUBJID", "FATESTCD", "FAOBJ", "FACAT", "FAORRES", "FADTC", "FADY"]
    rows = fa[cols].itertuples(index=False)
    got = [(*r[:-1], int(float(r[-1])) if r[-1] else None) for r in rows]
    assert sorted(got, key=str) == sorted(want, key=str)
    assert (fa["FAORRES"] == fa["FASTRESC"]).all()
    assert not fa.duplicated(["USUBJID", "FAOBJ", "FATESTCD", "FADTC"]).any()  # the keys


def test_daily_drugs_in_cm_including_vasopressors(exported, demo_courses) -> None:
    _, data = exported
    cm = data["CM"]
    daily = cm[cm["CMCAT"] == "CRS_ICANS_TREATMENT"]
    want = sorted(
        (f"IMMUNORESET-{co.study_id}", drug, d.date.isoformat())
        for co in demo_courses
        for d in co.daily_assessments
        for drug in sdtm._daily_drugs(d)
    )
    got = sorted(zip(daily["USUBJID"], daily["CMTRT"], daily["CMSTDTC"], strict=True))
    assert got == want
    assert (daily["CMSTDTC"] == daily["CMENDTC"]).all()


def test_abnormal_daily_findings_and_drugs(demo_courses) -> None:
    """Grade-relevant findings (the demo cohort has only negatives) land in FA and CM."""
    import dataclasses

    from immunoreset.course import DailyAssessment

    co = demo_courses[0]
    day0 = co.day0
    days = (
        DailyAssessment(
            date=day0 + dt.timedelta(days=2),
            temperature_max_c=39.4,
            hypotension=True,
            vasopressors=("norepinephrine", "vasopressin"),
            oxygen_device="high_flow_nasal_cannula",
            oxygen_flow_l_min=30.0,
            ice_score=2,
            consciousness="awakens_to_voice",
            seizure="prolonged_or_repetitive",
            motor_weakness=True,
            cerebral_edema="diffuse",
            tocilizumab=True,
            anakinra=True,
            antipyretic=True,
        ),
        DailyAssessment(
            date=day0 - dt.timedelta(days=1),
            temperature_max_c=37.0,
            unable_to_assess=True,
            consciousness="unarousable",
            other_anticytokine=True,
            siltuximab=True,
        ),
    )
    data = sdtm.build_datasets([dataclasses.replace(co, daily_assessments=days)])
    fa = data["FA"]
    got = {(r.FADTC, r.FATESTCD): (r.FAORRES, r.FACAT, r.FADY) for r in fa.itertuples()}
    d2, dm1 = days[0].date.isoformat(), days[1].date.isoformat()
    assert got[(d2, "HYPOTENS")] == ("Y", "CRS", 3.0)  # clinical day 2 = SDTM Day 3
    assert got[(d2, "O2DEVICE")] == ("HIGH FLOW NASAL CANNULA", "CRS", 3.0)
    assert got[(d2, "LOC")] == ("AWAKENS TO VOICE", "ICANS", 3.0)
    assert got[(d2, "SEIZURE")] == ("PROLONGED OR REPETITIVE", "ICANS", 3.0)
    assert got[(d2, "MOTWEAK")] == ("Y", "ICANS", 3.0)
    assert got[(d2, "CEREDEMA")] == ("DIFFUSE", "ICANS", 3.0)
    assert got[(d2, "UNABLASS")] == ("N", "ICANS", 3.0)
    assert got[(dm1, "UNABLASS")] == ("Y", "ICANS", -1.0)  # the day before infusion: Day -1
    assert got[(dm1, "LOC")] == ("UNAROUSABLE", "ICANS", -1.0)
    assert len(fa) == 2 * 7
    assert set(fa["FAOBJ"]) == {
        "CYTOKINE RELEASE SYNDROME",
        "IMMUNE EFFECTOR CELL-ASSOCIATED NEUROTOXICITY SYNDROME",
    }
    cm = data["CM"]
    daily = cm[cm["CMCAT"] == "CRS_ICANS_TREATMENT"]
    assert sorted(zip(daily["CMSTDTC"], daily["CMTRT"], strict=True)) == sorted(
        [
            (d2, "TOCILIZUMAB"),
            (d2, "ANAKINRA"),
            (d2, "ANTIPYRETIC"),
            (d2, "NOREPINEPHRINE"),
            (d2, "VASOPRESSIN"),
            (dm1, "SILTUXIMAB"),
            (dm1, "OTHER ANTICYTOKINE"),
        ]
    )
    vs = data["VS"]
    assert set(vs.loc[vs["VSDTC"] == d2, "VSTESTCD"]) >= {"TEMP", "O2FLOW"}
    qs = data["QS"]
    assert qs.loc[(qs["QSDTC"] == d2) & (qs["QSTESTCD"] == "ICETOT"), "QSSTRESN"].tolist() == [2]


def _edge_courses(demo_courses):  # type: ignore[no-untyped-def]
    """The demo cohort with the cases the column-wise path must get right: no follow-up
    record and a lab after the last daily assessment (RFENDTC), a patient not infused (no
    study days), abnormal daily findings, vasopressors and daily drugs (FA, CM)."""
    import dataclasses

    from immunoreset.course import DailyAssessment, LabResult

    a, b, *rest = demo_courses
    late = max(d.date for d in a.daily_assessments) + dt.timedelta(days=40)
    a = dataclasses.replace(
        a,
        followup=None,
        labs=(*a.labs, LabResult(date=late, analyte="crp", value=3.5, unit="mg/dL")),
        daily_assessments=(
            *a.daily_assessments[1:],
            DailyAssessment(
                date=a.daily_assessments[0].date,
                temperature_max_c=39.1,
                hypotension=True,
                vasopressors=("vasopressin", "norepinephrine"),
                oxygen_device="face_mask",
                oxygen_flow_l_min=6.0,
                capd_score=11,
                consciousness="awakens_to_touch",
                seizure="resolved",
                motor_weakness=True,
                cerebral_edema="focal",
                anakinra=True,
                antipyretic=True,
            ),
        ),
    )
    b = dataclasses.replace(b, infusions=(), followup=None)
    return [a, b, *rest]


@pytest.fixture(scope="module")
def edge_registry(tmp_path_factory, demo_courses):
    from tests.interop.conftest import _registry

    reg = _registry(tmp_path_factory.mktemp("edge") / "edge.db", _edge_courses(demo_courses))
    yield reg
    reg.close()


@pytest.mark.postgres
def test_column_wise_domains_on_postgresql(postgres_url, demo_courses) -> None:
    """The same on PostgreSQL (native dates and booleans, JSON vasopressors and items)."""
    from immunoreset.interop import _sdtm_columns
    from tests.interop.conftest import _registry

    reg = _registry(postgres_url, _edge_courses(demo_courses))
    try:
        courses = list(reg.iter_courses(ADMIN))
        objects = sdtm.build_datasets(courses)
        light = list(reg.iter_courses(ADMIN, skip=_sdtm_columns.COLUMN_ENTITIES))
        columns, last = _sdtm_columns.domain_columns(reg, light)
        fast = sdtm.build_datasets(light, columns=columns, last_dates=last)
        for name, frame in objects.items():
            pd.testing.assert_frame_equal(fast[name], frame, check_exact=True, obj=name)
    finally:
        reg.close()


@pytest.mark.parametrize("cohort", ["demo_registry", "synthetic_registry", "edge_registry"])
def test_column_wise_export_equals_the_object_path(cohort, request, tmp_path) -> None:
    """export_sdtm (many-row tables read column-wise, factorized writers) writes the same
    bytes as build_datasets over whole courses + pandas / pyreadstat writers (XPT time stamps
    aside)."""
    from immunoreset.interop import _sdtm_columns

    reg = request.getfixturevalue(cohort)
    courses = list(reg.iter_courses(ADMIN))
    qc = sdtm.load_qc(reg, ADMIN, courses)
    objects = sdtm.build_datasets(courses, qc=qc)
    light = list(reg.iter_courses(ADMIN, skip=_sdtm_columns.COLUMN_ENTITIES))
    assert all(not co.labs and not co.daily_assessments for co in light)
    columns, last = _sdtm_columns.domain_columns(reg, light)
    fast = sdtm.build_datasets(light, qc=qc, columns=columns, last_dates=last)
    assert len(fast["LB"]) == sum(len(co.labs) for co in courses) > 0
    for name, frame in objects.items():
        assert len(frame), name
        pd.testing.assert_frame_equal(fast[name], frame, check_exact=True, obj=name)
    if cohort == "edge_registry":  # the edge cases are there
        dm = fast["DM"].set_index("SUBJID")
        first = courses[0]
        assert dm.loc[first.study_id, "RFENDTC"] == max(r.date for r in first.labs).isoformat()
        assert (dm["RFSTDTC"] == "").sum() == 1
        assert {"Y", "FOCAL", "RESOLVED"} <= set(fast["FA"]["FAORRES"])
        assert {"VASOPRESSIN", "NOREPINEPHRINE", "ANAKINRA"} <= set(fast["CM"]["CMTRT"])
    sdtm.export_sdtm(reg, ADMIN, tmp_path / "fast")
    slow = tmp_path / "slow"
    slow.mkdir()
    for name, frame in objects.items():
        frame.to_csv(slow / f"{name.lower()}.csv", index=False, encoding="utf-8")
        pyreadstat.write_xport(
            frame,
            str(slow / f"{name.lower()}.xpt"),
            file_format_version=5,
            table_name=name,
            file_label=sdtm.DOMAINS[name].label,
            column_labels=[v.label for v in sdtm.DOMAINS[name].variables],
        )
    stamp = re.compile(rb"\d\d[A-Z]{3}\d\d:\d\d:\d\d:\d\d")
    for name in objects:
        csv = f"{name.lower()}.csv"
        assert (tmp_path / "fast" / csv).read_bytes() == (slow / csv).read_bytes(), name
        xpt = f"{name.lower()}.xpt"
        a = stamp.sub(b"", (tmp_path / "fast" / xpt).read_bytes())
        b = stamp.sub(b"", (slow / xpt).read_bytes())
        assert a == b, name


def test_two_processes_write_the_same_files(synthetic_registry, tmp_path) -> None:
    """workers=2 (the many-row domains built by two processes, merged) == workers=1."""
    sdtm.export_sdtm(synthetic_registry, ADMIN, tmp_path / "one", workers=1)
    sdtm.export_sdtm(synthetic_registry, ADMIN, tmp_path / "two", workers=2)
    stamp = re.compile(rb"\d\d[A-Z]{3}\d\d:\d\d:\d\d:\d\d|CreationDateTime=\"[^\"]*\"")
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir())
    assert "lb.csv" in names and "fa.xpt" in names
    for name in names:
        a = stamp.sub(b"", (tmp_path / "one" / name).read_bytes())
        b = stamp.sub(b"", (tmp_path / "two" / name).read_bytes())
        assert a == b, name


def test_infections_are_adverse_events(exported, demo_courses) -> None:
    """Each infection is one AE row: AECAT INFECTION, AESCAT the organism class, AETERM the
    site and organism, AETOXGR the CTCAE grade; seriousness / causality / outcome unrecorded."""
    from immunoreset.interop._codes import infection_term

    _, data = exported
    ae = data["AE"]
    rows = ae[ae["AESCAT"] != ""]  # the infection form's rows (the AE log has no AESCAT)
    assert (rows["AECAT"] == "INFECTION").all()
    want = sorted(
        (f"IMMUNORESET-{co.study_id}", infection_term(i), str(i.ctcae_grade), i.onset.isoformat())
        for co in demo_courses
        for i in co.infections
    )
    assert (
        want
        and sorted(
            zip(rows["USUBJID"], rows["AETERM"], rows["AETOXGR"], rows["AESTDTC"], strict=True)
        )
        == want
    )
    co = next(co for co in demo_courses if co.infections)
    inf = co.infections[0]
    row = rows[rows["AETERM"] == infection_term(inf)].iloc[0]
    assert row["AESCAT"] == inf.organism_class.upper()
    assert row["AEDECOD"] == row["AETERM"].upper()
    assert row["AESER"] == row["AEREL"] == row["AEOUT"] == ""
    assert float(row["AESTDY"]) == sdtm.sdtm_day(co.day0, inf.onset)
    assert len(ae) == sum(len(co.adverse_events) + len(co.infections) for co in demo_courses)


def test_follow_up_visits_are_subject_visits(exported, demo_courses) -> None:
    """SV: one row per visit, VISITNUM its place in the schedule, study days without day 0."""
    _, data = exported
    sv = data["SV"]
    visits = [(co, v) for co in demo_courses for v in co.followup_visits]
    assert len(sv) == len(visits) > 0
    order = ["D28", "M3", "M6", "M12", *(f"Y{y}" for y in range(2, 31))]
    for co, v in visits:
        row = sv[(sv["USUBJID"] == f"IMMUNORESET-{co.study_id}") & (sv["VISIT"] == v.visit)]
        assert len(row) == 1, (co.study_id, v.visit)
        r = row.iloc[0]
        assert float(r["VISITNUM"]) == order.index(v.visit) + 1
        assert r["SVSTDTC"] == r["SVENDTC"] == v.date.isoformat()
        assert float(r["SVSTDY"]) == sdtm.sdtm_day(co.day0, v.date) != 0
        assert r["SVCNTMOD"] == ("IN PERSON" if v.contact == "visit" else "")
        assert r["SVPRESP"] == r["SVOCCUR"] == "Y"
    assert {"D28", "M3", "Y2", "Y30"} <= set(order) and len(order) == 33


def _zp_edge(courses):  # type: ignore[no-untyped-def]
    """Courses and release QC with the manufacturing cases ZP must get right: a batch not yet
    harvested (QC dated by process start, bag without a made date), bags with and without
    expiry and location, a course without any manufacturing record, QC results numeric,
    text, pending (no value), without unit, with a long and an unknown attribute name."""
    import dataclasses

    from immunoreset.manufacturing.qc import AttributeResult

    a, b, *rest = courses
    batch = a.batches[0]
    a = dataclasses.replace(
        a,
        batches=(dataclasses.replace(batch, harvest_date=None), *a.batches[1:]),
        bags=tuple(
            dataclasses.replace(g, expiry=None, location="LN2 tank 2, rack 5" if i else None)
            for i, g in enumerate(a.bags)
        ),
    )
    b = dataclasses.replace(b, apheresis=(), batches=(), bags=())

    def result(attr, status, value, unit="", limit="≥ 70 %"):  # type: ignore[no-untyped-def]
        return AttributeResult(attr, status, value, unit, limit, True, "test")

    qc = {
        batch.batch_id: (
            result("cd3_viability", "pass", 91.25, "%"),
            result("sterility_final", "pending", None, limit="no growth"),
            result("mycoplasma", "pass", "negative", limit=""),
            result("vector copy number per transduced cell, qPCR assay", "fail", 5.5),
            result("0dd attribute", "pass", 0.0, "EU/mL"),
        )
    }
    return [a, b, *rest], qc


@pytest.mark.parametrize("cohort", ["demo_registry", "synthetic_registry", "edge"])
def test_column_wise_zp_equals_the_per_row_path(cohort, request, demo_courses) -> None:
    """zp_columns (the export's ZP) == the ZP rows added one by one, with release QC."""
    from immunoreset.interop import _sdtm_columns

    if cohort == "edge":
        courses, qc = _zp_edge(demo_courses)
    else:
        reg = request.getfixturevalue(cohort)
        courses = list(reg.iter_courses(ADMIN))
        qc = sdtm.load_qc(reg, ADMIN, courses)
    objects = sdtm.build_datasets(courses, qc=qc, study="TRIAL1")["ZP"]
    zp = _sdtm_columns.zp_columns(courses, study="TRIAL1", qc=qc)
    fast = sdtm.build_datasets(courses, qc=qc, study="TRIAL1", columns={"ZP": zp})["ZP"]
    assert len(objects) > 100
    pd.testing.assert_frame_equal(fast, objects, check_exact=True)
    if cohort == "edge":
        assert {"PENDING", "FAIL"} <= set(fast["ZPNRIND"])
        assert "LN2 tank 2, rack 5" in set(fast["ZPORRES"])
        assert courses[1].study_id not in {u.split("-", 1)[1] for u in fast["USUBJID"]}
        assert (fast["ZPDTC"] == "").any()  # a bag of a batch not yet harvested
    # without any manufacturing record or QC: an empty ZP with every variable
    none = [_without_manufacturing(co) for co in courses[:3]]
    empty = _sdtm_columns.zp_columns(none)
    assert all(len(col) == 0 for col in empty.values())
    assert list(empty) == list(sdtm.DOMAINS["ZP"].names)


def _without_manufacturing(co):  # type: ignore[no-untyped-def]
    import dataclasses

    return dataclasses.replace(co, apheresis=(), batches=(), bags=())


def test_compacted_text_codes_keep_used_texts_once() -> None:
    """The writers size a text column by its longest text: unused texts must go, duplicates
    (two values formatted alike) become one."""
    from immunoreset.interop._sdtm_columns import _compact

    codes, texts = _compact(np.array([2, 0, 2, 3]), ["a", "unused-and-long", "b", "a"])
    assert texts == ["a", "b"]
    assert [texts[k] for k in codes] == ["b", "a", "b", "a"]
    assert _compact(np.zeros(3, np.int64), ["x"])[1] == ["x"]
    assert _compact(np.zeros(0, np.int64), ["x"])[1] == []
