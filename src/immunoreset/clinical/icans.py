"""ICANS grade (adults and children) with the ICE score and the CAPD, ASTCT consensus 2019.

Source
------
Lee DW, Santomasso BD, Locke FL, et al. ASTCT Consensus Grading for Cytokine Release Syndrome and
Neurologic Toxicity Associated with Immune Effector Cells. *Biol Blood Marrow Transplant.*
2019;25(4):625–638 (ICANS tables for adults and children; adult table reproduced at PMC8403007
Table 4 and PMC7990806 Table 2; ICE items PMC8153820 Table 2). Pediatric grading: MDedge summary
of Lee et al. and NCIt C188936. CAPD: Traube C, et al. *Crit Care Med.* 2014;42(3):656–663
(item wording and scoring: CHOP CAPD page). Project specification clinical.md §2.

Definition
----------
Grade = the most severe domain (each not attributable to another cause):

=========================  =========  ==========  ==================  =========================
domain                     grade 1    grade 2     grade 3             grade 4
=========================  =========  ==========  ==================  =========================
ICE (age ≥ 12)             7–9        3–6         0–2 (awake)         0, unarousable
CAPD (age < 12)            1–8        (1–8)       ≥ 9                 unable to perform CAPD
consciousness              awakens    awakens     awakens only to     unarousable
                           spontan.   to voice    touch
seizure                    —          —           resolved rapidly    prolonged / repetitive
motor weakness             —          —           —                   deep focal weakness
cerebral edema             —          —           focal               diffuse
=========================  =========  ==========  ==================  =========================

The CAPD domain alone gives 1 (1–8), 3 (≥ 9) or 4 (unable) — **not** 1/2/3; grade 2 in a child
comes from the consciousness domain (spec §0 item 1). Death due to ICANS → 5. Intracranial
hemorrhage with or without edema is excluded (grade it by CTCAE, pass ``cerebral_edema="none"``).

UNCONFIRMED
-----------
The ICE/CAPD age cut: MDedge (Lee 2019) "younger than 12" vs NCIt "12 and under"; Lee 2019's own
wording not found. Default ICE from 12.0 years; ``ToxicitySettings(capd_age_rule=
"ncit_12_and_under")`` uses CAPD until 13.0. Results at age 12.x carry the flag
``age_12_ambiguous``. CAPD is accepted at any age (developmental delay); ICE below the cut is
refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from immunoreset import vocab
from immunoreset.clinical.crs import _as_array, _check_bounds
from immunoreset.clinical.settings import (
    DEFAULT_SETTINGS,
    ToxicitySettings,
    _check_flag,
    _check_settings,
)
from immunoreset.errors import InvalidInput, check_choice, check_range

__all__ = [
    "CAPD_ANSWERS",
    "CAPD_ITEMS",
    "CEREBRAL_EDEMA_CODES",
    "CEREBRAL_EDEMA_GRADES",
    "CONSCIOUSNESS_CODES",
    "CONSCIOUSNESS_GRADES",
    "ICE_ITEMS",
    "SEIZURE_CODES",
    "SEIZURE_GRADES",
    "IcansResult",
    "capd_domain_grade",
    "compute_capd",
    "compute_ice",
    "grade_icans",
    "grade_icans_array",
    "ice_domain_grade",
    "score_capd_answers",
    "score_capd_item",
]

#: ICE tasks and their maximum points (total 10).
ICE_ITEMS: dict[str, int] = {
    "orientation": 4,
    "naming": 3,
    "following_commands": 1,
    "writing": 1,
    "attention": 1,
}
#: CAPD items in form order (each 0–4; items 1–4 are reverse-worded on the form).
CAPD_ITEMS: tuple[str, ...] = (
    "eye_contact",
    "purposeful_actions",
    "aware_of_surroundings",
    "communicates_needs",
    "restless",
    "inconsolable",
    "underactive",
    "slow_to_respond",
)
CONSCIOUSNESS_GRADES: dict[str, int] = {
    "awake": 0,
    "awakens_spontaneously": 1,
    "awakens_to_voice": 2,
    "awakens_to_touch": 3,
    "unarousable": 4,
}
SEIZURE_GRADES: dict[str, int] = {"none": 0, "resolved": 3, "prolonged_or_repetitive": 4}
CEREBRAL_EDEMA_GRADES: dict[str, int] = {"none": 0, "focal": 3, "diffuse": 4}
#: Integer codes for :func:`grade_icans_array` (order of the vocabularies in vocab.py).
CONSCIOUSNESS_CODES: dict[str, int] = {w: i for i, w in enumerate(vocab.CONSCIOUSNESS)}
SEIZURE_CODES: dict[str, int] = {w: i for i, w in enumerate(vocab.SEIZURE)}
CEREBRAL_EDEMA_CODES: dict[str, int] = {w: i for i, w in enumerate(vocab.CEREBRAL_EDEMA)}

_CONSCIOUSNESS_WORDS = {
    "awakens_spontaneously": "depressed consciousness: awakens spontaneously",
    "awakens_to_voice": "depressed consciousness: awakens to voice",
    "awakens_to_touch": "depressed consciousness: awakens only to tactile stimulus",
    "unarousable": "depressed consciousness: unarousable",
}
_SEIZURE_WORDS = {
    "resolved": "clinical seizure that resolved rapidly",
    "prolonged_or_repetitive": "prolonged (> 5 min) or repetitive seizures",
}
_EDEMA_WORDS = {"focal": "focal cerebral edema", "diffuse": "diffuse cerebral edema"}


@dataclass(frozen=True, slots=True)
class IcansResult:
    """An ICANS grade with the criteria that set it.

    Attributes
    ----------
    grade : int
        ASTCT grade 0–5.
    reasons : tuple of str
        The domains that set the grade.
    instrument : str or None
        ``"ice"`` or ``"capd"`` (None when neither was assessed).
    flags : tuple of str
        ``age_12_ambiguous`` (ICE/CAPD cut differs between sources), ``encephalopathy_not_assessed``
        and ``incomplete`` (no ICE/CAPD and not ``unable_to_assess``: the grade is a lower
        bound).
    """

    grade: int
    reasons: tuple[str, ...]
    instrument: str | None = None
    flags: tuple[str, ...] = ()


def compute_ice(
    *,
    orientation: int | None,
    naming: int | None,
    following_commands: int | None,
    writing: int | None,
    attention: int | None,
) -> int | None:
    """ICE score, 0–10: the sum of the five tasks.

    Parameters
    ----------
    orientation : int
        Year, month, city, hospital: 0–4.
    naming : int
        Three objects: 0–3.
    following_commands, writing, attention : int
        0–1 each.

    Returns
    -------
    int or None
        The total; None when any task is missing (no proration, spec convention).

    Examples
    --------
    >>> compute_ice(orientation=3, naming=3, following_commands=1, writing=0, attention=1)
    8
    """
    values = {
        "orientation": orientation,
        "naming": naming,
        "following_commands": following_commands,
        "writing": writing,
        "attention": attention,
    }
    for name, value in values.items():
        check_range(name, value, 0, ICE_ITEMS[name], integer=True, allow_none=True)
    if any(v is None for v in values.values()):
        return None
    return sum(int(v) for v in values.values())  # type: ignore[arg-type]


#: CAPD answers as the form asks them (Traube 2014; CHOP CAPD page).
CAPD_ANSWERS: tuple[str, ...] = ("never", "rarely", "sometimes", "often", "always")
#: Items 1–4 are reverse-scored (never = 4 … always = 0); items 5–8 never = 0 … always = 4.
CAPD_REVERSED: frozenset[str] = frozenset(CAPD_ITEMS[:4])


def score_capd_item(item: str, answer: str) -> int:
    """Points of one CAPD answer: items 1–4 reverse-scored (Traube 2014; clinical.md §2.2).

    Examples
    --------
    >>> score_capd_item("eye_contact", "always"), score_capd_item("restless", "always")
    (0, 4)
    """
    check_choice("item", item, CAPD_ITEMS)
    check_choice(item, answer.lower() if isinstance(answer, str) else answer, CAPD_ANSWERS)
    rank = CAPD_ANSWERS.index(answer.lower())
    return 4 - rank if item in CAPD_REVERSED else rank


def score_capd_answers(answers: Mapping[str, str | None]) -> int | None:
    """CAPD total, 0–32, from the Never…Always answers item by item (items 1–4 reversed).

    Parameters
    ----------
    answers : mapping of item (:data:`CAPD_ITEMS`) to answer (:data:`CAPD_ANSWERS`)
        All 8 items; an answer of None leaves the total uncomputed (no proration).

    Returns
    -------
    int or None

    Examples
    --------
    >>> calm = dict.fromkeys(CAPD_ITEMS[:4], "always") | dict.fromkeys(CAPD_ITEMS[4:], "never")
    >>> score_capd_answers(calm)
    0
    """
    if not isinstance(answers, Mapping):
        raise InvalidInput("answers", answers, "a mapping of CAPD item to answer")
    for key in answers:
        check_choice("answers", key, CAPD_ITEMS)
    missing = [i for i in CAPD_ITEMS if i not in answers]
    if missing:
        raise InvalidInput(missing[0], None, "an answer (" + ", ".join(CAPD_ANSWERS) + ")")
    points = [
        None if answers[i] is None else score_capd_item(i, answers[i])  # type: ignore[arg-type]
        for i in CAPD_ITEMS
    ]
    return None if any(p is None for p in points) else sum(points)  # type: ignore[misc]


def compute_capd(items: Sequence[int | None]) -> int | None:
    """CAPD total, 0–32, from the 8 item scores in form order (each 0–4, as scored).

    To enter the form's Never…Always answers, use :func:`score_capd_answers`, which applies
    the reverse scoring of items 1–4.

    Parameters
    ----------
    items : sequence of 8 int
        Item scores 0–4 already oriented so that higher = more delirious (items 1–4 score
        "never" as 4, items 5–8 "always" as 4).

    Returns
    -------
    int or None
        The total; None when any item is missing (no proration, spec convention).

    Examples
    --------
    >>> compute_capd([2, 1, 1, 2, 1, 0, 2, 1])
    10
    """
    if isinstance(items, str | bytes) or not isinstance(items, Sequence | np.ndarray):
        raise InvalidInput("items", items, "a list of 8 CAPD item scores")
    if len(items) != len(CAPD_ITEMS):
        raise InvalidInput("items", f"{len(items)} items", "exactly 8 CAPD item scores")
    for value in items:
        check_range("items", value, 0, 4, integer=True, allow_none=True)
    if any(v is None for v in items):
        return None
    return sum(int(v) for v in items)  # type: ignore[arg-type]


def ice_domain_grade(ice_score: int, *, unarousable: bool = False) -> int:
    """ICANS grade of the ICE domain: 10 → 0, 7–9 → 1, 3–6 → 2, 0–2 → 3, 0 unarousable → 4.

    Examples
    --------
    >>> [ice_domain_grade(s) for s in (10, 9, 7, 6, 3, 2, 0)]
    [0, 1, 1, 2, 2, 3, 3]
    """
    check_range("ice_score", ice_score, 0, 10, integer=True)
    if _check_flag("unarousable", unarousable):
        return 4
    return 0 if ice_score == 10 else 1 if ice_score >= 7 else 2 if ice_score >= 3 else 3


def capd_domain_grade(capd_score: int) -> int:
    """ICANS grade of the CAPD domain: 0 → 0, 1–8 → 1, ≥ 9 → 3 (grade 2 only via consciousness).

    Examples
    --------
    >>> [capd_domain_grade(s) for s in (0, 1, 8, 9)]
    [0, 1, 1, 3]
    """
    check_range("capd_score", capd_score, 0, 32, integer=True)
    return 0 if capd_score == 0 else 1 if capd_score <= 8 else 3


def grade_icans(
    *,
    age_years: float,
    ice_score: int | None = None,
    capd_score: int | None = None,
    unable_to_assess: bool = False,
    consciousness: str = "awake",
    seizure: str = "none",
    motor_weakness: bool = False,
    cerebral_edema: str = "none",
    died_of_icans: bool = False,
    settings: ToxicitySettings = DEFAULT_SETTINGS,
) -> IcansResult:
    """Grade ICANS by the ASTCT 2019 consensus (adult and pediatric tables).

    Parameters
    ----------
    age_years : float
        Age, years, 0–130. Chooses ICE (≥ 12.0 by default) or CAPD (below).
    ice_score : int or None
        ICE 0–10 (refused below the age cut).
    capd_score : int or None
        CAPD 0–32 (any age: below the cut, or developmental delay).
    unable_to_assess : bool
        Unarousable and unable to perform ICE/CAPD (ICE, if given, must then be 0; CAPD must be
        None; refused with ``consciousness="awake"``) → 4.
    consciousness : str
        :data:`immunoreset.vocab.CONSCIOUSNESS`.
    seizure : str
        :data:`immunoreset.vocab.SEIZURE`.
    motor_weakness : bool
        Deep focal motor weakness (hemiparesis, paraparesis) → 4.
    cerebral_edema : str
        :data:`immunoreset.vocab.CEREBRAL_EDEMA` (focal → 3, diffuse → 4).
    died_of_icans : bool
        Death due to ICANS → 5.
    settings : ToxicitySettings
        ``capd_age_rule`` chooses the ICE/CAPD age cut.

    Returns
    -------
    IcansResult

    Raises
    ------
    InvalidInput
        Out-of-range or wrong-type value, unknown word, ICE below the age cut, both ICE and CAPD,
        or a score that contradicts ``unable_to_assess``.

    Examples
    --------
    >>> grade_icans(age_years=8, capd_score=10, consciousness="awakens_spontaneously").grade
    3
    >>> grade_icans(age_years=6, capd_score=6, consciousness="awakens_to_voice").grade
    2
    """
    check_range("age_years", age_years, 0, 130, "years")
    check_range("ice_score", ice_score, 0, 10, integer=True, allow_none=True)
    check_range("capd_score", capd_score, 0, 32, integer=True, allow_none=True)
    unable = _check_flag("unable_to_assess", unable_to_assess)
    check_choice("consciousness", consciousness, vocab.CONSCIOUSNESS)
    check_choice("seizure", seizure, vocab.SEIZURE)
    motor = _check_flag("motor_weakness", motor_weakness)
    check_choice("cerebral_edema", cerebral_edema, vocab.CEREBRAL_EDEMA)
    died = _check_flag("died_of_icans", died_of_icans)
    settings = _check_settings(settings)
    cut = settings.capd_age_cut
    if ice_score is not None and capd_score is not None:
        raise InvalidInput("capd_score", capd_score, "None when ice_score is given (one scale)")
    if ice_score is not None and age_years < cut:
        raise InvalidInput("ice_score", ice_score, f"None below age {cut:g} years (use capd_score)")
    if unable and ice_score not in (None, 0):
        raise InvalidInput("ice_score", ice_score, "0 or None when unable_to_assess")
    if unable and capd_score is not None:
        raise InvalidInput("capd_score", capd_score, "None when unable_to_assess")
    if unable and consciousness == "awake":
        raise InvalidInput(
            "unable_to_assess", True, "false while awake (unable to assess = unarousable)"
        )

    flags: list[str] = []
    if math.floor(age_years) == 12:
        flags.append("age_12_ambiguous")
    domains: list[tuple[int, str]] = []
    instrument: str | None
    if ice_score is not None or (unable and age_years >= cut):
        instrument = "ice"
        g = ice_domain_grade(ice_score or 0, unarousable=unable)
        word = "unarousable, unable to perform ICE" if unable else f"ICE {ice_score}"
        domains.append((g, word))
    elif capd_score is not None or unable:
        instrument = "capd"
        if unable:
            domains.append((4, "unable to perform CAPD"))
        else:
            domains.append((capd_domain_grade(capd_score), f"CAPD {capd_score}"))  # type: ignore[arg-type]
    else:
        instrument = None
        flags.extend(("encephalopathy_not_assessed", "incomplete"))
    domains.append(
        (CONSCIOUSNESS_GRADES[consciousness], _CONSCIOUSNESS_WORDS.get(consciousness, ""))
    )
    domains.append((SEIZURE_GRADES[seizure], _SEIZURE_WORDS.get(seizure, "")))
    domains.append((4 if motor else 0, "deep focal motor weakness"))
    domains.append((CEREBRAL_EDEMA_GRADES[cerebral_edema], _EDEMA_WORDS.get(cerebral_edema, "")))

    if died:
        return IcansResult(5, ("death due to ICANS",), instrument, tuple(flags))
    grade = max(g for g, _ in domains)
    if grade == 0:
        reasons: tuple[str, ...] = ("no ICANS domain abnormal",)
    else:
        reasons = tuple(f"{word} → {g}" for g, word in domains if g == grade)
    return IcansResult(grade, reasons, instrument, tuple(flags))


# --------------------------------------------------------------------------- vectorised
def _array(field: str, value: Any, n: int | None, kind: str) -> np.ndarray:
    return _as_array(field, value, n, kind)


def grade_icans_array(
    *,
    age_years: Any,
    ice_score: Any,
    capd_score: Any,
    unable_to_assess: Any,
    consciousness: Any,
    seizure: Any,
    motor_weakness: Any,
    cerebral_edema: Any,
    died_of_icans: Any = None,
    settings: ToxicitySettings = DEFAULT_SETTINGS,
) -> np.ndarray:
    """Grade many ICANS observations at once; equal to :func:`grade_icans` row by row.

    Parameters
    ----------
    age_years : array of float
        Years, 0–130.
    ice_score, capd_score : array of float
        Scores; NaN = not given.
    unable_to_assess, motor_weakness, died_of_icans : array of bool
    consciousness, seizure, cerebral_edema : array of int
        Codes of :data:`CONSCIOUSNESS_CODES`, :data:`SEIZURE_CODES`, :data:`CEREBRAL_EDEMA_CODES`.

    Returns
    -------
    numpy.ndarray of int64
        Grades 0–5.

    Raises
    ------
    InvalidInput
        As :func:`grade_icans` (naming the field), for the first offending row.

    Examples
    --------
    >>> nan = float("nan")
    >>> grade_icans_array(age_years=[40.0, 8.0], ice_score=[8, nan], capd_score=[nan, 10],
    ...                   unable_to_assess=[False, False], consciousness=[0, 1], seizure=[0, 0],
    ...                   motor_weakness=[False, False], cerebral_edema=[0, 0]).tolist()
    [1, 3]
    """
    age = _array("age_years", age_years, None, "float")
    n = age.shape[0]
    ice = _array("ice_score", ice_score, n, "float")
    capd = _array("capd_score", capd_score, n, "float")
    unable = _array("unable_to_assess", unable_to_assess, n, "bool")
    cons = _array("consciousness", consciousness, n, "int")
    seiz = _array("seizure", seizure, n, "int")
    motor = _array("motor_weakness", motor_weakness, n, "bool")
    edema = _array("cerebral_edema", cerebral_edema, n, "int")
    died = (
        np.zeros(n, bool)
        if died_of_icans is None
        else _array("died_of_icans", died_of_icans, n, "bool")
    )
    settings = _check_settings(settings)
    _check_bounds("age_years", age, 0, 130, nan_ok=False)
    _check_bounds("ice_score", ice, 0, 10, nan_ok=True)
    _check_bounds("capd_score", capd, 0, 32, nan_ok=True)
    _check_bounds("consciousness", cons, 0, len(vocab.CONSCIOUSNESS) - 1, nan_ok=False)
    _check_bounds("seizure", seiz, 0, len(vocab.SEIZURE) - 1, nan_ok=False)
    _check_bounds("cerebral_edema", edema, 0, len(vocab.CEREBRAL_EDEMA) - 1, nan_ok=False)
    has_ice, has_capd = ~np.isnan(ice), ~np.isnan(capd)
    checks = (
        ("ice_score", has_ice & (ice != np.round(ice)), "a whole number"),
        ("capd_score", has_capd & (capd != np.round(capd)), "a whole number"),
        ("capd_score", has_ice & has_capd, "None when ice_score is given (one scale)"),
        ("ice_score", has_ice & (age < settings.capd_age_cut), "None below the CAPD age cut"),
        ("ice_score", unable & has_ice & (ice != 0), "0 or None when unable_to_assess"),
        ("capd_score", unable & has_capd, "None when unable_to_assess"),
        ("unable_to_assess", unable & (cons == CONSCIOUSNESS_CODES["awake"]), "false while awake"),
    )
    for field, bad, allowed in checks:
        if bad.any():
            source = {"ice_score": ice, "capd_score": capd}.get(field, unable)
            raise InvalidInput(field, source[bad][0].item(), allowed)

    ice_i = np.where(has_ice, ice, 10)
    ice_g = np.where(ice_i == 10, 0, np.where(ice_i >= 7, 1, np.where(ice_i >= 3, 2, 3)))
    capd_i = np.where(has_capd, capd, 0)
    capd_g = np.where(capd_i == 0, 0, np.where(capd_i <= 8, 1, 3))
    assess = np.where(unable, 4, np.where(has_ice, ice_g, np.where(has_capd, capd_g, 0)))
    cons_g = np.array([CONSCIOUSNESS_GRADES[w] for w in vocab.CONSCIOUSNESS])[cons]
    seiz_g = np.array([SEIZURE_GRADES[w] for w in vocab.SEIZURE])[seiz]
    edema_g = np.array([CEREBRAL_EDEMA_GRADES[w] for w in vocab.CEREBRAL_EDEMA])[edema]
    grade = np.maximum.reduce([assess, cons_g, seiz_g, np.where(motor, 4, 0), edema_g])
    return np.where(died, 5, grade).astype(np.int64)
