"""The one SYNTHETIC course builder both demo generators share (plan -> Course + BatchQC)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from immunoreset.course import (
    AdverseEvent,
    Anthropometric,
    Apheresis,
    Bag,
    Batch,
    Course,
    FollowUp,
    Infusion,
    Lymphodepletion,
    Medication,
    Patient,
)
from immunoreset.demo.labs import _daily, _labs
from immunoreset.demo.plan import (
    _AGE_ANCHORS,
    _DOSE_STEPS,
    _HEIGHT_P50,
    _MEDS,
    _RESTART,
    _WEIGHT_P50,
    _Plan,
    month_day,
)
from immunoreset.demo.qc import BatchQC, _qc
from immunoreset.demo.records import _Calendar
from immunoreset.demo.scores import _disease


# --------------------------------------------------------------------------- the builder
def _build(plan: _Plan, rng: np.random.Generator) -> tuple[Course, tuple[BatchQC, ...]]:
    cal = _Calendar(plan.day0)
    fu_days = month_day(plan.followup_months)
    ydays = 365.25

    # ---- patient
    born = plan.day0 - dt.timedelta(days=round(plan.age * ydays))
    dx_date = plan.day0 - dt.timedelta(days=round(plan.years_since_dx * ydays))
    patient = Patient(
        study_id=plan.study_id,
        site=plan.site,
        sex=plan.sex,
        birth_year=born.year,
        birth_month=born.month,
        diagnosis=plan.diagnosis,
        icd10=plan.icd10,
        diagnosis_date=dx_date,
        prior_therapy_lines=plan.prior_lines,
        synthetic=True,
    )
    age0 = patient.age_on(plan.day0)

    # ---- body size
    wf = float(rng.uniform(0.85, 1.15))
    hf = float(rng.uniform(0.96, 1.04))
    wsex, hsex = _WEIGHT_P50[plan.sex], _HEIGHT_P50[plan.sex]

    def bodies(days: list[int]) -> list[Anthropometric]:
        a = age0 + np.asarray(days, dtype=float) / ydays
        w = np.round(np.interp(a, _AGE_ANCHORS, wsex) * wf, 1).tolist()
        h = (np.round(np.interp(a, _AGE_ANCHORS, hsex) * hf * 2) / 2).tolist()
        return [Anthropometric(d, wi, hi) for d, wi, hi in zip(cal.many(days), w, h, strict=True)]

    # ---- manufacturing
    aph_day = -35 + int(rng.integers(-4, 5))
    infused = plan.manufacturing != "failed_stop"
    attempts = (
        [(aph_day - 35, "failed"), (aph_day, "pass")]
        if plan.manufacturing == "failed_retry"
        else [(aph_day, {"failed_stop": "failed"}.get(plan.manufacturing, plan.manufacturing))]
    )
    weight_m7 = bodies([-7])[0]
    dose_per_kg = 1e6 * float(rng.uniform(0.95, 1.05))
    dose_cells = dose_per_kg * weight_m7.weight_kg
    anthro = [weight_m7]
    apheresis: list[Apheresis] = []
    batches: list[Batch] = []
    bags: list[Bag] = []
    qcs: list[BatchQC] = []
    infused_bag = ""
    for n, (day, outcome) in enumerate(attempts, start=1):
        anthro += bodies([day])
        aph_id = f"{plan.study_id}-A{n}"
        batch_id = f"{plan.study_id}-B{n}"
        apheresis.append(
            Apheresis(
                aph_id,
                cal(day),
                round(3e9 * math.sqrt(weight_m7.weight_kg / 40) * float(rng.uniform(0.5, 2))),
                round(float(rng.uniform(60, 250)), 0),
            )
        )
        harvest = day + 13
        released = outcome != "failed"
        batches.append(
            Batch(
                batch_id,
                aph_id,
                "CliniMACS Prodigy",
                cal(day + 1),
                cal(harvest),
                plan.operator,
                "released" if released else "failed",
            )
        )
        n_bags = int(rng.integers(3, 6)) if released else int(rng.integers(1, 3))
        total = dose_cells * float(rng.uniform(5, 40))
        shares = rng.dirichlet(np.full(n_bags - 1, 4.0)) if n_bags > 1 else np.ones(0)
        rest = total - dose_cells
        contents = (
            [dose_cells, *(rest * shares).tolist()] if released else [total / n_bags] * n_bags
        )
        rack = int(rng.integers(1, 13))
        for b, cells in enumerate(contents, start=1):
            bag_id = f"{batch_id}-{b:02d}"
            status = "discarded"
            if released:
                status = "infused" if b == 1 and infused else "stored_for_redosing"
            if status == "infused":
                infused_bag = bag_id
            bags.append(
                Bag(
                    bag_id,
                    batch_id,
                    float(round(cells, -3)),
                    round(float(rng.uniform(10, 50)), 1),
                    status,
                    f"LN2 tank A / rack {rack}",
                    cal(harvest + 365),
                )
            )
        qcs.append(_qc(batch_id, outcome, dose_per_kg / 1e6 - 1, rng))

    meds = _medications(plan, patient, cal, aph_day, rng, infused)
    if not infused:
        last = attempts[-1][0] + int(rng.integers(60, 200))
        course = Course(
            patient=patient,
            anthropometrics=tuple(anthro),
            apheresis=tuple(apheresis),
            batches=tuple(batches),
            bags=tuple(bags),
            medications=tuple(meds),
            followup=FollowUp(cal(last), plan.status),
        )
        return course, tuple(qcs)

    months = range(1, plan.followup_months + 1)
    month_days = [month_day(m) for m in months]
    anthro += bodies(month_days)
    lymphodepletion = [
        Lymphodepletion(cal(d), drug, dose) for drug, dose, days in plan.regimen.doses for d in days
    ]
    infusion = Infusion(cal(0), (infused_bag,), round(dose_cells / weight_m7.weight_kg, -2))

    daily, aes = _daily(plan, age0, cal, rng)
    labs, lab_at, anc_events = _labs(plan, age0, cal, month_days, rng)
    disease = _disease(plan, cal, fu_days, lab_at, rng)

    aes += anc_events
    for day, grade, term in plan.infections:
        if day <= fu_days:
            aes.append(
                AdverseEvent(
                    term,
                    "infection",
                    grade,
                    cal(day),
                    cal(day + int(rng.integers(5, 15))),
                    serious=grade >= 3,
                    related=False,
                )
            )
    course = Course(
        patient=patient,
        anthropometrics=tuple(anthro),
        apheresis=tuple(apheresis),
        batches=tuple(batches),
        bags=tuple(bags),
        lymphodepletion=tuple(lymphodepletion),
        infusions=(infusion,),
        daily_assessments=tuple(daily),
        labs=tuple(labs),
        disease_assessments=tuple(disease),
        medications=tuple(meds),
        adverse_events=tuple(aes),
        followup=FollowUp(cal(fu_days), plan.status),
    )
    return course, tuple(qcs)


def _medications(
    plan: _Plan,
    patient: Patient,
    cal: _Calendar,
    aph_day: int,
    rng: np.random.Generator,
    infused: bool,
) -> list[Medication]:
    dx_day = (patient.diagnosis_date - plan.day0).days
    first_aph = aph_day - (35 if plan.manufacturing == "failed_retry" else 0)
    stops = {
        "apheresis": first_aph - int(rng.integers(7, 22)),
        "lymphodepletion": -5 - int(rng.integers(1, 4)),
    }
    meds = []
    for drug, klass, lo, hi, unit, anchor in _MEDS[plan.diagnosis]:
        stop = stops[anchor]
        start = min(dx_day + int(rng.integers(0, 365)), stop - 30)
        start = max(start, dx_day)
        dose = float(rng.uniform(lo, hi))
        step = next(s for top, s in _DOSE_STEPS if dose < top)
        dose = max(step, round(dose / step) * step)
        meds.append(Medication(drug, klass, dose, unit, cal(start), cal(stop) if infused else None))
    if plan.restart and infused:
        drug, klass, dose, unit = _RESTART[plan.diagnosis]
        day = month_day(float(rng.uniform(6, 12)))
        if day < month_day(plan.followup_months):
            meds.append(Medication(drug, klass, dose, unit, cal(day)))
    return meds
