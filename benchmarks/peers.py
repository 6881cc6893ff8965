"""Peer solvers for ``benchmarks/simulate.py --peers``: numbalsoda (LSODA) and diffrax (JAX).

Not a project dependency: run in its own environment, e.g.
``pip install --target /tmp/model-peers numbalsoda diffrax "jax[cpu]"`` (numbalsoda needs a
Fortran compiler: Debian ``gfortran``), then
``PYTHONPATH=/tmp/model-peers:src python benchmarks/peers.py BATCH.npz OUT.json``.

``BATCH.npz`` holds the patients of :func:`immunoreset.model.population.make_patient_batch`
(params, y0, event times/multipliers/additions, sample days, tolerances). Both peers integrate
the same equations segment by segment between the events (exact jumps, as the project's
solver) and return the observables at the sample days, wall and CPU time:

* numbalsoda: LSODA (Hindmarsh/Petzold, the ODEPACK code deSolve also wraps) called from a
  numba ``njit`` loop over patients, the RHS a numba ``cfunc`` of the project's own
  :func:`immunoreset.model.equations.rhs` (1 core).
* diffrax: ``Dopri8`` and ``Tsit5`` with a PID step-size controller, ``jax.vmap`` over
  patients, ``jax.jit``-compiled, float64, CPU (XLA uses its own thread pool).
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np


def _numbalsoda(b: dict) -> dict:
    import numba as nb
    from numba import cfunc, njit, types
    from numbalsoda import lsoda, lsoda_sig

    from immunoreset.model.equations import N_STATES, rhs

    ns = N_STATES
    npar = b["params"].shape[1]

    @cfunc(lsoda_sig)
    def f(t, u_, du_, p_):
        u = nb.carray(u_, (ns,))
        du = nb.carray(du_, (ns,))
        p = nb.carray(p_, (npar + 1,))
        rhs(0, t, u, p[:npar], int(p[npar]), du)

    ptr = f.address
    _ = types

    @njit
    def run(params, y0, ev_t, ev_m, ev_a, sd, t0, t_end, rtol, atol):
        n = params.shape[0]
        out = np.full((n, sd.shape[0], 2), np.nan)
        ok = 0
        for i in range(n):
            y = y0[i].copy()
            bounds = np.empty(ev_t.shape[1] + 2)
            bounds[0] = t0
            bounds[1:-1] = ev_t[i]
            bounds[-1] = t_end
            data = np.empty(npar + 1)
            data[:npar] = params[i]
            good = True
            for seg in range(bounds.shape[0] - 1):
                a = bounds[seg]
                bnd = bounds[seg + 1]
                data[npar] = seg
                cnt = 0
                for d in sd:
                    if a < d < bnd or (d == bnd and seg == bounds.shape[0] - 2):
                        cnt += 1
                te = np.empty(cnt + 2)
                te[0] = a
                j = 1
                for d in sd:
                    if a < d < bnd or (d == bnd and seg == bounds.shape[0] - 2):
                        te[j] = d
                        j += 1
                te[-1] = bnd
                usol, success = lsoda(ptr, y, te, data, rtol=rtol, atol=atol)
                good = good and success
                j = 1
                for k in range(sd.shape[0]):
                    d = sd[k]
                    if a < d < bnd or (d == bnd and seg == bounds.shape[0] - 2):
                        out[i, k, 0] = usol[j, 0] + usol[j, 1]
                        out[i, k, 1] = usol[j, 2] + usol[j, 3]
                        j += 1
                y = usol[-1].copy()
                if seg < ev_t.shape[1]:
                    y = y * ev_m[i, seg] + ev_a[i, seg]
                    for k in range(sd.shape[0]):
                        if sd[k] == bnd:
                            out[i, k, 0] = y[0] + y[1]
                            out[i, k, 1] = y[2] + y[3]
            if good:
                ok += 1
        return out, ok

    args = (b["params"], b["y0"], b["ev_t"], b["ev_m"], b["ev_a"], b["sd"], float(b["t0"]),
            float(b["t_end"]), float(b["rtol"]), float(b["atol"]))  # fmt: skip
    t = time.perf_counter()
    run(*(a[:2] if isinstance(a, np.ndarray) and a.ndim > 1 else a for a in args))
    compile_s = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    out, ok = run(*args)
    return {
        "wall_s": time.perf_counter() - t,
        "cpu_s": time.process_time() - c,
        "compile_s": compile_s,
        "succeeded": int(ok),
        "samples": out.tolist(),
    }


def _diffrax(b: dict, solver_name: str) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import diffrax
    import jax.numpy as jnp

    from immunoreset.model.equations import ImmuneParams

    names = ImmuneParams.names()
    ix = {n: i for i, n in enumerate(names)}

    def f(t, y, p):
        e, m, bn, ba, pb, ll, ab, d, cyt, act, _auc = (y[i] for i in range(11))
        b0, fa0, kb, phi = p[ix["b0"]], p[ix["f_a0"]], p[ix["k_b"]], p[ix["phi"]]
        ba0 = fa0 * b0
        supply = kb * (1.0 - fa0) * b0 / (1.0 - phi)
        r_a = kb + p[ix["r_net"]]
        th = p[ix["theta_a"]]
        k_a = ba0 / (1.0 - (kb - phi * supply / ba0) * (1.0 + th) / r_a)
        c = e + m
        bb = bn + ba
        x = c / p[ix["c50"]]
        g = 1.0 / (1.0 + x ** p[ix["hill"]])
        sat = bb / (bb + p[ix["k_s"]])
        q = ba / (ba + th * ba0)
        kill = p[ix["k_kill"]] * e
        grow = p[ix["rho"]] * act * (p[ix["a0"]] + cyt) / (1.0 + c / p[ix["c_cap"]])
        fdep, wb = p[ix["f_dep"]], p[ix["w_b"]]
        return jnp.stack([
            (grow - p[ix["delta_e"]] - p[ix["mu"]]) * e,
            p[ix["mu"]] * e - p[ix["beta"]] * m,
            (1.0 - phi) * supply * g - kb * bn - kill * bn,
            phi * supply * g + r_a * ba * q * (1.0 - ba / k_a) - kb * ba - kill * ba,
            p[ix["k_p"]] * (ba / ba0 - pb) - kill * pb,
            p[ix["k_l"]] * (pb - ll),
            p[ix["k_ab"]] * (fdep * pb + (1.0 - fdep) * ll - ab),
            p[ix["k_d"]] * (p[ix["d0"]] * (wb * ba / ba0 + (1.0 - wb) * ab) - d),
            -p[ix["k_i"]] * cyt,
            p[ix["k_on"]] * sat * (1.0 - act) - p[ix["k_off"]] * act,
            c,
        ])  # fmt: skip

    solver = {"dopri8": diffrax.Dopri8, "tsit5": diffrax.Tsit5}[solver_name]()
    term = diffrax.ODETerm(f)
    ctrl = diffrax.PIDController(rtol=float(b["rtol"]), atol=float(b["atol"]))
    sd = np.asarray(b["sd"])
    bounds = [float(b["t0"]), *[float(v) for v in b["ev_t"][0]], float(b["t_end"])]
    # the benchmark samples at and after the last event (infusion, day 0) only
    assert sd.min() >= bounds[-2] and np.all(b["ev_t"] == b["ev_t"][0])
    late = jnp.asarray(sd[sd > bounds[-2]])

    def one(p, y0, em, ea):
        y = y0
        for s in range(len(bounds) - 2):
            sol = diffrax.diffeqsolve(
                term, solver, bounds[s], bounds[s + 1], None, y, args=p,
                stepsize_controller=ctrl, saveat=diffrax.SaveAt(t1=True), max_steps=100_000,
            )  # fmt: skip
            y = sol.ys[-1] * em[s] + ea[s]
        sol = diffrax.diffeqsolve(
            term, solver, bounds[-2], bounds[-1], None, y, args=p, stepsize_controller=ctrl,
            saveat=diffrax.SaveAt(ts=late), max_steps=100_000,
        )  # fmt: skip
        ys = sol.ys if sd.min() > bounds[-2] else jnp.concatenate([y[None, :], sol.ys])
        return ys[:, :4], sol.stats["num_steps"]

    fn = jax.jit(jax.vmap(one))
    args = [jnp.asarray(b[k]) for k in ("params", "y0", "ev_m", "ev_a")]
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    compile_s = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    ys, steps = jax.block_until_ready(fn(*args))
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    ys = np.asarray(ys)
    out = np.stack([ys[:, :, 0] + ys[:, :, 1], ys[:, :, 2] + ys[:, :, 3]], axis=-1)
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "compile_s": compile_s,
        "steps_last_segment_mean": float(np.mean(np.asarray(steps))),
        "samples": out.tolist(),
    }


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    which = sys.argv[3].split(",") if len(sys.argv) > 3 else ["numbalsoda", "dopri8", "tsit5"]
    b = dict(np.load(src))
    res: dict = {}
    for name in which:
        try:
            res[name] = _numbalsoda(b) if name == "numbalsoda" else _diffrax(b, name)
        except Exception as err:  # report, do not hide, a peer that cannot run here
            res[name] = {"error": f"{type(err).__name__}: {err}"}
    res["versions"] = {}
    for mod in ("numbalsoda", "diffrax", "jax", "numba", "numpy"):
        try:
            res["versions"][mod] = __import__(mod).__version__
        except Exception:
            res["versions"][mod] = None
    res["cores_visible"] = os.cpu_count()
    with open(dst, "w") as fh:
        json.dump(res, fh)


if __name__ == "__main__":
    main()
