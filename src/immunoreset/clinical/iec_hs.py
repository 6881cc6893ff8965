"""IEC-HS — immune effector cell–associated HLH-like syndrome: features, suspicion and grade.

Source
------
Hines MR, Knight TE, McNerney KO, Leick MB, Jain T, … Teachey DT, Frank MJ, Shah NN (ASTCT
panel). Immune effector cell-associated hemophagocytic lymphohistiocytosis-like syndrome.
*Transplant Cell Ther.* 2023;29(7):438.e1–438.e16. PMID 36906275. Only the abstract was
retrievable; HLH-2004 values (fibrinogen ≤ 1.5 g/L, fasting triglycerides ≥ 265 mg/dL) from the
CIBMTR forms manual. Grade structure: CTCAE v5.0 generic severity scale. Project specification
clinical-addendum.md §1.

Definition (paraphrase)
-----------------------
An HLH-like hyperinflammatory toxicity after CAR T, often not tightly linked to CRS. Features
evaluated here (:data:`FEATURES`):

================== ================================================================ =========
feature            rule (defaults of :class:`IecHsSettings`)                         status
================== ================================================================ =========
hyperferritinaemia ferritin > 2 × reference; reference = max(ULN, day-0 value)       UNCONF.
timing             onset after CRS has resolved (or no CRS), or clinician says        qualit.
                   "worsening after initial improvement"; onset inside an active
                   CRS episode → not met, flag ``during_crs``
cytopenia          new / worsening / refractory: clinician flag                       qualit.
hypofibrinogenaemia fibrinogen < 150 mg/dL or < lab LLN (``hlh_2004``: ≤ 150)          UNCONF.
transaminitis      ALT or AST > 5 × ULN (normal baseline) / > 5 × baseline            UNCONF.
                   (abnormal baseline)
haemophagocytosis  in marrow or other tissue (clinician / pathology)                  qualit.
hypertriglyceridaemia fasting triglycerides ≥ 265 mg/dL (HLH-2004)                    conf.
raised LDH         LDH > ULN (supporting)                                             UNCONF.
================== ================================================================ =========

``suspected`` = hyperferritinaemia **and** timing **and** ≥ ``min_other_features`` (default 1)
other feature; "rapidly rising" ferritin (no number published) is a clinician flag that can
stand in for the ferritin rule. Attribution to the CAR T product is a clinician decision: a
grade is returned only when ``confirmed_by_clinician`` is true.

Grading (provisional, UNCONFIRMED anchors; grade = highest row met)
-------------------------------------------------------------------
===== ===========================================================================
grade anchor (intervention keys of :data:`INTERVENTION_GRADES`)
===== ===========================================================================
1     observation only; no IEC-HS-directed treatment
2     IEC-HS-directed immunosuppression (anakinra, corticosteroids, emapalumab,
      ruxolitinib …) and/or transfusion for hypofibrinogenaemia
3     bleeding needing transfusion; new hepatic/renal insufficiency needing
      (prolonged) hospitalisation
4     life-threatening bleeding or hypotension (vasopressor), intubation, dialysis
5     death from IEC-HS
===== ===========================================================================

Warning (addendum): public code with "2024 ASTCT update" criteria, ferritin > 10,000 tables or
mandatory bilineage cytopenia is invented; none of it is used here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from immunoreset.clinical.settings import _check_flag
from immunoreset.errors import InvalidInput, check_choice, check_range

__all__ = [
    "FEATURES",
    "INTERVENTION_GRADES",
    "RULE_SET",
    "IecHsResult",
    "IecHsSettings",
    "assess_iec_hs",
]

RULE_SET = "hines_2023_provisional"
FEATURES: tuple[str, ...] = (
    "hyperferritinaemia",
    "timing",
    "cytopenia",
    "hypofibrinogenaemia",
    "transaminitis",
    "haemophagocytosis",
    "hypertriglyceridaemia",
    "raised_ldh",
)
FERRITIN_REFERENCES: tuple[str, ...] = ("uln", "baseline", "max")
FIBRINOGEN_RULES: tuple[str, ...] = ("below", "hlh_2004")
#: Intervention -> the grade it anchors (clinical-addendum §1.2, wording UNCONFIRMED).
INTERVENTION_GRADES: dict[str, int] = {
    "anakinra": 2,
    "corticosteroids": 2,
    "emapalumab": 2,
    "ruxolitinib": 2,
    "other_immunosuppression": 2,
    "fibrinogen_replacement": 2,
    "bleeding_transfusion": 3,
    "hospitalisation_organ_insufficiency": 3,
    "life_threatening_bleeding": 4,
    "vasopressor": 4,
    "intubation": 4,
    "dialysis": 4,
}
_MAX_LAB = 1e7


@dataclass(frozen=True, slots=True)
class IecHsSettings:
    """The UNCONFIRMED numbers of the IEC-HS framework (clinical-addendum §1.1), as data.

    Attributes
    ----------
    ferritin_factor : float
        Ferritin must exceed this multiple of the reference (default 2).
    ferritin_reference : str
        ``uln``, ``baseline`` (day-0 value) or ``max`` (default: the larger of the two).
    fibrinogen_rule : str
        ``below`` (< threshold, default) or ``hlh_2004`` (≤ threshold).
    fibrinogen_mg_dl : float
        150 mg/dL (1.5 g/L).
    transaminase_factor : float
        5 × ULN (normal baseline) or 5 × baseline (abnormal baseline).
    triglycerides_mg_dl : float
        Fasting triglycerides ≥ 265 mg/dL (HLH-2004, confirmed).
    min_other_features : int
        Other features besides ferritin and timing needed for ``suspected`` (default 1).
    """

    ferritin_factor: float = 2.0
    ferritin_reference: str = "max"
    fibrinogen_rule: str = "below"
    fibrinogen_mg_dl: float = 150.0
    transaminase_factor: float = 5.0
    triglycerides_mg_dl: float = 265.0
    min_other_features: int = 1

    def __post_init__(self) -> None:
        check_range("ferritin_factor", self.ferritin_factor, 1, 100)
        check_choice("ferritin_reference", self.ferritin_reference, FERRITIN_REFERENCES)
        check_choice("fibrinogen_rule", self.fibrinogen_rule, FIBRINOGEN_RULES)
        check_range("fibrinogen_mg_dl", self.fibrinogen_mg_dl, 10, 1000, "mg/dL")
        check_range("transaminase_factor", self.transaminase_factor, 1, 100)
        check_range("triglycerides_mg_dl", self.triglycerides_mg_dl, 10, 5000, "mg/dL")
        check_range("min_other_features", self.min_other_features, 0, 6, integer=True)


DEFAULT_IEC_HS_SETTINGS = IecHsSettings()


@dataclass(frozen=True, slots=True)
class IecHsResult:
    """IEC-HS assessment.

    Attributes
    ----------
    features_present : tuple of str
        Features of :data:`FEATURES` that are met.
    suspected : bool
        Ferritin + timing + the configured number of other features.
    confirmed_by_clinician : bool
    grade : int or None
        1–5 when confirmed; None otherwise.
    reasons : tuple of str
        One line per feature evaluated and for the grade.
    flags : tuple of str
        ``during_crs``, ``not_assessed:<feature>``, ``thresholds_unconfirmed``,
        ``grading_unconfirmed``, ``clinician_timing``, ``rapidly_rising_ferritin``.
    rule_set : str
        :data:`RULE_SET`.
    """

    features_present: tuple[str, ...]
    suspected: bool
    confirmed_by_clinician: bool
    grade: int | None
    reasons: tuple[str, ...]
    flags: tuple[str, ...]
    rule_set: str = RULE_SET


def _lab(field: str, value: float | None, unit: str) -> float | None:
    return check_range(field, value, 0, _MAX_LAB, unit, allow_none=True)


def _opt_flag(field: str, value: bool | None) -> bool | None:
    return None if value is None else _check_flag(field, value)


def assess_iec_hs(
    *,
    ferritin_ng_ml: float | None,
    ferritin_uln_ng_ml: float | None,
    ferritin_day0_ng_ml: float | None,
    onset_day: int,
    crs_episodes: Sequence[tuple[int, int]] = (),
    rapidly_rising_ferritin: bool | None = None,
    worsening_after_improvement: bool | None = None,
    cytopenia_new_or_worsening: bool | None = None,
    fibrinogen_mg_dl: float | None = None,
    fibrinogen_lln_mg_dl: float | None = None,
    alt_u_l: float | None = None,
    ast_u_l: float | None = None,
    transaminase_uln_u_l: float | None = None,
    alt_baseline_u_l: float | None = None,
    ast_baseline_u_l: float | None = None,
    haemophagocytosis: bool | None = None,
    triglycerides_mg_dl: float | None = None,
    ldh_u_l: float | None = None,
    ldh_uln_u_l: float | None = None,
    confirmed_by_clinician: bool = False,
    interventions: Sequence[str] = (),
    died_of_iec_hs: bool = False,
    settings: IecHsSettings = DEFAULT_IEC_HS_SETTINGS,
) -> IecHsResult:
    """Evaluate the IEC-HS features, suspicion and (when confirmed) the grade.

    Parameters
    ----------
    ferritin_ng_ml : float or None
        Peak ferritin of the suspected episode, ng/mL.
    ferritin_uln_ng_ml, ferritin_day0_ng_ml : float or None
        The lab's upper limit of normal and the day-0 ferritin (the reference, see settings).
    onset_day : int
        Study day of the suspected onset (−30 … 3650).
    crs_episodes : sequence of (onset_day, last_day)
        CRS episodes; an onset inside one is ``during_crs`` (timing not met).
    rapidly_rising_ferritin, worsening_after_improvement, cytopenia_new_or_worsening : bool
        Clinician judgements (None = not assessed).
    fibrinogen_mg_dl, fibrinogen_lln_mg_dl : float or None
        Fibrinogen and the lab's LLN, mg/dL.
    alt_u_l, ast_u_l, transaminase_uln_u_l, alt_baseline_u_l, ast_baseline_u_l : float or None
        U/L.
    haemophagocytosis : bool or None
        Marrow or tissue haemophagocytosis.
    triglycerides_mg_dl : float or None
        Fasting triglycerides.
    ldh_u_l, ldh_uln_u_l : float or None
        LDH and its ULN.
    confirmed_by_clinician : bool
        Attribution to IEC-HS confirmed: only then a grade is given.
    interventions : sequence of str
        Keys of :data:`INTERVENTION_GRADES`.
    died_of_iec_hs : bool
        Grade 5.
    settings : IecHsSettings

    Returns
    -------
    IecHsResult

    Raises
    ------
    InvalidInput
        Out-of-range or wrong-type values, unknown interventions, a baseline without its value.

    Examples
    --------
    >>> r = assess_iec_hs(ferritin_ng_ml=601, ferritin_uln_ng_ml=300, ferritin_day0_ng_ml=100,
    ...                   onset_day=12, crs_episodes=[(1, 5)], fibrinogen_mg_dl=149)
    >>> r.features_present, r.suspected
    (('hyperferritinaemia', 'timing', 'hypofibrinogenaemia'), True)
    """
    if not isinstance(settings, IecHsSettings):
        raise InvalidInput("settings", settings, "an IecHsSettings")
    ferritin = _lab("ferritin_ng_ml", ferritin_ng_ml, "ng/mL")
    uln = check_range(
        "ferritin_uln_ng_ml",
        ferritin_uln_ng_ml,
        0,
        _MAX_LAB,
        "ng/mL",
        lo_open=True,
        allow_none=True,
    )
    day0 = _lab("ferritin_day0_ng_ml", ferritin_day0_ng_ml, "ng/mL")
    check_range("onset_day", onset_day, -30, 3650, "study day", integer=True)
    episodes = _check_episodes(crs_episodes)
    rising = _opt_flag("rapidly_rising_ferritin", rapidly_rising_ferritin)
    worsening = _opt_flag("worsening_after_improvement", worsening_after_improvement)
    cytopenia = _opt_flag("cytopenia_new_or_worsening", cytopenia_new_or_worsening)
    fib = _lab("fibrinogen_mg_dl", fibrinogen_mg_dl, "mg/dL")
    fib_lln = _lab("fibrinogen_lln_mg_dl", fibrinogen_lln_mg_dl, "mg/dL")
    alt, ast = _lab("alt_u_l", alt_u_l, "U/L"), _lab("ast_u_l", ast_u_l, "U/L")
    t_uln = check_range(
        "transaminase_uln_u_l",
        transaminase_uln_u_l,
        0,
        10_000,
        "U/L",
        lo_open=True,
        allow_none=True,
    )
    alt_base = _lab("alt_baseline_u_l", alt_baseline_u_l, "U/L")
    ast_base = _lab("ast_baseline_u_l", ast_baseline_u_l, "U/L")
    hemo = _opt_flag("haemophagocytosis", haemophagocytosis)
    tg = _lab("triglycerides_mg_dl", triglycerides_mg_dl, "mg/dL")
    ldh, ldh_uln = _lab("ldh_u_l", ldh_u_l, "U/L"), _lab("ldh_uln_u_l", ldh_uln_u_l, "U/L")
    confirmed = _check_flag("confirmed_by_clinician", confirmed_by_clinician)
    died = _check_flag("died_of_iec_hs", died_of_iec_hs)
    if isinstance(interventions, str) or not isinstance(interventions, Sequence):
        raise InvalidInput("interventions", interventions, "a list of interventions")
    acts = tuple(check_choice("interventions", i, INTERVENTION_GRADES) for i in interventions)

    present: list[str] = []
    reasons: list[str] = []
    flags: list[str] = ["thresholds_unconfirmed"]

    def note(feature: str, met: bool | None, why: str) -> None:
        if met is None:
            flags.append(f"not_assessed:{feature}")
            reasons.append(f"{feature}: not assessed ({why})")
            return
        if met:
            present.append(feature)
        reasons.append(f"{feature}: {'met' if met else 'not met'} — {why}")

    # ferritin
    ref = _ferritin_reference(uln, day0, settings.ferritin_reference)
    if ferritin is None or ref is None:
        if rising:
            flags.append("rapidly_rising_ferritin")
            note("hyperferritinaemia", True, "rapidly rising ferritin (clinician)")
        else:
            note("hyperferritinaemia", None, "ferritin or its reference missing")
    else:
        limit = settings.ferritin_factor * ref
        met = ferritin > limit or bool(rising)
        why = (
            f"ferritin {ferritin:g} ng/mL {'>' if ferritin > limit else '≤'} "
            f"{settings.ferritin_factor:g} × {settings.ferritin_reference} reference {ref:g} "
            f"= {limit:g}"
        )
        if rising and not ferritin > limit:
            why += "; rapidly rising (clinician)"
            flags.append("rapidly_rising_ferritin")
        note("hyperferritinaemia", met, why)
    # timing
    active = next((e for e in episodes if e[0] <= onset_day <= e[1]), None)
    if worsening is not None:
        flags.append("clinician_timing")
        note("timing", worsening, "inflammation worsening after initial improvement (clinician)")
    elif active is not None:
        flags.append("during_crs")
        note("timing", False, f"onset day {onset_day} during CRS (days {active[0]}–{active[1]})")
    elif any(e[1] < onset_day for e in episodes):
        last = max(e[1] for e in episodes if e[1] < onset_day)
        note("timing", True, f"onset day {onset_day} after CRS resolved (day {last})")
    else:
        note("timing", True, f"onset day {onset_day}, no CRS before it")
    note(
        "cytopenia",
        cytopenia,
        "new, worsening or refractory cytopenia (clinician)",
    )
    # fibrinogen
    if fib is None:
        note("hypofibrinogenaemia", None, "no fibrinogen")
    else:
        thr = settings.fibrinogen_mg_dl
        low = fib <= thr if settings.fibrinogen_rule == "hlh_2004" else fib < thr
        sign = "≤" if settings.fibrinogen_rule == "hlh_2004" else "<"
        why = f"fibrinogen {fib:g} mg/dL {'' if low else 'not '}{sign} {thr:g}"
        if fib_lln is not None and fib < fib_lln and not low:
            low, why = True, f"fibrinogen {fib:g} mg/dL < LLN {fib_lln:g}"
        note("hypofibrinogenaemia", low, why)
    # transaminases
    checks = []
    for name, value, base in (("ALT", alt, alt_base), ("AST", ast, ast_base)):
        if value is None:
            continue
        if t_uln is None:
            raise InvalidInput("transaminase_uln_u_l", None, "the ULN when ALT/AST is given")
        abnormal = base is not None and base > t_uln
        ref_t = base if abnormal else t_uln
        limit = settings.transaminase_factor * ref_t  # type: ignore[operator]
        what = "baseline" if abnormal else "ULN"
        checks.append(
            (
                value > limit,
                f"{name} {value:g} vs {settings.transaminase_factor:g} × "
                f"{what} {ref_t:g} = {limit:g} U/L",
            )
        )
    if checks:
        note("transaminitis", any(m for m, _ in checks), "; ".join(w for _, w in checks))
    else:
        note("transaminitis", None, "no ALT/AST")
    note("haemophagocytosis", hemo, "marrow or tissue haemophagocytosis")
    if tg is None:
        note("hypertriglyceridaemia", None, "no fasting triglycerides")
    else:
        thr = settings.triglycerides_mg_dl
        note("hypertriglyceridaemia", tg >= thr, f"triglycerides {tg:g} mg/dL vs ≥ {thr:g}")
    if ldh is None or ldh_uln is None:
        note("raised_ldh", None, "no LDH or its ULN")
    else:
        note("raised_ldh", ldh > ldh_uln, f"LDH {ldh:g} vs ULN {ldh_uln:g} U/L")

    others = [f for f in present if f not in ("hyperferritinaemia", "timing")]
    suspected = (
        "hyperferritinaemia" in present
        and "timing" in present
        and len(others) >= settings.min_other_features
    )
    reasons.append(
        f"suspected: {suspected} (ferritin + timing + ≥ {settings.min_other_features} other; "
        f"{len(others)} other present)"
    )
    grade: int | None = None
    if confirmed:
        flags.append("grading_unconfirmed")
        if died:
            grade, why = 5, "death from IEC-HS"
        elif acts:
            grade = max(INTERVENTION_GRADES[a] for a in acts)
            why = ", ".join(a for a in acts if INTERVENTION_GRADES[a] == grade)
        else:
            grade, why = 1, "observation only, no IEC-HS-directed treatment"
        reasons.append(f"grade {grade}: {why} (provisional anchors, UNCONFIRMED)")
    else:
        reasons.append("no grade: IEC-HS not confirmed by a clinician")
    return IecHsResult(tuple(present), suspected, confirmed, grade, tuple(reasons), tuple(flags))


def _ferritin_reference(uln: float | None, day0: float | None, mode: str) -> float | None:
    if mode == "uln":
        return uln
    if mode == "baseline":
        return day0
    known = [v for v in (uln, day0) if v is not None]
    return max(known) if known else None


def _check_episodes(value: object) -> tuple[tuple[int, int], ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidInput("crs_episodes", value, "a list of (onset_day, last_day)")
    out = []
    for item in value:
        if not isinstance(item, Sequence) or isinstance(item, str) or len(item) != 2:
            raise InvalidInput("crs_episodes", item, "a pair (onset_day, last_day)")
        a = check_range("crs_episodes", item[0], -30, 3650, "study day", integer=True)
        b = check_range("crs_episodes", item[1], -30, 3650, "study day", integer=True)
        if b < a:
            raise InvalidInput("crs_episodes", item, "last_day ≥ onset_day")
        out.append((a, b))
    return tuple(out)
