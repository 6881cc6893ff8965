"""Mechanistic "immune reset" model of CD19 CAR T cells in autoimmune disease.

The system (all rates per day, time in days relative to infusion, day 0 = infusion):

* CAR T effector ``E`` and memory ``M`` (cells/µL of blood). Antigen (CD19⁺ B cells, saturating
  in ``B = B_N + B_A``) switches on a proliferative programme ``A`` (0–1) that runs on for a few
  days after the antigen is gone (programmed expansion: Kaech SM, Ahmed R. *Nat Immunol*
  2001;2:415-422; van Stipdonk MJ, et al. *Nat Immunol* 2001;2:423-429). Effectors proliferate
  at ``ρ·A·(a_0 + I)``: ``I`` is the homeostatic-cytokine surge that lymphodepletion causes and
  ``a_0`` the small drive without it, so that without lymphodepletion CAR T cells barely expand
  and, once the surge has faded, returning B cells cannot drive a second expansion whatever
  ``ρ`` (no knife edge). They contract (``δ_E``) and feed a memory pool (``μ``) that decays
  slowly (``β``, terminal t½ 100 d; oncology 220 d, shorter in SLE).
* CD19⁺ B cells: non-autoreactive ``B_N`` and autoreactive (activated/memory) ``B_A``
  (cells/µL). Bone-marrow supply ``S`` is suppressed while CAR T cells persist (CD19⁺
  precursors are killed in the marrow), cells turn over at ``k_B`` and are killed by
  effectors (mass action ``k_kill·E·B``). A fraction ``φ`` of returning B cells is
  autoreactive (the *reset* parameter); the autoreactive pool also self-sustains by
  antigen-driven proliferation with a carrying capacity, but only above a quorum ``θ·B_A0``
  (T-cell help / germinal-centre selection; a model hypothesis, UNCONFIRMED). Lymphodepletion
  alone leaves the pool above the quorum, so it regrows in weeks (negative control: Cy/Flu
  without CAR T gives no lasting serological effect, model-physiology-addendum §1.2–1.5);
  CAR T depletion takes it far below, and it stays low unless ``φ`` is large (relapse).
* Autoreactive plasmablasts/short-lived plasma cells ``P`` (CD19⁺, killed) and long-lived
  plasma cells ``L`` (CD19⁻, not killed), both relative to baseline (1 = baseline).
* Autoantibody titre ``Ab`` relative to baseline, fed by both, eliminated with the IgG
  half-life (21 d).
* Disease activity ``D`` (SLEDAI-2K-like points), an indirect-response output driven by the
  autoreactive side (``B_A`` and ``Ab``), not by the total B-cell count.
* ``I``: cytokine surge (fold above baseline minus 1) after lymphodepletion; ``AUC``: the
  running integral of the CAR T count (cells·d/µL), used for AUC0–28.

Equations (flavour ``"immune"``)::

    C     = E + M ;  B = B_N + B_A ;  g(C) = 1 / (1 + (C/C50)^h)
    dA/dt = k_on·B/(B + K_s)·(1 − A) − k_off·A
    dE/dt = ρ·A·(a_0 + I)/(1 + C/C_cap)·E − (δ_E + μ)·E
    dM/dt = μ·E − β·M
    dB_N/dt = (1 − φ)·S·g(C) − k_B·B_N − k_kill·E·B_N
    dB_A/dt = φ·S·g(C) + r_A·B_A·q·(1 − B_A/K_A) − k_B·B_A − k_kill·E·B_A,
              q = B_A/(B_A + θ·B_A0)
    dP/dt = k_P·(B_A/B_A0 − P) − k_kill·E·P
    dL/dt = k_L·(P − L)
    dAb/dt = k_Ab·(f_dep·P + (1 − f_dep)·L − Ab)
    dD/dt = k_D·(D0·(w_B·B_A/B_A0 + (1 − w_B)·Ab) − D)
    dI/dt = −k_I·I
    dAUC/dt = C

with ``S = k_B·(1 − f_A0)·B0/(1 − φ)``, ``B_A0 = f_A0·B0``, ``r_A = k_B + r_net`` and ``K_A``
chosen so that the baseline (``B_N0 = (1 − f_A0)·B0``, ``B_A0``, ``P = L = Ab = 1``,
``D = D0``, ``A = A_0 = k_on·s_0/(k_on·s_0 + k_off)``) is a steady state.

Events: lymphodepletion on days −5, −4, −3 (each kills the fraction ``1 − (1 − f_LD)^(1/3)``
of ``B_N``, ``B_A`` and ``P`` and adds ``I_LD/3`` to ``I``); infusion on day 0 adds
``E0 = dose·f_dist/BV`` cells/µL to ``E``.

Flavour ``"stein"`` is the Stein 2019 phase model of tisagenlecleucel in copies/µg:
``dE/dt = ρ·E`` before ``Tmax``; after it ``dE/dt = −α·E`` and ``dM/dt = k·E − β·M`` with
``k = FB·(α − β)``; the analytical solution is :func:`stein_analytical`.

References
----------
Stein AM, Grupp SA, Levine JE, et al. Tisagenlecleucel Model-Based Cellular Kinetic Analysis of
Chimeric Antigen Receptor-T Cells. *CPT Pharmacometrics Syst Pharmacol.* 2019;8(5):285-295
(Table 1, Figure 2). Pan S, et al. *Br J Clin Pharmacol* 2019;85(8):1790–1797 (CD19 turnover
0.02 d⁻¹). Nicolai R, et al. *Arthritis Rheumatol.* 2024;76(10):1560-1565 (peak 32.69 cells/µL
at day 7). Mackensen A, et al. *Nat Med.* 2022;28(10):2124-2132 (B-cell return 110 ± 32 d).
Values and their sources: ``docs/model.md`` and ``/work/shared/specs/model-physiology.md`` §11.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from types import MappingProxyType

import numpy as np
from numba import njit

from immunoreset.errors import InvalidInput, check_range

__all__ = [
    "FLAVOURS",
    "IDX_A",
    "IDX_I",
    "IMMUNE_PARAMETER_SOURCES",
    "N_DERIVED",
    "N_OBSERVABLES",
    "N_STATES",
    "OBSERVABLES",
    "STATES",
    "ImmuneParams",
    "SteinParams",
    "activation_baseline",
    "derived_constants",
    "immune_initial_state",
    "jac_fast",
    "observables",
    "rhs",
    "rhs_fast",
    "stein_analytical",
]

#: Model flavours: name -> integer code used inside the compiled solver.
FLAVOURS: MappingProxyType[str, int] = MappingProxyType({"immune": 0, "stein": 1})

#: State names and units, in vector order (the Stein flavour uses E, M and AUC only).
STATES: tuple[tuple[str, str], ...] = (
    ("E", "CAR T effector cells/µL (Stein flavour: copies/µg)"),
    ("M", "CAR T memory cells/µL (Stein flavour: copies/µg)"),
    ("B_N", "non-autoreactive CD19+ B cells/µL"),
    ("B_A", "autoreactive CD19+ B cells/µL"),
    ("P", "autoreactive CD19+ plasmablasts / short-lived PC, relative to baseline"),
    ("L", "autoreactive CD19- long-lived plasma cells, relative to baseline"),
    ("Ab", "autoantibody titre relative to baseline"),
    ("D", "disease activity, SLEDAI-2K-like points"),
    ("I", "cytokine surge after lymphodepletion, fold above baseline minus 1"),
    ("A", "antigen-triggered proliferative programme of the CAR T cells, 0-1"),
    ("AUC", "running integral of CAR T cells/µL, cells·d/µL"),
)
N_STATES = len(STATES)

#: Observables, in output order, with their registry units.
OBSERVABLES: tuple[tuple[str, str], ...] = (
    ("car_t", "cells/uL"),
    ("transgene", "copies/ug"),
    ("b_cells", "cells/uL"),
    ("autoantibody", "relative to baseline"),
    ("disease", "points"),
)
N_OBSERVABLES = len(OBSERVABLES)

# immune flavour parameter vector indices (must match ImmuneParams field order)
_B0, _FA0, _KB, _PHI, _RNET, _KKILL, _RHO, _KS, _DELTA, _MU, _BETA, _C50, _HILL = range(13)
_ILD, _KI, _FLD, _KP, _KL, _FDEP, _KAB, _KD, _D0, _WB, _Q, _FDIST = range(13, 25)
_KON, _KOFF, _A0, _THETA, _CCAP = range(25, 30)
#: State indices used outside this module (AUC is always the last state).
IDX_I, IDX_A = 8, 9
# stein flavour parameter vector indices (must match SteinParams field order)
_S_RHO, _S_TMAX, _S_ALPHA, _S_BETA, _S_FB, _S_R0, _S_Q = range(7)


@dataclass(frozen=True, slots=True)
class ImmuneParams:
    """Typical-patient parameters of the immune-reset model (flavour ``"immune"``).

    Every default names the figure it was set from (``docs/model.md`` has the full table).
    Values marked *calibrated* were tuned so that the typical patient shows a CAR T peak of
    about 30 cells/µL at day 8, B cells < 1/µL by day 5, reconstitution at about day 110 and
    anti-dsDNA ≤ 10 % of baseline at day 91, and so that the negative controls hold
    (lymphodepletion alone, no lymphodepletion; ``tests/model/test_negative_controls.py``).
    Fields after ``f_dist`` were added in issue 11 (the vector indices of the older ones are
    unchanged).
    """

    #: Baseline blood CD19+ B cells, cells/µL; child 6–12 y, LHSC reference (spec §2.1, §11).
    b0: float = 500.0
    #: Autoreactive (memory/activated) fraction of baseline B; SLE memory B 16 of 206 (§2.2).
    f_a0: float = 0.08
    #: Peripheral B-cell loss rate, 1/d; Pan 2019 CD19 turnover (§2.3, §9.1).
    k_b: float = 0.02
    #: Autoreactive fraction of returning B cells (the reset), UNCONFIRMED setting: small enough
    #: that the depleted autoreactive pool stays below its quorum (durable remission; Erlangen
    #: 8/8 without disease activity to 24 months, peer-data §2.2).
    phi: float = 1e-4
    #: Net self-renewal of the autoreactive pool above k_B (above its quorum), 1/d; calibrated:
    #: after lymphodepletion alone the pool and anti-dsDNA are back within ≈ 3 months
    #: (addendum §1.2–1.3: B cells back in ≤ 3 months after Cy/Flu + BCMA CAR T in 6/7).
    r_net: float = 0.05
    #: CAR T killing of CD19+ cells, µL/(cell·d); calibrated: blood B < 1/µL by day 5
    #: (Nicolai 2024) so that ≥ 90 % of children clear by day 7 (Becilli 2026: 8/8).
    k_kill: float = 0.8
    #: Maximal expansion rate per unit drive, 1/d; calibrated: net doubling ≈ 1 d during the
    #: surge (Stein 2019: 0.78 d in ALL), so a 10-fold dose moves the peak by ≈ 3 d only
    #: (addendum §3); ρ·a_0 stays far below δ_E + μ (no re-expansion on returning B cells).
    rho: float = 0.3
    #: B count giving half-maximal expansion, cells/µL; calibrated (expansion continues while
    #: the last B cells are killed, so the peak follows clearance by ≈ 1 d: Nicolai day 5 / day 7).
    k_s: float = 0.2
    #: Effector contraction, 1/d; Stein 2019 α = 0.16 (t½ 4.3 d).
    delta_e: float = 0.16
    #: Effector-to-memory transition, 1/d; calibrated (Stein FB ≈ 0.8 % into slow phase).
    mu: float = 0.004
    #: Memory (terminal) decay, 1/d; t½ 100 d: addendum §2 prior 100–220 d (Stein 2019 220 d in
    #: ALL is the upper bound; "shorter in SLE", Müller 2025): lower end, UNCONFIRMED.
    beta: float = math.log(2.0) / 100.0
    #: CAR T count halving marrow B-cell supply, cells/µL; calibrated (return ≈ day 110,
    #: Mackensen 110 ± 32 d) with β fixed from persistence (addendum §2, §5).
    c50: float = 0.3
    #: Hill coefficient of supply suppression; UNCONFIRMED setting.
    hill: float = 2.0
    #: Total cytokine surge added by lymphodepletion (fold − 1); calibrated (peak day 7–8),
    #: above the IL-15 ≈ 5× analogue of spec §8 (IL-7 and MCP-1 also rise): UNCONFIRMED.
    i_ld: float = 8.0
    #: Cytokine surge decay, 1/d; t½ 14 d (De Bock 2013 IL-15 still 2.6× at day 28, spec §8).
    k_i: float = math.log(2.0) / 14.0
    #: Fraction of B cells/plasmablasts killed by lymphodepletion; UNCONFIRMED (spec §8).
    f_ld: float = 0.8
    #: Plasmablast/SLPC death rate, 1/d; "3–5 days" (spec §3, §11).
    k_p: float = 0.2
    #: LLPC death rate, 1/d; t½ ≈ 10 y, Amanna 2007 (spec §4.2, §11).
    k_l: float = 1.9e-4
    #: Fraction of autoantibody production from CD19+ cells; "zero or near zero" (§5.1, §5.3).
    f_dep: float = 0.96
    #: IgG elimination, 1/d; t½ 21 d (peer-data §3.4).
    k_ab: float = math.log(2.0) / 21.0
    #: Disease-activity turnover, 1/d; UNCONFIRMED setting (t½ 14 d).
    k_d: float = math.log(2.0) / 14.0
    #: Baseline disease activity, SLEDAI-2K points; mean 12.6 (Wang 2025, spec §7.1).
    d0: float = 12.6
    #: Weight of autoreactive B cells (vs autoantibody) in the disease drive; UNCONFIRMED.
    w_b: float = 0.5
    #: Transgene copies/µg DNA per CAR T cell/µL; derived (docs/model.md: 150,000 cells/µg,
    #: 2 copies/cell, 6,000 leukocytes/µL).
    q_copies: float = 50.0
    #: Fraction of the infused dose found in blood as expansion-competent cells; calibrated with
    #: ρ and k_off: peak ≈ 30 cells/µL on day 8 (Nicolai 32.69 on day 7); Stein's R0 implies a
    #: small fraction too (model-physiology §3.3).
    f_dist: float = 0.002
    #: Rate at which antigen switches the proliferative programme on, 1/d; UNCONFIRMED setting
    #: (fast: antigen encounter within a day; Kaech & Ahmed 2001).
    k_on: float = 2.0
    #: Rate at which the programme winds down without antigen, 1/d; calibrated: blood B cells
    #: cleared on day 5, CAR T peak on day 7 (Nicolai 2024), so expansion outlasts antigen by
    #: ≈ 2 d (programmed expansion, van Stipdonk 2001).
    k_off: float = 0.4
    #: Proliferative drive without lymphodepletion (in units of the surge I); UNCONFIRMED setting:
    #: ρ·a_0 ≪ δ_E + μ, so that CAR T without lymphodepletion barely expand (addendum §1.1).
    a0: float = 0.25
    #: Quorum of the autoreactive pool, fraction of its baseline; UNCONFIRMED setting (model
    #: hypothesis): below it self-renewal fails. Lymphodepletion alone (−80 %) stays above it.
    theta_a: float = 0.05
    #: CAR T count halving the proliferation rate (space/cytokine competition), cells/µL;
    #: UNCONFIRMED setting: expansion is capacity-limited (addendum §3; lymphoma peaks 15–98
    #: cells/µL, model-physiology §7.2), which keeps the Cmax tail within ≈ 1 log.
    c_cap: float = 60.0

    def __post_init__(self) -> None:
        for f in fields(self):
            check_range(f.name, getattr(self, f.name), 0.0, None)
        for name in ("f_a0", "phi", "f_ld", "f_dep", "w_b", "f_dist"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        check_range("phi", self.phi, 0.0, 1.0, hi_open=True)
        for name in (
            "b0",
            "k_b",
            "k_s",
            "c50",
            "hill",
            "k_p",
            "k_ab",
            "k_d",
            "f_a0",
            "k_on",
            "c_cap",
        ):
            check_range(name, getattr(self, name), 0.0, None, lo_open=True)
        # the autoreactive pool needs a positive carrying capacity (baseline steady state)
        supply = self.k_b * (1.0 - self.f_a0) * self.b0 / (1.0 - self.phi)
        need = (self.k_b - self.phi * supply / (self.f_a0 * self.b0)) * (1.0 + self.theta_a)
        if need >= self.k_b + self.r_net:
            raise InvalidInput(
                "r_net", self.r_net, f"> {need - self.k_b:.4g} 1/d (k_b·θ_A for a steady state)"
            )

    def to_array(self) -> np.ndarray:
        """Return the parameters as a float64 vector in field order."""
        return np.array([getattr(self, f.name) for f in fields(self)], dtype=np.float64)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Return the field names in vector order."""
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True, slots=True)
class SteinParams:
    """Stein 2019 tisagenlecleucel phase model (Table 1; peer-data §3.1), copies/µg DNA."""

    #: Expansion rate, 1/d; ρ = ln(foldx)/Tmax = ln(3900)/9.3.
    rho: float = math.log(3900.0) / 9.3
    #: Time of peak, d.
    tmax: float = 9.3
    #: Fast contraction, 1/d.
    alpha: float = 0.16
    #: Slow (memory) decline, 1/d.
    beta: float = 0.0032
    #: Fraction into the slow phase.
    fb: float = 0.0079
    #: Initial transgene level R0 = Cmax/foldx, copies/µg (24000/3900).
    r0: float = 24000.0 / 3900.0
    #: Copies/µg per cell/µL, to report cells/µL (same derivation as ImmuneParams.q_copies).
    q_copies: float = 50.0

    def __post_init__(self) -> None:
        for f in fields(self):
            check_range(f.name, getattr(self, f.name), 0.0, None, lo_open=True)
        check_range("fb", self.fb, 0.0, 1.0, lo_open=True, hi_open=True)
        if self.beta >= self.alpha:
            raise InvalidInput("beta", self.beta, f"< alpha ({self.alpha:g}) 1/d")

    def to_array(self) -> np.ndarray:
        """Return the parameters as a float64 vector in field order."""
        return np.array([getattr(self, f.name) for f in fields(self)], dtype=np.float64)


#: Source of each immune-model default (shown by docs/model.md and the CLI).
IMMUNE_PARAMETER_SOURCES: MappingProxyType[str, str] = MappingProxyType(
    {
        "b0": "LHSC reference child 6-12 y (model-physiology §2.1, §11)",
        "f_a0": "SLE memory B 16/206 cells/µL, PMC1954659 Table 1 (§2.2)",
        "k_b": "Pan 2019 CD19 turnover 0.02/d (§9.1)",
        "phi": "UNCONFIRMED setting (reset); small: durable remission (peer-data §2.2)",
        "r_net": "calibrated: LD alone, anti-dsDNA back within ≈ 3 months (addendum §1.2-1.5)",
        "k_kill": "calibrated: B < 1/µL by day 5 (Nicolai 2024); children 8/8 by day 7 (§4)",
        "rho": "calibrated: net doubling ≈ 1 d (Stein 0.78 d); peak shift ≈ 3 d/decade (§3)",
        "k_s": "UNCONFIRMED setting: antigen signal saturates above ≈ 1 B cell/µL",
        "delta_e": "Stein 2019 alpha 0.16/d (peer-data §3.1)",
        "mu": "calibrated, Stein FB ≈ 0.8% (peer-data §3.1)",
        "beta": "memory t½ 100 d: addendum §2 prior 100-220 d (Stein 220 d), UNCONFIRMED",
        "c50": "calibrated: B return ≈ 110 d (Mackensen 110 ± 32 d) with β fixed (§2, §5)",
        "hill": "UNCONFIRMED setting",
        "i_ld": "calibrated (peak day 7-8); above IL-15 ≈ 5x of §8: UNCONFIRMED",
        "k_i": "IL-15 t½ ≈ 14 d after conditioning (De Bock 2013 analogue, §8)",
        "f_ld": "UNCONFIRMED (lymphocyte nadir after Flu/Cy, §8)",
        "k_p": "plasmablast life 3-5 d (§3, §11)",
        "k_l": "LLPC t½ ≈ 10 y, Amanna 2007 (§4.2, §11)",
        "f_dep": "anti-dsDNA 'zero or near zero' after CAR T (§5.1, §5.3); UNCONFIRMED",
        "k_ab": "IgG t½ 21 d (peer-data §3.4)",
        "k_d": "UNCONFIRMED setting (t½ 14 d)",
        "d0": "SLEDAI-2K mean 12.6 at baseline (Wang 2025, §7.1)",
        "w_b": "UNCONFIRMED setting (spec §10: drive from autoreactive side)",
        "q_copies": "derived: 150,000 diploid cells/µg × 2 copies/cell / 6,000 leukocytes/µL",
        "f_dist": "calibrated: peak ≈ 30 cells/µL on day 8 (Nicolai 32.69 on day 7; §3.3)",
        "k_on": "UNCONFIRMED setting (antigen encounter within a day; Kaech & Ahmed 2001)",
        "k_off": "calibrated: clearance day 5, peak day 7 (Nicolai 2024); van Stipdonk 2001",
        "a0": "UNCONFIRMED setting: little expansion without LD (addendum §1.1)",
        "theta_a": "UNCONFIRMED setting (model hypothesis: quorum of the autoreactive pool)",
        "c_cap": "UNCONFIRMED setting: capacity-limited expansion (addendum §3; §7.2 15-98/µL)",
    }
)


@njit(cache=True, fastmath=False)
def rhs(flavour: int, t: float, y: np.ndarray, p: np.ndarray, n_done: int, dy: np.ndarray) -> None:
    """Write dy/dt into ``dy`` (compiled; no Python objects).

    ``flavour`` is an integer from :data:`FLAVOURS`; ``n_done`` is the number of events already
    applied (the Stein flavour switches from expansion to contraction after its second event,
    at ``Tmax``).
    """
    if flavour == 1:
        e = y[0]
        m = y[1]
        if n_done >= 2:
            de = -p[_S_ALPHA] * e
            dm = p[_S_FB] * (p[_S_ALPHA] - p[_S_BETA]) * e - p[_S_BETA] * m
        else:
            de = p[_S_RHO] * e
            dm = 0.0
        for k in range(N_STATES):
            dy[k] = 0.0
        dy[0] = de
        dy[1] = dm
        dy[N_STATES - 1] = (e + m) / p[_S_Q]
        return
    e = y[0]
    m = y[1]
    bn = y[2]
    ba = y[3]
    pb = y[4]
    ll = y[5]
    ab = y[6]
    d = y[7]
    cyt = y[8]
    act = y[9]
    b0 = p[_B0]
    fa0 = p[_FA0]
    kb = p[_KB]
    phi = p[_PHI]
    ba0 = fa0 * b0
    supply = kb * (1.0 - fa0) * b0 / (1.0 - phi)
    r_a = kb + p[_RNET]
    quorum = p[_THETA] * ba0
    # carrying capacity that makes the baseline a steady state
    k_a = ba0 / (1.0 - (kb - phi * supply / ba0) * (1.0 + p[_THETA]) / r_a)
    c = e + m
    b = bn + ba
    x = c / p[_C50]
    hill = p[_HILL]
    if x <= 0.0:
        g = 1.0
    elif hill == 2.0:  # default: avoid the slow pow()
        g = 1.0 / (1.0 + x * x)
    else:
        g = 1.0 / (1.0 + x**hill)
    if b > 0.0:
        sat = b / (b + p[_KS])
    else:
        sat = 0.0
    kill = p[_KKILL] * e
    q = ba / (ba + quorum) if ba > 0.0 else 0.0
    dy[0] = p[_RHO] * act * (p[_A0] + cyt) / (1.0 + c / p[_CCAP]) * e - (p[_DELTA] + p[_MU]) * e
    dy[1] = p[_MU] * e - p[_BETA] * m
    dy[2] = (1.0 - phi) * supply * g - kb * bn - kill * bn
    dy[3] = phi * supply * g + r_a * ba * q * (1.0 - ba / k_a) - kb * ba - kill * ba
    dy[4] = p[_KP] * (ba / ba0 - pb) - kill * pb
    dy[5] = p[_KL] * (pb - ll)
    fdep = p[_FDEP]
    dy[6] = p[_KAB] * (fdep * pb + (1.0 - fdep) * ll - ab)
    wb = p[_WB]
    dy[7] = p[_KD] * (p[_D0] * (wb * ba / ba0 + (1.0 - wb) * ab) - d)
    dy[8] = -p[_KI] * cyt
    dy[9] = p[_KON] * sat * (1.0 - act) - p[_KOFF] * act
    dy[10] = c


#: Length of the per-patient vector of derived constants used by :func:`rhs_fast`.
N_DERIVED = 15


@njit(cache=True)
def derived_constants(flavour: int, p: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` (length :data:`N_DERIVED`) with the per-patient constants of :func:`rhs_fast`.

    Computed once per patient so the right-hand side does no divisions by parameters; the
    equations are those of :func:`rhs` (the solver tests compare both).
    """
    for j in range(N_DERIVED):
        out[j] = 0.0
    if flavour == 1:
        out[0] = p[_S_ALPHA]
        out[1] = p[_S_FB] * (p[_S_ALPHA] - p[_S_BETA])
        out[2] = p[_S_BETA]
        out[3] = 1.0 / p[_S_Q]
        out[4] = p[_S_RHO]
        return
    b0 = p[_B0]
    fa0 = p[_FA0]
    kb = p[_KB]
    phi = p[_PHI]
    ba0 = fa0 * b0
    supply = kb * (1.0 - fa0) * b0 / (1.0 - phi)
    r_a = kb + p[_RNET]
    k_a = ba0 / (1.0 - (kb - phi * supply / ba0) * (1.0 + p[_THETA]) / r_a)
    out[0] = (1.0 - phi) * supply
    out[1] = phi * supply
    out[2] = r_a  # autoreactive self-renewal rate (times the quorum factor q)
    out[3] = 1.0 / k_a
    out[4] = 1.0 / p[_C50]
    out[5] = p[_DELTA] + p[_MU]
    out[6] = p[_KP] / ba0
    out[7] = p[_KAB] * p[_FDEP]
    out[8] = p[_KAB] * (1.0 - p[_FDEP])
    out[9] = p[_KD] * p[_D0] * p[_WB] / ba0
    out[10] = p[_KD] * p[_D0] * (1.0 - p[_WB])
    out[11] = 1.0 if p[_HILL] == 2.0 else 0.0
    out[12] = p[_THETA] * ba0
    out[13] = p[_RHO] * p[_A0]
    out[14] = 1.0 / p[_CCAP]


@njit(cache=True, inline="always")
def rhs_fast(
    flavour: int,
    y: np.ndarray,
    p: np.ndarray,
    c: np.ndarray,
    n_done: int,
    out: np.ndarray,
    row: int,
) -> None:
    """:func:`rhs` into ``out[row]``, with the constants ``c`` from :func:`derived_constants`.

    Writes a row of the solver's stage matrix directly (no array view per call) and is inlined
    into the compiled Runge–Kutta kernels.
    """
    if flavour == 1:
        e = y[0]
        if n_done >= 2:
            out[row, 0] = -c[0] * e
            out[row, 1] = c[1] * e - c[2] * y[1]
        else:
            out[row, 0] = c[4] * e
            out[row, 1] = 0.0
        for k in range(2, N_STATES - 1):
            out[row, k] = 0.0
        out[row, N_STATES - 1] = (e + y[1]) * c[3]
        return
    e = y[0]
    m = y[1]
    bn = y[2]
    ba = y[3]
    pb = y[4]
    cyt = y[8]
    act = y[9]
    cc = e + m
    b = bn + ba
    x = cc * c[4]
    if x <= 0.0:
        g = 1.0
    elif c[11] == 1.0:
        g = 1.0 / (1.0 + x * x)
    else:
        g = 1.0 / (1.0 + x ** p[_HILL])
    sat = b / (b + p[_KS]) if b > 0.0 else 0.0
    q = ba / (ba + c[12]) if ba > 0.0 else 0.0
    kill = p[_KKILL] * e
    kb = p[_KB]
    out[row, 0] = ((c[13] + p[_RHO] * cyt) * act / (1.0 + cc * c[14]) - c[5]) * e
    out[row, 1] = p[_MU] * e - p[_BETA] * m
    out[row, 2] = c[0] * g - (kb + kill) * bn
    out[row, 3] = c[1] * g + (c[2] * q * (1.0 - c[3] * ba) - kb - kill) * ba
    out[row, 4] = c[6] * ba - (p[_KP] + kill) * pb
    out[row, 5] = p[_KL] * (pb - y[5])
    out[row, 6] = c[7] * pb + c[8] * y[5] - p[_KAB] * y[6]
    out[row, 7] = c[9] * ba + c[10] * y[6] - p[_KD] * y[7]
    out[row, 8] = -p[_KI] * cyt
    out[row, 9] = p[_KON] * sat * (1.0 - act) - p[_KOFF] * act
    out[row, 10] = cc


@njit(cache=True, inline="always")
def jac_fast(
    flavour: int, y: np.ndarray, p: np.ndarray, c: np.ndarray, n_done: int, jac: np.ndarray
) -> None:
    """Exact Jacobian ∂f/∂y of :func:`rhs_fast` at ``y`` into ``jac`` (N_STATES × N_STATES).

    Used by the Rosenbrock method (:mod:`immunoreset.model.rosenbrock`), whose order conditions
    need the exact Jacobian; ``tests/model/test_equations.py`` checks it against central
    differences of :func:`rhs_fast` on random states.
    """
    ns = N_STATES
    for i in range(ns):
        for j in range(ns):
            jac[i, j] = 0.0
    if flavour == 1:
        if n_done >= 2:
            jac[0, 0] = -c[0]
            jac[1, 0] = c[1]
            jac[1, 1] = -c[2]
        else:
            jac[0, 0] = c[4]
        jac[ns - 1, 0] = c[3]
        jac[ns - 1, 1] = c[3]
        return
    e = y[0]
    m = y[1]
    bn = y[2]
    ba = y[3]
    pb = y[4]
    cyt = y[8]
    act = y[9]
    cc = e + m
    b = bn + ba
    x = cc * c[4]
    if x <= 0.0:
        g = 1.0
        dg = 0.0
    elif c[11] == 1.0:
        g = 1.0 / (1.0 + x * x)
        dg = -2.0 * x * g * g * c[4]
    else:
        xh = x ** p[_HILL]
        g = 1.0 / (1.0 + xh)
        dg = -p[_HILL] * xh / x * g * g * c[4]
    if b > 0.0:
        sat = b / (b + p[_KS])
        dsat = p[_KS] / ((b + p[_KS]) * (b + p[_KS]))
    else:
        sat = 0.0
        dsat = 0.0
    if ba > 0.0:
        q = ba / (ba + c[12])
        dq = c[12] / ((ba + c[12]) * (ba + c[12]))
    else:
        q = 0.0
        dq = 0.0
    kk = p[_KKILL]
    kill = kk * e
    kb = p[_KB]
    den = 1.0 + cc * c[14]
    drive = c[13] + p[_RHO] * cyt
    u = drive * act / den
    du_dc = -u * c[14] / den
    jac[0, 0] = u - c[5] + e * du_dc
    jac[0, 1] = e * du_dc
    jac[0, 8] = p[_RHO] * act / den * e
    jac[0, 9] = drive / den * e
    jac[1, 0] = p[_MU]
    jac[1, 1] = -p[_BETA]
    jac[2, 0] = c[0] * dg - kk * bn
    jac[2, 1] = c[0] * dg
    jac[2, 2] = -(kb + kill)
    jac[3, 0] = c[1] * dg - kk * ba
    jac[3, 1] = c[1] * dg
    grow = c[2] * (1.0 - c[3] * ba)
    jac[3, 3] = c[2] * q * (1.0 - 2.0 * c[3] * ba) + grow * dq * ba - kb - kill
    jac[4, 0] = -kk * pb
    jac[4, 3] = c[6]
    jac[4, 4] = -(p[_KP] + kill)
    jac[5, 4] = p[_KL]
    jac[5, 5] = -p[_KL]
    jac[6, 4] = c[7]
    jac[6, 5] = c[8]
    jac[6, 6] = -p[_KAB]
    jac[7, 3] = c[9]
    jac[7, 6] = c[10]
    jac[7, 7] = -p[_KD]
    jac[8, 8] = -p[_KI]
    ds = p[_KON] * dsat * (1.0 - act)
    jac[9, 2] = ds
    jac[9, 3] = ds
    jac[9, 9] = -p[_KON] * sat - p[_KOFF]
    jac[10, 0] = 1.0
    jac[10, 1] = 1.0


@njit(cache=True)
def observables(flavour: int, y: np.ndarray, p: np.ndarray, out: np.ndarray) -> None:
    """Write the observables (see :data:`OBSERVABLES`) of state ``y`` into ``out``."""
    if flavour == 1:
        copies = y[0] + y[1]
        out[0] = copies / p[_S_Q]
        out[1] = copies
        out[2] = math.nan
        out[3] = math.nan
        out[4] = math.nan
        return
    c = y[0] + y[1]
    out[0] = c
    out[1] = c * p[_Q]
    out[2] = y[2] + y[3]
    out[3] = y[6]
    out[4] = y[7]


def immune_initial_state(params: ImmuneParams | np.ndarray) -> np.ndarray:
    """Return the pre-treatment steady state of the immune flavour (float64, length N_STATES).

    Examples
    --------
    >>> y = immune_initial_state(ImmuneParams())
    >>> float(y[2] + y[3]), float(y[6]), float(y[7])
    (500.0, 1.0, 12.6)
    """
    p = params.to_array() if isinstance(params, ImmuneParams) else np.asarray(params, float)
    y = np.zeros(N_STATES)
    y[2] = (1.0 - p[_FA0]) * p[_B0]
    y[3] = p[_FA0] * p[_B0]
    y[4] = y[5] = y[6] = 1.0
    y[7] = p[_D0]
    y[9] = activation_baseline(p)
    return y


def activation_baseline(p: np.ndarray) -> np.ndarray | float:
    """Steady state of the programme ``A`` at the baseline B count (vector ``p`` or rows)."""
    p = np.asarray(p, dtype=np.float64)
    sat = p[..., _B0] / (p[..., _B0] + p[..., _KS])
    on = p[..., _KON] * sat
    return on / (on + p[..., _KOFF])


def stein_analytical(t: np.ndarray | float, params: SteinParams | None = None) -> np.ndarray:
    """Closed-form Stein 2019 transgene level (copies/µg) at days ``t`` (0 ≤ t).

    ``C(t) = R0·exp(ρt)`` before Tmax, then
    ``(1 − FB)·Cmax·exp(−α(t − Tmax)) + FB·Cmax·exp(−β(t − Tmax))`` with
    ``Cmax = R0·exp(ρ·Tmax)`` (Stein 2019, Figure 2).

    Examples
    --------
    >>> round(float(stein_analytical(9.3)), 1)
    24000.0
    """
    p = params or SteinParams()
    arr = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise InvalidInput("t", t, "finite days ≥ 0")
    cmax = p.r0 * math.exp(p.rho * p.tmax)
    s = arr - p.tmax
    late = (1.0 - p.fb) * cmax * np.exp(-p.alpha * np.maximum(s, 0.0)) + p.fb * cmax * np.exp(
        -p.beta * np.maximum(s, 0.0)
    )
    early = p.r0 * np.exp(p.rho * np.minimum(arr, p.tmax))
    return np.where(arr < p.tmax, early, late)
