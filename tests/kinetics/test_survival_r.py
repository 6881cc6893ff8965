"""Kaplan–Meier tables and medians against R ``survival`` (the fixture names R and its version).

The oracle is ``survfit(Surv(time, status) ~ 1, conf.type = "log-log")`` and
``quantile.survfit`` — tests/fixtures/survfit/km_survfit.R, run on the cases in cases.csv.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from immunoreset.kinetics.survival import km_reconstitution

FIXTURES = Path(__file__).parents[1] / "fixtures" / "survfit"
CASES = pd.read_csv(FIXTURES / "cases.csv")
TABLE = pd.read_csv(FIXTURES / "survfit_table.csv", comment="#")
MEDIAN = pd.read_csv(FIXTURES / "survfit_median.csv", comment="#")
KEYS = sorted(
    {(c, float(lv)) for c, lv in MEDIAN[["case", "conf"]].itertuples(index=False)},
)


def _fit(case: str, conf: float):
    d = CASES[CASES["case"] == case]
    return km_reconstitution(d["time"].to_numpy(), d["status"].to_numpy(), alpha=1 - conf)


def _same(got: float | None, want: float) -> bool:
    if got is None or (isinstance(got, float) and math.isnan(got)):
        return math.isnan(want)
    return not math.isnan(want) and got == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_fixture_names_its_oracle():
    first = (FIXTURES / "survfit_median.csv").read_text().splitlines()[0]
    assert first.startswith("# R version") and "survival 3." in first


@pytest.mark.parametrize(("case", "conf"), KEYS)
def test_median_and_ci_match_survfit(case, conf):
    km = _fit(case, conf)
    want = MEDIAN[(MEDIAN["case"] == case) & (MEDIAN["conf"] == conf)].iloc[0]
    got = (km.median, *km.median_ci)
    assert all(
        _same(g, w)
        for g, w in zip(got, (want["median"], want["lower"], want["upper"]), strict=True)
    ), f"{case} {conf}: got {got}, survfit {tuple(want[['median', 'lower', 'upper']])}"


@pytest.mark.parametrize(("case", "conf"), KEYS)
def test_table_matches_survfit(case, conf):
    km = _fit(case, conf)
    want = TABLE[(TABLE["case"] == case) & (TABLE["conf"] == conf)].reset_index(drop=True)
    got = km.table
    assert got["time"].tolist() == want["time"].astype(float).tolist()
    assert got["at_risk"].tolist() == want["n_risk"].tolist()
    assert got["events"].tolist() == want["n_event"].tolist()
    assert got["censored"].tolist() == want["n_censor"].tolist()
    assert got["survival"].to_numpy() == pytest.approx(want["surv"].to_numpy(), rel=1e-12)
    inside = (want["surv"] > 0) & (want["surv"] < 1)
    for col, rcol in (("ci_lower", "lower"), ("ci_upper", "upper")):
        assert got.loc[inside, col].to_numpy() == pytest.approx(
            want.loc[inside, rcol].to_numpy(), rel=1e-9
        )
        # Ŝ = 0: R leaves the bound undefined, so do we (Ŝ = 1: the band is the point, 1)
        assert got.loc[want["surv"] == 0, col].isna().all()


def test_demo_plateau_is_the_midpoint():
    """Issue 17: four reconstitutions at day 91 and four at day 122 → 106.5, not 122."""
    km = _fit("demo_plateau", 0.95)
    assert km.median == 106.5
    assert km.median_ci == (91.0, None)
