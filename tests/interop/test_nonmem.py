"""NONMEM-style data sets: reading, validation (row and column named), registry export."""

from __future__ import annotations

import datetime as dt
import io
import math
from pathlib import Path

import numpy as np
import pytest

from immunoreset import course as c
from immunoreset.errors import InvalidInput
from immunoreset.interop.nonmem import (
    OBSERVATION_CMTS,
    data_definition,
    dataset_from_courses,
    read_nonmem,
    write_nonmem,
)
from tests.factories import DAY0, patient, small_course

FIXTURE = Path(__file__).parents[1] / "fixtures" / "theoph.csv"
GOOD = (
    "ID,TIME,DV,AMT,EVID,MDV,CMT,WT\n1,0,.,100,1,1,1,70\n1,1,5.2,0,0,0,2,70\n1,2,4.1,0,0,0,2,70\n"
)


def _read(text: str, **kw):
    return read_nonmem(io.StringIO(text), **kw)


def test_theophylline_fixture_reads_as_12_subjects_132_observations():
    frame = read_nonmem(FIXTURE)
    obs = frame[(frame.EVID == 0) & (frame.MDV == 0)]
    assert frame.ID.nunique() == 12
    assert len(obs) == 132  # R's Theoph: 12 subjects × 11 samples
    assert frame.loc[frame.EVID == 1, "DV"].isna().all()  # '.' is a missing DV
    assert frame.LINE.iloc[0] == 7  # header comments skipped, lines counted from the file


def test_missing_mdv_is_derived_and_covariates_are_numeric():
    frame = _read("ID,TIME,DV,AMT,EVID,WT\n1,0,.,100,1,70\n1,1,5.2,0,0,70\n")
    assert frame.MDV.tolist() == [1, 0]
    assert frame.WT.dtype == np.float64


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        (GOOD.replace("1,1,5.2", "1,one,5.2"), 3, "TIME"),  # non-numeric TIME
        ("ID,TIME,DV,AMT,EVID,MDV,CMT\n1,0,3.0,0,0,0,2\n1,1,.,100,1,1,1\n", 2, "TIME"),  # obs first
        (GOOD.replace("1,0,.,100,1", "1,0,.,-100,1"), 2, "AMT"),  # negative AMT
        ("TIME,DV,AMT,EVID\n0,.,100,1\n", 1, "ID"),  # missing ID column
        (GOOD.replace("1,2,4.1", "1,0.5,4.1"), 4, "TIME"),  # time goes back
        (GOOD.replace("1,2,4.1,0,0,0", "1,2,.,0,0,0"), 4, "DV"),  # MDV 0 without DV
        (GOOD.replace("1,2,4.1,0,0", "1,2,4.1,0,3"), 4, "EVID"),  # unsupported EVID
        (GOOD.replace("1,0,.,100,1,1,1", "1,0,.,0,1,1,1"), 2, "AMT"),  # dose without amount
        (GOOD.replace("2,70\n1,2", "0,70\n1,2"), 3, "CMT"),  # CMT 0
        (GOOD + "2,0,.,100,1,1,1,70\n1,3,3.0,0,0,0,2,70\n", 6, "ID"),  # ID not contiguous
        (GOOD.replace("5.2", "abc"), 3, "DV"),
    ],
)
def test_bad_data_sets_name_line_and_column(text, line, column):
    with pytest.raises(InvalidInput) as err:
        _read(text)
    assert err.value.row == line
    assert err.value.column == column


def test_observation_before_dose_message_and_allow_predose():
    text = "ID,TIME,DV,AMT,EVID,MDV,CMT\n1,-7,400,0,0,0,4\n1,0,.,1,1,1,1\n1,7,1,0,0,0,4\n"
    with pytest.raises(InvalidInput, match="before any dose"):
        _read(text)
    assert len(_read(text, allow_predose=True)) == 3


def test_file_name_in_error(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text(GOOD.replace("1,1,5.2", "1,x,5.2"))
    with pytest.raises(InvalidInput, match=r"bad\.csv, row 3, column TIME"):
        read_nonmem(p)


def test_blq_takes_lloq_from_dv_and_cens_alias():
    frame = _read("ID,TIME,DV,AMT,EVID,CENS\n1,0,.,1,1,0\n1,2,0.5,0,0,1\n")
    assert frame.BLQ.tolist() == [0, 1]
    assert frame.LLOQ.iloc[1] == 0.5
    with pytest.raises(InvalidInput) as err:
        _read("ID,TIME,DV,AMT,EVID,MDV,BLQ\n1,0,.,1,1,1,0\n1,2,.,0,0,0,1\n")
    assert (err.value.row, err.value.column) == (3, "LLOQ")


def _course_with_series():
    base = small_course()
    extra = (
        c.LabResult(date=DAY0, analyte="car_t_qpcr", value=120.0, unit="copies/ug"),
        c.LabResult(
            date=DAY0 + dt.timedelta(days=14),
            analyte="anti_dsdna",
            value=40.0,
            unit="IU/mL",
        ),
    )
    return c.Course(
        **{**{k: getattr(base, k) for k in base.__dataclass_fields__}, "labs": base.labs + extra}
    )


def test_registry_export_rows_codes_and_covariates():
    course = _course_with_series()
    no_infusion = c.Course(patient=patient("RM-002"))
    export = dataset_from_courses([no_infusion, course])
    f = export.frame
    assert export.skipped == ("RM-002",)
    assert (f.USUBJID == "RM-001").all() and (f.ID == 1).all()
    dose = f[f.EVID == 1].iloc[0]
    assert (dose.TIME, dose.AMT, dose.CMT, dose.MDV) == (0.0, 1.0, 1, 1)  # 1e6/kg -> 1
    names = {v[1]: k for k, v in OBSERVATION_CMTS.items()}
    b = f[f.CMT.eq(names["cd19_b_cells"])]
    assert b.TIME.tolist() == [-7.0, 7.0] and b.DV.tolist() == [420.0, 0.0]
    cart = f[f.CMT.eq(names["car_t_flow"])].iloc[0]
    assert (cart.BLQ, cart.LLOQ, cart.DV) == (1, 0.1, 0.1)
    assert f[f.CMT.eq(names["sledai2k"])].DV.tolist() == [10.0]
    assert f[f.CMT.eq(names["anti_dsdna"])].TIME.tolist() == [14.0]
    row = f.iloc[0]
    assert row.WT == 38.5 and row.SEX == 1 and row.DIAG == 1 and row.SITE == 1
    assert abs(row.BSA - math.sqrt(38.5 * 146.0 / 3600.0)) < 1e-3
    assert (row.FLU, row.CY, row.BENDA, row.LD) == (30.0, 500.0, 0.0, 1)
    assert (row.LDSTART, row.LDEND) == (-5.0, -4.0)  # the recorded lymphodepletion days
    assert abs(row.AGE - 11.79) < 0.01
    # the ANC is not an observation type of the data set
    assert len(f) == 1 + 5 + 1


def test_export_round_trip_and_definition(tmp_path):
    export = dataset_from_courses([_course_with_series()])
    path, define = write_nonmem(export.frame, tmp_path / "nm.csv", definition=export.definition())
    assert define is not None and define.name == "nm.define.csv"
    assert "." in path.read_text().splitlines()[2].split(",")  # missing DV written as '.'
    back = read_nonmem(path, allow_predose=True)
    assert back.DV.tolist() == pytest.approx(export.frame.DV.tolist(), nan_ok=True)
    assert back.CMT.tolist() == export.frame.CMT.tolist()
    with pytest.raises(InvalidInput, match="before any dose"):
        read_nonmem(path)
    table = data_definition({"ROME": 1})
    assert set(export.frame.columns) == set(table.column)
    assert "1=ROME" in table.set_index("column").loc["SITE", "codes"]
