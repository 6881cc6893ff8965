"""Display forms of the tables: ``n/N (%; 95 % CI)``, ``median (range)``."""

from __future__ import annotations

import pandas as pd
import pytest

from immunoreset.errors import InvalidInput
from immunoreset.report import tables as t


def test_display_forms(analysis):
    shown = t.display_table(t.table_safety(analysis))
    assert list(shown.columns) == ["section", "characteristic", "value"]
    value = shown.loc[shown["characteristic"] == "CRS (ASTCT): grade 1", "value"].iloc[0]
    assert value == "6/8 (75.0 %; 95 % CI 34.9–96.8 %)"
    fu = t.display_table(t.table_followup(analysis))
    assert fu["value"].iloc[0] == "16.5 (9.0 to 24.0) months, n = 8"


def test_display_rejects_other_frames():
    with pytest.raises(InvalidInput):
        t.display_table(pd.DataFrame({"a": [1]}))
