"""SAS transport v5 writer: byte for byte as ReadStat (pyreadstat) writes the same frame, and
read back by two independent readers — ReadStat and R's ``foreign::read.xport``."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from immunoreset.errors import InvalidInput
from immunoreset.interop import sdtm, xport

_STAMP = re.compile(rb"\d\d[A-Z]{3}\d\d:\d\d:\d\d:\d\d")


def _same_bytes_as_readstat(frame: pd.DataFrame, tmp: Path, **kw) -> None:
    """Ours equals pyreadstat's file except the 16-character creation/modification stamps."""
    ours, theirs = tmp / "ours.xpt", tmp / "theirs.xpt"
    xport.write_xport(frame, ours, **kw)
    pyreadstat.write_xport(frame, str(theirs), file_format_version=5, **kw)
    a, b = ours.read_bytes(), theirs.read_bytes()
    assert len(a) == len(b) and len(a) % 80 == 0
    assert _STAMP.sub(b"S" * 16, a) == _STAMP.sub(b"S" * 16, b)


def _hard_frame(n: int, seed: int = 0, big: float = 5e74) -> pd.DataFrame:
    """Numbers across IBM's range (``big``: ReadStat saturates from 2**249 ≈ 9.05e74 to the
    largest IBM number, where this writer stays exact up to 16**63 ≈ 7.2e75 — the R test
    covers that range), text with commas, accents, leading blanks, an empty column."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n) * 10.0 ** rng.integers(-60, 60, n)
    x[rng.random(n) < 0.1] = np.nan
    x[rng.random(n) < 0.05] = 0.0
    texts = ["", "é ü ß", "a,b", "x" * 37, "  lead", "CRS", "1e10", "ICANS grade 3"]
    return pd.DataFrame(
        {
            "STUDYID": np.array(["IMMUNORESET"] * n, dtype=object),
            "USUBJID": np.array([f"IMM-RM-{i:06d}" for i in rng.integers(0, 50, n)], object),
            "X": x,
            "Y": rng.integers(-5, 1000, n).astype(float),
            "TINY": rng.choice([1e-70, -3e-75, big, 2.0**-260, 0.1, 1 / 3], n),
            "T": np.array(rng.choice(texts, n), dtype=object),
            "EMPTY": np.array([""] * n, dtype=object),
        }
    )


def test_ibm_float_reference_values() -> None:
    """TS-140's examples: 1 = 41 10 00…, −1 = C1 10 00…, 0.5 = 40 80 00…, 100 = 42 64 00…"""
    got = xport.ibm_float(np.array([1.0, -1.0, 0.5, 100.0, 0.0, np.nan, 0.1]))
    assert [f"{int(v):016X}" for v in got] == [
        "4110000000000000",
        "C110000000000000",
        "4080000000000000",
        "4264000000000000",
        "0000000000000000",
        "2E00000000000000",
        "401999999999999A",  # 0.1: the 53-bit significand shifted by 3, nothing lost
    ]


@pytest.mark.parametrize("n", [0, 1, 7, 2003])
def test_bytes_equal_pyreadstat(tmp_path, n) -> None:
    labels = {"STUDYID": "Study Identifier", "X": "Value", "T": "Täxt"}
    _same_bytes_as_readstat(
        _hard_frame(n), tmp_path, table_name="QS", file_label="Questionnaires", column_labels=labels
    )


def test_chunked_rows_are_the_same_bytes(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(xport, "_CHUNK_ROWS", 97)
    _same_bytes_as_readstat(_hard_frame(1000, seed=5), tmp_path, table_name="LB")


def test_sdtm_domains_equal_pyreadstat(exported, tmp_path) -> None:
    out, _ = exported
    for name, dom in sdtm.DOMAINS.items():
        frame, _ = pyreadstat.read_xport(str(out / f"{name.lower()}.xpt"))
        frame = frame.astype({v.name: object for v in dom.variables if v.type == "Char"})
        _same_bytes_as_readstat(
            frame,
            tmp_path,
            table_name=name,
            file_label=dom.label,
            column_labels={v.name: v.label for v in dom.variables},
        )


def test_r_foreign_reads_the_same_values(tmp_path) -> None:
    """Oracle: R ``foreign::read.xport`` (r-cran-foreign 0.8.84, R 4.2.2 on Debian 12)."""
    assert shutil.which("Rscript"), "R (r-base-core) is installed by scripts/test-deps.sh"
    frame = _hard_frame(300, seed=2, big=7.2e75)
    frame["T"] = frame["T"].str.replace("é ü ß", "plain", regex=False)
    path = tmp_path / "r.xpt"
    xport.write_xport(frame, path, table_name="VS", file_label="Vital Signs")
    script = (
        "library(foreign); d <- read.xport(commandArgs(TRUE)[1]);"
        "for (v in c('X','Y','TINY')) d[[v]] <- sprintf('%.17g', d[[v]]);"
        "write.csv(d, commandArgs(TRUE)[2], row.names = FALSE, na = 'NA')"
    )
    done = subprocess.run(
        ["Rscript", "-e", script, str(path), str(tmp_path / "r.csv")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    back = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False)
    assert list(back.columns) == list(frame.columns)
    for name in ("X", "Y", "TINY"):
        got = np.array([np.nan if v == "NA" else float(v) for v in back[name]])
        assert np.array_equal(got, frame[name].to_numpy(), equal_nan=True), name
    for name in ("STUDYID", "USUBJID", "T", "EMPTY"):
        assert back[name].tolist() == [v.rstrip() for v in frame[name]], name


def test_refuses_what_xport_v5_cannot_hold(tmp_path) -> None:
    too_long = pd.DataFrame({"A": np.array(["x" * 201], dtype=object)})
    with pytest.raises(InvalidInput, match="200"):
        xport.write_xport(too_long, tmp_path / "a.xpt", table_name="A")
    with pytest.raises(InvalidInput, match="8 characters"):
        xport.write_xport(pd.DataFrame({"TOOLONGNAME": [1.0]}), tmp_path / "b.xpt", table_name="B")
    with pytest.raises(InvalidInput, match="finite"):
        xport.write_xport(pd.DataFrame({"A": [np.inf]}), tmp_path / "c.xpt", table_name="C")


def test_factorized_columns_write_the_same_bytes(tmp_path) -> None:
    """Columns given as (codes, texts) — numbers converted once per distinct value, text as
    categoricals — write the bytes of the plain frame (−0.0, NaN, tiny and huge numbers)."""
    frame = _hard_frame(3000, seed=5)
    frame.loc[:9, "X"] = -0.0
    frame.loc[10:19, "Y"] = 0.0
    fact = sdtm.factorize(frame)
    coded = frame.copy()
    for name in ("STUDYID", "USUBJID", "T", "EMPTY"):
        codes, texts = fact[name]
        coded[name] = pd.Categorical.from_codes(codes, categories=texts)
    when = pd.Timestamp("2026-01-02 03:04:05").to_pydatetime()
    plain, known = tmp_path / "plain.xpt", tmp_path / "known.xpt"
    xport.write_xport(frame, plain, table_name="T", created=when)
    xport.write_xport(coded, known, table_name="T", created=when, factorized=fact)
    assert known.read_bytes() == plain.read_bytes()
    back, _ = pyreadstat.read_xport(str(known))
    np.testing.assert_array_equal(back["Y"].to_numpy(), frame["Y"].to_numpy())
    assert back["T"].tolist() == frame["T"].tolist()
    bad = pd.DataFrame({"X": [1.0, np.inf]})
    with pytest.raises(InvalidInput, match="finite"):
        xport.write_xport(bad, tmp_path / "bad.xpt", table_name="T", factorized=sdtm.factorize(bad))
