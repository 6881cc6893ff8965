"""Shared fixtures: the theophylline data and its FOCE-I fit (fitted once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from immunoreset.interop.nonmem import read_nonmem
from immunoreset.model.fit.data import prepare_data
from immunoreset.model.fit.foce import ErrorSpec, FitSpec, ParameterSpec, fit_foce

FIXTURE = Path(__file__).parents[2] / "fixtures" / "theoph.csv"


def theoph_spec() -> FitSpec:
    """pk_1cmt_oral with log-normal BSV on ka, CL, V and additive error (nlmixr2's theo_sd
    example: initial tka 0.45, tcl 1, tv 3.45, add.sd 0.7 — here on the natural scale)."""
    return FitSpec(
        model="pk_1cmt_oral",
        parameters=(
            ParameterSpec("ka", 1.0, 0.5),
            ParameterSpec("cl", 3.0, 0.3),
            ParameterSpec("v", 30.0, 0.3),
        ),
        errors=(ErrorSpec(2, "additive", 1.0),),
    )


@pytest.fixture(scope="session")
def theoph_data():
    return prepare_data(read_nonmem(FIXTURE))


@pytest.fixture(scope="session")
def theoph_fit(theoph_data):
    return fit_foce(theoph_spec(), theoph_data)
