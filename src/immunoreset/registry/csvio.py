"""CSV import and export of whole registries (format documented in ``docs/import.md``).

One file per entity (``patients.csv``, ``labs.csv`` …), each row keyed by ``study_id``.
Import is all-or-nothing: every row of every file is parsed and validated first, and the first
error stops the import with the file, row, column, value and what was expected, before a single
row is written; the writes then happen in one transaction. Records are matched by natural key,
so importing the same files twice changes nothing, and ``export`` writes exactly what ``import``
reads, so export → import into an empty registry reproduces it.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Full, Queue
from typing import Any

from immunoreset import course as c
from immunoreset import vocab
from immunoreset.errors import ImmunoresetError, InvalidInput
from immunoreset.registry import fast, rules
from immunoreset.registry import schema as s
from immunoreset.registry.access import Actor
from immunoreset.registry.csvdialect import open_csv
from immunoreset.registry.db import write_transaction
from immunoreset.registry.repository import (
    ANALYZE_AFTER_ROWS,
    Registry,
    SaveStats,
    gc_paused,
)
from immunoreset.registry.rules import RuleViolation

__all__ = [
    "FILES",
    "ImportErrors",
    "ReadOptions",
    "build_record",
    "export_csv",
    "find_errors",
    "import_courses",
    "import_csv",
    "read_csv_dir",
    "write_csv",
]

#: Entity name -> file name, in import order.
FILES: dict[str, str] = {"patients": "patients.csv", **{n: f"{n}.csv" for n in s.ENTITIES}}
SITES_FILE = "sites.csv"

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


@dataclass(frozen=True)
class ParsedDir:
    """The validated content of an import folder."""

    sites: list[tuple[str, str]]
    courses: list[c.Course]
    rows: int


#: First characters a spreadsheet reads as a formula (or DDE command); a text cell starting with
#: one of them (or with the escape ``'`` itself) is written with a leading ``'``, which
#: spreadsheets show as text and the importer removes again (lossless round trip).
FORMULA_START = frozenset("=+-@\t\r'")


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How the import folder's files are written, when declared (else detected per file)."""

    separator: str | None = None
    date_format: str | None = None  # a key of csvdialect.DATE_FORMATS; None: ISO dates

    def open(self, path: Path) -> Any:
        return open_csv(path, separator=self.separator, date_format=self.date_format)


DETECT = ReadOptions()

#: At most this many problems are listed for one import (the count of all is given).
MAX_LISTED_ERRORS = 1_000


class ImportErrors(InvalidInput):
    """Every problem found in an import folder (``errors``), located by file, row and column.

    It reads as its first problem (and carries that problem's field, file, row and column),
    followed by how many more there are, so code that handles one error keeps working.
    """

    def __init__(self, errors: list[InvalidInput], total: int | None = None) -> None:
        first = errors[0]
        self.errors = errors
        self.total = total if total is not None else len(errors)
        more = self.total - 1
        suffix = f" (and {more:,} more problem{'s' if more != 1 else ''})" if more else ""
        super().__init__(
            first.field, first.value, first.allowed, row=first.row, column=first.column,
            file=first.file, message=first.message + suffix,
        )  # fmt: skip

    def __reduce__(self) -> tuple[Any, ...]:
        return (ImportErrors, (self.errors, self.total))


def neutralise_cell(text: str) -> str:
    """``'=HYPERLINK(…)`` for ``=HYPERLINK(…)``: a text cell no spreadsheet evaluates."""
    return "'" + text if text and text[0] in FORMULA_START else text


def restore_cell(text: str) -> str:
    """Undo :func:`neutralise_cell` (only a ``'`` followed by a formula character is removed)."""
    return text[1:] if len(text) > 1 and text[0] == "'" and text[1] in FORMULA_START else text


_OTHER_DATE = re.compile(r"^\d{1,2}[./-]\d{1,2}[./-]\d{2,4}$")


def _parse_value(kind: str, optional: bool, raw: str) -> Any:
    if kind in ("str", "tuple"):
        raw = restore_cell(raw)
    if raw == "":
        if optional:
            return None
        if kind == "tuple":
            return ()
        if kind == "mapping":
            return {}
        raise ValueError("a value (the cell is empty)")
    if kind == "date":
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            if _OTHER_DATE.match(raw):  # never guessed: dd/mm and mm/dd look alike
                raise ValueError(
                    "a date as YYYY-MM-DD (declare another format with --date-format, "
                    "e.g. dd/mm/yyyy)"
                ) from None
            raise ValueError("a date as YYYY-MM-DD") from None
    if kind == "float":
        try:
            return float(raw)
        except ValueError:
            raise ValueError("a number") from None
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise ValueError("a whole number") from None
    if kind == "bool":
        low = raw.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError("true or false")
    if kind == "str" and len(raw) > MAX_TEXT:
        raise ValueError(f"text of at most {MAX_TEXT} characters (got {len(raw):,})")
    if kind == "tuple":
        return tuple(x.strip() for x in raw.split(";") if x.strip())
    if kind == "mapping":
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            raise ValueError('a JSON object such as {"arthritis": 1}') from None
        if not isinstance(value, dict):
            raise ValueError('a JSON object such as {"arthritis": 1}')
        return value
    return raw


def _format_value(kind: str, value: Any) -> str:
    if value is None:
        return ""
    if kind == "date":
        return value.isoformat()
    if kind == "bool":
        return "true" if value else "false"
    if kind == "float":
        return repr(float(value))
    if kind == "tuple":
        return neutralise_cell(s.encode_tuple(value))
    if kind == "mapping":
        return s.encode_mapping(value)
    if kind == "str":
        return neutralise_cell(value)
    return str(value)


def _cells(reader: Iterator[list[str]], name: str) -> Iterator[list[str]]:
    """Rows of a csv reader; a malformed row or an over-long cell is a located error."""
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            line = getattr(reader, "line_num", None)
            text = str(err)
            if "field larger than field limit" in text:
                text = f"a cell longer than {MAX_CELL:,} characters"
            raise InvalidInput(
                "row", str(err), "a well-formed CSV row", row=line, file=name,
                message=f"malformed CSV: {text}",
            ) from None  # fmt: skip
        yield cells


def _check_cell(raw: str, column: str, lineno: int, name: str) -> None:
    if len(raw) > MAX_CELL:
        raise InvalidInput(
            column, raw[:40] + "…", f"at most {MAX_CELL:,} characters", row=lineno,
            column=column, file=name,
            message=f"cell of {len(raw):,} characters; at most {MAX_CELL:,} are accepted",
        )  # fmt: skip


def _read_rows(path: Path, opts: ReadOptions = DETECT) -> Iterator[tuple[int, dict[str, str]]]:
    csv.field_size_limit(MAX_CELL)
    with opts.open(path) as fh:
        rows = _cells(csv.reader(fh), path.name)
        header = next(rows, None)
        if header is None:
            return
        for i, cells in enumerate(rows, start=2):  # row 1 is the header
            if len(cells) > len(header):
                raise InvalidInput(
                    "row", cells[len(header) :], "no more cells than header columns", row=i,
                    file=path.name,
                )  # fmt: skip
            for col, raw in zip(header, cells, strict=False):
                _check_cell(raw, col, i, path.name)
            yield i, dict(zip(header, [*cells, *[""] * (len(header) - len(cells))], strict=True))


def _check_header(
    path: Path, expected: Iterable[str], optional: Iterable[str] = (), opts: ReadOptions = DETECT
) -> None:
    csv.field_size_limit(MAX_CELL)
    with opts.open(path) as fh:
        header = next(_cells(csv.reader(fh), path.name), [])
    missing = [col for col in expected if col not in header]
    if missing:
        raise InvalidInput(
            "header",
            missing[0],
            "the columns " + ", ".join(expected),
            row=1,
            column=missing[0],
            file=path.name,
            message=f"missing column {missing[0]!r}; expected columns: {', '.join(expected)}",
        )
    extra = [col for col in header if col not in (*expected, *optional)]
    if extra:
        raise InvalidInput(
            "header",
            extra[0],
            "only the columns " + ", ".join(expected),
            row=1,
            column=extra[0],
            file=path.name,
            message=f"unknown column {extra[0]!r}; expected columns: {', '.join(expected)}",
        )


def build_record(ent: s.Entity, row: Mapping[str, str], lineno: int, fname: str) -> Any:
    """One validated record from a row of text cells (column -> text), as the CSV import
    parses it; :class:`InvalidInput` names file, row, column and value. Shared with the
    REDCap importer so both read text values identically."""
    values: dict[str, Any] = {}
    for spec in ent.specs:
        raw = row.get(spec.name, "")
        raw = raw.strip() if raw is not None else ""
        try:
            values[spec.name] = _parse_value(spec.kind, spec.optional, raw)
        except ValueError as err:
            raise InvalidInput(
                spec.name, raw, str(err), row=lineno, column=spec.name, file=fname
            ) from None
    try:
        if (
            ent.record is c.LabResult
            and values["unit"] != vocab.ANALYTES.get(values["analyte"], ("",))[0]
        ):
            return c.LabResult.create(**values)
        return ent.record(**values)
    except InvalidInput as err:
        raise err.located(row=lineno, column=err.field.split(".")[0], file=fname) from None
    except TypeError as err:  # pragma: no cover - a missing column was caught by the header check
        raise InvalidInput("row", str(err), "a complete row", row=lineno, file=fname) from None


_BOOLS = {
    **{w: True for w in _TRUE},
    **{w: False for w in _FALSE},
    **{w.upper(): True for w in _TRUE},
    **{w.upper(): False for w in _FALSE},
    **{w.title(): True for w in _TRUE},
    **{w.title(): False for w in _FALSE},
}


_build = build_record


def _fast_parser(ent: s.Entity, header: list[str]) -> Callable[[list[str]], Any]:
    """A generated ``cells -> record`` function for the common, clean row.

    It converts each cell by its column kind and calls the record's validating constructor.
    Any exception sends the row to the precise path (:func:`_build`), which either handles
    it (lab units to convert, surrounding spaces) or raises the located error, so both paths
    accept and refuse exactly the same rows.
    """
    dates: dict[str, dt.date] = {}

    def _date(x: str) -> dt.date:
        d = dates.get(x)
        if d is None:
            d = dates[x] = dt.date.fromisoformat(x)
        return d

    def _opt(conv: Callable[[str], Any]) -> Callable[[str], Any]:
        return lambda x: None if x == "" else conv(x)

    clean: set[str] = set()  # texts already found clean (codes, units, names repeat)

    def _need(x: str) -> str:
        if x in clean:
            return x
        if x == "" or x != x.strip() or x[0] == "'" or len(x) > MAX_TEXT:
            raise ValueError("needs the precise path")
        if len(clean) < 100_000:
            clean.add(x)
        return x

    convs: dict[str, Callable[[str], Any]] = {
        "date": _date,
        "float": float,
        "int": int,
        "bool": _BOOLS.__getitem__,
        "str": _need,
        "tuple": lambda x: s.decode_tuple(restore_cell(x)),
        "mapping": lambda x: json.loads(x) if x else {},
    }
    scope: dict[str, Any] = {"_cls": ent.record}
    args = []
    for i, spec in enumerate(ent.specs):
        conv = convs[spec.kind]
        if spec.optional:
            conv = _opt(conv)
        scope[f"_c{i}"] = conv
        args.append(f"{spec.name}=_c{i}(v[{header.index(spec.name)}])")
    src = "def parse(v):\n    return _cls(" + ", ".join(args) + ")\n"
    exec(src, scope)  # generated from the entity's own field names only
    return scope["parse"]  # type: ignore[no-any-return]


def _collect(errors: list[InvalidInput] | None, err: InvalidInput) -> None:
    """Raise ``err`` (the import's first problem), or add it to ``errors`` (listing them all)."""
    if errors is None:
        raise err
    errors.append(err)


def _read_sites(
    folder: Path, opts: ReadOptions = DETECT, errors: list[InvalidInput] | None = None
) -> list[tuple[str, str]]:
    sites: list[tuple[str, str]] = []
    spath = folder / SITES_FILE
    if spath.exists():
        try:
            _check_header(spath, ("code", "name"), opts=opts)
            for lineno, row in _read_rows(spath, opts):
                try:
                    c._record_id("code", row["code"])
                except InvalidInput as err:
                    _collect(errors, err.located(row=lineno, column="code", file=SITES_FILE))
                    continue
                sites.append((row["code"], row["name"]))
        except InvalidInput as err:  # the file cannot be read further
            _collect(errors, err)
    return sites


def _read_patients(
    folder: Path, opts: ReadOptions = DETECT, errors: list[InvalidInput] | None = None
) -> dict[str, c.Patient]:
    ppath = folder / FILES["patients"]
    if not ppath.exists():
        _collect(
            errors, InvalidInput("patients.csv", str(ppath), "a patients.csv file in the folder")
        )
        return {}
    pent = s.PATIENT_ENTITY
    patients: dict[str, c.Patient] = {}
    try:
        _check_header(ppath, pent.columns, opts=opts)
        for lineno, row in _read_rows(ppath, opts):
            try:
                rec = _build(pent, row, lineno, ppath.name)
                if rec.study_id in patients:
                    raise InvalidInput(
                        "study_id", rec.study_id, "each study ID once", row=lineno,
                        column="study_id", file=ppath.name,
                    )  # fmt: skip
            except InvalidInput as err:
                _collect(errors, err)
                continue
            patients[rec.study_id] = rec
    except InvalidInput as err:  # the file cannot be read further
        _collect(errors, err)
    return patients


#: Longest cell accepted (characters); text fields are further limited by their column.
MAX_CELL = 10_000
#: Longest text of a ``str`` field (the database column is VARCHAR(200)).
MAX_TEXT = 200


def _check_bytes(path: Path) -> None:
    """Refuse a file that is not text (binary, UTF-16 …) with its row.

    Its encoding (UTF-8, or Windows-1252 from Excel; never a mix) is checked when it is read
    (:func:`.csvdialect.open_csv`).
    """
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InvalidInput(
            "file", path.name, "UTF-8 text", file=path.name, row=1,
            message="the file is UTF-16 encoded; save it as UTF-8 CSV",
        )  # fmt: skip
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InvalidInput(
            "file", path.name, "text", file=path.name, row=data.count(b"\n", 0, nul) + 1,
            message="binary data (a NUL byte) in a CSV file; export it again as UTF-8 CSV",
        )  # fmt: skip


def _check_folder(
    folder: str | Path, opts: ReadOptions = DETECT, errors: list[InvalidInput] | None = None
) -> Path:
    """The import folder: only known CSV files, each text with the expected header."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInput("folder", str(folder), "an existing folder of CSV files")
    from immunoreset.registry import csvextra

    known = {SITES_FILE, *FILES.values(), *csvextra.FILES}
    for path in sorted(folder.iterdir()):
        try:
            if path.name not in known:
                raise InvalidInput(
                    "file", path.name, "one of " + ", ".join(sorted(known)), file=path.name,
                    message=f"unknown file {path.name!r} in the import folder; the files read "
                    "are: " + ", ".join(sorted(known)),
                )  # fmt: skip
            if not path.is_file():
                raise InvalidInput("file", path.name, "a CSV file", file=path.name)
            _check_bytes(path)
            name = next((n for n, f in FILES.items() if f == path.name), None)
            if name in s.ENTITIES:
                _check_header(path, ("study_id", *s.ENTITIES[name].columns), opts=opts)
        except InvalidInput as err:
            _collect(errors, err)
    return folder


def _entity_batches(
    folder: Path,
    ent: s.Entity,
    patients: Mapping[str, c.Patient],
    batch_rows: int,
    opts: ReadOptions = DETECT,
    errors: list[InvalidInput] | None = None,
) -> Iterator[list[tuple[str, Any]]]:
    """Validated ``(study_id, record)`` rows of one entity file, in batches.

    The first invalid row raises; with ``errors`` every invalid row is added to it instead
    and the file is read to its end (or to a row the CSV reader cannot split).
    """
    path = folder / FILES[ent.name]
    if not path.exists():
        return
    seen: set[tuple[Any, ...]] = set()
    key_of = ent.key_of
    batch: list[tuple[str, Any]] = []
    csv.field_size_limit(MAX_CELL)
    try:
        with opts.open(path) as fh:
            reader = _cells(csv.reader(fh), path.name)
            header = next(reader)
            isid = header.index("study_id")
            width = len(header)
            parse = _fast_parser(ent, header)
            for lineno, cells in enumerate(reader, start=2):
                try:
                    sid, rec = _entity_row(ent, path.name, header, isid, width, parse, patients,
                                           cells, lineno)  # fmt: skip
                    key = key_of(rec) if ent.global_key else (sid, *key_of(rec))
                    if key in seen:
                        column = ent.key[0] if ent.key else "study_id"
                        raise InvalidInput(
                            column, list(key), f"one row per {', '.join(('study_id', *ent.key))}",
                            row=lineno, column=column, file=path.name,
                        )  # fmt: skip
                except InvalidInput as err:
                    _collect(errors, err)
                    continue
                seen.add(key)
                batch.append((sid, rec))
                if len(batch) >= batch_rows:
                    yield batch
                    batch = []
    except InvalidInput as err:  # a row the CSV reader cannot split: the file stops here
        _collect(errors, err)
    if batch:
        yield batch


def _entity_row(
    ent: s.Entity,
    name: str,
    header: list[str],
    isid: int,
    width: int,
    parse: Callable[[list[str]], Any],
    patients: Mapping[str, c.Patient],
    cells: list[str],
    lineno: int,
) -> tuple[str, Any]:
    """``(study_id, record)`` of one data row, or the located :class:`InvalidInput`."""
    if len(cells) != width:
        raise InvalidInput("row", len(cells), f"{width} cells like the header", row=lineno,
                           file=name)  # fmt: skip
    sid = cells[isid]
    if sid not in patients:
        sid = sid.strip()
        if sid not in patients:
            raise InvalidInput(
                "study_id", sid, "a study ID listed in patients.csv", row=lineno,
                column="study_id", file=name,
            )  # fmt: skip
    try:
        rec = parse(cells)
    except Exception:
        rec = _build(ent, dict(zip(header, cells, strict=True)), lineno, name)
    if ent.record is c.DailyAssessment and rec.is_blank:
        try:
            c.check_not_blank(rec)
        except InvalidInput as err:
            raise err.located(row=lineno, column="date", file=name) from None
    return sid, rec


def read_csv_dir(
    folder: str | Path,
    *,
    progress: Callable[[int], None] | None = None,
    opts: ReadOptions = DETECT,
) -> ParsedDir:
    """Parse and validate every file of an import folder into courses; nothing is written."""
    folder = _check_folder(folder, opts)
    sites = _read_sites(folder, opts)
    patients = _read_patients(folder, opts)
    nrows = len(patients)
    parts: dict[str, dict[str, list[Any]]] = {}
    with gc_paused():
        for name, ent in s.ENTITIES.items():
            grouped: dict[str, list[Any]] = defaultdict(list)
            parts[name] = grouped
            for batch in _entity_batches(folder, ent, patients, 100_000, opts):
                for sid, rec in batch:
                    grouped[sid].append(rec)
                nrows += len(batch)
            if progress:
                progress(1)
        courses = []
        for sid, patient in patients.items():
            kwargs: dict[str, Any] = {}
            for name, ent in s.ENTITIES.items():
                recs = parts[name].get(sid, [])
                kwargs[ent.course_attr] = tuple(recs) if ent.many else (recs[0] if recs else None)
            courses.append(c.Course(patient=patient, **kwargs))
    return ParsedDir(sites=sites, courses=courses, rows=nrows)


def find_errors(
    folder: str | Path, known_sites: Iterable[str] = (), *, opts: ReadOptions = DETECT
) -> list[InvalidInput]:
    """Every problem of an import folder that reading it can find, in file and row order.

    Unknown files, unreadable files and headers, every invalid cell or row, unknown study IDs
    and sites, duplicate keys — without touching a registry. The rules that need the stored
    records (chain of identity, release, site scope) are checked by the import itself.
    """
    errors: list[InvalidInput] = []
    path = _check_folder(folder, opts, errors)
    sites = _read_sites(path, opts, errors)
    patients = _read_patients(path, opts, errors)
    known = set(known_sites) | {code for code, _ in sites}
    for sid, p in patients.items():
        if p.site not in known:
            errors.append(_unknown_site(path, sid, p.site, opts))
    unreadable = {e.file for e in errors if e.row in (None, 1)}
    for ent in s.ENTITIES.values():
        if FILES[ent.name] in unreadable:
            continue  # its header (or the file) is the problem: its rows say nothing more
        for _ in _entity_batches(path, ent, patients, 100_000, opts, errors):
            pass
    return errors


def _unknown_site(folder: Path, sid: str, site: str, opts: ReadOptions) -> InvalidInput:
    return InvalidInput(
        "site", site, "a site of the registry or of sites.csv",
        file=FILES["patients"], column="site",
        row=_find_row(folder / FILES["patients"], {"study_id": sid}, opts),
        message=f"unknown site {site!r}; add it with `immunoreset site add` or list it "
        "in sites.csv",
    )  # fmt: skip


#: Imports with at least this many data rows parse in a separate process.
PROCESS_PARSE_ROWS = 200_000


class _CheckOnly(Exception):
    """Raised inside the import transaction of a check so that it rolls back."""


def import_csv(
    registry: Registry,
    actor: Actor,
    folder: str | Path,
    *,
    reason: str = "CSV import",
    progress: Callable[[int], None] | None = None,
    batch_rows: int = 50_000,
    parser: str = "auto",
    check: bool = False,
    opts: ReadOptions = DETECT,
) -> SaveStats:
    """Import a folder in one transaction: all of it, or — on any error — nothing (idempotent).

    Rows are parsed and validated while the previous batch is being written: in a separate
    process for big folders (``parser="process"``; the default ``"auto"`` chooses it from
    :data:`PROCESS_PARSE_ROWS` data rows), else in a thread. The parser sends rows already
    validated by the record constructors and encoded for the database, so the writing side
    only binds and inserts them (rows of patients already in the registry are rebuilt into
    records and compared field by field). An invalid row stops the writing and the
    transaction is rolled back; the folder is then read once more to list *every* problem
    (:class:`ImportErrors`: file, row, column, value and what was expected, at most
    :data:`MAX_LISTED_ERRORS`). A rule that needs the stored records (chain of identity,
    release, site scope) reports its first violation. ``check=True`` runs the whole import
    — every rule included — and rolls it back: the statistics say what it would write.
    ``opts`` declares the files' separator and date format (else detected; dates ISO).
    ``progress`` is called with the number of rows handled.
    """
    from immunoreset.errors import check_choice

    check_choice("parser", parser, ("auto", "thread", "process"))
    if not Path(folder).is_dir():
        raise InvalidInput("folder", str(folder), "an existing folder of CSV files")
    actor.require_write("import data")
    known = {code for code, _ in registry.list_sites()}
    try:
        path = _check_folder(folder, opts)
        sites = _read_sites(path, opts)
        patients = _read_patients(path, opts)
        for sid, p in patients.items():
            if p.site not in known and p.site not in {code for code, _ in sites}:
                raise _unknown_site(path, sid, p.site, opts)
        text = f"{reason}: {path.name}"
        return _import(
            registry, actor, path, sites, patients, text, parser, batch_rows, progress, check, opts
        )
    except ImportErrors:
        raise
    except RuleViolation as err:  # first: an implausible date is also an InvalidInput
        name = FILES.get(err.entity)
        if name is None or not (Path(folder) / name).exists():
            raise
        ent = s.ENTITIES[err.entity]
        match = {"study_id": err.study_id or "", **dict(zip(ent.key, err.key, strict=False))}
        row = _find_row(Path(folder) / name, match, opts)
        if row is None:
            raise
        raise err.located(file=name, row=row) from None
    except InvalidInput:
        errors = find_errors(folder, known, opts=opts)
        if len(errors) <= 1:
            raise  # one problem: it is the whole answer
        raise ImportErrors(errors[:MAX_LISTED_ERRORS], len(errors)) from None


def _find_row(path: Path, match: Mapping[str, Any], opts: ReadOptions = DETECT) -> int | None:
    """The line of the first row of ``path`` whose cells equal ``match`` (for error messages)."""
    if not path.exists():
        return None
    want = {k: str(v).strip() for k, v in match.items()}
    for lineno, row in _read_rows(path, opts):
        if all((row.get(k) or "").strip() == v for k, v in want.items()):
            return lineno
    return None


def _import(
    registry: Registry,
    actor: Actor,
    folder: Path,
    sites: list[tuple[str, str]],
    patients: dict[str, c.Patient],
    text: str,
    parser: str,
    batch_rows: int,
    progress: Callable[[int], None] | None,
    check: bool = False,
    opts: ReadOptions = DETECT,
) -> SaveStats:
    stats = SaveStats()
    if parser == "auto":
        size = sum(
            (folder / FILES[n]).stat().st_size for n in s.ENTITIES if (folder / FILES[n]).exists()
        )
        parser = "process" if size >= PROCESS_PARSE_ROWS * 60 else "thread"  # ~60 bytes a row
    try:
        with gc_paused(), write_transaction(registry.engine) as conn:
            dialect = conn.dialect.name
            before = registry.existing_study_ids(conn, patients)
            ids = registry.write_patients(conn, actor, list(patients.values()), sites, text, stats)
            if progress:
                progress(len(patients))
            with _batches(parser, folder, set(patients), dialect, batch_rows, opts) as batches:
                for ent, batch in batches:
                    new = [(ids[sid], *row) for sid, row, _ in batch if sid not in before]
                    texts = [a for sid, _, a in batch if sid not in before]
                    old = (
                        []
                        if len(new) == len(batch)
                        else [(sid, row) for sid, row, _ in batch if sid in before]
                    )
                    if ent.global_key:
                        new, old = [], [(sid, row) for sid, row, _ in batch]
                    if new:
                        registry.insert_new_rows(
                            conn, actor, ent, new, text, stats, audit_texts=texts
                        )
                    if old:
                        make = fast.record_maker(conn, ent, offset=0)
                        items = [(ids[sid], sid, make(row)) for sid, row in old]
                        registry.write_records(conn, actor, ent, items, text, stats)
                    if progress:
                        progress(len(batch))
            _import_extra(registry, conn, actor, folder, text, stats)
            if check:
                rules.enforce(conn)  # what the commit would check, then roll back
                raise _CheckOnly
    except _CheckOnly:
        return stats
    if stats.total_inserted >= ANALYZE_AFTER_ROWS:
        registry.analyze()
    return stats


def _import_extra(registry, conn, actor, folder, text, stats) -> None:  # type: ignore[no-untyped-def]
    """Accounts, GMP records and deleted records of the folder (:mod:`.csvextra`)."""
    from immunoreset.registry import csvextra

    csvextra.import_extra(registry, conn, actor, folder, text, stats)


def import_courses(
    registry: Registry,
    actor: Actor,
    courses: Iterable[c.Course],
    *,
    sites: Iterable[tuple[str, str]] = (),
    reason: str,
    progress: Callable[[int], None] | None = None,
) -> SaveStats:
    """Write already validated courses (built by another importer) in one transaction.

    The shared write path of the non-CSV importers (FHIR, REDCap): the same rules as
    :func:`import_csv` — the actor must be allowed to import, missing ``sites`` are added
    (admin only), each record is upserted by natural key with its audit row, and any error
    rolls the whole import back so nothing is written.
    """
    actor.require_write("import data")
    # write_transaction: the chain-of-identity, release and plausibility gate runs before commit
    with gc_paused(), write_transaction(registry.engine) as conn:
        registry.write_patients(conn, actor, [], list(sites), reason, SaveStats())
        stats = registry.save_courses(actor, courses, reason=reason, conn=conn, progress=progress)
    if stats.total_inserted >= ANALYZE_AFTER_ROWS:
        registry.analyze()
    return stats


def _encoded_batches(
    folder: Path, study_ids: set[str], dialect: str, batch_rows: int, opts: ReadOptions = DETECT
) -> Iterator[tuple[str, list[tuple[str, tuple[Any, ...], tuple[str, str]]]]]:
    """``(entity name, [(study_id, encoded row, (audit key, audit value)), …])`` batches of
    every entity file. The audit texts of each row (its record key and its JSON, what
    :func:`.fast.insert_audited` writes for a new row) are made here too, beside the writer in
    the parser process, so the writer only chains them."""
    patients = dict.fromkeys(study_ids)
    for ent in s.ENTITIES.values():
        encode = fast.row_encoder(dialect, ent)
        key_of = fast.key_text_maker(dialect, ent, offset=0)
        text_of = fast.audit_text_maker(dialect, ent, offset=0)
        for batch in _entity_batches(folder, ent, patients, batch_rows, opts):  # type: ignore[arg-type]
            rows = [(sid, encode(rec)) for sid, rec in batch]
            yield ent.name, [(sid, row, (key_of(sid, row), text_of(row))) for sid, row in rows]


def _die_with_parent(parent: int) -> None:
    """In the parser process: exit as soon as the importing process is gone (even SIGKILLed).

    Linux delivers SIGKILL on the parent's death (``prctl(PR_SET_PDEATHSIG)``); elsewhere, and
    as a second guard, a thread polls the parent id.
    """
    import os
    import signal
    import sys

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:  # pragma: no cover - no libc: the poll below still works
            pass
    if os.getppid() != parent:  # the parent died before the guard was set
        os._exit(1)

    def _watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=_watch, name="parent-watch", daemon=True).start()


def _parse_process(
    folder: str,
    study_ids: set[str],
    dialect: str,
    batch_rows: int,
    out: Any,
    stop: Any,
    parent: int | None = None,
    opts: ReadOptions = DETECT,
) -> None:
    """Entry point of the parser process: send batches, then None; or the error."""
    import gc

    if parent is not None:
        _die_with_parent(parent)
    gc.disable()
    try:
        for item in _encoded_batches(Path(folder), study_ids, dialect, batch_rows, opts):
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.2)
                    break
                except Full:
                    continue
            if stop.is_set():
                return
        out.put(None)
    except BaseException as err:
        out.put(err)


#: Seconds between checks that the parser is still alive while the writer waits for a batch.
_PARSER_POLL = 1.0


class ParserDied(ImmunoresetError):
    """The CSV import's parser ended without sending the whole folder (killed, out of memory).

    The writer stops waiting and the import transaction rolls back: nothing is written.
    """

    def __init__(self, exitcode: int | None) -> None:
        how = f" (exit code {exitcode})" if exitcode is not None else ""
        super().__init__(
            f"the CSV import's parser process ended unexpectedly{how}; nothing was imported — "
            "run the import again (if the machine ran out of memory, free some first)"
        )


@contextmanager
def _batches(
    parser: str,
    folder: Path,
    study_ids: set[str],
    dialect: str,
    batch_rows: int,
    opts: ReadOptions = DETECT,
) -> Iterator[Iterator[tuple[s.Entity, list[tuple[str, tuple[Any, ...], Any]]]]]:
    """Batches from a parser running beside the writer (a thread or a spawned process)."""
    if parser == "process":
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # never fork a process holding DB sockets
        queue: Any = ctx.Queue(maxsize=4)
        stop: Any = ctx.Event()
        worker: Any = ctx.Process(
            target=_parse_process,
            args=(str(folder), study_ids, dialect, batch_rows, queue, stop, os.getpid(), opts),
            name="csv-import-parser",
            daemon=True,
        )
    else:
        queue = Queue(maxsize=4)
        stop = threading.Event()
        worker = threading.Thread(
            target=_parse_process,
            args=(str(folder), study_ids, dialect, batch_rows, queue, stop, None, opts),
            name="csv-import-parser",
            daemon=True,
        )
    worker.start()

    def items() -> Iterator[tuple[s.Entity, list[tuple[str, tuple[Any, ...], Any]]]]:
        while True:
            try:
                item = queue.get(timeout=_PARSER_POLL)
            except Empty:
                if worker.is_alive():
                    continue
                try:  # it may have sent its last batch just before ending
                    item = queue.get(timeout=_PARSER_POLL)
                except Empty:
                    raise ParserDied(getattr(worker, "exitcode", None)) from None
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            name, batch = item
            yield s.ENTITIES[name], batch

    try:
        yield items()
    finally:
        stop.set()
        if parser == "process":
            while worker.is_alive():  # drain so the worker can exit
                try:
                    queue.get(timeout=0.1)
                except Exception:
                    worker.join(timeout=0.1)
            worker.join()
            queue.close()
        else:
            worker.join(timeout=10)


def export_csv(
    registry: Registry,
    actor: Actor,
    folder: str | Path,
    *,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Write every visible course to ``folder`` in the import format; returns rows per file.

    An admin's export also holds the accounts (never their credentials), the GMP records and the
    soft-deleted records (:mod:`.csvextra`), so export → import reproduces the registry.
    """
    sites = [(code, name) for code, name in registry.list_sites() if actor.can_see_site(code)]
    counts = write_csv(registry.iter_courses(actor, progress=progress), folder, sites=sites)
    return {**counts, **_export_extra(registry, actor, Path(folder))}


def _export_extra(registry: Registry, actor: Actor, folder: Path) -> dict[str, int]:
    """Accounts, GMP records and deleted records (:mod:`.csvextra`); keyed by file name."""
    from immunoreset.registry import csvextra

    with registry.engine.connect() as conn:
        return csvextra.export_extra(conn, actor, folder)


def write_csv(
    courses: Iterable[c.Course],
    folder: str | Path,
    *,
    sites: Iterable[tuple[str, str]] = (),
) -> dict[str, int]:
    """Write courses (and sites) to ``folder`` in the import format; returns rows per file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    with (folder / SITES_FILE).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["code", "name"])
        for code, name in sites:
            w.writerow([code, name])
    handles = {}
    writers = {}
    try:
        for name in FILES:
            fh = (folder / FILES[name]).open("w", newline="", encoding="utf-8")
            handles[name] = fh
            writers[name] = csv.writer(fh)
            ent = s.PATIENT_ENTITY if name == "patients" else s.ENTITIES[name]
            header = list(ent.columns) if name == "patients" else ["study_id", *ent.columns]
            writers[name].writerow(header)
            counts[name] = 0
        pent = s.PATIENT_ENTITY
        for co in courses:
            writers["patients"].writerow(
                [_format_value(sp.kind, getattr(co.patient, sp.name)) for sp in pent.specs]
            )
            counts["patients"] += 1
            sid = co.study_id
            for name, ent in s.ENTITIES.items():
                value = getattr(co, ent.course_attr)
                recs = value if ent.many else ((value,) if value is not None else ())
                w = writers[name]
                specs = ent.specs
                for r in recs:
                    w.writerow(
                        [sid, *(_format_value(sp.kind, getattr(r, sp.name)) for sp in specs)]
                    )
                counts[name] += len(recs)
    finally:
        for fh in handles.values():
            fh.close()
    return counts
