"""Dosing: body-surface area, CAR T cell dose, lymphodepletion plans with fludarabine renal rules.

Sources
-------
* BSA: Mosteller RD. Simplified calculation of body-surface area. *N Engl J Med.*
  1987;317(17):1098. ``BSA (m²) = sqrt(height_cm × weight_kg / 3600)``.
* Regimens (clinical.md §11.1, stored as data in :data:`REGIMENS`):
  Nicolai R, et al. *Arthritis Rheumatol.* 2024;76(10):1560–1565 (OPBG Rome, JDM: Flu 90 mg/m²
  over 3 days + Cy 1000 mg/m² over 2 days); Mackensen A, et al. *Nat Med* 2022;28:2124–2132 and
  Müller F, et al. *N Engl J Med* 2024;390:687–700 (Erlangen; doses/days not in the abstracts);
  Pecher AC, et al. *JAMA* 2023;329:2154–2162 (Tübingen, Flu 25 / Cy 1000 mg/m²); ZUMA-1
  phase 1 (NCT02348216, Flu 30 + Cy 500 mg/m² on days −5, −4, −3).
* Fludarabine renal rules (clinical.md §11.2, :data:`RENAL_RULES`): FLUDARA for injection US
  label (CrCl by Cockcroft–Gault); fludarabine phosphate tablet label (−20 % / −50 %);
  DFCI/BWH institutional practice (myeloma CAR T abstract).
* Dose-reduced flag: Wood AC, et al. *Transplant Cell Ther* 2022;28:829.e1–e8 (fludarabine
  given at < 90 % of the label dose).

UNCONFIRMED (all explicit in the data and in every plan's flags and reasons)
--------------------------------------------------------------------------------
* OPBG (Nicolai 2024): per-day split 30 × 3 / 500 × 2 is arithmetic; days relative to infusion
  are not published — default Flu days −5, −4, −3 and Cy days −4, −3 (``days_confirmed=False``).
* Erlangen: "commonly reported" Flu 25 mg/m² days −5…−3 + Cy 1000 mg/m² day −3, doses and days
  unconfirmed. Tübingen: doses confirmed, days assumed as Erlangen.
* Heidelberg Flu 30 + Cy 500 mg/m² on days −4…−2: not in the specification, no source retrieved.
* Translating the FLUDARA IV label's absolute doses (25 → 20 / 15 mg/m²) into factors 0.8 / 0.6
  for other planned doses is the usual protocol reading, not a written rule.
* CrCl is rounded half-up to a whole number before banding (values such as 79.5 fall between the
  label's bands; no source); the plan says when rounding changed the value.
* DFCI/BWH defines no dose below 30 mL/min: status ``"undefined"`` (no dose proposed).
* Bedside Schwartz eGFR (Schwartz GJ et al. *J Am Soc Nephrol* 2009;20(3):629–637, PMC2653687:
  eGFR = 0.413 × height (cm) / creatinine (mg/dL), mL/min/1.73 m²; derived in children aged
  1–16 y with CKD, median GFR 41): :func:`schwartz_bedside_egfr`. ``lymphodepletion`` accepts
  ``creatinine`` + height and then uses it as the renal value — it is BSA-normalised, so with a
  Cockcroft–Gault (mL/min) rule the plan says so (flag ``egfr_for_crcl_rule``). Validity bound
  (> 90 flagged) and assay requirement (enzymatic, IDMS-traceable) are UNCONFIRMED.
* Tocilizumab for CRS (Le RQ et al. *Oncologist* 2018;23(8):943–947, FDA approval summary;
  tisagenlecleucel US label 2017 Table 1): 12 mg/kg if < 30 kg, 8 mg/kg if ≥ 30 kg, actual
  body weight (obesity basis UNCONFIRMED), maximum 800 mg per dose, ≥ 8 h between doses,
  at most 4 doses in total; "≤ 3 doses in 24 h" is from secondary tables only (setting
  ``limit_3_in_24h``, default on). Approved from age 2 (younger: flag ``outside_label_age``).
* Cyclophosphamide renal adjustment: no source found; cyclophosphamide is never adjusted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from immunoreset.errors import InvalidInput, check_choice, check_range

__all__ = [
    "FLU_REDUCED_BELOW",
    "REGIMENS",
    "RENAL_RULES",
    "DrugDose",
    "EgfrResult",
    "LymphodepletionPlan",
    "Regimen",
    "RegimenDrug",
    "RenalBand",
    "RenalRule",
    "TocilizumabDose",
    "bsa_mosteller",
    "car_t_dose",
    "flu_dose_reduced",
    "lymphodepletion",
    "schwartz_bedside_egfr",
    "tocilizumab_dose",
]

#: Fludarabine counts as dose-reduced below this fraction of the reference dose (Wood 2022).
FLU_REDUCED_BELOW = 0.90

_HEIGHT_CM = (30.0, 250.0)
_WEIGHT_KG = (0.5, 350.0)
_CRCL_MAX = 300.0


# ------------------------------------------------------------------------------ regimen data
@dataclass(frozen=True, slots=True)
class RegimenDrug:
    """One lymphodepleting agent of a regimen.

    Attributes
    ----------
    agent : str
        ``fludarabine`` or ``cyclophosphamide``.
    mg_per_m2_day : float
        Dose per day, mg/m².
    days : tuple[int, ...]
        Study days relative to CAR T infusion (day 0).
    dose_confirmed, days_confirmed : bool
        Whether the dose and the days were confirmed against a retrieved source.
    """

    agent: str
    mg_per_m2_day: float
    days: tuple[int, ...]
    dose_confirmed: bool
    days_confirmed: bool


@dataclass(frozen=True, slots=True)
class Regimen:
    """A lymphodepletion regimen stored as data."""

    name: str
    drugs: tuple[RegimenDrug, ...]
    source: str
    notes: str

    @property
    def confirmed(self) -> bool:
        """``True`` only when every dose and every day is confirmed."""
        return all(d.dose_confirmed and d.days_confirmed for d in self.drugs)


_FLU = "fludarabine"
_CY = "cyclophosphamide"

#: Regimen key -> regimen (clinical.md §11.1).
REGIMENS: Mapping[str, Regimen] = MappingProxyType(
    {
        "opbg_nicolai_2024": Regimen(
            "opbg_nicolai_2024",
            (
                RegimenDrug(_FLU, 30.0, (-5, -4, -3), True, False),
                RegimenDrug(_CY, 500.0, (-4, -3), True, False),
            ),
            "Nicolai R, et al. Arthritis Rheumatol 2024;76(10):1560–1565 "
            "(doi:10.1002/art.42933; PMID 38924652)",
            "JDM, 12-year-old. Totals confirmed (Flu 90 mg/m² over 3 days, Cy 1000 mg/m² over "
            "2 days); per-day split is arithmetic; study days UNCONFIRMED (defaults).",
        ),
        "erlangen_flu25_cy1000": Regimen(
            "erlangen_flu25_cy1000",
            (
                RegimenDrug(_FLU, 25.0, (-5, -4, -3), False, False),
                RegimenDrug(_CY, 1000.0, (-3,), False, False),
            ),
            "Mackensen A, et al. Nat Med 2022;28:2124–2132; Müller F, et al. "
            "N Engl J Med 2024;390:687–700",
            "Abstracts confirm only 'fludarabine and cyclophosphamide'; the commonly reported "
            "doses and days are UNCONFIRMED.",
        ),
        "tuebingen_pecher_2023": Regimen(
            "tuebingen_pecher_2023",
            (
                RegimenDrug(_FLU, 25.0, (-5, -4, -3), True, False),
                RegimenDrug(_CY, 1000.0, (-3,), True, False),
            ),
            "Pecher AC, et al. JAMA 2023;329:2154–2162 (Medscape summary)",
            "Doses confirmed; number of days not stated (days UNCONFIRMED, as Erlangen).",
        ),
        "zuma1_flu30_cy500": Regimen(
            "zuma1_flu30_cy500",
            (
                RegimenDrug(_FLU, 30.0, (-5, -4, -3), True, True),
                RegimenDrug(_CY, 500.0, (-5, -4, -3), True, True),
            ),
            "ZUMA-1 phase 1, axicabtagene ciloleucel (NCT02348216), trial arm description",
            "Oncology reference regimen.",
        ),
        "heidelberg_flu30_cy500": Regimen(
            "heidelberg_flu30_cy500",
            (
                RegimenDrug(_FLU, 30.0, (-4, -3, -2), True, True),
                RegimenDrug(_CY, 500.0, (-4, -3, -2), True, True),
            ),
            "Merkt W, et al. third-generation CD19 CAR T in SSc-ILD (Heidelberg), PMC10958299 "
            "(model-physiology.md §7.1)",
            "Cy 500 mg/m² + Flu 30 mg/m² on days −4 to −2, as read in the case report.",
        ),
    }
)


# --------------------------------------------------------------------------- renal rule data
@dataclass(frozen=True, slots=True)
class RenalBand:
    """A band of whole-number CrCl (inclusive edges) and the fludarabine action.

    ``factor`` multiplies the planned mg/m²/day; ``None`` with status ``do_not_administer``
    or ``undefined``.
    """

    lo: int
    hi: int | None
    status: str
    factor: float | None
    text: str


@dataclass(frozen=True, slots=True)
class RenalRule:
    """A selectable fludarabine renal dose rule."""

    name: str
    unit: str
    bands: tuple[RenalBand, ...]
    source: str
    notes: str


#: Rule key -> renal rule (clinical.md §11.2; band edges per worked cases §11.3).
RENAL_RULES: Mapping[str, RenalRule] = MappingProxyType(
    {
        "fludara_iv_label": RenalRule(
            "fludara_iv_label",
            "mL/min (Cockcroft–Gault)",
            (
                RenalBand(80, None, "full", 1.0, "CrCl ≥ 80: full dose"),
                RenalBand(50, 79, "reduced", 0.8, "CrCl 50–79: −20 % (label 25 → 20 mg/m²)"),
                RenalBand(30, 49, "reduced", 0.6, "CrCl 30–49: −40 % (label 25 → 15 mg/m²)"),
                RenalBand(0, 29, "do_not_administer", None, "CrCl < 30: do not administer"),
            ),
            "FLUDARA for injection, US label (drugs.com/dosage/fludara.html)",
            "Label doses refer to 25 mg/m²; the ×0.8/×0.6 translation is UNCONFIRMED.",
        ),
        "fludarabine_pct_label": RenalRule(
            "fludarabine_pct_label",
            "mL/min/1.73 m²",
            (
                RenalBand(71, None, "full", 1.0, "CrCl > 70: full dose"),
                RenalBand(30, 70, "reduced", 0.8, "CrCl 30–70: −20 %"),
                RenalBand(0, 29, "reduced", 0.5, "CrCl < 30: −50 %"),
            ),
            "Fludarabine phosphate tablet label text (recallguide.org, Antisoma Research)",
            "",
        ),
        "dfci_bwh_institutional": RenalRule(
            "dfci_bwh_institutional",
            "mL/min",
            (
                RenalBand(50, None, "full", 1.0, "CrCl ≥ 50: full dose"),
                RenalBand(30, 49, "reduced", 0.6, "CrCl 30–49: −40 %"),
                RenalBand(
                    0, 29, "undefined", None, "CrCl < 30: rule defines no dose (clinician decision)"
                ),
            ),
            "DFCI/BWH CAR T practice (ide-cel/cilta-cel myeloma abstract)",
            "Below 30 mL/min: source gives no rule.",
        ),
    }
)


# ------------------------------------------------------------------------------ plan objects
@dataclass(frozen=True, slots=True)
class DrugDose:
    """One agent of a lymphodepletion plan.

    Attributes
    ----------
    agent : str
    planned_mg_per_m2_day : float
        Regimen dose before renal adjustment.
    mg_per_m2_day : float | None
        Dose after adjustment; ``None`` when not to be given or undefined.
    daily_mg : float | None
        BSA × mg_per_m2_day, mg per day (unrounded).
    total_mg : float | None
        daily_mg × number of days.
    days : tuple[int, ...]
        Study days relative to infusion.
    status : str
        ``full``, ``reduced``, ``do_not_administer`` or ``undefined``.
    administer : bool
        ``True`` when the plan proposes a dose to give.
    dose_confirmed, days_confirmed : bool
    """

    agent: str
    planned_mg_per_m2_day: float
    mg_per_m2_day: float | None
    daily_mg: float | None
    total_mg: float | None
    days: tuple[int, ...]
    status: str
    administer: bool
    dose_confirmed: bool
    days_confirmed: bool


@dataclass(frozen=True, slots=True)
class LymphodepletionPlan:
    """A patient's lymphodepletion plan.

    Attributes
    ----------
    regimen : str
    bsa_m2 : float
        Mosteller BSA (unrounded).
    drugs : tuple[DrugDose, ...]
    source : str
    confirmed : bool
        ``True`` only when every dose and day of the regimen is confirmed.
    renal_rule : str | None
    crcl_ml_min : float | None
        Renal function as given (in the rule's unit, :attr:`crcl_unit`).
    crcl_unit : str | None
    crcl_banded : int | None
        Whole-number CrCl used for banding.
    crcl_rounded : bool
        ``True`` when rounding changed the value (UNCONFIRMED handling).
    renal_band : str | None
        The band applied, in words.
    fludarabine_administer : bool
        ``False`` when fludarabine must not be given, or the rule defines no dose.
    flu_dose_reduced : bool | None
        Adjusted fludarabine < 90 % of the regimen dose (``None`` when undefined).
    reasons : tuple[str, ...]
    """

    regimen: str
    bsa_m2: float
    drugs: tuple[DrugDose, ...]
    source: str
    confirmed: bool
    renal_rule: str | None
    crcl_ml_min: float | None
    crcl_unit: str | None
    crcl_banded: int | None
    crcl_rounded: bool
    renal_band: str | None
    fludarabine_administer: bool
    flu_dose_reduced: bool | None
    reasons: tuple[str, ...]
    renal_estimate: str | None = None
    flags: tuple[str, ...] = ()

    def drug(self, agent: str) -> DrugDose:
        """Return the :class:`DrugDose` of ``agent`` (``fludarabine`` / ``cyclophosphamide``)."""
        by_agent = {d.agent: d for d in self.drugs}
        return by_agent[check_choice("agent", agent, by_agent)]


# ------------------------------------------------------------------------------- calculators
def bsa_mosteller(*, height_cm: float, weight_kg: float) -> float:
    """Body-surface area by Mosteller (NEJM 1987): ``sqrt(height_cm × weight_kg / 3600)``.

    Parameters
    ----------
    height_cm : float
        30–250 cm.
    weight_kg : float
        0.5–350 kg.

    Returns
    -------
    float
        BSA in m² (unrounded).

    Examples
    --------
    >>> round(bsa_mosteller(height_cm=144, weight_kg=36), 6)
    1.2
    """
    h = check_range("height_cm", height_cm, *_HEIGHT_CM, "cm")
    w = check_range("weight_kg", weight_kg, *_WEIGHT_KG, "kg")
    return math.sqrt(h * w / 3600.0)


def car_t_dose(
    *, weight_kg: float, cells_per_kg: float = 1e6, max_cells: float | None = None
) -> float:
    """CAR T cells to infuse: weight × cells/kg, capped at ``max_cells`` when given.

    Parameters
    ----------
    weight_kg : float
        0.5–350 kg.
    cells_per_kg : float
        Target CAR T cells per kg, > 0 … 1e9 (autoimmune programmes: 1 × 10⁶/kg).
    max_cells : float, optional
        Flat cap, > 0 … 1e12 cells.

    Returns
    -------
    float
        Number of CAR T cells.

    Examples
    --------
    >>> car_t_dose(weight_kg=40)
    40000000.0
    >>> car_t_dose(weight_kg=120, max_cells=1e8)
    100000000.0
    """
    w = check_range("weight_kg", weight_kg, *_WEIGHT_KG, "kg")
    per_kg = check_range("cells_per_kg", cells_per_kg, 0, 1e9, "cells/kg", lo_open=True)
    cap = check_range("max_cells", max_cells, 0, 1e12, "cells", lo_open=True, allow_none=True)
    dose = float(w * per_kg)
    return dose if cap is None else float(min(dose, cap))


def flu_dose_reduced(*, given_mg_per_m2: float, label_mg_per_m2: float) -> bool:
    """Fludarabine dose-reduced flag: given < 90 % of the label (reference) dose (Wood 2022).

    Parameters
    ----------
    given_mg_per_m2 : float
        Dose actually given, 0–100 mg/m²/day.
    label_mg_per_m2 : float
        Reference dose, > 0 … 100 mg/m²/day.

    Examples
    --------
    >>> flu_dose_reduced(given_mg_per_m2=26, label_mg_per_m2=30)
    True
    >>> flu_dose_reduced(given_mg_per_m2=27, label_mg_per_m2=30)
    False
    """
    given = check_range("given_mg_per_m2", given_mg_per_m2, 0, 100, "mg/m²")
    label = check_range("label_mg_per_m2", label_mg_per_m2, 0, 100, "mg/m²", lo_open=True)
    return given < FLU_REDUCED_BELOW * label


def _band(rule: RenalRule, crcl: int) -> RenalBand:
    for band in rule.bands:
        if crcl >= band.lo and (band.hi is None or crcl <= band.hi):
            return band
    raise AssertionError(f"renal rule {rule.name} has no band for {crcl}")  # pragma: no cover


def _dose(drug: RegimenDrug, bsa: float, status: str, factor: float | None) -> DrugDose:
    if factor is None:
        return DrugDose(
            drug.agent,
            drug.mg_per_m2_day,
            None,
            None,
            None,
            drug.days,
            status,
            False,
            drug.dose_confirmed,
            drug.days_confirmed,
        )
    per_m2 = drug.mg_per_m2_day * factor
    daily = bsa * per_m2
    return DrugDose(
        drug.agent,
        drug.mg_per_m2_day,
        per_m2,
        daily,
        daily * len(drug.days),
        drug.days,
        status,
        True,
        drug.dose_confirmed,
        drug.days_confirmed,
    )


def lymphodepletion(
    *,
    height_cm: float,
    weight_kg: float,
    regimen: str = "opbg_nicolai_2024",
    crcl_ml_min: float | None = None,
    renal_rule: str | None = None,
    creatinine: float | None = None,
    creatinine_unit: str = "mg/dL",
    age_years: float | None = None,
) -> LymphodepletionPlan:
    """Plan lymphodepletion: per-drug mg/day, study days, totals, renal adjustment, flags.

    Parameters
    ----------
    height_cm : float
        30–250 cm.
    weight_kg : float
        0.5–350 kg.
    regimen : str
        Key of :data:`REGIMENS`.
    crcl_ml_min : float, optional
        Renal function, 0–300, in the unit of the chosen rule (Cockcroft–Gault mL/min, or
        mL/min/1.73 m² for ``fludarabine_pct_label``). Rounded half-up to a whole number before
        banding. Required when ``renal_rule`` is given.
    renal_rule : str, optional
        Key of :data:`RENAL_RULES`; required when ``crcl_ml_min`` is given (no silent default).
        Only fludarabine is adjusted.
    creatinine, creatinine_unit : float, str, optional
        Serum creatinine (``mg/dL`` or ``umol/L``) instead of ``crcl_ml_min``: the bedside
        Schwartz eGFR from it and ``height_cm`` is used (needs ``renal_rule``).
    age_years : float, optional
        For the Schwartz validity flag (1–16 y).

    Returns
    -------
    LymphodepletionPlan

    Raises
    ------
    InvalidInput
        Out-of-range or wrong-type values; unknown regimen/rule; ``crcl_ml_min`` without
        ``renal_rule`` (``field="renal_rule"``) or the reverse (``field="crcl_ml_min"``).

    Examples
    --------
    >>> plan = lymphodepletion(height_cm=144, weight_kg=36)
    >>> flu, cy = plan.drug("fludarabine"), plan.drug("cyclophosphamide")
    >>> round(flu.daily_mg, 6), round(flu.total_mg, 6), round(cy.total_mg, 6)
    (36.0, 108.0, 1200.0)
    >>> lymphodepletion(height_cm=144, weight_kg=36, crcl_ml_min=29,
    ...                 renal_rule="fludara_iv_label").fludarabine_administer
    False
    """
    bsa = bsa_mosteller(height_cm=height_cm, weight_kg=weight_kg)
    reg = REGIMENS[check_choice("regimen", regimen, REGIMENS)]
    egfr: EgfrResult | None = None
    if creatinine is not None:
        if crcl_ml_min is not None:
            raise InvalidInput("creatinine", creatinine, "None when crcl_ml_min is given (one)")
        egfr = schwartz_bedside_egfr(
            height_cm=height_cm,
            creatinine=creatinine,
            creatinine_unit=creatinine_unit,
            age_years=age_years,
        )
        crcl_ml_min = min(egfr.egfr, _CRCL_MAX)
    if renal_rule is not None:
        check_choice("renal_rule", renal_rule, RENAL_RULES)
    crcl = check_range("crcl_ml_min", crcl_ml_min, 0, _CRCL_MAX, "mL/min", allow_none=True)
    if crcl is not None and renal_rule is None:
        raise InvalidInput(
            "renal_rule",
            None,
            "one of: " + ", ".join(RENAL_RULES),
            message="renal_rule must be chosen when crcl_ml_min is given; one of: "
            + ", ".join(RENAL_RULES),
        )
    if renal_rule is not None and crcl is None:
        raise InvalidInput("crcl_ml_min", None, f"within 0–{_CRCL_MAX:g} when renal_rule is given")

    reasons = [f"regimen {reg.name}: {reg.source}", f"BSA (Mosteller) {bsa:.3f} m²"]
    if not reg.confirmed:
        reasons.append(f"UNCONFIRMED regimen details: {reg.notes}")

    plan_flags: list[str] = []
    flu_status: str = "full"
    flu_factor: float | None = 1.0
    banded: int | None = None
    band_text: str | None = None
    unit: str | None = None
    rounded = False
    if renal_rule is not None and crcl is not None:
        rule = RENAL_RULES[renal_rule]
        unit = rule.unit
        banded = math.floor(crcl + 0.5)
        rounded = banded != crcl
        band = _band(rule, banded)
        band_text = band.text
        flu_status, flu_factor = band.status, band.factor
        if egfr is not None:
            reasons.extend(egfr.reasons)
            plan_flags.extend(egfr.flags)
            if rule.unit != "mL/min/1.73 m²":
                plan_flags.append("egfr_for_crcl_rule")
                reasons.append(
                    f"bedside Schwartz eGFR is mL/min/1.73 m² (BSA-normalised) but rule "
                    f"{rule.name} expects {rule.unit}: used as given (flag egfr_for_crcl_rule)"
                )
        reasons.append(f"renal rule {rule.name} ({rule.source}); CrCl {crcl:g} {unit}")
        if rounded:
            reasons.append(f"CrCl rounded to {banded} before banding (UNCONFIRMED handling)")
        reasons.append(f"fludarabine: {band.text}")
        if rule.notes:
            reasons.append(rule.notes)

    drugs = tuple(
        _dose(d, bsa, flu_status, flu_factor) if d.agent == _FLU else _dose(d, bsa, "full", 1.0)
        for d in reg.drugs
    )
    for d in drugs:
        if d.administer and d.daily_mg is not None and d.total_mg is not None:
            reasons.append(
                f"{d.agent} {d.mg_per_m2_day:g} mg/m²/day = {d.daily_mg:.1f} mg/day on days "
                f"{', '.join(map(str, d.days))} (total {d.total_mg:.1f} mg)"
            )
        elif d.status == "do_not_administer":
            reasons.append(f"{d.agent}: DO NOT ADMINISTER")
        else:
            reasons.append(f"{d.agent}: no dose defined by the rule; clinician decision required")
    flu = next((d for d in drugs if d.agent == _FLU), None)
    reduced: bool | None
    if flu is None:
        reduced = False
    elif flu.status == "undefined":
        reduced = None
    else:
        reduced = (flu.mg_per_m2_day or 0.0) < FLU_REDUCED_BELOW * flu.planned_mg_per_m2_day
    return LymphodepletionPlan(
        regimen=reg.name,
        bsa_m2=bsa,
        drugs=drugs,
        source=reg.source,
        confirmed=reg.confirmed,
        renal_rule=renal_rule,
        crcl_ml_min=crcl,
        crcl_unit=unit,
        crcl_banded=banded,
        crcl_rounded=rounded,
        renal_band=band_text,
        fludarabine_administer=flu is not None and flu.administer,
        flu_dose_reduced=reduced,
        reasons=tuple(reasons),
        renal_estimate=None if egfr is None else "schwartz_bedside",
        flags=tuple(plan_flags),
    )


# ------------------------------------------------------------------------------ Schwartz eGFR
SCHWARTZ_K = 0.413
#: µmol/L per mg/dL of creatinine (molar mass 113.12 g/mol).
CREATININE_UMOL_PER_MG_DL = 88.4
SCHWARTZ_VALID_AGE = (1.0, 16.0)
SCHWARTZ_FLAG_ABOVE = 90.0


@dataclass(frozen=True, slots=True)
class EgfrResult:
    """A bedside Schwartz eGFR (mL/min/1.73 m²) with flags and reasons."""

    egfr: float
    creatinine_mg_dl: float
    flags: tuple[str, ...]
    reasons: tuple[str, ...]
    unit: str = "mL/min/1.73 m²"


def schwartz_bedside_egfr(
    *,
    height_cm: float,
    creatinine: float,
    creatinine_unit: str = "mg/dL",
    age_years: float | None = None,
) -> EgfrResult:
    """Bedside Schwartz eGFR = 0.413 × height (cm) / creatinine (mg/dL) (Schwartz 2009).

    Parameters
    ----------
    height_cm : float
        30–250 cm.
    creatinine : float
        Serum creatinine, > 0 (0.05–30 mg/dL; µmol/L ÷ 88.4).
    creatinine_unit : str
        ``"mg/dL"`` or ``"umol/L"`` (``"µmol/L"``).
    age_years : float, optional
        Outside 1–16 years the value carries ``out_of_validated_range``.

    Examples
    --------
    >>> round(schwartz_bedside_egfr(height_cm=150, creatinine=1.0).egfr, 2)
    61.95
    >>> r = schwartz_bedside_egfr(height_cm=120, creatinine=44.2, creatinine_unit="umol/L")
    >>> round(r.egfr, 1), r.flags
    (99.1, ('out_of_validated_range',))
    """
    h = check_range("height_cm", height_cm, *_HEIGHT_CM, "cm")
    unit = check_choice("creatinine_unit", creatinine_unit, ("mg/dL", "umol/L", "µmol/L"))
    if unit == "mg/dL":
        cr = check_range("creatinine", creatinine, 0.05, 30, "mg/dL")
    else:
        cr = check_range("creatinine", creatinine, 4, 2700, "µmol/L") / CREATININE_UMOL_PER_MG_DL
    age = check_range("age_years", age_years, 0, 130, "years", allow_none=True)
    value = SCHWARTZ_K * h / cr
    flags: list[str] = []
    reasons = [
        f"bedside Schwartz eGFR 0.413 × {h:g} cm / {cr:.3g} mg/dL = {value:.1f} "
        "mL/min/1.73 m² (Schwartz 2009)"
    ]
    if value > SCHWARTZ_FLAG_ABOVE:
        reasons.append(f"eGFR > {SCHWARTZ_FLAG_ABOVE:g}: above the derivation range (median 41)")
    if age is not None and not SCHWARTZ_VALID_AGE[0] <= age <= SCHWARTZ_VALID_AGE[1]:
        reasons.append(f"age {age:g} y outside the validated 1–16 y")
    if value > SCHWARTZ_FLAG_ABOVE or (
        age is not None and not SCHWARTZ_VALID_AGE[0] <= age <= SCHWARTZ_VALID_AGE[1]
    ):
        flags.append("out_of_validated_range")
    return EgfrResult(value, cr, tuple(flags), tuple(reasons))


# ------------------------------------------------------------------------------ tocilizumab
TOCILIZUMAB_MAX_MG = 800.0
TOCILIZUMAB_MIN_INTERVAL_H = 8.0
TOCILIZUMAB_MAX_DOSES = 4


@dataclass(frozen=True, slots=True)
class TocilizumabDose:
    """A tocilizumab dose for CRS (IV over 1 h) and whether it may be given now."""

    mg: float
    mg_per_kg: float
    capped: bool
    allowed: bool
    reasons: tuple[str, ...]
    flags: tuple[str, ...]


def tocilizumab_dose(
    *,
    weight_kg: float,
    hours_since_prior_doses: tuple[float, ...] = (),
    age_years: float | None = None,
    limit_3_in_24h: bool = True,
) -> TocilizumabDose:
    """Tocilizumab dose for CRS: 12 mg/kg < 30 kg, 8 mg/kg ≥ 30 kg, max 800 mg (label).

    Parameters
    ----------
    weight_kg : float
        Actual body weight, 0.5–350 kg.
    hours_since_prior_doses : tuple of float
        Hours since each earlier dose of this CRS treatment (≥ 0).
    age_years : float, optional
        Below 2 years: outside the label (flag).
    limit_3_in_24h : bool
        Refuse a 4th dose within 24 h (secondary tables; default on).

    Examples
    --------
    >>> tocilizumab_dose(weight_kg=29.9).mg, tocilizumab_dose(weight_kg=30).mg
    (358.8, 240.0)
    >>> tocilizumab_dose(weight_kg=110).mg, tocilizumab_dose(weight_kg=110).capped
    (800.0, True)
    >>> tocilizumab_dose(weight_kg=70, hours_since_prior_doses=(7.99,)).allowed
    False
    """
    w = check_range("weight_kg", weight_kg, *_WEIGHT_KG, "kg")
    if isinstance(hours_since_prior_doses, str) or not isinstance(
        hours_since_prior_doses, tuple | list
    ):
        raise InvalidInput("hours_since_prior_doses", hours_since_prior_doses, "a list of hours")
    prior = [
        check_range("hours_since_prior_doses", h, 0, 24 * 365, "h") for h in hours_since_prior_doses
    ]
    age = check_range("age_years", age_years, 0, 130, "years", allow_none=True)
    if not isinstance(limit_3_in_24h, bool):
        raise InvalidInput("limit_3_in_24h", limit_3_in_24h, "true or false")
    per_kg = 12.0 if w < 30 else 8.0
    raw = per_kg * w
    mg = min(raw, TOCILIZUMAB_MAX_MG)
    reasons = [f"{per_kg:g} mg/kg ({'< 30' if w < 30 else '≥ 30'} kg) × {w:g} kg = {raw:g} mg"]
    if raw > TOCILIZUMAB_MAX_MG:
        reasons.append(f"capped at {TOCILIZUMAB_MAX_MG:g} mg per dose")
    flags: list[str] = []
    allowed = True
    if age is not None and age < 2:
        flags.append("outside_label_age")
        reasons.append("age < 2 years: outside the label (approved from 2 years)")
    if prior and min(prior) < TOCILIZUMAB_MIN_INTERVAL_H:
        allowed = False
        reasons.append(f"last dose {min(prior):g} h ago: minimum interval 8 h")
    if len(prior) + 1 > TOCILIZUMAB_MAX_DOSES:
        allowed = False
        reasons.append(f"dose {len(prior) + 1}: at most {TOCILIZUMAB_MAX_DOSES} doses in total")
    if limit_3_in_24h and sum(h < 24 for h in prior) >= 3:
        allowed = False
        reasons.append("3 doses already within 24 h (setting limit_3_in_24h)")
    return TocilizumabDose(
        round(mg, 6), per_kg, raw > TOCILIZUMAB_MAX_MG, allowed, tuple(reasons), tuple(flags)
    )
