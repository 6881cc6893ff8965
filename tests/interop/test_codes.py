"""The code mapping (codes.yaml) covers every vocabulary word and is well-formed."""

from __future__ import annotations

import re

from immunoreset import course as c
from immunoreset import vocab
from immunoreset.interop._codes import codes


def test_every_analyte_instrument_and_unit_is_mapped() -> None:
    data = codes()
    assert set(data["analytes"]) == set(vocab.ANALYTES)
    assert set(data["instruments"]) == set(vocab.INSTRUMENTS)
    assert set(data["dose_units"]) == set(c.DOSE_UNITS)
    assert set(data["sex"]) == set(vocab.SEXES)


def test_codes_are_well_formed() -> None:
    data = codes()
    loinc = re.compile(r"^\d{1,7}-\d$")
    testcd = re.compile(r"^[A-Z][A-Z0-9_]{0,7}$")
    for name, a in data["analytes"].items():
        assert a["loinc"] is None or loinc.match(a["loinc"]), name
        assert testcd.match(a["lbtestcd"]), name
        assert a["spec"] in ("BLOOD", "SERUM", "URINE")
    assert len({a["lbtestcd"] for a in data["analytes"].values()}) == len(data["analytes"])
    for v in data["vitals"].values():
        assert testcd.match(v["vstestcd"])
    for i in data["instruments"].values():
        assert len(i["stem"]) <= 4  # stem + 2-digit item number or TOT fits in 8
    # the LOINC codes taken from /work/shared/specs/ecosystem.md
    assert data["analytes"]["anc"]["loinc"] == "751-8"
    assert data["analytes"]["cd19_b_cells"]["loinc"] == "8116-6"
    assert data["analytes"]["car_t_flow"]["loinc"] is None  # no LOINC exists: local code
