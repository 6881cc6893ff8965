"""Sobol indices (SALib) on a small Saltelli sample: structure, known zero and known influence."""

from __future__ import annotations

import pytest

from immunoreset.errors import InvalidInput
from immunoreset.model.sensitivity import identifiability, sobol_indices


@pytest.fixture(scope="module")
def small():
    return sobol_indices(
        n_base=64, parameters=("k_ab", "beta", "rho"), outputs=("ab_pct_d91", "transgene_d182")
    )


def test_indices_table(small):
    assert list(small.columns) == ["output", "parameter", "S1", "S1_conf", "ST", "ST_conf"]
    assert len(small) == 6


def test_known_zero_and_known_influence(small):
    st = small.set_index(["output", "parameter"])["ST"]
    # the IgG half-life drives the day-91 antibody fall and cannot touch CAR T persistence
    assert st[("ab_pct_d91", "k_ab")] > 0.3
    assert abs(st[("transgene_d182", "k_ab")]) < 0.02
    # memory decay informs the day-182 transgene level, not the day-91 antibody
    assert st[("transgene_d182", "beta")] > 0.05
    assert abs(st[("ab_pct_d91", "beta")]) < 0.02


def test_identifiability_verdicts(small):
    v = identifiability(small).set_index("parameter")["verdict"]
    assert v["k_ab"] == "one output"
    assert set(v) <= {"not informed", "one output", "informed"}


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"n_base": 100}, "n_base"),
        ({"parameters": ("nope",)}, "parameters"),
        ({"spread": 1.0}, "spread"),
    ],
)
def test_validation(kw, field):
    with pytest.raises(InvalidInput) as exc:
        sobol_indices(**kw)
    assert exc.value.field == field
