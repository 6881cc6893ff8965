"""Generated nlmixr2 and mrgsolve code: structure, parameter values, and the equations.

Oracles for the equations: R (r-base-core, installed by scripts/test-deps.sh) evaluates the
nlmixr2 model block's derivative lines, and the mrgsolve ``$ODE`` C++ lines are evaluated
after a line-by-line translation; both must equal the simulator's right-hand side
(:func:`immunoreset.model.equations.rhs`) on random states, inside and outside the
lymphodepletion window (where the exported code adds its smeared kill and cytokine input).
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess

import numpy as np
import pytest

from immunoreset.errors import InvalidInput
from immunoreset.interop.model_code import IMMUNE_STATES, model_code
from immunoreset.model.equations import N_STATES, ImmuneParams, SteinParams, rhs


def test_nlmixr2_immune_code_has_every_state_and_fitted_values():
    code = model_code("immune_reset", "nlmixr2", theta={"f_dist": 0.09}, omega={"f_dist": 0.2})
    for state in IMMUNE_STATES:
        assert re.search(rf"d/dt\({state}\) =", code), state
    assert "tf_dist <- log(0.09)" in code and "eta.f_dist ~ 0.2" in code
    assert "f_dist <- exp(tf_dist + eta.f_dist)" in code
    for name in ImmuneParams.names():
        if name != "f_dist":
            assert re.search(rf"^\s+{name} <- ", code, re.M), name
    assert "b_cells ~ lnorm(log_sd_b_cells)" in code


def test_mrgsolve_code_blocks_and_cpp_syntax():
    code = model_code("immune_reset", "mrgsolve")
    for block in ("$PARAM", "$CMT", "$INIT", "$MAIN", "$ODE", "$TABLE", "$CAPTURE"):
        assert block in code
    ode = code.split("$ODE")[1].split("$TABLE")[0]
    body = [ln for ln in ode.strip().splitlines() if ln and not ln.startswith(("if", "}"))]
    assert all(ln.endswith(";") for ln in body)
    assert "pow(C / c50, hill)" in code and "^" not in ode
    assert f"beta = {ImmuneParams().beta!r}" in code  # full float64 precision
    stein = model_code("stein2019", "mrgsolve")
    assert f"tmax = {SteinParams().tmax:g}" in stein and "dxdt_M" in stein


def test_unknown_format_or_model():
    with pytest.raises(InvalidInput):
        model_code("immune_reset", "monolix")
    with pytest.raises(InvalidInput):
        model_code("pk_2cmt", "nlmixr2")


@pytest.mark.parametrize("model", ["immune_reset", "stein2019"])
def test_r_parses_the_nlmixr2_code(tmp_path, model):
    rscript = shutil.which("Rscript")
    assert rscript, "Rscript (r-base-core) is installed by scripts/test-deps.sh"
    path = tmp_path / "model.R"
    path.write_text(model_code(model, "nlmixr2"))
    result = subprocess.run(
        [rscript, "-e", f"f <- eval(parse('{path}')[[1]]); stopifnot(is.function(f))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def _random_states(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    y = np.column_stack(
        [
            rng.uniform(0, 40, n), rng.uniform(0, 3, n), rng.uniform(0, 500, n),
            rng.uniform(0, 50, n), rng.uniform(0, 2, n), rng.uniform(0.5, 1.5, n),
            rng.uniform(0, 2, n), rng.uniform(0, 20, n), rng.uniform(0, 8, n),
            rng.uniform(0, 1, n),
        ]
    )  # fmt: skip
    y[0, 0] = y[0, 1] = 0.0  # no CAR T yet
    t = np.where(np.arange(n) % 3 == 0, -4.0, rng.uniform(0, 300, n))  # some in the LD window
    return y, t


def _expected(params: ImmuneParams, y: np.ndarray, t: float) -> np.ndarray:
    """The simulator's rhs plus the exported code's smeared lymphodepletion on days −5…−2."""
    full = np.zeros(N_STATES)
    full[: len(IMMUNE_STATES)] = y
    dy = np.empty(N_STATES)
    rhs(0, t, full, params.to_array(), 4, dy)
    out = dy[: len(IMMUNE_STATES)].copy()
    if -5.0 <= t < -2.0:
        kld = -math.log(1.0 - params.f_ld) / 3.0
        for j in (2, 3, 4):  # BN, BA, P
            out[j] -= kld * y[j]
        out[8] += params.i_ld / 3.0
    return out


def test_r_evaluates_the_nlmixr2_equations_as_the_simulator(tmp_path):
    rscript = shutil.which("Rscript")
    assert rscript, "Rscript (r-base-core) is installed by scripts/test-deps.sh"
    params = ImmuneParams(f_dist=0.003, k_off=0.5)
    values = {n: getattr(params, n) for n in ImmuneParams.names()}
    code = model_code("immune_reset", "nlmixr2", theta={"f_dist": 0.003}, fixed=values)
    ini = code.split("ini({")[1].split("})")[0].splitlines()
    body = code.split("model({")[1].split("  })")[0].splitlines()
    keep = [
        re.sub(r"d/dt\((\w+)\) =", r"d_\1 <-", ln)
        for ln in body
        if ln.strip() and "~" not in ln and "(0) <-" not in ln and "f(E)" not in ln
    ]
    y, t = _random_states(12)
    names = IMMUNE_STATES
    loop = [
        *ini,
        "eta.f_dist <- 0",
        f"S <- matrix(c({', '.join(repr(float(v)) for v in y.ravel())}), "
        f"nrow={len(y)}, byrow=TRUE)",
        f"TT <- c({', '.join(repr(float(v)) for v in t)})",
        "for (r in seq_len(nrow(S))) {",
        *[f"  {s} <- S[r, {j + 1}]" for j, s in enumerate(names)],
        "  t <- TT[r]",
        *["  " + ln.strip() for ln in keep],
        f"  cat(sprintf('%.17g', c({', '.join('d_' + s for s in names)})), '\\n')",
        "}",
    ]
    path = tmp_path / "rhs.R"
    path.write_text("\n".join(loop) + "\n")
    res = subprocess.run([rscript, str(path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    got = np.array([[float(v) for v in ln.split()] for ln in res.stdout.strip().splitlines()])
    assert got.shape == y.shape
    for r in range(len(y)):
        want = _expected(params, y[r], float(t[r]))
        np.testing.assert_allclose(got[r], want, rtol=1e-12, atol=1e-12, err_msg=f"row {r}")


def _cpp_to_python(ode: str) -> str:
    """Translate the generated $ODE C++ lines to Python (the constructs the generator writes)."""
    out = []
    for raw in ode.strip().splitlines():
        ln = raw.strip().replace("double ", "").replace("SOLVERTIME", "t").replace("&&", "and")
        ln = re.sub(r"pow\(([^,()]+), (\w+)\)", r"((\1) ** \2)", ln)
        m = re.match(r"if \((.+)\) \{ (.+) \}$", ln)
        if m:
            out.append(f"if {m.group(1)}:")
            out += [f"    {st.strip()}" for st in m.group(2).split(";") if st.strip()]
            continue
        out.append(ln.rstrip(";"))
    return "\n".join(out)


def test_mrgsolve_equations_are_the_simulators():
    params = ImmuneParams(c_cap=45.0, theta_a=0.08)
    values = {n: getattr(params, n) for n in ImmuneParams.names()}
    code = model_code("immune_reset", "mrgsolve", fixed=values)
    ode = code.split("$ODE")[1].split("$TABLE")[0]
    src = _cpp_to_python(ode)
    ns0 = {"log": math.log, **values}
    y, t = _random_states(12)
    for r in range(len(y)):
        env = dict(ns0, t=float(t[r]), **{s: float(y[r, j]) for j, s in enumerate(IMMUNE_STATES)})
        exec(src, {}, env)  # the generator's own output, in a test
        got = np.array([env[f"dxdt_{s}"] for s in IMMUNE_STATES])
        want = _expected(params, y[r], float(t[r]))
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=f"row {r}")
    # the initial programme A is the simulator's baseline steady state
    sat = params.b0 / (params.b0 + params.k_s)
    a0_cpp = code.split("\nA_0 = ")[1].split(";")[0]
    a0 = eval(a0_cpp, {}, dict(values))
    assert a0 == pytest.approx(params.k_on * sat / (params.k_on * sat + params.k_off), rel=1e-14)
