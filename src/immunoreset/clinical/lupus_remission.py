"""DORIS 2021 remission and the Lupus Low Disease Activity State (LLDAS) in SLE.

Sources
-------
* DORIS: van Vollenhoven RF, et al. 2021 DORIS definition of remission in SLE: final
  recommendations from an international task force. *Lupus Sci Med.* 2021;8:e000538
  (abstract and Table 2). Single recommended definition, "remission on treatment":
  clinical SLEDAI = 0; physician global assessment (SELENA-SLEDAI PGA, 0–3) < 0.5;
  prednisolone-equivalent ≤ 5 mg/day; antimalarials, immunosuppressives and biologics allowed if
  stable (maintenance). Duration is not part of the definition.
* LLDAS: Franklyn K, et al. Definition and initial validation of a Lupus Low Disease Activity
  State (LLDAS). *Ann Rheum Dis.* 2016;75(9):1615–1621 (Table 1). All five: SLEDAI-2K ≤ 4 with no
  major-organ activity (renal, CNS, cardiopulmonary, vasculitis, fever) and no haemolytic anaemia
  or gastrointestinal activity; no new features of activity since the previous assessment;
  PGA ≤ 1; prednisolone-equivalent ≤ 7.5 mg/day; well-tolerated standard maintenance doses of
  immunosuppressives and approved biologics. Serology may be active if SLEDAI-2K ≤ 4.

Source conflicts (clinical.md §10)
----------------------------------
* DORIS steroid: abstract "≤ 5 mg/day" vs Table 2 "< 5 mg/day" — ``≤ 5`` used.
* DORIS PGA: 2021 final "< 0.5" vs earlier framework "≤ 0.5" — ``< 0.5`` used.
* Paediatric (cSLE) adaptation of the 7.5 mg criterion: UNCONFIRMED, not implemented.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from immunoreset.clinical.sledai import _check_descriptors
from immunoreset.errors import InvalidInput, check_range

__all__ = [
    "DORIS_PGA_BELOW",
    "DORIS_PREDNISONE_MAX_MG",
    "LLDAS_PGA_MAX",
    "LLDAS_PREDNISONE_MAX_MG",
    "LLDAS_SLEDAI_MAX",
    "MAJOR_ORGAN_DESCRIPTORS",
    "RemissionResult",
    "doris_result",
    "is_doris_remission",
    "is_lldas",
    "lldas_result",
    "major_organ_descriptors",
]

DORIS_PGA_BELOW = 0.5  #: PGA must be strictly below this (DORIS 2021).
DORIS_PREDNISONE_MAX_MG = 5.0  #: prednisolone-equivalent mg/day, inclusive (DORIS 2021 abstract).
LLDAS_SLEDAI_MAX = 4  #: SLEDAI-2K, inclusive (Franklyn 2016).
LLDAS_PGA_MAX = 1.0  #: PGA, inclusive (Franklyn 2016).
LLDAS_PREDNISONE_MAX_MG = 7.5  #: prednisolone-equivalent mg/day, inclusive (Franklyn 2016).

#: SLEDAI-2K descriptors that are major-organ activity for LLDAS criterion 1 (renal, CNS,
#: cardiopulmonary, vasculitis, fever). Haemolytic anaemia and GI activity are not SLEDAI items:
#: the caller must add them to ``major_organ_activity``.
MAJOR_ORGAN_DESCRIPTORS: dict[str, str] = {
    "seizure": "CNS",
    "psychosis": "CNS",
    "organic_brain_syndrome": "CNS",
    "visual_disturbance": "CNS",
    "cranial_nerve_disorder": "CNS",
    "lupus_headache": "CNS",
    "cva": "CNS",
    "vasculitis": "vasculitis",
    "urinary_casts": "renal",
    "hematuria": "renal",
    "proteinuria": "renal",
    "pyuria": "renal",
    "pleurisy": "cardiopulmonary",
    "pericarditis": "cardiopulmonary",
    "fever": "fever",
}

_PGA_RANGE = (0.0, 3.0)
_PREDNISONE_MAX_PLAUSIBLE = 2000.0  # mg/day; pulse methylprednisolone is ≤ 1000 mg


@dataclass(frozen=True, slots=True)
class RemissionResult:
    """Whether a remission/low-activity definition is met, and why.

    Attributes
    ----------
    definition : str
        ``"DORIS 2021"`` or ``"LLDAS (Franklyn 2016)"``.
    met : bool
        ``True`` when every criterion is met.
    reasons : tuple[str, ...]
        One line per criterion, each ending in ``met`` or ``NOT met``.
    """

    definition: str
    met: bool
    reasons: tuple[str, ...]


def _check_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(field, value, "true or false")
    return value


def _line(text: str, ok: bool) -> str:
    return f"{text}: {'met' if ok else 'NOT met'}"


def major_organ_descriptors(descriptors: Iterable[str]) -> tuple[str, ...]:
    """Return the SLEDAI-2K descriptors that count as major-organ activity for LLDAS.

    Parameters
    ----------
    descriptors : iterable of str
        SLEDAI-2K descriptors present (see ``sledai.SLEDAI2K_WEIGHTS``).

    Examples
    --------
    >>> major_organ_descriptors(["proteinuria", "rash", "increased_dna_binding"])
    ('proteinuria',)
    """
    return tuple(d for d in _check_descriptors(descriptors) if d in MAJOR_ORGAN_DESCRIPTORS)


def doris_result(
    *,
    clinical_sledai: int,
    physician_global: float,
    prednisone_mg_day: float,
    stable_maintenance: bool = True,
) -> RemissionResult:
    """DORIS 2021 remission on treatment, with a reason per criterion.

    Parameters
    ----------
    clinical_sledai : int
        Clinical SLEDAI (SLEDAI-2K without serology), 0–101.
    physician_global : float
        SELENA-SLEDAI physician global assessment, 0–3; must be < 0.5.
    prednisone_mg_day : float
        Current prednisolone-equivalent dose, 0–2000 mg/day; must be ≤ 5.
    stable_maintenance : bool
        Antimalarials/immunosuppressives/biologics, if any, are at stable maintenance doses
        (``True`` also when the patient takes none).

    Returns
    -------
    RemissionResult

    Examples
    --------
    >>> doris_result(clinical_sledai=0, physician_global=0.3, prednisone_mg_day=0).met
    True
    """
    c = check_range("clinical_sledai", clinical_sledai, 0, 101, integer=True)
    pga = check_range("physician_global", physician_global, *_PGA_RANGE)
    pred = check_range(
        "prednisone_mg_day", prednisone_mg_day, 0, _PREDNISONE_MAX_PLAUSIBLE, "mg/day"
    )
    stable = _check_bool("stable_maintenance", stable_maintenance)
    checks = (
        (f"clinical SLEDAI {c} = 0", c == 0),
        (f"PGA {pga:g} < {DORIS_PGA_BELOW:g}", pga < DORIS_PGA_BELOW),
        (
            f"prednisone {pred:g} ≤ {DORIS_PREDNISONE_MAX_MG:g} mg/day",
            pred <= DORIS_PREDNISONE_MAX_MG,
        ),
        ("immunomodulators at stable maintenance doses", stable),
    )
    return RemissionResult(
        "DORIS 2021", all(ok for _, ok in checks), tuple(_line(t, ok) for t, ok in checks)
    )


def is_doris_remission(
    *,
    clinical_sledai: int,
    physician_global: float,
    prednisone_mg_day: float,
    stable_maintenance: bool = True,
) -> bool:
    """Return ``True`` when DORIS 2021 remission on treatment is met (see :func:`doris_result`).

    Examples
    --------
    >>> is_doris_remission(clinical_sledai=0, physician_global=0.5, prednisone_mg_day=5)
    False
    """
    return doris_result(
        clinical_sledai=clinical_sledai,
        physician_global=physician_global,
        prednisone_mg_day=prednisone_mg_day,
        stable_maintenance=stable_maintenance,
    ).met


def lldas_result(
    *,
    sledai2k: int,
    major_organ_activity: bool,
    new_activity: bool,
    physician_global: float,
    prednisone_mg_day: float,
    standard_maintenance: bool = True,
) -> RemissionResult:
    """LLDAS (Franklyn 2016), all five criteria, with a reason per criterion.

    Parameters
    ----------
    sledai2k : int
        SLEDAI-2K total, 0–105; must be ≤ 4.
    major_organ_activity : bool
        Any renal, CNS, cardiopulmonary, vasculitis or fever activity, haemolytic anaemia or GI
        activity (see :func:`major_organ_descriptors` for the SLEDAI part).
    new_activity : bool
        New features of lupus activity since the previous assessment.
    physician_global : float
        SELENA-SLEDAI PGA, 0–3; must be ≤ 1.
    prednisone_mg_day : float
        Prednisolone-equivalent, 0–2000 mg/day; must be ≤ 7.5.
    standard_maintenance : bool
        Well-tolerated standard maintenance doses of immunosuppressives / approved biologics,
        no investigational drugs (``True`` also when none are taken).

    Returns
    -------
    RemissionResult

    Examples
    --------
    >>> lldas_result(sledai2k=2, major_organ_activity=False, new_activity=False,
    ...              physician_global=0.3, prednisone_mg_day=0).met
    True
    """
    s = check_range("sledai2k", sledai2k, 0, 105, integer=True)
    major = _check_bool("major_organ_activity", major_organ_activity)
    new = _check_bool("new_activity", new_activity)
    pga = check_range("physician_global", physician_global, *_PGA_RANGE)
    pred = check_range(
        "prednisone_mg_day", prednisone_mg_day, 0, _PREDNISONE_MAX_PLAUSIBLE, "mg/day"
    )
    standard = _check_bool("standard_maintenance", standard_maintenance)
    checks = (
        (f"SLEDAI-2K {s} ≤ {LLDAS_SLEDAI_MAX}", s <= LLDAS_SLEDAI_MAX),
        ("no major-organ, haemolytic or GI activity", not major),
        ("no new lupus activity since the previous assessment", not new),
        (f"PGA {pga:g} ≤ {LLDAS_PGA_MAX:g}", pga <= LLDAS_PGA_MAX),
        (
            f"prednisone {pred:g} ≤ {LLDAS_PREDNISONE_MAX_MG:g} mg/day",
            pred <= LLDAS_PREDNISONE_MAX_MG,
        ),
        ("standard, well-tolerated maintenance immunosuppression", standard),
    )
    return RemissionResult(
        "LLDAS (Franklyn 2016)",
        all(ok for _, ok in checks),
        tuple(_line(t, ok) for t, ok in checks),
    )


def is_lldas(
    *,
    sledai2k: int,
    major_organ_activity: bool,
    new_activity: bool,
    physician_global: float,
    prednisone_mg_day: float,
    standard_maintenance: bool = True,
) -> bool:
    """Return ``True`` when LLDAS is met (see :func:`lldas_result`).

    Examples
    --------
    >>> is_lldas(sledai2k=4, major_organ_activity=True, new_activity=False,
    ...          physician_global=0.5, prednisone_mg_day=5)
    False
    """
    return lldas_result(
        sledai2k=sledai2k,
        major_organ_activity=major_organ_activity,
        new_activity=new_activity,
        physician_global=physician_global,
        prednisone_mg_day=prednisone_mg_day,
        standard_maintenance=standard_maintenance,
    ).met
