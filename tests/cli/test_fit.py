"""fit, forecast, export nonmem, export model end to end through the CLI."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from immunoreset.cli import app
from immunoreset.interop.nonmem import read_nonmem
from immunoreset.registry import Registry, system_actor
from tests.factories import small_course

runner = CliRunner()
ADMIN = system_actor()
THEOPH = Path(__file__).parents[1] / "fixtures" / "theoph.csv"


def run(*args: object):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(a) for a in args], env={}, catch_exceptions=False)


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "cli.db")
    with Registry(path, upgrade=True) as reg:
        reg.add_site(ADMIN, "ROME", "Bambino Gesù")
        reg.save_courses(ADMIN, [small_course("RM-001"), small_course("RM-002")], reason="entry")
    return path


def test_export_nonmem_writes_data_definition_and_audits(db: str, tmp_path: Path) -> None:
    out = tmp_path / "nm.csv"
    result = run("export", "nonmem", out, "--db", db)
    assert result.exit_code == 0, result.output
    assert "2 individuals" in result.output
    frame = read_nonmem(out, allow_predose=True)
    assert set(frame.USUBJID) == {"RM-001", "RM-002"}
    assert (tmp_path / "nm.define.csv").exists()
    with Registry(db, upgrade=True) as reg:
        trail = reg.audit_trail(ADMIN, study_id="RM-001")
    assert any(t["action"] == "export" and t["field"] == "nonmem" for t in trail)


def test_fit_from_file_and_forecast_errors(tmp_path: Path, db: str) -> None:
    out = tmp_path / "theo"
    result = run(
        "fit", "--data", THEOPH, "--model", "pk_1cmt_oral", "--out", out, "--vpc-reps", "20"
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "converged" in text and "OFV 116.8" in text
    params = pd.read_csv(out / "parameters.csv")
    assert params.name.tolist()[-1] == "add_sd"
    # a pk fit has no registry compartments: one clear line, no traceback
    result = run("forecast", "RM-001", "--fit", out, "--db", db)
    assert result.exit_code == 1 and "pk_1cmt_oral" in result.output
    assert "Traceback" not in result.output
    result = run("forecast", "RM-001", "--fit", tmp_path / "nowhere", "--db", db)
    assert result.exit_code == 1 and "fit.json" in result.output


def test_fit_bad_data_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("ID,TIME,DV,AMT,EVID\n1,0,.,100,1\n1,one,3.2,0,0\n")
    result = run("fit", "--data", bad, "--model", "pk_1cmt_oral", "--out", tmp_path / "o")
    assert result.exit_code == 1
    assert "bad.csv, row 3, column TIME" in result.output and "Traceback" not in result.output
    result = run("fit", "--data", THEOPH, "--model", "pk_9cmt", "--out", tmp_path / "o")
    assert result.exit_code == 1 and "pk_1cmt_oral" in result.output


SPEC = """\
model: pk_1cmt_oral
parameters:
  - {name: ka, initial: 1.5, omega: 0.5}
  - {name: cl, initial: 2.8, omega: 0.3}
  - {name: v, initial: 32, omega: 0.15}
covariates:
  - {parameter: cl, covariate: WT, kind: power, reference: 70}
errors:
  - {cmt: 2, kind: combined, add: 0.5, prop: 0.1}
"""


def test_fit_with_a_spec_file_covariate_and_combined_error(tmp_path: Path) -> None:
    spec = tmp_path / "theo.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "spec-fit"
    result = run("fit", "--data", THEOPH, "--spec", spec, "--out", out, "--vpc-reps", "0")
    assert result.exit_code == 0, result.output
    assert "pk_1cmt_oral: 12 individuals" in " ".join(result.output.split())
    params = pd.read_csv(out / "parameters.csv").set_index("name")
    assert {"ka", "cl", "v", "beta_cl_WT", "add_sd", "prop_sd"} <= set(params.index)
    # the estimates stay near the published additive-error fit (ka 1.59, CL 2.75, V 31.8)
    assert 1.2 < params.loc["ka", "estimate"] < 2.0 and 2.3 < params.loc["cl", "estimate"] < 3.2
    assert 28 < params.loc["v", "estimate"] < 36
    # the spec used is written beside the results and re-runs as it is
    from immunoreset.model.fit.specfile import load_spec

    used = load_spec(out / "spec.yaml")
    assert used == load_spec(spec)
    result = run("fit", "--data", THEOPH, "--spec", out / "spec.yaml", "--out", tmp_path / "again",
                 "--vpc-reps", "0", "--max-iter", "1")  # fmt: skip
    assert result.exit_code == 0, result.output


def test_bad_spec_files_are_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(SPEC.replace("omega: 0.3", "omega: -0.3"))
    result = run("fit", "--data", THEOPH, "--spec", spec, "--out", tmp_path / "o")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "parameters[1].omega must be greater than or equal to 0" in result.output
    spec.write_text(SPEC.replace("covariate: WT", "covariate: AGE"))
    result = run("fit", "--data", THEOPH, "--spec", spec, "--out", tmp_path / "o")
    assert result.exit_code == 1 and "covariates[0].covariate" in result.output
    spec.write_text(SPEC)
    result = run("fit", "--data", THEOPH, "--spec", spec, "--estimate", "ka", "--out", tmp_path)
    assert result.exit_code == 1 and "--estimate and --spec" in result.output
    result = run("fit", "--data", THEOPH, "--spec", spec, "--model", "stein2019", "--out", tmp_path)
    assert result.exit_code == 1 and "differs from the spec's model" in result.output


def test_export_model_code(tmp_path: Path) -> None:
    result = run("export", "model", "--format", "mrgsolve")
    assert result.exit_code == 0 and "$ODE" in result.output
    out = tmp_path / "m.R"
    result = run("export", "model", "--format", "nlmixr2", "--model", "stein2019", "--out", out)
    assert result.exit_code == 0 and "d/dt(E)" in out.read_text()
    result = run("export", "model", "--format", "monolix")
    assert result.exit_code == 1 and "nlmixr2" in result.output


@pytest.fixture(scope="module")
def immune_fit_dir(tmp_path_factory) -> Path:
    """A short immune-model fit (2 outer iterations) on simulated CAR T and B-cell data."""
    import numpy as np

    from immunoreset.interop.nonmem import validate_nonmem
    from immunoreset.model.fit.data import prepare_data
    from immunoreset.model.fit.foce import ErrorSpec, FitSpec, ParameterSpec, fit_foce
    from immunoreset.model.fit.simulate import simulate_dataset
    from immunoreset.model.fit.workflow import write_fit

    cov = pd.DataFrame({"AGE": np.linspace(8, 16, 6), "SEX": [0, 1] * 3, "LD": 1})
    df = simulate_dataset(
        "immune_reset",
        covariates=cov,
        times=[3, 7, 14, 28, 91, 182],
        cmts=[2, 4],
        theta={},
        omega={"f_dist": 0.3, "c50": 0.3},
        lloq={2: 0.05, 4: 1.0},
        errors={2: ("log", 0.3, 0.0), 4: ("log", 0.3, 0.0)},
        predose_times=[-7],
        seed=2,
    )
    data = prepare_data(validate_nonmem(df, allow_predose=True))
    spec = FitSpec(
        "immune_reset",
        (ParameterSpec("f_dist", None, 0.3), ParameterSpec("c50", None, 0.3)),
        (ErrorSpec(2, "log", 0.3), ErrorSpec(4, "log", 0.3)),
    )
    out = tmp_path_factory.mktemp("immune")
    write_fit(fit_foce(spec, data, max_iter=2, covariance=False), out, vpc_reps=5)
    return out


def test_forecast_registry_patient(db: str, immune_fit_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "band.csv"
    # B cells 0.0 without an LLOQ cannot enter a log-scale likelihood: one line, then --lloq
    result = run("forecast", "RM-001", "--fit", immune_fit_dir, "--db", db)
    assert result.exit_code == 1 and "LLOQ" in result.output
    result = run(
        "forecast", "RM-001", "--fit", immune_fit_dir, "--db", db, "--out", out, "--lloq", "4=1.0"
    )
    assert result.exit_code == 0, result.output
    assert "b_cells" in result.output and "car_t" in result.output
    assert "prediction interval" in result.output
    band = pd.read_csv(out)
    assert set(band.output) == {"car_t", "b_cells"}
    assert (band["low"] <= band["median"]).all() and (band["median"] <= band["high"]).all()
    assert set(band.interval) == {"prediction"} and set(band.level) == {0.9}
    # --no-residual: the parameter-only confidence band, labelled, narrower than the PI
    conf_out = tmp_path / "conf.csv"
    result = run("forecast", "RM-001", "--fit", immune_fit_dir, "--db", db, "--out", conf_out,
                 "--lloq", "4=1.0", "--no-residual")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "confidence band" in result.output
    conf = pd.read_csv(conf_out)
    assert set(conf.interval) == {"confidence"}
    ratio = (band.high / band.low) / (conf.high / conf.low)  # log error: width is a ratio
    assert (ratio[band.day > 0] > 1.0).all()
    code = tmp_path / "fitted.R"
    result = run("export", "model", "--fit", immune_fit_dir, "--out", code)
    assert result.exit_code == 0, result.output
    assert "eta.f_dist ~" in code.read_text() and "eta.c50 ~" in code.read_text()
    result = run("forecast", "RM-001", "--fit", immune_fit_dir, "--db", db, "--lloq", "4=x")
    assert result.exit_code == 1 and "CMT=VALUE" in result.output
    result = run("forecast", "RM-404", "--fit", immune_fit_dir, "--db", db)
    assert result.exit_code == 1 and "RM-404" in result.output


def test_fit_from_registry(db: str, tmp_path: Path) -> None:
    """The --db path: registry → data set → fit (a tiny Stein fit of the CAR T flow data)."""
    out = tmp_path / "reg"
    result = run(
        "fit",
        "--db",
        db,
        "--model",
        "stein2019",
        "--estimate",
        "r0",
        "--out",
        out,
        "--max-iter",
        "2",
        "--vpc-reps",
        "0",
    )
    assert result.exit_code == 0, result.output
    assert "2 individuals" in result.output
    assert pd.read_csv(out / "parameters.csv").name.tolist()[0] == "r0"
    result = run("fit", "--db", db, "--model", "pk_1cmt_oral", "--out", out)
    assert result.exit_code == 1 and "Traceback" not in result.output


@pytest.mark.slow
def test_default_fit_of_the_demo_registry_then_forecast(tmp_path: Path) -> None:
    """The default path end to end: `fit --db` with the immune_reset model's default estimated
    parameters and error models on the demo's 8-patient SYNTHETIC registry (one outer
    iteration, no covariance step, to stay small), then `forecast RM-003` from that fit."""
    from immunoreset import demo
    from immunoreset.model.fit.models import get_model

    path = str(tmp_path / "demo.db")
    with Registry(path, upgrade=True) as reg:
        for code, name in demo.SITE_NAMES.items():
            reg.add_site(ADMIN, code, name)
        reg.save_courses(ADMIN, demo.published_cohort(), reason="SYNTHETIC demo cohort")
    out = tmp_path / "fit"
    result = run("fit", "--db", path, "--out", out, "--max-iter", "1", "--vpc-reps", "0",
                 "--no-covariance", "--lloq", "4=1.0")  # fmt: skip
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "immune_reset: 8 individuals" in text and "covariance not run" in text
    params = pd.read_csv(out / "parameters.csv")
    default = list(get_model("immune_reset").default_estimated)
    assert params.name.tolist()[: len(default)] == default
    assert params.estimate.notna().all() and params.se.isna().all()  # no covariance step
    assert (out / "fit.html").exists() and (out / "spec.yaml").exists()
    band_csv = tmp_path / "rm003.csv"
    result = run("forecast", "RM-003", "--fit", out, "--db", path, "--lloq", "4=1.0",
                 "--out", band_csv)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "RM-003: forecast, 90% prediction interval" in " ".join(result.output.split())
    band = pd.read_csv(band_csv)
    assert {"car_t", "b_cells"} <= set(band.output) and set(band.interval) == {"prediction"}
    assert (band.low <= band["median"]).all() and (band["median"] <= band.high).all()
    b = band[band.output == "b_cells"]
    assert len(b) == 121 and b.day.iloc[0] == 0 and b.day.iloc[-1] >= 365
    # the shipped example spec fits the same registry (block Ω, WT power, DIAG categorical,
    # combined B-cell error)
    example = Path(__file__).parents[2] / "examples" / "fit-immune-reset.yaml"
    out2 = tmp_path / "example-fit"
    result = run("fit", "--db", path, "--spec", example, "--out", out2, "--max-iter", "1",
                 "--vpc-reps", "0", "--no-covariance", "--lloq", "4=1.0")  # fmt: skip
    assert result.exit_code == 0, result.output
    names = set(pd.read_csv(out2 / "parameters.csv").name)
    assert {"beta_b0_WT", "omega_c50_f_dist", "add_sd_b_cells", "prop_sd_b_cells"} <= names
    assert any(n.startswith("beta_f_dist_DIAG_") for n in names)
