"""SLEDAI-2K and clinical SLEDAI (systemic lupus erythematosus disease activity).

Source
------
Gladman DD, Ibañez D, Urowitz MB. Systemic Lupus Erythematosus Disease Activity Index 2000.
*J Rheumatol.* 2002;29:288–291 (primary, not retrieved). Descriptor text and weights as given in
the project specification (clinical.md §6.1) from medicalcriteria.com (reusledai),
pediatriconcall.com (SLEDAI calculator) and HHE Rheumatology 2019 Table 4.
30-day window: Touma Z, Urowitz MB, Gladman DD, et al. SLEDAI-2K for a 30-day window.
*Lupus.* 2010;19(1):49–51.

Definition version
------------------
SLEDAI-2K: 24 weighted descriptors, each scored if present at the visit or in the preceding
``window_days`` days (10 = standard; 30 = Touma 2010, shown equivalent); total 0–105. Unlike the
original SLEDAI, rash, alopecia, mucosal ulcers and proteinuria score when *persistent*.
The **clinical SLEDAI** (cSLEDAI, used by DORIS 2021) excludes the two serologic descriptors
``low_complement`` and ``increased_dna_binding``.

UNCONFIRMED
-----------
* Arthritis: "≥ 2 joints" (pediatriconcall, most implementations) vs "more than 2 joints"
  (medicalcriteria, HHE); Gladman 2002 wording not retrieved. :func:`is_arthritis` takes an
  explicit ``definition`` (default ``"at_least_2"``, see :data:`ARTHRITIS_DEFINITIONS`).
* Missing-data rule (spec convention, no source): if any descriptor could not be assessed the
  total is not computed (:func:`sledai2k_result` returns ``score=None``, ``incomplete=True``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from immunoreset.errors import InvalidInput, check_range

__all__ = [
    "ARTHRITIS_DEFINITIONS",
    "SEROLOGIC_DESCRIPTORS",
    "SLEDAI2K_WEIGHTS",
    "WINDOW_DAYS",
    "SledaiResult",
    "descriptors_in_window",
    "is_arthritis",
    "is_fever",
    "is_hematuria",
    "is_leukopenia",
    "is_proteinuria",
    "is_pyuria",
    "is_thrombocytopenia",
    "lab_descriptors",
    "score_clinical_sledai",
    "score_sledai2k",
    "sledai2k_result",
]

#: Descriptor -> weight (Gladman 2002 via clinical.md §6.1). Order is the form's order.
SLEDAI2K_WEIGHTS: Mapping[str, int] = {
    "seizure": 8,
    "psychosis": 8,
    "organic_brain_syndrome": 8,
    "visual_disturbance": 8,
    "cranial_nerve_disorder": 8,
    "lupus_headache": 8,
    "cva": 8,
    "vasculitis": 8,
    "arthritis": 4,
    "myositis": 4,
    "urinary_casts": 4,
    "hematuria": 4,
    "proteinuria": 4,
    "pyuria": 4,
    "rash": 2,
    "alopecia": 2,
    "mucosal_ulcers": 2,
    "pleurisy": 2,
    "pericarditis": 2,
    "low_complement": 2,
    "increased_dna_binding": 2,
    "fever": 1,
    "thrombocytopenia": 1,
    "leukopenia": 1,
}

#: Descriptors left out of the clinical SLEDAI (cSLEDAI).
SEROLOGIC_DESCRIPTORS: frozenset[str] = frozenset({"low_complement", "increased_dna_binding"})

#: Allowed look-back windows in days: 10 (standard SLEDAI-2K) or 30 (Touma 2010).
WINDOW_DAYS: tuple[int, ...] = (10, 30)

#: Arthritis joint-count definitions (UNCONFIRMED which one Gladman 2002 uses):
#: name -> minimum number of inflamed joints.
ARTHRITIS_DEFINITIONS: Mapping[str, int] = {"at_least_2": 2, "more_than_2": 3}

# Laboratory thresholds of the descriptors that the specification defines numerically.
_FEVER_ABOVE_C = 38.0
_PLATELETS_BELOW_PER_UL = 100_000
_WBC_BELOW_PER_UL = 3_000
_PROTEINURIA_ABOVE_G_24H = 0.5
_CELLS_ABOVE_PER_HPF = 5


@dataclass(frozen=True, slots=True)
class SledaiResult:
    """A SLEDAI-2K score with the descriptors behind it.

    Attributes
    ----------
    score : int | None
        SLEDAI-2K, 0–105; ``None`` when a descriptor was not assessed.
    clinical_score : int | None
        Clinical SLEDAI (without serology), 0–101; ``None`` when incomplete.
    descriptors : tuple[str, ...]
        Descriptors that counted (present within the window), in form order.
    window_days : int
        Look-back window used (10 or 30).
    incomplete : bool
        ``True`` when any descriptor was not assessed (scores are then ``None``).
    reasons : tuple[str, ...]
        One line per counted descriptor (and per excluded or missing one).
    """

    score: int | None
    clinical_score: int | None
    descriptors: tuple[str, ...]
    window_days: int
    incomplete: bool
    reasons: tuple[str, ...]


def _check_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(field, value, "true or false")
    return value


def _check_descriptors(descriptors: Any, field: str = "descriptors") -> tuple[str, ...]:
    """Validate a collection of descriptor words; refuse strings, unknown words, duplicates."""
    allowed = "a collection of distinct words from: " + ", ".join(SLEDAI2K_WEIGHTS)
    if isinstance(descriptors, str | bytes | Mapping) or not isinstance(descriptors, Iterable):
        raise InvalidInput(field, descriptors, allowed)
    words = tuple(descriptors)
    seen: set[str] = set()
    for word in words:
        if not isinstance(word, str) or word not in SLEDAI2K_WEIGHTS:
            raise InvalidInput(
                field,
                word,
                allowed,
                message=f"{field} must contain only: {', '.join(SLEDAI2K_WEIGHTS)}; got {word!r}",
            )
        if word in seen:
            raise InvalidInput(
                field, word, allowed, message=f"{field} lists {word!r} more than once"
            )
        seen.add(word)
    return words


def _check_window(window_days: Any) -> int:
    if isinstance(window_days, bool) or window_days not in WINDOW_DAYS:
        raise InvalidInput("window_days", window_days, "one of: 10, 30")
    return int(window_days)


def score_sledai2k(descriptors: Iterable[str]) -> int:
    """Return the SLEDAI-2K total (0–105) of the descriptors present.

    Parameters
    ----------
    descriptors : iterable of str
        Distinct descriptor words present at the visit or within the window (see
        :data:`SLEDAI2K_WEIGHTS`); an empty collection scores 0.

    Returns
    -------
    int
        Sum of the descriptor weights, 0–105.

    Raises
    ------
    InvalidInput
        ``field="descriptors"`` for an unknown word, a duplicate, or a bare string.

    Examples
    --------
    >>> score_sledai2k(["arthritis", "low_complement", "increased_dna_binding"])
    8
    """
    return sum(SLEDAI2K_WEIGHTS[d] for d in _check_descriptors(descriptors))


def score_clinical_sledai(descriptors: Iterable[str]) -> int:
    """Return the clinical SLEDAI (SLEDAI-2K without low complement and anti-dsDNA), 0–101.

    Serologic descriptors may be present in ``descriptors``; they are ignored.

    Raises
    ------
    InvalidInput
        ``field="descriptors"`` for an unknown word, a duplicate, or a bare string.

    Examples
    --------
    >>> score_clinical_sledai(["arthritis", "low_complement", "increased_dna_binding"])
    4
    """
    return sum(
        SLEDAI2K_WEIGHTS[d]
        for d in _check_descriptors(descriptors)
        if d not in SEROLOGIC_DESCRIPTORS
    )


def descriptors_in_window(
    days_before_visit: Mapping[str, float], *, window_days: int = 10
) -> tuple[str, ...]:
    """Return the descriptors whose last presence falls within the look-back window.

    Parameters
    ----------
    days_before_visit : mapping of str to float
        Descriptor -> days between its last presence and the visit (0 = present at the visit,
        0–3650 days).
    window_days : {10, 30}
        10 = standard SLEDAI-2K; 30 = Touma 2010. A descriptor counts when
        ``days_before_visit <= window_days``.

    Returns
    -------
    tuple of str
        Counted descriptors in form order.

    Examples
    --------
    >>> descriptors_in_window({"seizure": 15}, window_days=10)
    ()
    >>> descriptors_in_window({"seizure": 15}, window_days=30)
    ('seizure',)
    """
    window = _check_window(window_days)
    if not isinstance(days_before_visit, Mapping):
        raise InvalidInput(
            "days_before_visit", days_before_visit, "a mapping of descriptor -> days"
        )
    _check_descriptors(list(days_before_visit), "days_before_visit")
    days = {
        d: check_range("days_before_visit", v, 0, 3650, "days")
        for d, v in days_before_visit.items()
    }
    return tuple(d for d in SLEDAI2K_WEIGHTS if d in days and days[d] <= window)


def sledai2k_result(
    descriptors: Iterable[str],
    *,
    window_days: int = 10,
    days_before_visit: Mapping[str, float] | None = None,
    not_assessed: Iterable[str] = (),
) -> SledaiResult:
    """Score SLEDAI-2K and cSLEDAI with reasons, honouring the window and missing items.

    Parameters
    ----------
    descriptors : iterable of str
        Descriptors present at the visit (day 0).
    window_days : {10, 30}
        Look-back window (10 standard; 30 per Touma 2010).
    days_before_visit : mapping of str to float, optional
        Further descriptors last present this many days before the visit; they count only
        within the window. Must not repeat a word of ``descriptors``.
    not_assessed : iterable of str
        Descriptors that could not be assessed. Any entry makes the result incomplete and both
        scores ``None`` (spec missing-data rule; no proration).

    Returns
    -------
    SledaiResult

    Examples
    --------
    >>> r = sledai2k_result(["arthritis"], days_before_visit={"seizure": 15}, window_days=30)
    >>> r.score, r.clinical_score
    (12, 12)
    """
    present = _check_descriptors(descriptors)
    window = _check_window(window_days)
    earlier: tuple[str, ...] = ()
    if days_before_visit is not None:
        earlier = descriptors_in_window(days_before_visit, window_days=window)
        clash = set(present) & set(days_before_visit)
        if clash:
            word = sorted(clash)[0]
            raise InvalidInput(
                "days_before_visit",
                word,
                "descriptors not already listed as present",
                message=f"days_before_visit repeats {word!r}, already present at the visit",
            )
    missing = _check_descriptors(not_assessed, "not_assessed")
    counted = set(present) | set(earlier)
    both = counted & set(missing)
    if both:
        word = sorted(both)[0]
        raise InvalidInput(
            "not_assessed",
            word,
            "descriptors not also listed as present",
            message=f"not_assessed lists {word!r}, which is also listed as present",
        )
    ordered = tuple(d for d in SLEDAI2K_WEIGHTS if d in counted)
    reasons = [f"{d} (+{SLEDAI2K_WEIGHTS[d]})" for d in ordered]
    if days_before_visit is not None:
        for d in SLEDAI2K_WEIGHTS:
            if d in days_before_visit and d not in counted:
                reasons.append(
                    f"{d} not counted: last present {days_before_visit[d]:g} days before the "
                    f"visit, outside the {window}-day window"
                )
    if missing:
        reasons.append("not computed: not assessed " + ", ".join(missing))
        return SledaiResult(None, None, ordered, window, True, tuple(reasons))
    score = sum(SLEDAI2K_WEIGHTS[d] for d in ordered)
    clinical = sum(SLEDAI2K_WEIGHTS[d] for d in ordered if d not in SEROLOGIC_DESCRIPTORS)
    reasons.append(f"SLEDAI-2K {score}, clinical SLEDAI {clinical} ({window}-day window)")
    return SledaiResult(score, clinical, ordered, window, False, tuple(reasons))


# --------------------------------------------------------------------- descriptor helpers
def is_fever(temperature_c: float, *, infectious_cause: bool = False) -> bool:
    """SLEDAI fever: temperature > 38 °C without an infectious cause.

    Parameters
    ----------
    temperature_c : float
        Body temperature, 25–45 °C.
    infectious_cause : bool
        ``True`` when the fever is explained by infection (then never counted).

    Examples
    --------
    >>> is_fever(38.5), is_fever(38.0), is_fever(38.5, infectious_cause=True)
    (True, False, False)
    """
    t = check_range("temperature_c", temperature_c, 25, 45, "°C")
    return t > _FEVER_ABOVE_C and not _check_bool("infectious_cause", infectious_cause)


def is_thrombocytopenia(platelets_per_ul: float, *, drug_cause: bool = False) -> bool:
    """SLEDAI thrombocytopenia: platelets < 100 × 10⁹/L (< 100,000/µL), not drug-induced.

    Parameters
    ----------
    platelets_per_ul : float
        Platelet count, 0–3,000,000 cells/µL.
    drug_cause : bool
        ``True`` when attributed to a drug (then not counted).

    Examples
    --------
    >>> is_thrombocytopenia(100_000), is_thrombocytopenia(99_000)
    (False, True)
    """
    p = check_range("platelets_per_ul", platelets_per_ul, 0, 3_000_000, "cells/µL")
    return p < _PLATELETS_BELOW_PER_UL and not _check_bool("drug_cause", drug_cause)


def is_leukopenia(wbc_per_ul: float, *, drug_cause: bool = False) -> bool:
    """SLEDAI leukopenia: WBC < 3 × 10⁹/L (< 3,000/µL), not drug-induced.

    Parameters
    ----------
    wbc_per_ul : float
        White-cell count, 0–500,000 cells/µL.
    drug_cause : bool
        ``True`` when attributed to a drug (then not counted).

    Examples
    --------
    >>> is_leukopenia(3_000), is_leukopenia(2_999)
    (False, True)
    """
    w = check_range("wbc_per_ul", wbc_per_ul, 0, 500_000, "cells/µL")
    return w < _WBC_BELOW_PER_UL and not _check_bool("drug_cause", drug_cause)


def is_proteinuria(protein_g_per_24h: float) -> bool:
    """SLEDAI proteinuria: urine protein > 0.5 g/24 h (new, recurrent or persistent).

    Parameters
    ----------
    protein_g_per_24h : float
        Urine protein, 0–50 g/24 h.

    Examples
    --------
    >>> is_proteinuria(0.5), is_proteinuria(0.6)
    (False, True)
    """
    return (
        check_range("protein_g_per_24h", protein_g_per_24h, 0, 50, "g/24 h")
        > _PROTEINURIA_ABOVE_G_24H
    )


def is_hematuria(rbc_per_hpf: float, *, other_cause: bool = False) -> bool:
    """SLEDAI hematuria: > 5 red cells per high-power field, excluding stone/infection/other.

    Parameters
    ----------
    rbc_per_hpf : float
        Red cells per high-power field, 0–1000.
    other_cause : bool
        ``True`` when explained by stone, infection or another cause.

    Examples
    --------
    >>> is_hematuria(5), is_hematuria(6)
    (False, True)
    """
    n = check_range("rbc_per_hpf", rbc_per_hpf, 0, 1000, "cells/HPF")
    return n > _CELLS_ABOVE_PER_HPF and not _check_bool("other_cause", other_cause)


def is_pyuria(wbc_per_hpf: float, *, infection: bool = False) -> bool:
    """SLEDAI pyuria: > 5 white cells per high-power field, excluding infection.

    Parameters
    ----------
    wbc_per_hpf : float
        White cells per high-power field, 0–1000.
    infection : bool
        ``True`` when explained by urinary infection.

    Examples
    --------
    >>> is_pyuria(5), is_pyuria(6)
    (False, True)
    """
    n = check_range("wbc_per_hpf", wbc_per_hpf, 0, 1000, "cells/HPF")
    return n > _CELLS_ABOVE_PER_HPF and not _check_bool("infection", infection)


def is_arthritis(inflamed_joints: int, *, definition: str = "at_least_2") -> bool:
    """SLEDAI arthritis: enough joints with pain and signs of inflammation.

    Parameters
    ----------
    inflamed_joints : int
        Number of joints with pain and tenderness/swelling/effusion, 0–100.
    definition : {"at_least_2", "more_than_2"}
        Joint-count wording (UNCONFIRMED which one Gladman 2002 uses; default "≥ 2" as in
        pediatriconcall and most implementations).

    Examples
    --------
    >>> is_arthritis(2), is_arthritis(2, definition="more_than_2")
    (True, False)
    """
    n = check_range("inflamed_joints", inflamed_joints, 0, 100, "joints", integer=True)
    if not isinstance(definition, str) or definition not in ARTHRITIS_DEFINITIONS:
        raise InvalidInput("definition", definition, "one of: " + ", ".join(ARTHRITIS_DEFINITIONS))
    return n >= ARTHRITIS_DEFINITIONS[definition]


def lab_descriptors(
    *,
    temperature_c: float | None = None,
    platelets_per_ul: float | None = None,
    wbc_per_ul: float | None = None,
    protein_g_per_24h: float | None = None,
    rbc_per_hpf: float | None = None,
    wbc_per_hpf: float | None = None,
) -> tuple[str, ...]:
    """Derive the numerically defined descriptors from measurements (``None`` = not measured).

    Attribution (infection, drugs, stones) is not known here: use the single helpers
    (:func:`is_fever` …) when a cause has been documented.

    Examples
    --------
    >>> lab_descriptors(temperature_c=38.4, platelets_per_ul=99_000, protein_g_per_24h=0.5)
    ('fever', 'thrombocytopenia')
    """
    checks = (
        ("fever", temperature_c, is_fever),
        ("thrombocytopenia", platelets_per_ul, is_thrombocytopenia),
        ("leukopenia", wbc_per_ul, is_leukopenia),
        ("proteinuria", protein_g_per_24h, is_proteinuria),
        ("hematuria", rbc_per_hpf, is_hematuria),
        ("pyuria", wbc_per_hpf, is_pyuria),
    )
    found = {name for name, value, test in checks if value is not None and test(value)}
    return tuple(d for d in SLEDAI2K_WEIGHTS if d in found)
