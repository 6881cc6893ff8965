"""SYNTHETIC daily assessments (temperature, ICE/CAPD) and laboratory series of a demo course."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from immunoreset.course import AdverseEvent, DailyAssessment, LabResult
from immunoreset.demo.plan import (
    _ANC_EARLY,
    _CART_EARLY,
    _CBC_EARLY,
    _CD19_EARLY,
    _DX_LABS,
    _IL6_EARLY,
    _INFLAM_EARLY,
    _TITRES,
    _WEEKLY,
    CAR_T_FLOW_LLOQ,
    CAR_T_QPCR_LLOQ,
    _b0_for_age,
    _Plan,
)
from immunoreset.demo.records import (
    _anc_early,
    _anc_late,
    _bump,
    _Calendar,
    _crs_shape,
    _emit,
    _noise,
)


def _daily(
    plan: _Plan, age0: float, cal: _Calendar, rng: np.random.Generator
) -> tuple[list[DailyAssessment], list[AdverseEvent]]:
    days = range(-7, 31)
    temps = np.round(rng.uniform(36.3, 37.4, len(days)), 1)
    fever = set(range(plan.crs_onset, plan.crs_onset + plan.crs_days)) if plan.crs_grade else set()
    severe_day = plan.crs_onset + int(rng.integers(0, plan.crs_days))
    neuro = (
        set(range(plan.icans_onset, plan.icans_onset + plan.icans_days))
        if plan.icans_grade
        else set()
    )
    hypo_route = rng.random() < 0.5
    out = []
    for i, d in enumerate(days):
        temp = float(temps[i])
        kw: dict[str, Any] = {}
        if d in fever:
            temp = round(float(rng.uniform(38.0, 39.2)), 1)
            if d == severe_day and plan.crs_grade >= 2:
                kw["tocilizumab"] = True
                if plan.crs_grade == 2 and hypo_route:
                    kw["hypotension"] = True
                elif plan.crs_grade == 2:
                    kw.update(oxygen_device="nasal_cannula", oxygen_flow_l_min=2.0)
                elif hypo_route:
                    kw.update(hypotension=True, vasopressors=("norepinephrine",))
                    kw["corticosteroids"] = True
                else:
                    kw.update(oxygen_device="high_flow_nasal_cannula", oxygen_flow_l_min=20.0)
                    kw["corticosteroids"] = True
        ice = age0 + d / 365.25 >= 12
        if d in neuro:
            if ice:
                kw["ice_score"] = 8 if plan.icans_grade == 1 else int(rng.integers(3, 7))
            else:
                kw["capd_score"] = int(rng.integers(3, 7))
                if plan.icans_grade >= 2:
                    kw["consciousness"] = "awakens_to_voice"
            if plan.icans_grade >= 2:
                kw["corticosteroids"] = True
        elif ice:
            kw["ice_score"] = 10
        else:
            kw["capd_score"] = 0
        out.append(DailyAssessment(cal(d), temp, **kw))
    aes = []
    if plan.crs_grade:
        aes.append(
            AdverseEvent(
                "cytokine release syndrome",
                "crs",
                plan.crs_grade,
                cal(plan.crs_onset),
                cal(plan.crs_onset + plan.crs_days),
                serious=plan.crs_grade >= 3,
                related=True,
            )
        )
    if plan.icans_grade:
        aes.append(
            AdverseEvent(
                "immune effector cell-associated neurotoxicity syndrome",
                "icans",
                plan.icans_grade,
                cal(plan.icans_onset),
                cal(plan.icans_onset + plan.icans_days),
                serious=False,
                related=True,
            )
        )
    return out, aes


def _labs(
    plan: _Plan,
    age0: float,
    cal: _Calendar,
    month_days: list[int],
    rng: np.random.Generator,
) -> tuple[list[LabResult], dict[tuple[str, int], float], list[AdverseEvent]]:
    out: list[LabResult] = []
    child = age0 < 18
    m1 = month_days  # months 1..M
    m2 = month_days[1:]  # months 2..M
    cbc_late = sorted(set(_WEEKLY) | set(m2))
    cbc_late = [d for d in cbc_late if d <= m1[-1]]
    cbc_days = list(_CBC_EARLY) + cbc_late
    crs_peak = float(plan.crs_onset + plan.crs_days - 1)
    crs_size = {0: 0.0, 1: 1.0, 2: 2.0, 3: 3.0}[plan.crs_grade]
    aes: list[AdverseEvent] = []

    # ANC
    base = float(rng.uniform(2500, 5000) if child else rng.uniform(2000, 4500))
    early, run_start, run_len = _anc_early(plan, base, rng)
    late, dip = _anc_late(plan, base, cbc_late, rng)
    _emit(out, cal, "anc", _ANC_EARLY, early, -1)
    _emit(out, cal, "anc", cbc_late, late, -1)
    if run_len:
        aes.append(
            AdverseEvent(
                "immune effector cell-associated hematotoxicity, early",
                "hematologic",
                plan.early_icaht,
                cal(run_start),
                cal(run_start + run_len),
                related=True,
            )
        )
    if dip:
        aes.append(
            AdverseEvent(
                "immune effector cell-associated hematotoxicity, late",
                "hematologic",
                plan.late_icaht,
                cal(dip[0]),
                cal(dip[-1] + 7),
                related=True,
            )
        )

    # platelets, hemoglobin, lymphocytes (with the CAR T contribution)
    t = np.asarray(cbc_days, dtype=float)
    p0 = float(rng.uniform(220e3, 380e3))
    q = float(rng.uniform(0.5, 0.8))
    plt = p0 * (1 - (1 - q) * _bump(t, 9, 5)) * _noise(rng, t.size, 0.05)
    _emit(out, cal, "platelets", cbc_days, plt, -3)
    h0 = float(rng.uniform(11.5, 13.5) if (child or plan.sex == "F") else rng.uniform(12.5, 15))
    hgb = (h0 - 1.2 * _bump(t, 12, 8)) * _noise(rng, t.size, 0.03)
    _emit(out, cal, "hemoglobin", cbc_days, hgb, 1)
    l0 = float(rng.uniform(1200, 2800) if child else rng.uniform(800, 1800))
    depl = np.where(t <= 3, np.clip((t + 5) / 5, 0, 1), np.exp(-(t - 3) / 30))
    lym = l0 * (1 - 0.88 * depl) * _noise(rng, t.size, 0.08)
    _emit(out, cal, "lymphocytes", cbc_days, lym, -1)

    # CRP, ferritin, IL-6
    crp_days = list(_INFLAM_EARLY) + m2
    t = np.asarray(crp_days, dtype=float)
    crp = (
        float(rng.uniform(0.05, 0.6))
        + crs_size * float(rng.uniform(2, 6)) * _crs_shape(t, crs_peak + 1, 2)
    ) * _noise(rng, t.size, 0.1)
    _emit(out, cal, "crp", crp_days, np.maximum(crp, 0.01), 2)
    t = np.asarray(_INFLAM_EARLY, dtype=float)
    f0 = float(rng.uniform(40, 250))
    fer = f0 * (1 + crs_size * float(rng.uniform(1, 3)) * _crs_shape(t, crs_peak + 1, 5))
    _emit(out, cal, "ferritin", _INFLAM_EARLY, fer * _noise(rng, t.size, 0.08), 0)
    il6_days = list(_IL6_EARLY) + m1
    t = np.asarray(il6_days, dtype=float)
    il6 = float(rng.uniform(2, 8)) + crs_size * float(rng.uniform(20, 150)) * _crs_shape(
        t, float(plan.crs_onset), 1.5
    )
    _emit(out, cal, "il6", il6_days, il6 * _noise(rng, t.size, 0.1), 1)

    # CD19 B cells
    cd19_days = list(_CD19_EARLY) + m2
    t = np.asarray(cd19_days, dtype=float)
    b0 = _b0_for_age(age0, float(rng.standard_normal()))
    k_dep = float(rng.uniform(1.2, 1.8))
    bmax = b0 * float(rng.uniform(1.0, 1.6))
    t_ret = plan.b_return_day
    pre = b0 * np.exp(math.log(0.5) * np.clip((t + 5) / 5, 0, 1))
    bc = np.where(t <= 0, pre, b0 * 0.5 * np.exp(-k_dep * np.maximum(t, 0)))
    bc = bc * _noise(rng, t.size, 0.1)
    bc = np.where((t >= 7) & (t < t_ret), 0.0, bc)
    bc = np.where(t >= t_ret, bmax * (1 - np.exp(-(t - t_ret) / 45)) * _noise(rng, t.size, 0.1), bc)
    bc = np.where(bc < 0.05, 0.0, bc)
    _emit(out, cal, "cd19_b_cells", cd19_days, bc, 1)

    # CAR T cells: flow and qPCR
    cart_days = list(_CART_EARLY) + m2
    t = np.asarray(cart_days, dtype=float)
    c1 = float(rng.uniform(0.3, 1.0))
    tmax = float(plan.tmax)
    g = math.log(plan.cmax / c1) / (tmax - 1)
    slow = math.log(2) / float(rng.uniform(30, 60))
    alpha = math.log(2) / 4.3
    after = np.maximum(t - tmax, 0)
    rise = plan.cmax * np.exp(-g * np.maximum(tmax - t, 0))
    flow = np.where(
        t <= tmax, rise, plan.cmax * (0.97 * np.exp(-alpha * after) + 0.03 * np.exp(-slow * after))
    )
    flow = flow * _noise(rng, t.size, 0.1)
    peak_i = cart_days.index(plan.tmax)
    peak = plan.cmax if plan.exact_peak else float(np.clip(flow[peak_i], *plan.peak_range))
    flow = np.minimum(flow, 0.97 * peak)
    flow[peak_i] = peak
    _emit(out, cal, "car_t_flow", cart_days, flow, 2, CAR_T_FLOW_LLOQ)
    kq = float(rng.uniform(150, 300))
    slow_q = math.log(2) / 90
    qpcr = np.where(
        t <= tmax,
        kq * rise,
        kq * plan.cmax * (0.97 * np.exp(-alpha * after) + 0.03 * np.exp(-slow_q * after)),
    ) * _noise(rng, t.size, 0.15)
    _emit(out, cal, "car_t_qpcr", cart_days, qpcr, 0, CAR_T_QPCR_LLOQ)

    # IgG, complement, disease titres: baseline (day −7) and monthly from month 1
    ser_days = [-7, *m1]
    t = np.asarray(ser_days, dtype=float)
    tp = np.maximum(t, 0)
    lab_at: dict[tuple[str, int], float] = {}
    g0 = float(rng.uniform(900, 1400) if child else rng.uniform(900, 1500))
    dip_igg = float(rng.uniform(0.15, 0.3))
    igg = g0 * (1 - dip_igg * (tp / 60) * np.exp(1 - tp / 60)) * _noise(rng, t.size, 0.03)
    _emit(out, cal, "igg", ser_days, igg, 0)
    sle = plan.diagnosis == "SLE"
    c3n, c4n = float(rng.uniform(100, 140)), float(rng.uniform(15, 30))
    c30 = float(rng.uniform(45, 80)) if sle else c3n
    c40 = float(rng.uniform(3, 8)) if sle else c4n
    partial = plan.response == "partial"
    keep = float(rng.uniform(0.3, 0.6)) if partial else 0.0
    recov = (1 - keep) * (1 - np.exp(-tp / 25))
    c3 = (c30 + (c3n - c30) * recov) * _noise(rng, t.size, 0.03)
    c4 = (c40 + (c4n - c40) * recov) * _noise(rng, t.size, 0.03)
    _emit(out, cal, "c3", ser_days, c3, 0)
    _emit(out, cal, "c4", ser_days, c4, 1)
    for d, a, b in zip(ser_days, np.round(c3, 0).tolist(), np.round(c4, 1).tolist(), strict=True):
        lab_at[("c3", d)] = a
        lab_at[("c4", d)] = b
    for analyte in _DX_LABS[plan.diagnosis]:
        a_lo, a_hi, half, r_lo, r_hi, p_lo, p_hi, n_lo, n_hi = _TITRES[analyte]
        a0 = float(rng.uniform(a_lo, a_hi))
        resid = float(rng.uniform(p_lo, p_hi) if partial else rng.uniform(r_lo, r_hi))
        floor = float(rng.uniform(n_lo, n_hi))
        frac = resid + (1 - resid) * np.exp(-math.log(2) * tp / half)
        vals = (floor + (a0 - floor) * frac) * _noise(rng, t.size, 0.08)
        vals = np.round(vals, 1)
        _emit(out, cal, analyte, ser_days, vals, 1)
        for d, v in zip(ser_days, vals.tolist(), strict=True):
            lab_at[(analyte, d)] = v
    return out, lab_at, aes
