"""Analysis settings: bad input refused, a changed setting changes the analysis."""

from __future__ import annotations

import numpy as np
import pytest

from immunoreset.errors import InvalidInput
from immunoreset.report import tables as t


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"clearance_threshold": 0}, "clearance_threshold"),
        ({"clearance_threshold": True}, "clearance_threshold"),
        ({"reconstitution_threshold": 0.5}, "reconstitution_threshold"),
        ({"blq_rule": "half_lloq"}, "blq_rule"),
        ({"auc_end": 0}, "auc_end"),
        ({"default_lloq": {"flow": 0.1}}, "default_lloq"),
        ({"default_lloq": {"flow": 0.0, "qpcr": 1.0}}, "default_lloq.flow"),
        ({"ctcae_version": "4.0"}, "ctcae_version"),
        ({"icaht_duration_mode": "longest"}, "icaht_duration_mode"),
        ({"toxicity": "default"}, "toxicity"),
        ({"confidence": 1.0}, "confidence"),
        ({"titre_months": ()}, "titre_months"),
        ({"titre_months": (0,)}, "titre_months"),
        ({"score_months": [6]}, "score_months"),
        ({"ck_uln": 0}, "ck_uln"),
        ({"enzyme_method": "ratio"}, "enzyme_method"),
        ({"max_lines": 0}, "max_lines"),
        ({"max_swimmers": 501}, "max_swimmers"),
    ],
)
def test_settings_bad_input(kwargs, field):
    with pytest.raises(InvalidInput) as err:
        t.AnalysisSettings(**kwargs)
    assert err.value.field == field


def test_settings_change_the_analysis(published):
    strict = t.AnalysisSettings(reconstitution_threshold=1e5 - 1)
    a = t.analyse_cohort(published, settings=strict)
    assert not np.isfinite(a.bcells["reconstitution_day"]).any()
    assert a.km is not None and a.km.median is None


def test_analyse_bad_settings(published):
    with pytest.raises(InvalidInput) as err:
        t.analyse_cohort(published, settings={"clearance_threshold": 1})
    assert err.value.field == "settings"
