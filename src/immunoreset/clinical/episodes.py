"""Daily CRS/ICANS grades, toxicity episodes and a course's toxicity summary.

Sources
-------
Grades by the project's calculators: CRS and ICANS (Lee et al., *Biol Blood Marrow Transplant*
2019;25(4):625–638, :mod:`~immunoreset.clinical.crs`, :mod:`~immunoreset.clinical.icans`),
ICAHT (Rejeski et al., *Blood* 2023;142(10):865–877, :mod:`~immunoreset.clinical.icaht`), CTCAE
v5.0 cytopenias and febrile neutropenia (:mod:`~immunoreset.clinical.ctcae`). The episode rules
below are this project's operational choices (no source defines them); each is documented here.

Rules
-----
* Only assessments on study day ≥ 0 (infusion day onwards) are graded; earlier fevers are not CRS.
* **Masked fever** (CRS; Lee 2019 footnote: "antipyretic or anticytokine therapy", naming
  tocilizumab and steroids; clinical-addendum §7): on a day, ``fever_masked`` is true when CRS
  was graded ≥ 1 on the previous calendar day of the same episode, a masking agent was given
  **on or after the episode's onset day** (premedication before CRS does not waive fever), the
  agent is in ``settings.fever_masking_agents`` (default the ASTCT class: tocilizumab,
  corticosteroids, anakinra, siltuximab, other anti-cytokines, antipyretics — those not named by
  ASTCT flag ``class_based_masking``), it is still within ``settings.fever_masking_days`` of the
  last dose (default: until the episode ends), **and** the day has hypotension, a vasopressor or
  oxygen support. Without that last condition an afebrile, normotensive day on room air after
  tocilizumab would stay "grade 1" forever and a treated episode could never end. Agents come
  from the day's flags and from medication records covering the date (by drug name, else by
  class); a glucocorticoid started before infusion is maintenance: not masking, flag
  ``baseline_steroid``. The reason names the agent, its class and the setting.
* A day without a temperature (and not masked) is not gradable (``crs_grade=None``), listed in
  :attr:`CourseToxicity.flags` as ``crs_not_gradable:day N``; it ends any episode.
* **Episode** = run of consecutive study days with grade ≥ 1. A day without an assessment, or
  graded 0, ends it (a single missing day splits an episode in two).
* ICANS uses the patient's age on each day (ICE from 12.0 years by default). A day whose record
  cannot be graded (e.g. an ICE score recorded below the age cut) gets ``grade=None`` with the
  reason, ends any episode, and is listed in :attr:`CourseToxicity.flags`. When
  ``unable_to_assess`` is recorded, a CAPD score on the same record is ignored.
* CTCAE cytopenias: worst grade of labs on study day > 0 (lowest value per day; no lab LLN is
  stored, so grade 1 is not assessed). Febrile neutropenia day: ANC < 1000/µL and the day's
  highest temperature > 38.3 °C on the same study day.
* T-ICAHT (Rejeski 2025, :mod:`~immunoreset.clinical.ticaht`): the platelet series, censored
  at death, with the CTCAE nadir grade beside it.
* ICAHT: the course's ANC series, censored at death when the follow-up says ``dead``; Liang's
  never-recovered grade 4 only when follow-up ended (death, lost to follow-up, withdrawn)
  before day 30 — a live patient's series that ends early is graded and flagged ``incomplete``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from immunoreset import vocab
from immunoreset.clinical import crs, ctcae, icaht, icans, ticaht
from immunoreset.clinical.settings import (
    ASTCT_NAMED_MASKING_AGENTS,
    DEFAULT_SETTINGS,
    FEVER_MASKING_AGENTS,
    ToxicitySettings,
    _check_settings,
)
from immunoreset.course import MASKING_FLAGS, Course, DailyAssessment
from immunoreset.errors import InvalidInput, check_choice

__all__ = [
    "CYTOPENIA_TERMS",
    "CourseToxicity",
    "DailyGrade",
    "Episode",
    "course_toxicity",
    "crs_episodes",
    "daily_grades",
    "grade_icans_day",
    "icans_episodes",
]

#: Medication drug name (lower case) -> fever-masking agent.
MEDICATION_AGENTS: dict[str, str] = {
    "tocilizumab": "tocilizumab",
    "anakinra": "anakinra",
    "siltuximab": "siltuximab",
    "paracetamol": "antipyretic",
    "acetaminophen": "antipyretic",
    "ibuprofen": "antipyretic",
    "metamizole": "antipyretic",
}
#: Medication class -> fever-masking agent (for drugs not named above).
CLASS_AGENTS: dict[str, str] = {
    "glucocorticoid": "corticosteroid",
    "anticytokine": "other_anticytokine",
    "antipyretic": "antipyretic",
}
#: Lab analyte -> CTCAE term graded in the course summary.
CYTOPENIA_TERMS: dict[str, str] = {
    "anc": "neutrophil_count_decreased",
    "platelets": "platelet_count_decreased",
    "lymphocytes": "lymphocyte_count_decreased",
    "hemoglobin": "anemia",
}


@dataclass(frozen=True, slots=True)
class DailyGrade:
    """One study day's CRS and ICANS grade (None = not gradable) with reasons and flags.

    ``masking_agents`` are the agents that masked fever that day (empty when not masked);
    ``agents`` every masking-capable agent given that day.
    """

    study_day: int
    crs_grade: int | None
    crs_reasons: tuple[str, ...]
    icans_grade: int | None
    icans_reasons: tuple[str, ...]
    fever_masked: bool = False
    tocilizumab: bool = False
    corticosteroids: bool = False
    crs_flags: tuple[str, ...] = ()
    icans_flags: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    masking_agents: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Episode:
    """A CRS or ICANS episode: consecutive study days graded ≥ 1.

    ``grade``/``reasons`` are the maximum grade and the reasons on the first day it was reached.
    """

    kind: str
    onset_day: int
    last_day: int
    duration_days: int
    max_grade: int
    max_day: int
    max_reasons: tuple[str, ...]
    tocilizumab: bool
    corticosteroids: bool

    @property
    def grade(self) -> int:
        return self.max_grade

    @property
    def reasons(self) -> tuple[str, ...]:
        return self.max_reasons


@dataclass(frozen=True, slots=True)
class CourseToxicity:
    """A course's toxicity, computed from its daily assessments and labs.

    Cytopenia grades are None when no value exists after day 0; maximum grades are None when
    nothing was gradable (CRS/ICANS 0 when assessed without an episode).
    """

    study_id: str
    crs_episodes: tuple[Episode, ...]
    icans_episodes: tuple[Episode, ...]
    early_icaht: icaht.IcahtResult
    late_icaht: icaht.IcahtResult
    neutrophil_grade: int | None
    platelet_grade: int | None
    lymphocyte_grade: int | None
    anemia_grade: int | None
    febrile_neutropenia_days: tuple[int, ...]
    max_crs_grade: int | None
    max_icans_grade: int | None
    max_icaht_grade: int | None
    flags: tuple[str, ...] = ()
    early_ticaht: ticaht.TicahtResult | None = None
    late_ticaht: ticaht.TicahtResult | None = None


def vocab_unit(analyte: str) -> str:
    """The canonical unit an analyte is stored in (course values are already converted)."""
    return vocab.ANALYTES[analyte][0]


def _check_course(course: object) -> Course:
    if not isinstance(course, Course):
        raise InvalidInput("course", course, "a Course")
    if course.day0 is None:
        raise InvalidInput("infusion", None, "an infusion date before toxicity can be graded")
    return course


def _has_support(a: DailyAssessment) -> bool:
    return a.hypotension or bool(a.vasopressors) or a.oxygen_device != "room_air"


def grade_icans_day(
    course: Course, a: DailyAssessment, settings: ToxicitySettings = DEFAULT_SETTINGS
) -> icans.IcansResult:
    """ICANS of one day's assessment, with the scale chosen by the patient's age that day."""
    return icans.grade_icans(
        age_years=course.age_on(a.date),
        ice_score=a.ice_score,
        capd_score=None if a.unable_to_assess else a.capd_score,
        unable_to_assess=a.unable_to_assess,
        consciousness=a.consciousness,
        seizure=a.seizure,
        motor_weakness=a.motor_weakness,
        cerebral_edema=a.cerebral_edema,
        settings=settings,
    )


def _agents_on(course: Course, a: DailyAssessment) -> tuple[set[str], bool]:
    """Masking-capable agents given on the assessment's date, and whether a maintenance
    glucocorticoid started before infusion is running (``baseline_steroid``)."""
    given = {agent for flag, agent in MASKING_FLAGS.items() if getattr(a, flag)}
    baseline = False
    for m in course.medications:
        if m.start > a.date or (m.stop is not None and m.stop < a.date):
            continue
        agent = MEDICATION_AGENTS.get(m.drug.lower()) or CLASS_AGENTS.get(m.drug_class)
        if agent is None:
            continue
        if agent == "corticosteroid" and course.day0 is not None and m.start < course.day0:
            baseline = True  # maintenance steroid from before CRS: ASTCT silent → not masking
            continue
        given.add(agent)
    return given, baseline


def daily_grades(
    course: Course, *, settings: ToxicitySettings = DEFAULT_SETTINGS
) -> list[DailyGrade]:
    """CRS and ICANS grade of every assessed study day ≥ 0, in day order (UI timeline).

    Parameters
    ----------
    course : Course
        A course with an infusion.
    settings : ToxicitySettings
        ICE/CAPD age cut; fever-masking agents and duration; dobutamine.

    Returns
    -------
    list of DailyGrade

    Raises
    ------
    InvalidInput
        Not a Course, or no infusion.
    """
    course = _check_course(course)
    settings = _check_settings(settings)
    allowed = set(settings.fever_masking_agents)
    out: list[DailyGrade] = []
    prev_day: int | None = None
    prev_crs: int | None = 0
    onset: int | None = None  # first day of the running CRS episode
    doses: dict[str, int] = {}  # masking agent -> last day given since the episode's onset
    for a in course.daily_assessments:
        day = course.study_day(a.date)
        if day < 0:
            continue
        given, baseline = _agents_on(course, a)
        continuing = (
            prev_day is not None and day == prev_day + 1 and prev_crs is not None and prev_crs >= 1
        )
        if not continuing:
            onset, doses = None, {}
        if onset is not None:  # doses count only after CRS onset (premedication does not)
            for agent in given & allowed:
                doses[agent] = day
        live = {
            agent: last
            for agent, last in doses.items()
            if settings.fever_masking_days is None or day - last <= settings.fever_masking_days
        }
        masked = continuing and bool(live) and _has_support(a)
        c = crs.grade_crs(
            temperature_c=a.temperature_max_c,
            hypotension=a.hypotension,
            vasopressors=a.vasopressors,
            oxygen_device=a.oxygen_device,
            oxygen_flow_l_min=a.oxygen_flow_l_min,
            fever_masked=masked,
            settings=settings,
        )
        crs_reasons, crs_flags = c.reasons, list(c.flags)
        if masked:
            crs_reasons += (_masking_reason(live, onset, settings),)
            if set(live) - ASTCT_NAMED_MASKING_AGENTS:
                crs_flags.append("class_based_masking")
        elif continuing and doses and not live and _has_support(a):
            crs_flags.append("masking_expired")
            crs_reasons += (
                f"fever masking expired ({settings.fever_masking_days} days after the last dose)",
            )
        if baseline:
            crs_flags.append("baseline_steroid")
            crs_reasons += ("maintenance glucocorticoid started before infusion: not masking",)
        try:
            i = grade_icans_day(course, a, settings)
            icans_grade, icans_reasons, icans_flags = i.grade, i.reasons, i.flags
        except InvalidInput as err:
            icans_grade, icans_reasons, icans_flags = (
                None,
                (f"not gradable: {err}",),
                ("not_gradable",),
            )
        out.append(
            DailyGrade(
                day,
                c.grade,
                crs_reasons,
                icans_grade,
                icans_reasons,
                masked,
                a.tocilizumab,
                a.corticosteroids,
                tuple(crs_flags),
                tuple(icans_flags),
                tuple(sorted(given)),
                tuple(sorted(live)) if masked else (),
            )
        )
        if c.grade is not None and c.grade >= 1 and onset is None:
            onset = day
            for agent in given & allowed:  # a dose on the onset day counts
                doses[agent] = day
        prev_day, prev_crs = day, c.grade
    return out


def _masking_reason(live: dict[str, int], onset: int | None, settings: ToxicitySettings) -> str:
    parts = []
    for agent, last in sorted(live.items()):
        how = "named by ASTCT" if agent in ASTCT_NAMED_MASKING_AGENTS else "by ASTCT class only"
        parts.append(f"{agent} ({FEVER_MASKING_AGENTS[agent]}, {how}) last given day {last}")
    until = (
        "until the episode ends"
        if settings.fever_masking_days is None
        else f"for {settings.fever_masking_days} days after a dose"
    )
    return (
        f"fever masked by {'; '.join(parts)} after CRS onset on day {onset} "
        f"(setting fever_masking_agents; masking {until})"
    )


def _episodes(kind: str, days: Sequence[DailyGrade]) -> tuple[Episode, ...]:
    check_choice("kind", kind, ("crs", "icans"))
    runs: list[list[tuple[DailyGrade, int, tuple[str, ...]]]] = []
    prev = None
    for d in days:
        grade = d.crs_grade if kind == "crs" else d.icans_grade
        reasons = d.crs_reasons if kind == "crs" else d.icans_reasons
        if grade is None or grade < 1:
            prev = None
            continue
        if prev is None or d.study_day != prev + 1:
            runs.append([])
        runs[-1].append((d, grade, reasons))
        prev = d.study_day
    episodes = []
    for run in runs:
        top = max(g for _, g, _ in run)
        first_max = next((d, r) for d, g, r in run if g == top)
        episodes.append(
            Episode(
                kind=kind,
                onset_day=run[0][0].study_day,
                last_day=run[-1][0].study_day,
                duration_days=run[-1][0].study_day - run[0][0].study_day + 1,
                max_grade=top,
                max_day=first_max[0].study_day,
                max_reasons=first_max[1],
                tocilizumab=any(d.tocilizumab for d, _, _ in run),
                corticosteroids=any(d.corticosteroids for d, _, _ in run),
            )
        )
    return tuple(episodes)


def crs_episodes(
    course: Course, *, settings: ToxicitySettings = DEFAULT_SETTINGS
) -> tuple[Episode, ...]:
    """CRS episodes of a course (see the module rules)."""
    return _episodes("crs", daily_grades(course, settings=settings))


def icans_episodes(
    course: Course, *, settings: ToxicitySettings = DEFAULT_SETTINGS
) -> tuple[Episode, ...]:
    """ICANS episodes of a course (see the module rules)."""
    return _episodes("icans", daily_grades(course, settings=settings))


def course_toxicity(
    course: Course,
    *,
    duration_mode: str = "cumulative",
    ctcae_version: str = "5.0",
    settings: ToxicitySettings = DEFAULT_SETTINGS,
) -> CourseToxicity:
    """Everything toxic about a course: episodes, ICAHT, CTCAE cytopenias, febrile neutropenia.

    Parameters
    ----------
    course : Course
        A course with an infusion.
    duration_mode : str
        Early-ICAHT counting, ``"cumulative"`` or ``"longest_joined"``.
    ctcae_version : str
        ``"5.0"`` or ``"6.0"``.
    settings : ToxicitySettings

    Returns
    -------
    CourseToxicity
    """
    course = _check_course(course)
    check_choice("ctcae_version", ctcae_version, ctcae.CTCAE_VERSIONS)
    days = daily_grades(course, settings=settings)
    crs_eps, icans_eps = _episodes("crs", days), _episodes("icans", days)
    flags = [f"crs_not_gradable:day {d.study_day}" for d in days if d.crs_grade is None]
    flags += [f"icans_not_gradable:day {d.study_day}" for d in days if d.icans_grade is None]

    anc_days, anc_values = course.lab_series("anc")
    censor, end_day, end = None, None, None
    if course.followup is not None and course.followup.status != "alive":
        end_day = float(course.study_day(course.followup.last_contact))
        end = "death" if course.followup.status == "dead" else "end_of_follow_up"
        censor = end_day if end == "death" else None
    early = icaht.grade_early_icaht(
        anc_days,
        anc_values,
        duration_mode=duration_mode,
        censor_day=censor,
        followup_end_day=end_day,
        followup_end=end,
        unit="cells/uL",
        settings=settings,
    )
    late = icaht.grade_late_icaht(
        anc_days, anc_values, censor_day=censor, unit="cells/uL", settings=settings
    )

    worst: dict[str, int | None] = {}
    for analyte, term in CYTOPENIA_TERMS.items():
        lab_days, values = course.lab_series(analyte)
        after = values[lab_days > 0]
        worst[analyte] = (
            None
            if after.size == 0
            else ctcae.grade_lab(
                term, float(after.min()), version=ctcae_version, unit=vocab_unit(analyte)
            )
        )

    anc_by_day = dict(zip(anc_days.astype(int).tolist(), anc_values.tolist(), strict=True))
    febrile = []
    for a in course.daily_assessments:
        day = course.study_day(a.date)
        if day < 0 or a.temperature_max_c is None or day not in anc_by_day:
            continue
        if ctcae.is_febrile_neutropenia(
            anc_per_ul=anc_by_day[day], temperature_c=a.temperature_max_c
        ):
            febrile.append(day)

    plt_days, plt_values = course.lab_series("platelets")
    early_t, late_t = ticaht.grade_ticaht(
        plt_days.tolist(),
        plt_values.tolist(),
        unit="cells/uL",
        censor_day=censor,
        ctcae_version=ctcae_version,
        settings=settings,
    )

    crs_known = [d.crs_grade for d in days if d.crs_grade is not None]
    icans_known = [d.icans_grade for d in days if d.icans_grade is not None]
    icaht_known = [g for g in (early.grade, late.grade) if g is not None]
    return CourseToxicity(
        study_id=course.study_id,
        crs_episodes=crs_eps,
        icans_episodes=icans_eps,
        early_icaht=early,
        late_icaht=late,
        neutrophil_grade=worst["anc"],
        platelet_grade=worst["platelets"],
        lymphocyte_grade=worst["lymphocytes"],
        anemia_grade=worst["hemoglobin"],
        febrile_neutropenia_days=tuple(febrile),
        max_crs_grade=max(crs_known) if crs_known else None,
        max_icans_grade=max(icans_known) if icans_known else None,
        max_icaht_grade=max(icaht_known) if icaht_known else None,
        flags=tuple(flags),
        early_ticaht=early_t,
        late_ticaht=late_t,
    )
