"""Design schema: round trip, strict types, and errors that name the YAML path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from immunoreset.errors import InvalidInput
from immunoreset.model.trial.design import ENDPOINTS, dump_design, load_design, parse_design

EXAMPLE = Path(__file__).parents[3] / "examples" / "pediatric-dose-finding.yaml"


def test_example_round_trips_through_the_schema(tmp_path):
    d = load_design(EXAMPLE)
    text = dump_design(d)
    assert parse_design(yaml.safe_load(text)) == d
    f = tmp_path / "again.yaml"
    f.write_text(text)
    assert load_design(f) == d
    assert d.sizes == (6, 9, 12, 18, 24)
    assert d.arms[0].dose_per_kg == 5e5  # YAML "5.0e+5"


def test_small_design_round_trips_with_defaults(small):
    d = parse_design(small)
    assert parse_design(yaml.safe_load(dump_design(d))) == d
    assert d.population.growth_reference == "uk-who"


def test_exponent_without_sign_is_a_float(tmp_path, small):
    text = yaml.safe_dump(small).replace("1000000.0", "1e6")
    assert "1e6" in text
    f = tmp_path / "d.yaml"
    f.write_text(text)
    assert load_design(f).arms[0].dose_per_kg == 1e6


def _set(d, path, value):
    *head, last = path
    for p in head:
        d = d[p]
    d[last] = value


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("arms", 1, "dosis"), 5, "arms[1].dosis"),  # unknown arm key
        (("arms", 0, "dose_per_kg"), 0.0, "arms[0].dose_per_kg"),
        (("arms", 0, "dose_per_kg"), -1e6, "arms[0].dose_per_kg"),
        (("arms", 1, "flat_dose"), 0, "arms[1].flat_dose"),
        (("arms", 0, "dose_per_kg"), "1e6", "arms[0].dose_per_kg"),  # strict: no strings
        (("population",), {"age_years": [1.5, 17]}, "population.age_years"),
        (("population",), {"age_years": [6, 21]}, "population.age_years"),
        (("population",), {"age_years": [12, 6]}, "population.age_years"),
        (("success", "conditions", 0, "endpoint"), "sledai", "success.conditions[0].endpoint"),
        (("success", "conditions", 0, "arm"), "Z", "success.conditions[0].arm"),
        (("arms", 0, "lymphodepletion"), {"regimen": "bendamustine"},
         "arms[0].lymphodepletion.regimen"),
        (("arms", 1, "lymphodepletion"), {"regimen": "none", "intensity": 1.0},
         "arms[1].lymphodepletion.intensity"),
        (("arms", 0, "lymphodepletion"), {"intensity": 0.0}, "arms[0].lymphodepletion.intensity"),
        (("arms", 0, "redose"), {"trigger": "scheduled"}, "arms[0].redose.at_day"),
        (("arms", 0, "redose"), {"trigger": "when"}, "arms[0].redose.trigger"),
        (("arms", 1, "redose"), {"trigger": "scheduled", "at_day": 30, "lymphodepletion": True},
         "arms[1].redose.lymphodepletion"),
        (("arms", 1, "name"), "A", "arms[1].name"),
        (("parameters", "rse"), {"kkill": 0.2}, "parameters.rse.kkill"),
        (("population",), {"diagnosis_mix": {"lupus": 1.0}}, "population.diagnosis_mix.lupus"),
        (("replicates",), 0, "replicates"),
        (("replicates",), 2.0, "replicates"),
        (("sample_days",), [0, 7, 7], "sample_days"),
        (("success", "conditions", 0, "responder"), {"le": 4}, "success.conditions[0].responder"),
        (("solver",), {"rtol": 0.1}, "solver.rtol"),
        (("solver",), {"atol": 0.0}, "solver.atol"),
        (("solver",), {"method": "lsoda"}, "solver.method"),
        (("b_thresholds",), {"recon": 0.0}, "b_thresholds.recon"),
        (("b_thresholds",), {"reconstitution": 10.0}, "b_thresholds.reconstitution"),
        (("b_thresholds",), {"clear": 20.0}, "b_thresholds.detect"),
    ],
)  # fmt: skip
def test_bad_design_names_the_yaml_path(small, path, value, field):
    _set(small, path, value)
    with pytest.raises(InvalidInput) as err:
        parse_design(small)
    assert err.value.field == field, str(err.value)
    assert str(err.value).startswith(field)


def test_both_or_neither_dose_refused(small):
    small["arms"][1]["dose_per_kg"] = 1e6
    with pytest.raises(InvalidInput, match="exactly one of dose_per_kg or flat_dose"):
        parse_design(small)
    del small["arms"][1]["dose_per_kg"]
    del small["arms"][1]["flat_dose"]
    with pytest.raises(InvalidInput) as err:
        parse_design(small)
    assert err.value.field == "arms[1].dose_per_kg"


def test_continuous_endpoint_needs_responder_or_statistic(small):
    small["success"]["conditions"][0] = {"arm": "A", "endpoint": "cmax", "min_proportion": 0.5}
    with pytest.raises(InvalidInput) as err:
        parse_design(small)
    assert err.value.field == "success.conditions[0].responder"


def test_unknown_endpoint_message_lists_the_endpoints(small):
    small["success"]["conditions"][0]["endpoint"] = "sledai"
    with pytest.raises(InvalidInput) as err:
        parse_design(small)
    for name in ENDPOINTS:
        assert name in str(err.value)


def test_missing_required_key(small):
    del small["success"]
    with pytest.raises(InvalidInput) as err:
        parse_design(small)
    assert err.value.field == "success"


def test_file_errors_name_the_file(tmp_path, small):
    with pytest.raises(InvalidInput):
        load_design(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("arms: [\n")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        load_design(bad)
    small["parameters"] = {"fit": "nowhere/fit.json"}
    f = tmp_path / "d.yaml"
    f.write_text(yaml.safe_dump(small))
    with pytest.raises(InvalidInput) as err:
        load_design(f)
    assert err.value.field == "parameters.fit" and str(f) in str(err.value)
    f.write_text("- a list\n")
    with pytest.raises(InvalidInput):
        load_design(f)
