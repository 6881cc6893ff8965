"""Fit spec YAML files: round trip, every kind of bad entry named by its YAML path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from immunoreset.errors import InvalidInput
from immunoreset.model.fit.foce import CovariateEffect, ErrorSpec, FitSpec, ParameterSpec
from immunoreset.model.fit.specfile import dump_spec, load_spec, parse_spec, resolve_spec

EXAMPLE = Path(__file__).parents[3] / "examples" / "fit-immune-reset.yaml"


def test_the_example_spec_declares_block_omega_covariates_and_errors() -> None:
    spec = load_spec(EXAMPLE)
    assert spec.model == "immune_reset" and spec.omega_block is True
    assert [p.name for p in spec.parameters] == ["f_dist", "c50", "b0"]
    assert spec.parameters[0] == ParameterSpec("f_dist", 0.002, 0.4)
    assert spec.covariates == (
        CovariateEffect("b0", "WT", "power", 30.0),
        CovariateEffect("f_dist", "DIAG", "categorical"),
    )
    assert spec.errors == (ErrorSpec(2, "log", 0.4), ErrorSpec(4, "combined", 1.0, 0.3))
    assert parse_spec(yaml.safe_load(dump_spec(spec))) == spec


def test_round_trip_of_a_python_spec() -> None:
    spec = FitSpec(
        "pk_1cmt_oral",
        (ParameterSpec("ka", 1.2, 0.5), ParameterSpec("cl", None, 0.3), ParameterSpec("v", 30, 0)),
        (ErrorSpec(2, "proportional", 1.0, 0.15),),
        covariates=(
            CovariateEffect("cl", "WT", "power", 70.0),
            CovariateEffect("v", "SEX", "categorical", 0.0, (1.0,)),
        ),
        omega_block=True,
    )
    back = parse_spec(yaml.safe_load(dump_spec(spec)))
    assert back == spec


def test_defaults_when_keys_are_absent() -> None:
    spec = parse_spec({"model": "stein2019"})
    assert [p.name for p in spec.parameters] == ["rho", "tmax", "alpha", "beta", "fb", "r0"]
    assert spec.errors == () and spec.covariates == () and spec.omega_block is False


@pytest.mark.parametrize(
    ("doc", "field", "says"),
    [
        ({"parameters": [{"name": "f_dist"}, {"name": "c50", "omega": -0.1}]},
         "parameters[1].omega", "greater than or equal to 0"),
        ({"parameters": [{"name": "f_dist", "initial": 0}]}, "parameters[0].initial",
         "greater than 0"),
        ({"parameters": [{"name": "f_dist", "initial": 2.0}]}, "parameters[0].initial",
         "≤ 0.999"),
        ({"parameters": [{"name": "nope"}]}, "parameters[0].name", "a parameter of immune_reset"),
        ({"parameters": [{"name": "c50"}, {"name": "c50"}]}, "parameters[1].name", "once"),
        ({"parameters": []}, "parameters", "at least one"),
        ({"parameters": [{"name": "c50", "omga": 0.3}]}, "parameters[0].omga", "not a known key"),
        ({"modle": "stein2019"}, "modle", "not a known key"),
        ({"model": "pk_9cmt"}, "model", "pk_1cmt_oral"),
        ({"parameters": [{"name": "c50", "omega": "0.3"}]}, "parameters[0].omega",
         "a valid number"),
        ({"covariates": [{"parameter": "rho", "covariate": "WT"}]}, "covariates[0].parameter",
         "an estimated parameter"),
        ({"covariates": [{"parameter": "c50", "covariate": "WT", "kind": "linear"}]},
         "covariates[0].kind", "'power' or 'categorical'"),
        ({"covariates": [{"parameter": "c50", "covariate": "WT", "levels": [1]}]},
         "covariates[0].levels", "absent for a power effect"),
        ({"covariates": [{"parameter": "c50", "covariate": "WT", "reference": -1}]},
         "covariates[0].reference", "> 0"),
        ({"errors": [{"cmt": 4, "kind": "exponential"}]}, "errors[0].kind", "'log'"),
        ({"errors": [{"cmt": 4}]}, "errors[0].kind", "required"),
        ({"errors": [{"cmt": 11, "kind": "log"}]}, "errors[0].cmt", "observation compartment"),
        ({"errors": [{"cmt": 4, "kind": "log", "prop": 0.2}]}, "errors[0].prop", "absent"),
        ({"errors": [{"cmt": 4, "kind": "combined", "add": 0}]}, "errors[0].add", "greater"),
        ({"errors": [{"cmt": 4, "kind": "log"}, {"cmt": 4, "kind": "log"}]}, "errors[1].cmt",
         "once"),
        ({"fixed": {"c50": 1.0}}, "fixed.c50", "not also estimated"),
        ({"fixed": {"zz": 1.0}}, "fixed.zz", "a parameter of immune_reset"),
        ({"fixed": {"k_ab": -1.0}}, "fixed.k_ab", "greater than 0"),
        ({"omega_block": "yes"}, "omega_block", "a valid boolean"),
    ],
)  # fmt: skip
def test_bad_entries_name_their_yaml_path(doc: dict, field: str, says: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_spec(doc, source="s.yaml")
    assert err.value.field == field, str(err.value)
    assert says in str(err.value), str(err.value)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="readable"):
        load_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [immune_reset\n")
    with pytest.raises(InvalidInput, match="line"):
        load_spec(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(InvalidInput, match="a mapping"):
        load_spec(bad)


def test_resolve_against_the_data(theoph_data) -> None:
    spec = parse_spec({"model": "pk_1cmt_oral", "parameters": [{"name": "cl"}]})
    resolved = resolve_spec(spec, theoph_data)
    assert resolved.errors == (ErrorSpec(2, "additive", 1.0),)  # the model default
    spec = parse_spec({"model": "pk_1cmt_oral", "errors": [{"cmt": 1, "kind": "additive"}]})
    with pytest.raises(InvalidInput) as err:
        resolve_spec(spec, theoph_data)
    assert err.value.field == "errors[0].cmt"
    spec = parse_spec({"model": "pk_1cmt_oral",
                       "covariates": [{"parameter": "cl", "covariate": "AGE"}]})  # fmt: skip
    with pytest.raises(InvalidInput) as err:
        resolve_spec(spec, theoph_data)
    assert err.value.field == "covariates[0].covariate" and "WT" in str(err.value)
