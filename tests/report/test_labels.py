"""Reader-facing names: every vocabulary key the report prints has a human label."""

from __future__ import annotations

import pytest

from immunoreset import vocab
from immunoreset.report.labels import describe_setting, label
from immunoreset.report.tables.settings import TITRE_ANALYTES


@pytest.mark.parametrize("key", [*vocab.INSTRUMENTS, *TITRE_ANALYTES, "released_with_deviation"])
def test_printed_keys_have_labels(key):
    assert "_" not in label(key) and label(key) != key


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("blq_rule", "keep_first_last"),
        ("capd_age_rule", "below_12"),
        ("enzyme_method", "excess_over_uln"),
    ],
)
def test_settings_in_words(name, value):
    text = describe_setting(name, value)
    assert "_" not in text and len(text.split()) >= 4
