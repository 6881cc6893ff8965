"""Virtual patients of one trial arm and their endpoints (pure; arrays in, arrays out).

Built on the model's batched solver (:func:`immunoreset.model.solver.integrate_batch`) with
parameter and event arrays constructed here, because a trial needs what
:func:`~immunoreset.model.population.make_patient_batch` does not offer: height and weight for
age and sex from a growth reference (:mod:`.growth`), flat doses, lymphodepletion of a
chosen regimen and intensity or none, a redosing rule, and typical values that differ per
replicate (parameter uncertainty).

Per patient (a row of one standard-normal draw matrix, so the first ``m`` patients of an arm
are the same whatever the arm size): age ~ U(age range), sex ~ Bernoulli(female fraction),
diagnosis ~ mix, height/weight z-scores, blood volume (mL/kg; Linderkamp/Nadler bands of
``population.blood_volume_per_kg``), baseline B cells (log-normal around the age band of
``population.B0_BY_AGE`` or a stated value), baseline disease activity (log-normal), and the
random effects ``η = L·z`` of Ω (``p = θ·exp(η)``).

Doses: ``E0 = dose_per_kg·f_dist / BV_per_kg`` (cells/µL, BV in µL/kg) for a per-kg dose and
``flat_dose / weight`` kg⁻¹ in its place for a flat dose. Lymphodepletion of intensity ``x``
kills ``1 − (1 − f_LD)^x`` of B cells and plasmablasts over its days and adds ``x·I_LD`` to the
cytokine surge (``x = 1``: the calibrated Flu/Cy; equations in ``model.equations``).

Redosing is exact: the course up to the decision is the same with or without a later event,
so every patient is integrated once without the second infusion, the rule is applied to that
course, and the patients it selects are integrated again with the extra events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from immunoreset.model.equations import FLAVOURS, N_STATES, STATES, ImmuneParams
from immunoreset.model.population import B0_BY_AGE, DIAGNOSIS_EFFECTS, blood_volume_per_kg
from immunoreset.model.solver import ENDPOINTS as SOLVER_ENDPOINTS
from immunoreset.model.solver import integrate_batch
from immunoreset.model.trial.design import ENDPOINTS, REGIMENS, Arm, TrialDesign
from immunoreset.model.trial.estimates import FRACTIONS, PopulationEstimates, cholesky_psd
from immunoreset.model.trial.growth import GrowthReference

__all__ = ["T0", "ArmDraw", "arm_endpoints", "draw_arm", "simulate_arms"]

#: Start of integration, day (before the first lymphodepletion day −5).
T0 = -6.0
_P = {n: i for i, n in enumerate(ImmuneParams.names())}
_S = {n: i for i, (n, _u) in enumerate(STATES)}
_E = {n: j for j, (n, _u) in enumerate(SOLVER_ENDPOINTS)}
_FIXED_DRAWS = 8  # age, sex, diagnosis, z height, z weight, z blood volume, z B0, z D0


@dataclass(frozen=True, slots=True, eq=False)
class ArmDraw:
    """The virtual patients of one arm of one replicate, ready for the solver."""

    age_y: np.ndarray
    female: np.ndarray
    diagnosis: np.ndarray
    height_cm: np.ndarray
    weight_kg: np.ndarray
    bv_ml_per_kg: np.ndarray
    params: np.ndarray  # (n, n_par)
    y0: np.ndarray  # (n, N_STATES)
    e0: np.ndarray  # CAR T cells/µL added at infusion
    e0_redose: np.ndarray


def _iiv_block(est: PopulationEstimates) -> tuple[tuple[str, ...], np.ndarray]:
    """Ω without b0 and d0 (the design states their baseline distributions)."""
    keep = [i for i, n in enumerate(est.omega_names) if n not in ("b0", "d0")]
    names = tuple(est.omega_names[i] for i in keep)
    sub = est.omega[np.ix_(keep, keep)] if keep else np.zeros((0, 0))
    return names, cholesky_psd("omega", sub)


def draw_arm(
    design: TrialDesign,
    arm: Arm,
    thetas: np.ndarray,
    est: PopulationEstimates,
    growth: GrowthReference,
    seqs: list[np.random.SeedSequence],
    n: int,
) -> ArmDraw:
    """Draw ``n`` patients of ``arm`` for each replicate: stream ``seqs[i]``, typical values
    ``thetas[i]``; patients of replicate ``i`` are rows ``i·n … i·n + n − 1``."""
    pop = design.population
    eta_names, chol = _iiv_block(est)
    width = _FIXED_DRAWS + len(eta_names)
    z = np.concatenate(
        [np.random.Generator(np.random.PCG64(q)).standard_normal((n, width)) for q in seqs]
    )
    theta_rows = np.repeat(np.asarray(thetas, dtype=np.float64).reshape(len(seqs), -1), n, axis=0)
    n = z.shape[0]
    u = ndtr(z[:, :3])
    lo, hi = pop.age_years
    age = lo + u[:, 0] * (hi - lo)
    female = u[:, 1] < pop.female_fraction
    sex = np.where(female, "F", "M")
    dx_names = list(pop.diagnosis_mix)
    cum = np.cumsum([pop.diagnosis_mix[k] for k in dx_names])
    cum = cum / cum[-1]
    dx_idx = np.minimum(np.searchsorted(cum, u[:, 2], side="right"), len(dx_names) - 1)
    dx = np.asarray(dx_names, dtype=object)[dx_idx]
    height, weight = growth.draw_height_weight(
        age, sex, z[:, 3], z[:, 4], correlation=pop.height_weight_correlation
    )
    bv_mean, bv_sd = blood_volume_per_kg(age, sex)
    bv = bv_mean + bv_sd * np.clip(z[:, 5], -3.0, 3.0)
    params = theta_rows.copy()
    b = pop.baseline_b_cells
    if b.typical == "by-age":
        typ_b0 = np.empty(n)
        for blo, bhi, val, _src in B0_BY_AGE:
            typ_b0[(age >= blo) & (age < bhi)] = val
        typ_b0 *= theta_rows[:, _P["b0"]] / ImmuneParams().b0
    else:
        typ_b0 = np.full(n, float(b.typical))
    params[:, _P["b0"]] = typ_b0 * np.exp(b.omega * z[:, 6])
    d = pop.baseline_disease
    params[:, _P["d0"]] = float(d.typical) * np.exp(d.omega * z[:, 7])
    if eta_names:
        eta = z[:, _FIXED_DRAWS:] @ chol.T
        for j, name in enumerate(eta_names):
            params[:, _P[name]] *= np.exp(eta[:, j])
    for dx_name, effects in DIAGNOSIS_EFFECTS.items():
        sel = dx == dx_name
        for pname, factor in effects.items():
            params[sel, _P[pname]] *= factor
    for name in FRACTIONS:
        params[:, _P[name]] = np.minimum(params[:, _P[name]], 0.999)
    y0 = np.zeros((n, N_STATES))
    fa0 = params[:, _P["f_a0"]]
    y0[:, _S["B_N"]] = (1.0 - fa0) * params[:, _P["b0"]]
    y0[:, _S["B_A"]] = fa0 * params[:, _P["b0"]]
    y0[:, _S["P"]] = y0[:, _S["L"]] = y0[:, _S["Ab"]] = 1.0
    y0[:, _S["D"]] = params[:, _P["d0"]]

    def e0_for(dose_per_kg: float | None, flat: float | None) -> np.ndarray:
        per_kg = np.full(n, dose_per_kg) if dose_per_kg is not None else flat / weight
        return per_kg * params[:, _P["f_dist"]] / bv / 1000.0

    e0 = e0_for(arm.dose_per_kg, arm.flat_dose)
    r = arm.redose
    if r is not None and (r.dose_per_kg is not None or r.flat_dose is not None):
        e0_re = e0_for(r.dose_per_kg, r.flat_dose)
    else:
        e0_re = e0
    return ArmDraw(age, female, dx.astype(str), height, weight, bv, params, y0, e0, e0_re)


def _ld_events(arm: Arm, params: np.ndarray, t_inf: np.ndarray, with_ld: bool):
    """Event times, multipliers, additions for lymphodepletion (if any) then one infusion."""
    n = params.shape[0]
    days = REGIMENS[arm.lymphodepletion.regimen][0] if with_ld else ()
    x = arm.lymphodepletion.effective_intensity
    k = len(days) + 1
    times = np.empty((n, k))
    mult = np.ones((n, k, N_STATES))
    add = np.zeros((n, k, N_STATES))
    if days:
        f_eff = 1.0 - (1.0 - params[:, _P["f_ld"]]) ** x
        survive = (1.0 - f_eff) ** (1.0 / len(days))
        for j, d in enumerate(days):
            times[:, j] = t_inf + d
            for s in ("B_N", "B_A", "P"):
                mult[:, j, _S[s]] = survive
            add[:, j, _S["I"]] = x * params[:, _P["i_ld"]] / len(days)
    times[:, k - 1] = t_inf
    return times, mult, add


def _integrate(design: TrialDesign, params, y0, times, mult, add):
    samples, ends, stats = integrate_batch(
        flavour=FLAVOURS["immune"],
        params=params,
        y0=y0,
        t0=T0,
        t_end=float(design.horizon_days),
        event_times=times,
        event_mult=mult,
        event_add=add,
        sample_days=np.asarray(design.sample_days, dtype=np.float64),
        rtol=design.solver.rtol,
        atol=design.solver.atol,
        method=design.solver.method,
        b_thresholds=dict(design.b_thresholds) or None,
    )
    return samples, ends, stats


def simulate_arms(
    design: TrialDesign, arm: Arm, draw: ArmDraw
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Integrate the patients of ``draw``; return (samples, solver endpoints, redosed, work).

    ``samples`` is (n, n_sample_days, n_observables); ``work`` the RHS evaluations per patient.
    """
    p = draw.params
    n = p.shape[0]
    first_ld = arm.lymphodepletion.regimen != "none"
    times, mult, add = _ld_events(arm, p, np.zeros(n), first_ld)
    add[:, -1, _S["E"]] = draw.e0
    r = arm.redose
    redosed = np.zeros(n, dtype=bool)
    if r is not None and r.trigger == "scheduled":
        t2 = np.full(n, float(r.at_day))
        t_ev, m_ev, a_ev = _ld_events(arm, p, t2, r.lymphodepletion)
        a_ev[:, -1, _S["E"]] = draw.e0_redose
        times = np.concatenate([times, t_ev], axis=1)
        mult = np.concatenate([mult, m_ev], axis=1)
        add = np.concatenate([add, a_ev], axis=1)
        redosed[:] = True
    samples, ends, stats = _integrate(design, p, draw.y0, times, mult, add)
    work = stats[:, 0].astype(np.float64)
    if r is not None and r.trigger != "scheduled":
        clear = ends[:, _E["day_b_clear"]]
        recon = ends[:, _E["day_b_recon"]]
        if r.trigger == "no_clearance":
            at = float(r.at_day)
            sel = ~(clear <= at)
            t2 = np.full(n, at)
        else:
            sel = recon <= float(r.before_day)
            t2 = np.where(sel, recon + float(r.lag_days), np.inf)
            # lymphodepletion days must follow the first infusion
            t2 = np.maximum(t2, 6.0 if r.lymphodepletion else 1.0)
            sel &= t2 <= design.horizon_days
        idx = np.flatnonzero(sel)
        if idx.size:
            ps = p[idx]
            t_ev, m_ev, a_ev = _ld_events(arm, ps, t2[idx], r.lymphodepletion)
            a_ev[:, -1, _S["E"]] = draw.e0_redose[idx]
            s2, e2, st2 = _integrate(
                design,
                ps,
                draw.y0[idx],
                np.concatenate([times[idx], t_ev], axis=1),
                np.concatenate([mult[idx], m_ev], axis=1),
                np.concatenate([add[idx], a_ev], axis=1),
            )
            samples[idx] = s2
            ends[idx] = e2
            work[idx] += st2[:, 0]
            redosed[idx] = True
    return samples, ends, redosed, work


def arm_endpoints(
    design: TrialDesign, draw: ArmDraw, ends: np.ndarray, redosed: np.ndarray
) -> dict[str, np.ndarray]:
    """Trial endpoints (:data:`~.design.ENDPOINTS`) from the solver's endpoints, float64.

    Binary endpoints are 0.0/1.0 (never NaN); continuous ones NaN where undefined.
    """
    clear = ends[:, _E["day_b_clear"]]
    recon = ends[:, _E["day_b_recon"]]
    cleared = np.isfinite(clear)
    horizon = float(design.horizon_days)
    aplasia = np.where(
        cleared, np.where(np.isfinite(recon), recon, horizon) - np.where(cleared, clear, 0.0), 0.0
    )
    ab = ends[:, _E["ab_pct_d182"]]
    dis = ends[:, _E["disease_d182"]]
    d0 = draw.params[:, _P["d0"]]
    out = {
        "b_clear_d7": cleared & (clear <= 7.0),
        "recon_m6": cleared & (recon <= 182.0),
        "recon_m12": cleared & (recon <= 365.0),
        "seroconversion_m6": 1.0 + ab / 100.0 <= design.seroconversion_fraction,
        "redosed": redosed,
        "cmax": ends[:, _E["cmax"]],
        "tmax": ends[:, _E["tmax"]],
        "auc_0_28": ends[:, _E["auc_0_28"]],
        "day_b_clear": clear,
        "aplasia_days": aplasia,
        "ab_pct_m6": ab,
        "disease_m6": dis,
        "disease_change_m6": dis - d0,
    }
    return {k: np.asarray(out[k], dtype=np.float64) for k in ENDPOINTS}
