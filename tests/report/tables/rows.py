"""One statistic row of a table, looked up by item and level."""

from __future__ import annotations

import pandas as pd


def row(df: pd.DataFrame, item: str, level: str = "") -> pd.Series:
    hit = df[(df["item"] == item) & (df["level"] == level)]
    assert len(hit) == 1, (item, level, df[["item", "level"]].to_string())
    return hit.iloc[0]
