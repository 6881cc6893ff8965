"""Generated nlmixr2 and mrgsolve code: structure, parameter values, R parses the nlmixr2 code."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from immunoreset.errors import InvalidInput
from immunoreset.interop.model_code import model_code
from immunoreset.model.equations import ImmuneParams, SteinParams


def test_nlmixr2_immune_code_has_every_state_and_fitted_values():
    code = model_code("immune_reset", "nlmixr2", theta={"f_dist": 0.09}, omega={"f_dist": 0.2})
    for state in ("E", "M", "BN", "BA", "P", "L", "Ab", "D", "I"):
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
    assert f"beta = {ImmuneParams().beta:g}" in code
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
