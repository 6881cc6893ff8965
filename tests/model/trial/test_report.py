"""Trial outputs: summary.csv sections, plots and a self-contained trial.html."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from immunoreset.model.trial.design import ENDPOINTS, parse_design
from immunoreset.model.trial.report import write_report
from immunoreset.model.trial.run import run_trial


def test_outputs_written_and_self_contained(tmp_path, small):
    res = run_trial(parse_design(small), out=tmp_path)
    paths = write_report(res, tmp_path)
    for key in ("summary", "replicates", "html", "prediction_intervals", "endpoints",
                "probability_of_success"):  # fmt: skip
        assert paths[key].is_file() and paths[key].stat().st_size > 0, key
    s = pd.read_csv(paths["summary"], keep_default_na=False)
    assert set(s["section"]) == {"probability_of_success", "patients", "trials", "run"}
    pos = s[(s["section"] == "probability_of_success") & (s["endpoint"] == "rule")]
    assert list(pos["statistic"]) == ["patients_per_arm=3", "patients_per_arm=6"]
    for arm in ("A", "B"):
        got = set(s[(s["section"] == "patients") & (s["arm"] == arm)]["endpoint"])
        assert got == set(ENDPOINTS)
    page = paths["html"].read_text()
    assert page.count("data:image/png;base64,") == 3
    assert not re.search(r"""(src|href)=["']https?://""", page)  # nothing fetched
    assert "Probability of success with 6 patients per arm" in page


def test_summary_probability_matches_the_replicates(tmp_path, small):
    res = run_trial(parse_design(small))
    s = write_report(res, tmp_path)["summary"]
    table = pd.read_csv(s, keep_default_na=False)
    row = table[(table["endpoint"] == "rule") & (table["statistic"] == "patients_per_arm=6")]
    reps = res.replicates[res.replicates["arm"] == "A"]
    assert float(row["value"].iloc[0]) == pytest.approx(reps["trial_success"].mean(), rel=1e-9)
