"""How an Excel-made CSV file is written: encoding, separator, decimal mark and date format.

Excel saves "CSV" in the machine's locale: Windows-1252 (or Latin-1) instead of UTF-8, ``;``
as the separator and ``,`` as the decimal mark in Germany and Italy, dates as dd/mm/yyyy.
:func:`detect_dialect` finds out which (or takes what the user declares) and
:func:`normalise_text` rewrites the file into the registry's canonical CSV (UTF-8, ``,``,
decimal point, ISO dates) so the importer reads one form only. Nothing is guessed silently: a
file that is neither valid UTF-8 nor Windows-1252, a separator that cannot be told, or a date
that does not match the declared format raises :class:`InvalidInput` naming file, row and
column.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from pathlib import Path

from immunoreset.errors import InvalidInput

__all__ = [
    "DATE_FORMATS",
    "CsvDialect",
    "detect_dialect",
    "normalise_text",
    "open_csv",
    "read_normalised",
]

#: Accepted ``--date-format`` values -> strptime pattern.
DATE_FORMATS: dict[str, str] = {
    "iso": "%Y-%m-%d",
    "dd/mm/yyyy": "%d/%m/%Y",
    "dd.mm.yyyy": "%d.%m.%Y",
    "mm/dd/yyyy": "%m/%d/%Y",
}
_SEPARATORS = (",", ";", "\t")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")
_DATE_LIKE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$")


@dataclass(frozen=True, slots=True)
class CsvDialect:
    """How one file is written."""

    encoding: str  # "utf-8-sig" or "cp1252"
    separator: str
    decimal_comma: bool
    date_format: str  # a key of DATE_FORMATS


#: A UTF-8 multi-byte sequence: in a file that is not valid UTF-8 it means a damaged UTF-8
#: file (or one mixing encodings), never a Windows-1252 one — which would be mis-read.
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)


def _decode(raw: bytes, name: str) -> tuple[str, str]:
    try:
        return raw.decode("utf-8-sig"), "utf-8-sig"
    except UnicodeDecodeError as err:
        row = raw.count(b"\n", 0, err.start) + 1
        if _UTF8_SEQUENCE.search(raw):
            raise InvalidInput(
                "encoding", name, "UTF-8 or Windows-1252/Latin-1 text", file=name, row=row,
                message=f"byte {raw[err.start]:#04x} is not UTF-8, but the file also holds "
                "UTF-8 text (a damaged or mixed-encoding file); save it as 'CSV UTF-8'",
            ) from None  # fmt: skip
        try:
            return raw.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            raise InvalidInput(
                "encoding", name, "UTF-8 or Windows-1252/Latin-1 text", file=name, row=row,
                message=f"neither UTF-8 nor Windows-1252 text (byte {raw[err.start]:#04x}); "
                "save it from Excel as 'CSV UTF-8'",
            ) from None  # fmt: skip


def detect_dialect(
    raw: bytes,
    name: str = "file",
    *,
    separator: str | None = None,
    date_format: str | None = None,
) -> CsvDialect:
    """The dialect of ``raw`` (the file's bytes); declared values win over detection."""
    text, encoding = _decode(raw, name)
    header = text.splitlines()[0] if text else ""
    if separator is None:
        counts = {sep: header.count(sep) for sep in _SEPARATORS}
        best = max(counts, key=counts.__getitem__)
        if counts[best] == 0:
            separator = ","  # a one-column file
        elif sorted(counts.values())[-2] == counts[best]:
            raise InvalidInput("separator", name, "one of , ; or tab (declare it)")
        else:
            separator = best
    elif separator not in _SEPARATORS:
        raise InvalidInput("separator", separator, "',', ';' or tab")
    if date_format is None:
        date_format = "iso"
    elif date_format not in DATE_FORMATS:
        raise InvalidInput("date_format", date_format, ", ".join(DATE_FORMATS))
    comma = separator != "," and any(
        _DECIMAL_COMMA.match(v) for r in _rows(text, separator, name)[1:] for v in r
    )
    return CsvDialect(encoding, separator, comma, date_format)


def _rows(text: str, separator: str, name: str) -> list[list[str]]:
    """All rows of ``text``; a malformed row or an over-long cell is a located error."""
    reader = csv.reader(io.StringIO(text), delimiter=separator)
    try:
        return list(reader)
    except csv.Error as err:
        message = str(err)
        if "field larger than field limit" in message:
            message = f"a cell longer than {csv.field_size_limit():,} characters"
        raise InvalidInput(
            "row", str(err), "a well-formed CSV row", row=reader.line_num + 1, file=name,
            message=f"malformed CSV: {message}",
        ) from None  # fmt: skip


def normalise_text(raw: bytes, name: str, dialect: CsvDialect) -> str:
    """The file rewritten as canonical CSV: UTF-8 text, ``,``, decimal point, ISO dates.

    Raises
    ------
    InvalidInput
        A date-like value that does not match the declared format (row and column named).
    """
    text, _ = _decode(raw, name)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    pattern = DATE_FORMATS[dialect.date_format]
    for lineno, row in enumerate(_rows(text, dialect.separator, name), 1):
        if lineno > 1:
            fixed = []
            for col, value in enumerate(row, 1):
                v = value.strip()
                if dialect.decimal_comma and _DECIMAL_COMMA.match(v):
                    v = v.replace(",", ".")
                elif dialect.date_format != "iso" and _DATE_LIKE.match(v):
                    try:
                        v = dt.datetime.strptime(v, pattern).date().isoformat()
                    except ValueError:
                        raise InvalidInput(
                            "date",
                            value,
                            dialect.date_format,
                            message=f"{name} row {lineno} column {col}: date '{value}' is not "
                            f"{dialect.date_format}",
                        ) from None
                fixed.append(v if v != value.strip() else value)
            row = fixed
        writer.writerow(row)
    return out.getvalue()


def read_normalised(
    path: Path, *, separator: str | None = None, date_format: str | None = None
) -> str:
    """Detect (or take the declared) dialect of ``path`` and return canonical CSV text."""
    raw = path.read_bytes()
    return normalise_text(
        raw, path.name, detect_dialect(raw, path.name, separator=separator, date_format=date_format)
    )


def open_csv(
    path: Path, *, separator: str | None = None, date_format: str | None = None
) -> io.StringIO:
    """``path`` as canonical CSV text, ready for :mod:`csv` (the importer's one entry point).

    A UTF-8, comma-separated file is passed through as is; a Windows-1252 file, a ``;`` or
    tab separator and decimal commas are detected and rewritten; a declared ``separator`` or
    ``date_format`` (a key of :data:`DATE_FORMATS`) wins over detection. Dates stay as written
    unless a non-ISO ``date_format`` is declared: they are never guessed.
    """
    raw = path.read_bytes()
    d = detect_dialect(raw, path.name, separator=separator, date_format=date_format)
    if (
        d.encoding == "utf-8-sig"
        and d.separator == ","
        and not d.decimal_comma
        and (d.date_format == "iso")
    ):
        return io.StringIO(raw.decode("utf-8-sig"), newline="")
    return io.StringIO(normalise_text(raw, path.name, d), newline="")
