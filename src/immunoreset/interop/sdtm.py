"""CDISC SDTM tabulations of the registry: DM, AE, EX, CM, LB, VS, QS, FA, DS, SV and ZP.

Variable names, labels and order follow SDTMIG v3.4 (:data:`DOMAINS` lists every variable
with its label, type and core: Req / Exp / Perm); dates are ISO 8601 text (``YYYY-MM-DD``,
the birth date as the partial ``YYYY-MM``). ZP is a sponsor-defined findings domain for the
manufacturing attributes (apheresis, batch, bag, release QC), as SDTMIG has no domain for a
cell-therapy product's manufacture.

The daily CRS/ICANS assessment (ASTCT 2019 grading inputs) goes where SDTMIG puts each part:
the day's maximum temperature and the oxygen flow in VS; the ICE and CAPD totals in QS (the
registry keeps no item scores); the drugs given that day (tocilizumab, corticosteroid,
anakinra, siltuximab, other anti-cytokine, antipyretic, each vasopressor) in CM with CMCAT
``CRS_ICANS_TREATMENT``; the other findings — hypotension, oxygen device, unable to assess,
level of consciousness, seizure, focal motor weakness, cerebral oedema — in FA (Findings About,
SDTMIG §6.4), one row per finding per day with FAOBJ the event they grade (cytokine release
syndrome / ICANS) and FACAT ``CRS`` / ``ICANS``; the registry stores no blood pressure value,
only whether the day's hypotension criterion was met.

Study day (``--DY``, ``--STDY``, ``--ENDY``), SDTMIG 3.4 §4.4.4: the reference start date
``RFSTDTC`` is the first CAR T infusion, which the registry's clinical convention calls day 0.
SDTM has no day 0: the infusion day is Day 1, the day before is Day −1::

    clinical day d (infusion = 0)  →  SDTM --DY = d + 1 if d ≥ 0, else d

Controlled terminology used where CDISC publishes it: SEX (C66731: F, M, UNDIFFERENTIATED),
AGEU (YEARS), NY (Y, N) for AESER, AETOXGR as the CTCAE grade 1–5, DSDECOD for the
disposition events (DEATH, LOST TO FOLLOW-UP, WITHDRAWAL BY SUBJECT). LBTESTCD / VSTESTCD
come from ``codes.yaml``; QSTESTCD is the instrument's stem plus the item number of the
published instrument (``CMAS01`` = CMAS item 1, head elevation) or ``TOT`` for the total.

The CDISC open rules engine (``cdisc-rules-engine``) needs its rules cache, which is not on
PyPI (it is downloaded from the CDISC Library with an API key); the SDTMIG rules relied on here
are tested in ``tests/interop/test_sdtm.py`` instead.

Infections (Hill 2018 reporting) are adverse events: AE rows with AECAT ``INFECTION``, AESCAT
the organism class, AETERM the site and organism (e.g. ``Bloodstream infection (bacterial:
E. coli)``) and AETOXGR the CTCAE grade; seriousness, causality and outcome are not recorded
for them, so AESER / AEREL / AEOUT stay empty. An infection the investigator also entered in
the adverse-event log appears once from each source (SDTM tabulates what was collected);
AESCAT is filled only on the infection form's rows. Long-term follow-up visits are SV (Subject
Visits, SDTMIG §5.4) rows: VISITNUM is the visit's place in the schedule (D28 = 1, M3 = 2, M6 =
3, M12 = 4, Y2 = 5 … Y30 = 33), VISIT its code, SVPRESP / SVOCCUR ``Y`` (a scheduled visit that
took place) and SVCNTMOD ``IN PERSON`` for a visit; a remote contact leaves SVCNTMOD empty,
because the registry does not record whether it was a telephone call or a video call (the
two CDISC CNTMODE terms, C171445).

To add a record type: add its variables to :data:`DOMAINS` and its rows to ``_course_rows``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from immunoreset import course as c
from immunoreset import vocab
from immunoreset.interop._codes import codes, infection_term

__all__ = [
    "DOMAINS",
    "Variable",
    "build_datasets",
    "export_sdtm",
    "item_testcd",
    "qc_testcd",
    "sdtm_day",
    "write_csv",
    "write_sdtm",
]

SDTMIG_VERSION = "3.4"


@dataclass(frozen=True)
class Variable:
    """One SDTM variable: name (≤ 8), label (≤ 40), type, core and origin."""

    name: str
    label: str
    type: str = "Char"  # Char | Num
    core: str = "Exp"  # Req | Exp | Perm
    origin: str = "Collected"  # Collected | Derived | Assigned
    codelist: tuple[str, ...] = ()
    method: str = ""


@dataclass(frozen=True)
class Domain:
    name: str
    label: str
    cls: str  # SDTM class
    structure: str
    keys: tuple[str, ...]
    variables: tuple[Variable, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables)


_DY = "SDTM study day: date − RFSTDTC + 1 on or after RFSTDTC, date − RFSTDTC before (no day 0)"


def _common(prefix: str) -> tuple[Variable, ...]:
    return (
        Variable("STUDYID", "Study Identifier", core="Req", origin="Assigned"),
        Variable("DOMAIN", "Domain Abbreviation", core="Req", origin="Assigned"),
        Variable("USUBJID", "Unique Subject Identifier", core="Req", origin="Derived"),
        Variable(f"{prefix}SEQ", "Sequence Number", "Num", "Req", "Derived"),
    )


def _dy(name: str, label: str) -> Variable:
    return Variable(name, label, "Num", "Perm", "Derived", method=_DY)


_SEX_CT = tuple(v["sdtm"] for v in codes()["sex"].values())
#: Long-term follow-up visit codes in schedule order; VISITNUM is the place in it (D28 = 1).
_VISITS = ("D28", "M3", "M6", "M12", *(f"Y{y}" for y in range(2, 31)))
_VISITNUM = {code: i for i, code in enumerate(_VISITS, start=1)}

# fmt: off
DOMAINS: dict[str, Domain] = {
    "DM": Domain(
        "DM", "Demographics", "SPECIAL PURPOSE", "One record per subject", ("STUDYID", "USUBJID"),
        (
            Variable("STUDYID", "Study Identifier", core="Req", origin="Assigned"),
            Variable("DOMAIN", "Domain Abbreviation", core="Req", origin="Assigned"),
            Variable("USUBJID", "Unique Subject Identifier", core="Req", origin="Derived"),
            Variable("SUBJID", "Subject Identifier for the Study", core="Req"),
            Variable("RFSTDTC", "Subject Reference Start Date/Time", origin="Derived"),
            Variable("RFENDTC", "Subject Reference End Date/Time", origin="Derived"),
            Variable("RFXSTDTC", "Date/Time of First Study Treatment", origin="Derived"),
            Variable("RFXENDTC", "Date/Time of Last Study Treatment", origin="Derived"),
            Variable("DTHDTC", "Date/Time of Death", origin="Derived"),
            Variable("DTHFL", "Subject Death Flag", origin="Derived", codelist=("Y",)),
            Variable("SITEID", "Study Site Identifier", core="Req"),
            Variable("BRTHDTC", "Date/Time of Birth", core="Perm"),
            Variable("AGE", "Age", "Num", origin="Derived"),
            Variable("AGEU", "Age Units", origin="Assigned", codelist=("YEARS",)),
            Variable("SEX", "Sex", core="Req", codelist=_SEX_CT),
            Variable("ARMCD", "Planned Arm Code", origin="Assigned"),
            Variable("ARM", "Description of Planned Arm", origin="Assigned"),
            Variable("ACTARMCD", "Actual Arm Code", origin="Derived"),
            Variable("ACTARM", "Description of Actual Arm", origin="Derived"),
            Variable("DMDIAG", "Primary Diagnosis", core="Perm",
                     codelist=tuple(vocab.DIAGNOSES)),
            Variable("DMICD10", "Primary Diagnosis ICD-10 Code", core="Perm"),
            Variable("DMDIAGDT", "Date of Primary Diagnosis", core="Perm"),
            Variable("DMPRLINE", "Number of Prior Therapy Lines", "Num", "Perm"),
            Variable("DMSYNTH", "Synthetic Record Flag", core="Perm", origin="Assigned",
                     codelist=("Y", "N")),
        ),
    ),
    "AE": Domain(
        "AE", "Adverse Events", "EVENTS", "One record per adverse event per subject",
        ("STUDYID", "USUBJID", "AETERM", "AESTDTC"),
        (
            *_common("AE"),
            Variable("AETERM", "Reported Term for the Adverse Event", core="Req"),
            Variable("AEDECOD", "Dictionary-Derived Term", core="Req", origin="Assigned"),
            Variable("AECAT", "Category for Adverse Event", core="Perm",
                     codelist=tuple(x.upper() for x in vocab.AE_CATEGORIES)),
            Variable("AESCAT", "Subcategory for Adverse Event", core="Perm",
                     codelist=tuple(x.upper() for x in vocab.ORGANISM_CLASSES)),
            Variable("AESER", "Serious Event", codelist=("Y", "N")),
            Variable("AEREL", "Causality", codelist=("RELATED", "NOT RELATED")),
            Variable("AEOUT", "Outcome of Adverse Event", core="Perm", origin="Derived",
                     codelist=("RECOVERED/RESOLVED", "NOT RECOVERED/NOT RESOLVED", "FATAL")),
            Variable("AETOXGR", "Standard Toxicity Grade", core="Perm",
                     codelist=("1", "2", "3", "4", "5")),
            Variable("AESTDTC", "Start Date/Time of Adverse Event"),
            Variable("AEENDTC", "End Date/Time of Adverse Event"),
            _dy("AESTDY", "Study Day of Start of Adverse Event"),
            _dy("AEENDY", "Study Day of End of Adverse Event"),
        ),
    ),
    "EX": Domain(
        "EX", "Exposure", "INTERVENTIONS", "One record per administration per subject",
        ("STUDYID", "USUBJID", "EXTRT", "EXSTDTC"),
        (
            *_common("EX"),
            Variable("EXREFID", "Reference ID", core="Perm"),
            Variable("EXTRT", "Name of Treatment", core="Req"),
            Variable("EXCAT", "Category of Treatment", core="Perm", origin="Assigned",
                     codelist=("CAR T CELL INFUSION", "LYMPHODEPLETION")),
            Variable("EXDOSE", "Dose", "Num"),
            Variable("EXDOSU", "Dose Units", codelist=("cells/kg", "mg/m2")),
            Variable("EXROUTE", "Route of Administration", core="Perm", origin="Assigned",
                     codelist=("INTRAVENOUS",)),
            Variable("EXSTDTC", "Start Date/Time of Treatment"),
            Variable("EXENDTC", "End Date/Time of Treatment"),
            _dy("EXSTDY", "Study Day of Start of Treatment"),
            _dy("EXENDY", "Study Day of End of Treatment"),
        ),
    ),
    "CM": Domain(
        "CM", "Concomitant/Prior Medications", "INTERVENTIONS",
        "One record per medication intervention per subject",
        ("STUDYID", "USUBJID", "CMTRT", "CMSTDTC"),
        (
            *_common("CM"),
            Variable("CMTRT", "Reported Name of Drug, Med, or Therapy", core="Req"),
            Variable("CMCAT", "Category for Medication", core="Perm",
                     codelist=tuple(x.upper() for x in (*vocab.MEDICATION_CLASSES,
                                                         "crs_icans_treatment"))),
            Variable("CMDOSE", "Dose per Administration", "Num", "Perm"),
            Variable("CMDOSU", "Dose Units", core="Perm", codelist=c.DOSE_UNITS),
            Variable("CMSTDTC", "Start Date/Time of Medication"),
            Variable("CMENDTC", "End Date/Time of Medication"),
            Variable("CMENRF", "End Relative to Reference Period", core="Perm",
                     origin="Derived", codelist=("ONGOING",)),
            _dy("CMSTDY", "Study Day of Start of Medication"),
            _dy("CMENDY", "Study Day of End of Medication"),
        ),
    ),
    "LB": Domain(
        "LB", "Laboratory Test Results", "FINDINGS",
        "One record per lab test per time point per subject",
        ("STUDYID", "USUBJID", "LBTESTCD", "LBDTC"),
        (
            *_common("LB"),
            Variable("LBTESTCD", "Lab Test or Examination Short Name", core="Req",
                     codelist=tuple(a["lbtestcd"] for a in codes()["analytes"].values())),
            Variable("LBTEST", "Lab Test or Examination Name", core="Req"),
            Variable("LBORRES", "Result or Finding in Original Units"),
            Variable("LBORRESU", "Original Units"),
            Variable("LBSTRESC", "Character Result/Finding in Std Format", origin="Derived"),
            Variable("LBSTRESN", "Numeric Result/Finding in Standard Units", "Num",
                     origin="Derived"),
            Variable("LBSTRESU", "Standard Units", origin="Derived"),
            Variable("LBSPEC", "Specimen Type", core="Perm",
                     codelist=("BLOOD", "SERUM", "URINE")),
            Variable("LBLLOQ", "Lower Limit of Quantitation", "Num", "Perm"),
            Variable("LBDTC", "Date/Time of Specimen Collection"),
            _dy("LBDY", "Study Day of Specimen Collection"),
        ),
    ),
    "VS": Domain(
        "VS", "Vital Signs", "FINDINGS",
        "One record per vital sign measurement per time point per subject",
        ("STUDYID", "USUBJID", "VSTESTCD", "VSDTC"),
        (
            *_common("VS"),
            Variable("VSTESTCD", "Vital Signs Test Short Name", core="Req",
                     codelist=tuple(v["vstestcd"] for v in codes()["vitals"].values())),
            Variable("VSTEST", "Vital Signs Test Name", core="Req"),
            Variable("VSORRES", "Result or Finding in Original Units"),
            Variable("VSORRESU", "Original Units"),
            Variable("VSSTRESC", "Character Result/Finding in Std Format", origin="Derived"),
            Variable("VSSTRESN", "Numeric Result/Finding in Standard Units", "Num",
                     origin="Derived"),
            Variable("VSSTRESU", "Standard Units", origin="Derived"),
            Variable("VSDTC", "Date/Time of Measurements"),
            _dy("VSDY", "Study Day of Vital Signs"),
        ),
    ),
    "QS": Domain(
        "QS", "Questionnaires", "FINDINGS",
        "One record per questionnaire per question per time point per subject",
        ("STUDYID", "USUBJID", "QSCAT", "QSTESTCD", "QSDTC"),
        (
            *_common("QS"),
            Variable("QSTESTCD", "Question Short Name", core="Req"),
            Variable("QSTEST", "Question Name", core="Req"),
            Variable("QSCAT", "Category of Question", core="Req"),
            Variable("QSORRES", "Finding in Original Units"),
            Variable("QSSTRESC", "Character Result/Finding in Std Format", origin="Derived"),
            Variable("QSSTRESN", "Numeric Finding in Standard Units", "Num", origin="Derived"),
            Variable("QSDTC", "Date/Time of Finding"),
            _dy("QSDY", "Study Day of Finding"),
        ),
    ),
    "FA": Domain(
        "FA", "Findings About Events or Interventions", "FINDINGS",
        "One record per finding per object per time point per subject",
        ("STUDYID", "USUBJID", "FAOBJ", "FATESTCD", "FADTC"),
        (
            *_common("FA"),
            Variable("FATESTCD", "Findings About Test Short Name", core="Req",
                     codelist=tuple(f["fatestcd"] for f in codes()["daily_findings"].values())),
            Variable("FATEST", "Findings About Test Name", core="Req"),
            Variable("FAOBJ", "Object of the Observation", core="Req",
                     codelist=tuple(codes()["daily_finding_objects"].values())),
            Variable("FACAT", "Category for Findings About", core="Perm", origin="Assigned",
                     codelist=tuple(codes()["daily_finding_objects"])),
            Variable("FAORRES", "Result or Finding in Original Units"),
            Variable("FASTRESC", "Character Result/Finding in Std Format", origin="Derived"),
            Variable("FADTC", "Date/Time of Collection"),
            _dy("FADY", "Study Day of Collection"),
        ),
    ),
    "DS": Domain(
        "DS", "Disposition", "EVENTS", "One record per disposition status per subject",
        ("STUDYID", "USUBJID", "DSDECOD", "DSSTDTC"),
        (
            *_common("DS"),
            Variable("DSTERM", "Reported Term for the Disposition Event", core="Req"),
            Variable("DSDECOD", "Standardized Disposition Term", core="Req", origin="Assigned",
                     codelist=("ALIVE", "DEATH", "LOST TO FOLLOW-UP", "WITHDRAWAL BY SUBJECT")),
            Variable("DSCAT", "Category for Disposition Event", origin="Assigned",
                     codelist=("DISPOSITION EVENT", "OTHER EVENT")),
            Variable("DSSTDTC", "Start Date/Time of Disposition Event"),
            _dy("DSSTDY", "Study Day of Start of Disposition Event"),
        ),
    ),
    "SV": Domain(
        "SV", "Subject Visits", "SPECIAL PURPOSE", "One record per actual visit per subject",
        ("STUDYID", "USUBJID", "VISITNUM"),
        (
            Variable("STUDYID", "Study Identifier", core="Req", origin="Assigned"),
            Variable("DOMAIN", "Domain Abbreviation", core="Req", origin="Assigned"),
            Variable("USUBJID", "Unique Subject Identifier", core="Req", origin="Derived"),
            Variable("VISITNUM", "Visit Number", "Num", "Req", "Derived"),
            Variable("VISIT", "Visit Name", codelist=_VISITS),
            Variable("SVPRESP", "Pre-specified", core="Perm", origin="Assigned",
                     codelist=("Y",)),
            Variable("SVOCCUR", "Occurrence", core="Perm", origin="Assigned", codelist=("Y",)),
            Variable("SVCNTMOD", "Contact Mode", core="Perm", origin="Derived",
                     codelist=("IN PERSON",)),
            Variable("SVSTDTC", "Start Date/Time of Visit"),
            Variable("SVENDTC", "End Date/Time of Visit"),
            _dy("SVSTDY", "Study Day of Start of Visit"),
            _dy("SVENDY", "Study Day of End of Visit"),
        ),
    ),
    "ZP": Domain(
        "ZP", "CAR T Product Manufacturing", "FINDINGS",
        "One record per product attribute per product unit per subject",
        ("STUDYID", "USUBJID", "ZPREFID", "ZPTESTCD"),
        (
            *_common("ZP"),
            Variable("ZPREFID", "Product Unit Identifier", core="Req"),
            Variable("ZPCAT", "Category of Product Unit", core="Req",
                     codelist=("APHERESIS", "BATCH", "BAG", "RELEASE QC")),
            Variable("ZPTESTCD", "Product Attribute Short Name", core="Req"),
            Variable("ZPTEST", "Product Attribute Name", core="Req"),
            Variable("ZPORRES", "Result or Finding in Original Units"),
            Variable("ZPORRESU", "Original Units"),
            Variable("ZPSTRESC", "Character Result/Finding in Std Format", origin="Derived"),
            Variable("ZPSTRESN", "Numeric Result/Finding in Standard Units", "Num",
                     origin="Derived"),
            Variable("ZPSTRESU", "Standard Units", origin="Derived"),
            Variable("ZPNRIND", "Reference Range Indicator", core="Perm", origin="Derived",
                     codelist=("PASS", "FAIL", "PENDING")),
            Variable("ZPORNRLO", "Specification Limit in Original Units", core="Perm"),
            Variable("ZPDTC", "Date/Time of Attribute"),
            _dy("ZPDY", "Study Day of Attribute"),
        ),
    ),
}
# fmt: on


def sdtm_day(day0: dt.date | None, when: dt.date | None) -> int | None:
    """SDTM study day of ``when`` with reference start ``day0`` (the infusion): no day 0.

    >>> sdtm_day(dt.date(2024, 3, 10), dt.date(2024, 3, 10))
    1
    >>> sdtm_day(dt.date(2024, 3, 10), dt.date(2024, 3, 9))
    -1
    """
    if day0 is None or when is None:
        return None
    d = (when - day0).days
    return d + 1 if d >= 0 else d


def _item_tables() -> dict[str, tuple[str, ...]]:
    from immunoreset.clinical.cmas import CMAS_ITEMS
    from immunoreset.clinical.mmt8 import MMT8_GROUPS
    from immunoreset.clinical.mrss import MRSS_SITES
    from immunoreset.clinical.sledai import SLEDAI2K_WEIGHTS

    return {
        "cmas": tuple(name for _, name, _ in sorted(CMAS_ITEMS)),
        "mmt8": tuple(MMT8_GROUPS),
        "mrss": tuple(MRSS_SITES),
        "sledai2k": tuple(SLEDAI2K_WEIGHTS),
    }


_ITEMS = _item_tables()


def item_testcd(instrument: str, item: str | None) -> str:
    """QSTESTCD of an instrument item (``None`` = total): stem + published item number.

    Items outside the published list (free-text items) get ``X`` + a stable 2-digit hash.
    """
    stem = codes()["instruments"][instrument]["stem"]
    if item is None:
        return f"{stem}TOT"
    known = _ITEMS.get(instrument, ())
    if item in known:
        return f"{stem}{known.index(item) + 1:02d}"
    import zlib

    return f"{stem}X{zlib.crc32(item.encode()) % 100:02d}"


def qc_testcd(attribute: str) -> str:
    """ZPTESTCD of a release-QC attribute (``codes.yaml`` qc_attributes, else derived)."""
    known = codes().get("qc_attributes", {})
    if attribute in known:
        return str(known[attribute])
    import re
    import zlib

    stem = re.sub(r"[^A-Z0-9]", "", attribute.upper())[:6] or "QC"
    if not stem[0].isalpha():
        stem = "Q" + stem[:5]
    return f"{stem}{zlib.crc32(attribute.encode()) % 100:02d}"


def _fmt(x: float) -> str:
    return repr(float(x)) if not float(x).is_integer() else str(int(x))


class _Tables:
    """Column-wise rows of every domain (fast at millions of rows).

    :meth:`add` keeps a row as its keyword dict; :meth:`flush` turns a domain's pending rows
    into its columns (one list comprehension per variable) before column-wise writers such as
    :func:`_lab_rows` extend them, so rows stay in the order they were added.
    """

    def __init__(self) -> None:
        self.cols: dict[str, dict[str, list[Any]]] = {
            d: {v: [] for v in dom.names} for d, dom in DOMAINS.items()
        }
        self.pending: dict[str, list[dict[str, Any]]] = {d: [] for d in DOMAINS}
        self.seq: dict[str, int] = {}

    def add(self, domain: str, usubjid: str, **values: Any) -> None:
        key = domain + usubjid
        n = self.seq.get(key, 0) + 1
        self.seq[key] = n
        values[f"{domain}SEQ"] = n
        self.pending[domain].append(values)

    def flush(self, domain: str) -> None:
        rows = self.pending[domain]
        if rows:
            for name, col in self.cols[domain].items():
                col.extend([r.get(name) for r in rows])
            self.pending[domain] = []


#: Daily drugs of a DailyAssessment -> CMTRT (CMCAT CRS_ICANS_TREATMENT), in row order: the
#: fever-masking drug flags, then each vasopressor given that day.
_DAILY_DRUGS = {
    "tocilizumab": "TOCILIZUMAB",
    "corticosteroids": "CORTICOSTEROID",
    "anakinra": "ANAKINRA",
    "siltuximab": "SILTUXIMAB",
    "other_anticytokine": "OTHER ANTICYTOKINE",
    "antipyretic": "ANTIPYRETIC",
}


def _daily_drugs(d: c.DailyAssessment) -> list[str]:
    """CMTRT of every drug a daily assessment records as given that day."""
    out = [drug for name, drug in _DAILY_DRUGS.items() if getattr(d, name)]
    out.extend(v.upper() for v in d.vasopressors)
    return out


#: FA findings of a daily assessment: field -> (FATESTCD, FATEST, FACAT, FAOBJ).
_FA_META = {
    name: (f["fatestcd"], f["fatest"], f["facat"], codes()["daily_finding_objects"][f["facat"]])
    for name, f in codes()["daily_findings"].items()
}


def _finding_text(value: bool | str) -> str:
    """FAORRES of a daily finding: Y/N for a flag, the choice in upper case with spaces."""
    if isinstance(value, bool):
        return "Y" if value else "N"
    return value.replace("_", " ").upper()


def _course_rows(
    t: _Tables,
    co: c.Course,
    study: str,
    qc: Mapping[str, Sequence[Any]] | None,
    end: dt.date | None,
    zp_rows: bool = True,
) -> None:
    p = co.patient
    u = f"{study}-{p.study_id}"
    day0 = co.day0
    iso = dt.date.isoformat
    C = codes()
    common = {"STUDYID": study, "USUBJID": u}
    last_treatment = max((i.date for i in co.infusions), default=None)
    dead = co.followup is not None and co.followup.status == "dead"
    t.add(
        "DM",
        u,
        **common,
        DOMAIN="DM",
        SUBJID=p.study_id,
        RFSTDTC=day0 and iso(day0),
        RFENDTC=end and iso(end),
        RFXSTDTC=day0 and iso(day0),
        RFXENDTC=last_treatment and iso(last_treatment),
        DTHDTC=iso(co.followup.last_contact) if dead and co.followup else None,
        DTHFL="Y" if dead else None,
        SITEID=p.site,
        BRTHDTC=f"{p.birth_year:04d}-{p.birth_month:02d}",
        AGE=None if day0 is None else int(p.age_on(day0)),
        AGEU="YEARS" if day0 else None,
        SEX=C["sex"][p.sex]["sdtm"],
        ARMCD="CART",
        ARM="CD19 CAR T cells",
        ACTARMCD="CART" if day0 else "NOTTRT",
        ACTARM="CD19 CAR T cells" if day0 else "Not Treated",
        DMDIAG=p.diagnosis,
        DMICD10=p.icd10,
        DMDIAGDT=iso(p.diagnosis_date),
        DMPRLINE=p.prior_therapy_lines,
        DMSYNTH="Y" if p.synthetic else "N",
    )
    for ae in co.adverse_events:
        outcome = (
            "FATAL"
            if ae.grade == 5
            else ("RECOVERED/RESOLVED" if ae.resolution else "NOT RECOVERED/NOT RESOLVED")
        )
        t.add(
            "AE",
            u,
            **common,
            DOMAIN="AE",
            AETERM=ae.term,
            AEDECOD=ae.term.upper(),
            AECAT=ae.category.upper(),
            AESER="Y" if ae.serious else "N",
            AEREL="RELATED" if ae.related else "NOT RELATED",
            AEOUT=outcome,
            AETOXGR=str(ae.grade),
            AESTDTC=iso(ae.onset),
            AEENDTC=ae.resolution and iso(ae.resolution),
            AESTDY=sdtm_day(day0, ae.onset),
            AEENDY=sdtm_day(day0, ae.resolution),
        )
    for inf in co.infections:
        term = infection_term(inf)
        t.add(
            "AE",
            u,
            **common,
            DOMAIN="AE",
            AETERM=term,
            AEDECOD=term.upper(),
            AECAT="INFECTION",
            AESCAT=inf.organism_class.upper(),
            AETOXGR=str(inf.ctcae_grade),
            AESTDTC=iso(inf.onset),
            AESTDY=sdtm_day(day0, inf.onset),
        )
    for v in co.followup_visits:
        when = iso(v.date)
        dy = sdtm_day(day0, v.date)
        t.add(
            "SV",
            u,
            STUDYID=study,
            DOMAIN="SV",
            USUBJID=u,
            VISITNUM=_VISITNUM[v.visit],
            VISIT=v.visit,
            SVPRESP="Y",
            SVOCCUR="Y",
            SVCNTMOD="IN PERSON" if v.contact == "visit" else None,
            SVSTDTC=when,
            SVENDTC=when,
            SVSTDY=dy,
            SVENDY=dy,
        )
    for inf in co.infusions:
        t.add(
            "EX",
            u,
            **common,
            DOMAIN="EX",
            EXREFID=";".join(inf.bag_ids),
            EXTRT="CD19 CAR T CELLS",
            EXCAT="CAR T CELL INFUSION",
            EXDOSE=float(inf.dose_cells_per_kg),
            EXDOSU="cells/kg",
            EXROUTE="INTRAVENOUS",
            EXSTDTC=iso(inf.date),
            EXENDTC=iso(inf.date),
            EXSTDY=sdtm_day(day0, inf.date),
            EXENDY=sdtm_day(day0, inf.date),
        )
    for ld in co.lymphodepletion:
        t.add(
            "EX",
            u,
            **common,
            DOMAIN="EX",
            EXTRT=ld.drug.upper(),
            EXCAT="LYMPHODEPLETION",
            EXDOSE=float(ld.dose_mg_m2),
            EXDOSU="mg/m2",
            EXROUTE="INTRAVENOUS",
            EXSTDTC=iso(ld.date),
            EXENDTC=iso(ld.date),
            EXSTDY=sdtm_day(day0, ld.date),
            EXENDY=sdtm_day(day0, ld.date),
        )
    for m in co.medications:
        t.add(
            "CM",
            u,
            **common,
            DOMAIN="CM",
            CMTRT=m.drug.upper(),
            CMCAT=m.drug_class.upper(),
            CMDOSE=float(m.dose),
            CMDOSU=m.dose_unit,
            CMSTDTC=iso(m.start),
            CMENDTC=m.stop and iso(m.stop),
            CMENRF=None if m.stop else "ONGOING",
            CMSTDY=sdtm_day(day0, m.start),
            CMENDY=sdtm_day(day0, m.stop),
        )
    vit = C["vitals"]
    neuro = C["neuro"]
    for d in co.daily_assessments:
        when = iso(d.date)
        dy = sdtm_day(day0, d.date)
        for drug in _daily_drugs(d):
            t.add(
                "CM",
                u,
                **common,
                DOMAIN="CM",
                CMTRT=drug,
                CMCAT="CRS_ICANS_TREATMENT",
                CMSTDTC=when,
                CMENDTC=when,
                CMSTDY=dy,
                CMENDY=dy,
            )
        for name in ("temperature_max_c", "oxygen_flow_l_min"):
            value = getattr(d, name)
            if value is not None:
                v = vit[name]
                unit = "C" if v["ucum"] == "Cel" else v["ucum"]
                t.add(
                    "VS",
                    u,
                    **common,
                    DOMAIN="VS",
                    VSTESTCD=v["vstestcd"],
                    VSTEST=v["display"],
                    VSORRES=_fmt(value),
                    VSORRESU=unit,
                    VSSTRESC=_fmt(value),
                    VSSTRESN=float(value),
                    VSSTRESU=unit,
                    VSDTC=when,
                    VSDY=dy,
                )
        for name in ("ice_score", "capd_score"):
            score = getattr(d, name)
            if score is not None:
                n = neuro[name]
                t.add(
                    "QS",
                    u,
                    **common,
                    DOMAIN="QS",
                    QSTESTCD=n["qstestcd"],
                    QSTEST=n["display"][:40],
                    QSCAT=n["qscat"],
                    QSORRES=str(score),
                    QSSTRESC=str(score),
                    QSSTRESN=float(score),
                    QSDTC=when,
                    QSDY=dy,
                )
        for name, (code, test, cat, obj) in _FA_META.items():
            text = _finding_text(getattr(d, name))
            t.add(
                "FA",
                u,
                **common,
                DOMAIN="FA",
                FATESTCD=code,
                FATEST=test,
                FAOBJ=obj,
                FACAT=cat,
                FAORRES=text,
                FASTRESC=text,
                FADTC=when,
                FADY=dy,
            )
    for a in co.anthropometrics:
        for name, value in (("weight_kg", a.weight_kg), ("height_cm", a.height_cm)):
            if value is not None:
                v = vit[name]
                t.add(
                    "VS",
                    u,
                    **common,
                    DOMAIN="VS",
                    VSTESTCD=v["vstestcd"],
                    VSTEST=v["display"],
                    VSORRES=_fmt(value),
                    VSORRESU=v["ucum"],
                    VSSTRESC=_fmt(value),
                    VSSTRESN=float(value),
                    VSSTRESU=v["ucum"],
                    VSDTC=iso(a.date),
                    VSDY=sdtm_day(day0, a.date),
                )
    _lab_rows(t, co, study, u)
    inst = C["instruments"]
    for da in co.disease_assessments:
        cat = inst[da.instrument]["qscat"]
        when = iso(da.date)
        dy = sdtm_day(day0, da.date)
        t.add(
            "QS",
            u,
            **common,
            DOMAIN="QS",
            QSTESTCD=item_testcd(da.instrument, None),
            QSTEST=f"{cat} total score"[:40],
            QSCAT=cat,
            QSORRES=_fmt(da.score),
            QSSTRESC=_fmt(da.score),
            QSSTRESN=float(da.score),
            QSDTC=when,
            QSDY=dy,
        )
        for item, value in sorted(da.items.items()):
            t.add(
                "QS",
                u,
                **common,
                DOMAIN="QS",
                QSTESTCD=item_testcd(da.instrument, item),
                QSTEST=item.replace("_", " ")[:40],
                QSCAT=cat,
                QSORRES=_fmt(value),
                QSSTRESC=_fmt(value),
                QSSTRESN=float(value),
                QSDTC=when,
                QSDY=dy,
            )
    if co.followup is not None:
        f = co.followup
        decod = {
            "alive": "ALIVE",
            "dead": "DEATH",
            "lost_to_follow_up": "LOST TO FOLLOW-UP",
            "withdrawn": "WITHDRAWAL BY SUBJECT",
        }[f.status]
        t.add(
            "DS",
            u,
            **common,
            DOMAIN="DS",
            DSTERM=f"{f.status.replace('_', ' ')} at last contact".upper(),
            DSDECOD=decod,
            DSCAT="OTHER EVENT" if f.status == "alive" else "DISPOSITION EVENT",
            DSSTDTC=iso(f.last_contact),
            DSSTDY=sdtm_day(day0, f.last_contact),
        )
    if zp_rows:
        _zp_rows(t, co, u, common, qc)


def _zp_value(value: Any) -> tuple[str | None, float | None]:
    """ZPORRES / ZPSTRESC text and ZPSTRESN of a manufacturing attribute's value: numbers
    as :func:`_fmt` writes them (and numeric), anything else as text, ``None`` missing."""
    num = isinstance(value, int | float) and not isinstance(value, bool)
    text = None if value is None else (_fmt(value) if num else str(value))
    return text, float(value) if num else None


def _zp_rows(
    t: _Tables,
    co: c.Course,
    u: str,
    common: Mapping[str, str],
    qc: Mapping[str, Sequence[Any]] | None,
) -> None:
    """ZP rows of a course, one at a time (the reference for the column-wise
    :func:`immunoreset.interop._sdtm_columns.zp_columns`, tested equal)."""
    day0 = co.day0
    iso = dt.date.isoformat

    def zp(
        ref: str,
        cat: str,
        code: str,
        test: str,
        value: Any,
        unit: str,
        when: dt.date | None,
        status: str | None = None,
        limit: str | None = None,
    ) -> None:
        text, number = _zp_value(value)
        t.add(
            "ZP",
            u,
            **common,
            DOMAIN="ZP",
            ZPREFID=ref,
            ZPCAT=cat,
            ZPTESTCD=code,
            ZPTEST=test[:40],
            ZPORRES=text,
            ZPORRESU=unit or None,
            ZPSTRESC=text,
            ZPSTRESN=number,
            ZPSTRESU=unit or None,
            ZPNRIND=status,
            ZPORNRLO=limit,
            ZPDTC=when and iso(when),
            ZPDY=sdtm_day(day0, when),
        )

    for ap in co.apheresis:
        zp(
            ap.apheresis_id,
            "APHERESIS",
            "CD3CELLS",
            "CD3+ cells collected",
            ap.cd3_cells,
            "cells",
            ap.date,
        )
        zp(
            ap.apheresis_id,
            "APHERESIS",
            "APHVOL",
            "Apheresis product volume",
            ap.volume_ml,
            "mL",
            ap.date,
        )
    for b in co.batches:
        zp(b.batch_id, "BATCH", "APHID", "Source apheresis ID", b.apheresis_id, "", b.process_start)
        zp(
            b.batch_id,
            "BATCH",
            "PLATFORM",
            "Manufacturing platform",
            b.platform,
            "",
            b.process_start,
        )
        zp(
            b.batch_id,
            "BATCH",
            "HARVEST",
            "Harvest date",
            b.harvest_date and iso(b.harvest_date),
            "",
            b.process_start,
        )
        zp(b.batch_id, "BATCH", "BATSTAT", "Batch status", b.status.upper(), "", b.process_start)
        for res in (qc or {}).get(b.batch_id, ()):
            zp(
                b.batch_id,
                "RELEASE QC",
                qc_testcd(res.attribute),
                res.attribute,
                res.value,
                res.unit,
                b.harvest_date or b.process_start,
                res.status.upper(),
                res.limit,
            )
    harvest = {b.batch_id: b.harvest_date for b in co.batches}
    for g in co.bags:
        made = harvest.get(g.batch_id)
        zp(g.bag_id, "BAG", "BATCHID", "Batch ID", g.batch_id, "", made)
        zp(g.bag_id, "BAG", "CARTCELL", "CAR+ T cells in bag", g.car_t_cells, "cells", made)
        zp(g.bag_id, "BAG", "BAGVOL", "Bag volume", g.volume_ml, "mL", made)
        zp(g.bag_id, "BAG", "BAGSTAT", "Bag status", g.status.upper(), "", made)
        if g.expiry is not None:
            zp(g.bag_id, "BAG", "EXPIRY", "Bag expiry date", iso(g.expiry), "", made)
        if g.location is not None:
            zp(g.bag_id, "BAG", "LOCATION", "Storage location", g.location, "", made)


_LAB_META = {
    a: (codes()["analytes"][a]["lbtestcd"], desc[:40], codes()["analytes"][a]["spec"])
    for a, (_, _, desc) in vocab.ANALYTES.items()
}


def _lab_rows(t: _Tables, co: c.Course, study: str, u: str) -> None:
    """LB rows of a course, column by column (labs are four in five SDTM rows)."""
    labs = co.labs
    if not labs:
        return
    t.flush("LB")
    cols = t.cols["LB"]
    n0 = t.seq.get("LB" + u, 0)
    n = len(labs)
    meta = [_LAB_META[r.analyte] for r in labs]
    values = [float(r.value) for r in labs]
    texts = [f"<{_fmt(v)}" if r.below_lloq else _fmt(v) for r, v in zip(labs, values, strict=True)]
    if co.day0 is None:
        days: list[int | None] = [None] * n
    else:
        o0 = co.day0.toordinal()
        days = [(d + 1 if d >= 0 else d) for d in (r.date.toordinal() - o0 for r in labs)]
    units = [r.unit for r in labs]
    for name, col in (
        ("STUDYID", [study] * n),
        ("DOMAIN", ["LB"] * n),
        ("USUBJID", [u] * n),
        ("LBSEQ", list(range(n0 + 1, n0 + n + 1))),
        ("LBTESTCD", [m[0] for m in meta]),
        ("LBTEST", [m[1] for m in meta]),
        ("LBORRES", texts),
        ("LBORRESU", units),
        ("LBSTRESC", texts),
        ("LBSTRESN", [None if r.below_lloq else v for r, v in zip(labs, values, strict=True)]),
        ("LBSTRESU", units),
        ("LBSPEC", [m[2] for m in meta]),
        ("LBLLOQ", [None if r.lloq is None else float(r.lloq) for r in labs]),
        ("LBDTC", [r.date.isoformat() for r in labs]),
        ("LBDY", days),
    ):
        cols[name].extend(col)
    t.seq["LB" + u] = n0 + n


def build_datasets(
    courses: Iterable[c.Course],
    *,
    study: str = "IMMUNORESET",
    qc: Mapping[str, Sequence[Any]] | None = None,
    progress: Callable[[int], None] | None = None,
    columns: Mapping[str, Mapping[str, Any]] | None = None,
    last_dates: Sequence[dt.date | None] | None = None,
    keep_codes: bool = False,
) -> dict[str, Any]:
    """The SDTM datasets (pandas DataFrames, variables in :data:`DOMAINS` order).

    ``qc`` maps batch ID -> its release-QC attribute results
    (:class:`~immunoreset.manufacturing.qc.AttributeResult`) for the ZP domain.
    ``columns`` gives domains built column-wise (:func:`lab_columns`,
    :mod:`~immunoreset.interop._sdtm_columns`: from courses loaded without those records, or
    ZP from the courses themselves); they replace the (then empty) domains built here.
    ``last_dates`` then gives each course's latest lab / daily-assessment date, which RFENDTC
    falls back on without a follow-up record. Their text columns come as
    :class:`pandas.Categorical` with ``keep_codes`` (for the writers), else as text (object)
    like the others.
    """
    import numpy as np
    import pandas as pd

    from immunoreset.registry.repository import gc_paused

    t = _Tables()
    with gc_paused():
        for i, co in enumerate(courses):
            end = co.last_contact
            if last_dates is not None and co.followup is None:
                end = last_dates[i]
            _course_rows(t, co, study, qc, end, zp_rows=columns is None or "ZP" not in columns)
            if progress:
                progress(1)
    out = {}
    for name, dom in DOMAINS.items():
        t.flush(name)
        cols = t.cols[name]
        data = {}
        if columns is not None and name in columns:
            assert not cols[dom.names[0]], name  # the courses were loaded without these
            data = {
                k: v if keep_codes or not isinstance(v, pd.Categorical) else np.asarray(v, object)
                for k, v in columns[name].items()
            }
        else:
            for v in dom.variables:
                col = cols[v.name]
                if v.type == "Num":
                    data[v.name] = np.array([np.nan if x is None else x for x in col], dtype=float)
                else:
                    data[v.name] = np.array(["" if x is None else x for x in col], dtype=object)
        out[name] = pd.DataFrame(data, columns=list(dom.names), copy=False)
    return out


def lab_columns(registry: Any, courses: Sequence[c.Course], *, study: str = "IMMUNORESET") -> Any:
    """The LB domain as columns, read column-wise from the registry's lab table for
    ``courses`` (loaded for the actor, so in scope) — the same rows :func:`_lab_rows` gives
    from the courses' lab records (tested); see
    :func:`immunoreset.interop._sdtm_columns.lab_columns`."""
    from immunoreset.interop import _sdtm_columns

    return _sdtm_columns.lab_columns(registry, courses, study=study)


def factorize(
    frame: Any, known: Mapping[str, tuple[Any, list[str]]] | None = None
) -> dict[str, tuple[Any, list[str]]]:
    """Per column: (codes, distinct cell texts) — numbers as ``repr``, missing as empty, text
    as is — computed once for the CSV, XPT and Define-XML writers (``known``: columns whose
    codes and texts the caller has already)."""
    import numpy as np
    import pandas as pd

    out = dict(known or {})
    for name in frame.columns:
        if name in out:
            continue
        values = frame[name].to_numpy()
        if values.dtype.kind == "f":
            bits = np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)
            codes, uniques = pd.factorize(bits)  # bit patterns: -0.0 stays apart from 0.0
            texts = ["" if x != x else repr(x) for x in uniques.view(np.float64).tolist()]
        else:
            codes, uniques = pd.factorize(values, use_na_sentinel=True)
            texts = [str(u) for u in uniques]
        out[name] = (codes, texts)
    return out


def write_csv(
    frame: Any, path: str | Path, factorized: Mapping[str, tuple[Any, list[str]]] | None = None
) -> None:
    """Write a dataset as ``frame.to_csv(path, index=False)`` writes it (the same bytes,
    tested), column-wise: each column's distinct values are formatted and escaped once
    (:func:`factorize`; numbers as ``repr``, missing as empty) and the rows assembled by a
    compiled loop (:mod:`immunoreset.interop._csvfast`)."""
    import csv
    import io

    from immunoreset.interop._csvfast import write_rows

    fact = factorized if factorized is not None else factorize(frame)
    head = io.StringIO()
    csv.writer(head, lineterminator="\n").writerow(list(frame.columns))
    with Path(path).open("wb") as fh:
        fh.write(head.getvalue().encode("utf-8"))
        write_rows(fh, [fact[name] for name in frame.columns], len(frame))


def write_sdtm(
    datasets: Mapping[str, Any],
    out: str | Path,
    *,
    study: str = "IMMUNORESET",
    factorized: Mapping[str, Mapping[str, tuple[Any, list[str]]]] | None = None,
) -> dict[str, int]:
    """Write ``<domain>.csv`` and ``<domain>.xpt`` (SAS transport v5) per domain and
    ``define.xml`` (Define-XML 2.1) into ``out``; returns rows per domain.

    A domain's XPT file is written by a second thread while this one writes its CSV: the
    XPT writer spends its time in numpy copies and file writes, which release the GIL, so
    the two overlap on a second core (the same CPU time, less wall time)."""
    from concurrent.futures import ThreadPoolExecutor

    from immunoreset.interop.define import write_define
    from immunoreset.interop.xport import write_xport

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    lengths: dict[str, dict[str, int]] = {}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xpt") as pool:
        for name, frame in datasets.items():
            dom = DOMAINS[name]
            known = (factorized or {}).get(name, {})
            fact = factorize(frame, known)
            xpt = pool.submit(
                write_xport,
                frame,
                folder / f"{name.lower()}.xpt",
                file_label=dom.label,
                column_labels={v.name: v.label for v in dom.variables},
                table_name=name,
                factorized=fact,
            )
            try:
                write_csv(frame, folder / f"{name.lower()}.csv", fact)
            finally:
                xpt.result()  # its error, if any, is raised here: one domain at a time
            counts[name] = len(frame)
            lengths[name] = {
                v.name: max(1, *map(len, fact[v.name][1])) if len(frame) else 1
                for v in dom.variables
                if v.type != "Num"
            }
    write_define(datasets, folder / "define.xml", study=study, lengths=lengths)
    return counts


def load_qc(registry: Any, actor: Any, courses: Iterable[c.Course]) -> dict[str, Sequence[Any]]:
    """Release-QC results of the courses' batches from the registry's GMP records.

    The same as ``Gmp(registry).evaluate(actor, batch_id)`` for each batch (tested), read
    set-wise: the current specification of each site once, then every batch's latest
    non-refused release decision (whose spec snapshot it was judged against) and its stored
    results in two queries — not five queries per batch. The courses are the actor's visible
    ones already.
    """
    import json

    from sqlalchemy import and_, select

    from immunoreset.manufacturing.qc import evaluate_batch
    from immunoreset.registry.gmp import Gmp
    from immunoreset.registry.gmp._base import _spec_from_data, _stored_value
    from immunoreset.registry.schema import qc_results, release_decisions

    batch_ids = [b.batch_id for co in courses for b in co.batches]
    if not batch_ids:
        return {}
    wanted = set(batch_ids)
    d, r = release_decisions, qc_results
    snapshots: dict[str, str] = {}
    stored: dict[str, dict[str, float | str]] = defaultdict(dict)
    site_of = {b.batch_id: co.patient.site for co in courses for b in co.batches}
    with registry.engine.connect() as conn:
        gmp = Gmp(registry)
        # a batch without a decision is judged by its site's current specification
        current = {site: gmp._current_spec(conn, site) for site in set(site_of.values())}
        rows = conn.execute(
            select(d.c.batch_id, d.c.spec_snapshot)
            .where(and_(d.c.decision != "refused", d.c.deleted_at.is_(None)))
            .order_by(d.c.id)
        )
        for bid, snap in rows:
            if bid in wanted:
                snapshots[bid] = snap  # ordered by id: the latest decision wins
        rows = conn.execute(
            select(r.c.batch_id, r.c.attribute, r.c.value_number, r.c.value_text)
            .where(r.c.deleted_at.is_(None))
            .order_by(r.c.id)
        ).mappings()
        for row in rows:
            if row["batch_id"] in wanted:
                stored[row["batch_id"]][row["attribute"]] = _stored_value(row)
    specs: dict[str, Any] = {}
    out: dict[str, Sequence[Any]] = {}
    for bid in batch_ids:
        snap = snapshots.get(bid)
        if snap is None:
            spec = current[site_of[bid]]
        else:
            spec = specs.get(snap) or specs.setdefault(snap, _spec_from_data(json.loads(snap)))
        results = {k: v for k, v in stored.get(bid, {}).items() if k in spec.names}
        qc = evaluate_batch(spec, results, batch_id=bid)
        if qc.attributes:
            out[bid] = qc.attributes
    return out


def _with_columns(
    data: dict[str, Any],
    columns: Mapping[str, Mapping[str, Any]],
    courses: Sequence[c.Course],
    last: Sequence[dt.date | None],
) -> dict[str, Any]:
    """``data`` built from courses loaded without the column-wise records, with those domains
    put in from ``columns`` and RFENDTC taken from their latest dates where there is no
    follow-up record (as :func:`build_datasets` does with ``last_dates``)."""
    import pandas as pd

    out = dict(data)
    for name, cols in columns.items():
        assert not len(data[name]), name  # the courses were loaded without these
        out[name] = pd.DataFrame(dict(cols), columns=list(DOMAINS[name].names), copy=False)
    dm = out["DM"].copy()
    end = dm["RFENDTC"].to_numpy(dtype=object).copy()
    for i, co in enumerate(courses):  # one DM row per course, in order
        if co.followup is None:
            end[i] = "" if last[i] is None else last[i].isoformat()
    dm["RFENDTC"] = end
    out["DM"] = dm
    return out


def export_sdtm(
    registry: Any,
    actor: Any,
    out: str | Path,
    *,
    study: str = "IMMUNORESET",
    with_qc: bool = True,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> dict[str, int]:
    """Write the SDTM datasets of the actor's visible courses; audited as an export.

    ``workers`` > 1 reads and builds the many-row domains in that many processes (from 200
    patients on); the output is the same whatever the number (tested)."""
    from immunoreset.errors import check_range
    from immunoreset.interop._sdtm_columns import (
        COLUMN_ENTITIES,
        domain_columns,
        parallel_columns,
        zp_columns,
    )
    from immunoreset.registry.repository import gc_paused

    check_range("workers", workers, 1, 32, integer=True)
    # the many-row records (labs, daily and disease assessments, body measurements,
    # medications) are read column-wise — by ``workers`` processes, each a share of the
    # patients, from 200 patients on — while this process builds DM, AE, EX, DS and ZP from
    # the courses. Millions of short-lived tuples: the cyclic GC would rescan them, so it pauses.
    with gc_paused():
        courses = list(registry.iter_courses(actor, skip=COLUMN_ENTITIES))
        factorized = None
        if workers > 1 and len(courses) >= 200:
            collect = parallel_columns(registry, courses, study=study, workers=workers)
            qc = load_qc(registry, actor, courses) if with_qc else None
            zp = {"ZP": zp_columns(courses, study=study, qc=qc)}
            data = build_datasets(
                courses, study=study, qc=qc, progress=progress, columns=zp, keep_codes=True
            )
            columns, factorized, last = collect()
            factorized["ZP"] = zp["ZP"].coded
            data = _with_columns(data, columns, courses, last)
        else:
            qc = load_qc(registry, actor, courses) if with_qc else None
            columns, last = domain_columns(registry, courses, study=study)
            columns["ZP"] = zp_columns(courses, study=study, qc=qc)
            data = build_datasets(
                courses,
                study=study,
                qc=qc,
                progress=progress,
                columns=columns,
                last_dates=last,
                keep_codes=True,
            )
            factorized = {name: cols.coded for name, cols in columns.items()}
        del columns
        counts = write_sdtm(data, out, study=study, factorized=factorized)
    registry.record_export(
        actor,
        "sdtm",
        str(out),
        [co.study_id for co in courses],
        detail={"study": study, "pseudonymised": True, "rows": counts},
    )
    return counts
