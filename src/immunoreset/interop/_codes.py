"""The code and unit mapping of the interop formats, read once from ``codes.yaml``.

Kept as data (documented in ``docs/interop.md``) so a site can add the LOINC code its
laboratory uses without touching code. Checked on load: every analyte, instrument and dose
unit of :mod:`immunoreset.vocab` / :mod:`immunoreset.course` must have an entry, so a record
type added there without a mapping fails the tests instead of vanishing from an export.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

from immunoreset import course as c
from immunoreset import vocab

__all__ = ["codes", "infection_term", "local_system"]


@cache
def codes() -> dict[str, Any]:
    """The parsed mapping (systems, analytes, vitals, instruments, neuro, dose_units, sex)."""
    text = resources.files("immunoreset.interop").joinpath("codes.yaml").read_text("utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    for name, wanted in (
        ("analytes", vocab.ANALYTES),
        ("instruments", vocab.INSTRUMENTS),
        ("dose_units", c.DOSE_UNITS),
        ("sex", vocab.SEXES),
    ):
        missing = [k for k in wanted if k not in data[name]]
        if missing:  # pragma: no cover - guarded by tests/interop/test_codes.py
            raise RuntimeError(f"codes.yaml: {name} lacks {', '.join(missing)}")
    for a in data["analytes"].values():
        if a["loinc"] is not None:
            a["loinc"] = str(a["loinc"])
    return data


def local_system(part: str = "") -> str:
    """The local code system URI (``…/immunoreset``), or a sub-system (``…/immunoreset/drug``)."""
    base: str = codes()["systems"]["local"]
    return f"{base}/{part}" if part else base


#: Text of each infection site (the start of an infection's FHIR event text and SDTM AETERM).
_INFECTION_SITE_TEXT = {
    "bloodstream": "Bloodstream infection",
    "upper_respiratory": "Upper respiratory tract infection",
    "lower_respiratory": "Lower respiratory tract infection",
    "urinary": "Urinary tract infection",
    "gastrointestinal": "Gastrointestinal infection",
    "skin_soft_tissue": "Skin and soft tissue infection",
    "cns": "Central nervous system infection",
    "disseminated": "Disseminated infection",
    "other": "Infection, other site",
}


assert set(_INFECTION_SITE_TEXT) == set(c.INFECTION_SITES), "an infection site without a text"


def infection_term(inf: c.Infection) -> str:
    """The reported term of an infection: site, organism class and organism."""
    text = f"{_INFECTION_SITE_TEXT[inf.site]} ({inf.organism_class}"
    return text + (f": {inf.organism})" if inf.organism else ")")
