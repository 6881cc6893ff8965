"""Excel-made CSV: Windows-1252, ';' separators, decimal commas and dd/mm/yyyy dates."""

from __future__ import annotations

import pytest

from immunoreset.errors import InvalidInput
from immunoreset.registry.csvdialect import detect_dialect, normalise_text, read_normalised

GERMAN = "study_id;date;analyte;value\r\nRM-001;03/02/2025;crp;1,5\r\nRM-001;04/02/2025;ck;120\r\n"


def test_windows_1252_semicolons_and_decimal_commas():
    raw = (GERMAN.replace("crp", "Größe")).encode("cp1252")
    d = detect_dialect(raw, "labs.csv", date_format="dd/mm/yyyy")
    assert (d.encoding, d.separator, d.decimal_comma) == ("cp1252", ";", True)
    text = normalise_text(raw, "labs.csv", d)
    assert text.splitlines() == [
        "study_id,date,analyte,value",
        "RM-001,2025-02-03,Größe,1.5",
        "RM-001,2025-02-04,ck,120",
    ]


def test_utf8_comma_file_is_unchanged(tmp_path):
    p = tmp_path / "labs.csv"
    p.write_text("study_id,date,value\nRM-001,2025-02-03,1.5\n", encoding="utf-8")
    assert read_normalised(p) == "study_id,date,value\nRM-001,2025-02-03,1.5\n"


def test_a_comma_file_keeps_quoted_commas():
    raw = b'study_id,note\nRM-001,"fever, chills"\n'
    d = detect_dialect(raw)
    assert not d.decimal_comma
    assert normalise_text(raw, "f", d).splitlines()[1] == 'RM-001,"fever, chills"'


def test_bad_date_names_row_and_column():
    raw = GERMAN.replace("04/02/2025", "31/02/2025").encode()
    d = detect_dialect(raw, "labs.csv", date_format="dd/mm/yyyy")
    with pytest.raises(InvalidInput) as err:
        normalise_text(raw, "labs.csv", d)
    assert "labs.csv row 3 column 2" in str(err.value)


def test_ambiguous_separator_and_unknown_format_refused():
    with pytest.raises(InvalidInput) as err:
        detect_dialect(b"a;b,c\n1;2,3\n", "x.csv")
    assert err.value.field == "separator"
    with pytest.raises(InvalidInput):
        detect_dialect(b"a,b\n", date_format="yyyy/dd/mm")


def test_importer_reads_an_excel_file(tmp_path):
    """The registry's CSV reader goes through open_csv: a cp1252 ';' file reads like UTF-8."""
    from immunoreset.registry.csvio import _read_rows

    p = tmp_path / "x.csv"
    p.write_bytes("study_id;note;value\r\nRM-001;Fieber über 38;38,5\r\n".encode("cp1252"))
    rows = list(_read_rows(p))
    assert rows[0][1] == {"study_id": "RM-001", "note": "Fieber über 38", "value": "38.5"}
