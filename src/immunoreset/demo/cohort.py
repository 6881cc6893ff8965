"""The SYNTHETIC published-shaped eight-patient cohort (Becilli, Metzler, Bracaglia et al.)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np

from immunoreset.course import Course
from immunoreset.demo.builder import _build
from immunoreset.demo.plan import DATA_CUTOFF, REGIMENS, SITE_REGIMENS, _Plan, month_day
from immunoreset.demo.qc import BatchQC
from immunoreset.errors import InvalidInput, check_range

# --------------------------------------------------------------------------- published plans
# (study_id, site, sex, diagnosis, ICD-10, age, follow-up months, CRS, ICANS, late ICAHT,
#  years since diagnosis, prior lines)
_PUBLISHED: tuple[tuple[str, str, str, str, str, float, int, int, int, int, float, int], ...] = (
    ("RM-001", "ROME", "M", "JDM", "M33.02", 12.4, 24, 1, 0, 0, 4.5, 8),
    ("RM-002", "ROME", "F", "SLE", "M32.14", 14.1, 17, 1, 0, 1, 3.2, 6),
    ("RM-003", "ROME", "F", "JDM", "M33.09", 9.3, 19, 1, 0, 0, 3.0, 5),
    ("RM-004", "ROME", "F", "SLE", "M32.19", 16.2, 16, 1, 1, 0, 5.1, 7),
    ("RM-005", "ROME", "F", "SSc", "M34.81", 17.5, 12, 0, 0, 0, 5.8, 4),
    ("ER-001", "ERLANGEN", "F", "SLE", "M32.14", 15.3, 22, 1, 0, 1, 2.1, 6),
    ("ER-002", "ERLANGEN", "F", "SLE", "M32.10", 11.2, 14, 1, 0, 0, 2.8, 5),
    ("ER-003", "ERLANGEN", "F", "JDM", "M33.01", 5.7, 9, 0, 0, 0, 2.2, 3),
)
_PUBLISHED_INFECTIONS: Mapping[str, tuple[tuple[int, int, str], ...]] = {
    "RM-003": ((140, 1, "upper respiratory tract infection"),),
    "ER-002": ((200, 2, "urinary tract infection"),),
}


def _published_plan(
    row: tuple[str, str, str, str, str, float, int, int, int, int, float, int],
    rng: np.random.Generator,
    regimens: Mapping[str, str],
) -> _Plan:
    sid, site, sex, dx, icd, age, months, crs, icans, late, ydx, lines = row
    day0 = DATA_CUTOFF - dt.timedelta(days=month_day(months))
    return _Plan(
        study_id=sid,
        site=site,
        sex=sex,
        diagnosis=dx,
        icd10=icd,
        age=age,
        day0=day0,
        followup_months=months,
        years_since_dx=ydx,
        prior_lines=lines,
        regimen=REGIMENS[regimens[site]],
        crs_grade=crs,
        crs_onset=int(rng.integers(1, 7)),
        crs_days=int(rng.integers(1, 4)),
        icans_grade=icans,
        icans_onset=int(rng.integers(4, 8)),
        icans_days=int(rng.integers(1, 3)),
        late_icaht=late,
        cmax=32.69 if sid == "RM-001" else float(rng.uniform(12, 60)),
        tmax=7 if sid == "RM-001" else int(rng.choice((7, 9, 10))),
        exact_peak=sid == "RM-001",
        b_return_day=float(rng.uniform(80, 115)),
        infections=_PUBLISHED_INFECTIONS.get(sid, ()),
        operator=f"OP-{site[:2]}{int(rng.integers(1, 5))}",
        anc_nadir=float(rng.uniform(600, 1300)),
        peak_range=(10.0, 60.0),
    )


# --------------------------------------------------------------------------- public API
def _check_seed(seed: Any) -> int:
    return int(check_range("seed", seed, 0, 2**63 - 1, integer=True))


def _check_regimens(site_regimens: Any) -> Mapping[str, str]:
    merged = dict(SITE_REGIMENS)
    if site_regimens is None:
        return merged
    if not isinstance(site_regimens, Mapping):
        raise InvalidInput("site_regimens", site_regimens, "a mapping of site to regimen name")
    for site, name in site_regimens.items():
        if site not in merged:
            raise InvalidInput("site_regimens", site, "a site among: " + ", ".join(merged))
        if name not in REGIMENS:
            raise InvalidInput("site_regimens", name, "one of: " + ", ".join(REGIMENS))
        merged[site] = name
    return merged


def published_cohort_with_qc(
    seed: int = 2026, *, site_regimens: Mapping[str, str] | None = None
) -> list[tuple[Course, tuple[BatchQC, ...]]]:
    """The 8 SYNTHETIC published-series courses with the release-test results of their batches.

    Parameters and behaviour as :func:`published_cohort`; every batch passes (the abstract:
    "Manufacturing was successful in all patients").
    """
    seed = _check_seed(seed)
    regimens = _check_regimens(site_regimens)
    out = []
    for i, row in enumerate(_PUBLISHED, start=1):
        rng = np.random.default_rng([seed, 0, i])
        out.append(_build(_published_plan(row, rng, regimens), rng))
    return out


def published_cohort(
    seed: int = 2026, *, site_regimens: Mapping[str, str] | None = None
) -> list[Course]:
    """Return the 8 SYNTHETIC courses shaped on the Becilli et al. paediatric series.

    Parameters
    ----------
    seed : int, default 2026
        Seed (≥ 0) of the within-range noise. The cohort-level figures (ages, sexes,
        diagnoses, sites, follow-up, who has CRS/ICANS/late ICAHT) hold for every seed.
    site_regimens : mapping of str to str, optional
        Lymphodepletion regimen per site (names in :data:`REGIMENS`), overriding
        :data:`SITE_REGIMENS`; the ERLANGEN default ``"erlangen_reported"`` is UNCONFIRMED.

    Returns
    -------
    list of Course
        RM-001…RM-005 (ROME) and ER-001…ER-003 (ERLANGEN), ``synthetic=True``.

    Raises
    ------
    InvalidInput
        ``seed`` negative or not an integer; unknown site or regimen in ``site_regimens``.

    Examples
    --------
    >>> [c.study_id for c in published_cohort()][:3]
    ['RM-001', 'RM-002', 'RM-003']
    """
    return [c for c, _ in published_cohort_with_qc(seed, site_regimens=site_regimens)]
