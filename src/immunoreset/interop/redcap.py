"""REDCap: a data dictionary, records in REDCap's flat CSV format, and their import.

The dictionary has one instrument per CRF (:data:`FORMS`): ``enrolment`` and ``follow_up``
once per record, every other instrument *repeating* (one instance per record of the course:
each lab, each day's CRS/ICANS assessment …). Fields are generated from the registry's record
types (:mod:`immunoreset.registry.schema`), so a field added to a record appears here; their
REDCap validation types and ranges come from the record constructors' constraints
(:data:`RANGES`, checked against the constructors by the tests) and their choices from
:mod:`immunoreset.vocab` (:data:`CHOICES`; numeric codes ``1, 2, …``, labels the words).

Records are written as the REDCap API / PyCap flat export returns them: ``record_id``,
``redcap_repeat_instrument``, ``redcap_repeat_instance``, the fields in dictionary order
(checkboxes as ``field___code``) and ``<form>_complete``; raw codes or labels.

The import reads such an export (raw or labels, UTF-8 or the Windows code page Excel writes,
with or without ``redcap_event_name`` / ``redcap_data_access_group``), parses each value with
the CSV importer's parser and validating record constructors, and writes through the shared
import path (:func:`immunoreset.registry.csvio.import_courses`): all of it or nothing; every
problem is listed with record, instrument, instance, field and value.

To add a record type (infections, IgG, IVIG, follow-up visits, IEC-HS): add a :class:`Form`
to :data:`FORMS` (and its ranges/choices to :data:`RANGES` / :data:`CHOICES`).
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from immunoreset import course as c
from immunoreset import vocab
from immunoreset.errors import ImportRefused, InvalidInput, check_choice
from immunoreset.registry import schema as s

__all__ = [
    "CHOICES",
    "DICTIONARY_COLUMNS",
    "FORMS",
    "RANGES",
    "Form",
    "data_dictionary",
    "export_redcap",
    "import_redcap",
    "read_records",
    "record_rows",
    "write_dictionary",
    "write_records",
]

#: The 18 columns of a REDCap data dictionary, in order.
DICTIONARY_COLUMNS: tuple[str, ...] = (
    "Variable / Field Name",
    "Form Name",
    "Section Header",
    "Field Type",
    "Field Label",
    "Choices, Calculations, OR Slider Labels",
    "Field Note",
    "Text Validation Type OR Show Slider Number",
    "Text Validation Min",
    "Text Validation Max",
    "Identifier?",
    "Branching Logic (Show field only if...)",
    "Required Field?",
    "Custom Alignment",
    "Question Number (surveys only)",
    "Matrix Group Name",
    "Matrix Ranking?",
    "Field Annotation",
)
#: The API's snake_case names of the same columns (metadata export).
API_COLUMNS: tuple[str, ...] = (
    "field_name",
    "form_name",
    "section_header",
    "field_type",
    "field_label",
    "select_choices_or_calculations",
    "field_note",
    "text_validation_type_or_show_slider_number",
    "text_validation_min",
    "text_validation_max",
    "identifier",
    "branching_logic",
    "required_field",
    "custom_alignment",
    "question_number",
    "matrix_group_name",
    "matrix_ranking",
    "field_annotation",
)
RECORD_ID = "record_id"
REPEAT_INSTRUMENT = "redcap_repeat_instrument"
REPEAT_INSTANCE = "redcap_repeat_instance"
#: Columns REDCap adds to an export that the import accepts and ignores.
IGNORED_COLUMNS = ("redcap_event_name", "redcap_data_access_group", "redcap_survey_identifier")


@dataclass(frozen=True)
class Form:
    """A REDCap instrument: the registry entity it holds and its field-name prefix."""

    name: str
    label: str
    entity: str  # "patients" for enrolment
    prefix: str
    repeating: bool = True

    @property
    def ent(self) -> s.Entity:
        return s.PATIENT_ENTITY if self.entity == "patients" else s.ENTITIES[self.entity]

    def field_name(self, column: str) -> str:
        if self.entity == "patients":
            return RECORD_ID if column == "study_id" else column
        return column if column.startswith(self.prefix) else self.prefix + column


#: The instruments, in CRF order.
FORMS: tuple[Form, ...] = (
    Form("enrolment", "Enrolment", "patients", "", repeating=False),
    Form("body_measurements", "Body measurements", "anthropometrics", "bm_"),
    Form("apheresis", "Apheresis", "apheresis", "aph_"),
    Form("manufacturing", "Manufacturing batch", "batches", "mb_"),
    Form("product_bag", "Drug-product bag", "bags", "bag_"),
    Form("lymphodepletion", "Lymphodepletion", "lymphodepletion", "ld_"),
    Form("infusion", "CAR T infusion", "infusions", "inf_"),
    Form("daily_crs_icans", "Daily CRS / ICANS assessment", "daily_assessments", "da_"),
    Form("labs", "Laboratory result", "labs", "lab_"),
    Form("disease_scores", "Disease activity score", "disease_assessments", "ds_"),
    Form("medications", "Medication", "medications", "med_"),
    Form("adverse_events", "Adverse event", "adverse_events", "ae_"),
    Form("infections", "Infection", "infections", "ifx_"),
    Form("ltfu_visits", "Long-term follow-up visit", "followup_visits", "ltfu_"),
    Form("follow_up", "Follow-up", "followup", "fu_", repeating=False),
)
_FORMS = {f.name: f for f in FORMS}
#: Extra enrolment field: the site's display name (so an import can create the site).
SITE_NAME = "site_name"

#: (entity, field) -> (min, max) of the record constructors in :mod:`immunoreset.course`.
RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("patients", "birth_year"): (1900, 2100),
    ("patients", "birth_month"): (1, 12),
    ("patients", "prior_therapy_lines"): (0, 30),
    ("anthropometrics", "weight_kg"): (1, 250),
    ("anthropometrics", "height_cm"): (40, 230),
    ("apheresis", "cd3_cells"): (0, 1e12),
    ("apheresis", "volume_ml"): (0, 2000),
    ("bags", "car_t_cells"): (0, 1e11),
    ("bags", "volume_ml"): (0, 1000),
    ("lymphodepletion", "dose_mg_m2"): (0, 3000),
    ("infusions", "dose_cells_per_kg"): (0, 1e9),
    ("daily_assessments", "temperature_max_c"): (25, 45),
    ("daily_assessments", "oxygen_flow_l_min"): (0, 80),
    ("daily_assessments", "ice_score"): (0, 10),
    ("daily_assessments", "capd_score"): (0, 32),
    ("labs", "value"): (0, max(v[1] for v in vocab.ANALYTES.values())),
    ("labs", "lloq"): (0, max(v[1] for v in vocab.ANALYTES.values())),
    ("disease_assessments", "score"): (0, max(v[1] for v in vocab.INSTRUMENTS.values())),
    ("medications", "dose"): (0, 100_000),
    ("adverse_events", "grade"): (1, 5),
    ("infections", "ctcae_grade"): (1, 5),
}

#: (entity, field) -> the allowed words (dropdown; checkbox for tuple fields).
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("patients", "sex"): vocab.SEXES,
    ("patients", "diagnosis"): tuple(vocab.DIAGNOSES),
    ("batches", "status"): c.BATCH_STATUS,
    ("bags", "status"): c.BAG_STATUS,
    ("lymphodepletion", "drug"): c.LYMPHODEPLETION_DRUGS,
    ("daily_assessments", "vasopressors"): vocab.VASOPRESSORS,
    ("daily_assessments", "oxygen_device"): vocab.OXYGEN_DEVICES,
    ("daily_assessments", "consciousness"): vocab.CONSCIOUSNESS,
    ("daily_assessments", "seizure"): vocab.SEIZURE,
    ("daily_assessments", "cerebral_edema"): vocab.CEREBRAL_EDEMA,
    ("labs", "analyte"): tuple(vocab.ANALYTES),
    ("disease_assessments", "instrument"): tuple(vocab.INSTRUMENTS),
    ("medications", "drug_class"): vocab.MEDICATION_CLASSES,
    ("medications", "dose_unit"): c.DOSE_UNITS,
    ("adverse_events", "category"): vocab.AE_CATEGORIES,
    ("followup", "status"): vocab.FOLLOWUP_STATUS,
    ("infections", "site"): c.INFECTION_SITES,
    ("infections", "organism_class"): vocab.ORGANISM_CLASSES,
    ("infections", "bmtctn_severity"): vocab.BMTCTN_SEVERITY,
    ("followup_visits", "contact"): ("visit", "remote"),
    ("followup_visits", "items"): vocab.LTFU_ITEMS,
}

#: Units shown as field notes.
_NOTES: dict[tuple[str, str], str] = {
    ("anthropometrics", "weight_kg"): "kg",
    ("anthropometrics", "height_cm"): "cm",
    ("apheresis", "cd3_cells"): "CD3+ cells collected",
    ("apheresis", "volume_ml"): "mL",
    ("bags", "car_t_cells"): "CAR+ T cells",
    ("bags", "volume_ml"): "mL",
    ("bags", "bag_id"): "",
    ("lymphodepletion", "dose_mg_m2"): "mg/m²",
    ("infusions", "dose_cells_per_kg"): "CAR+ T cells/kg",
    ("infusions", "bag_ids"): "bag IDs separated by ;",
    ("daily_assessments", "temperature_max_c"): "°C, the day's maximum",
    ("daily_assessments", "oxygen_flow_l_min"): "L/min",
    ("labs", "unit"): "canonical unit of the analyte, or a convertible one (10^9/L, mg/L …)",
    ("disease_assessments", "items"): 'JSON object of item scores, e.g. {"arthritis": 4}',
    ("patients", "birth_year"): "year only (pseudonymous)",
    ("patients", "birth_month"): "month only (pseudonymous)",
}
_IDENTIFIERS = {("patients", "birth_year"), ("patients", "birth_month")}
_COMPLETE = "2"  # REDCap's "Complete" status


def _label(word: str) -> str:
    return word.replace("_", " ")


def _choices_text(words: Sequence[str]) -> str:
    return " | ".join(f"{i}, {_label(w)}" for i, w in enumerate(words, start=1))


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


@dataclass(frozen=True)
class _Field:
    """One REDCap field of a form, mapped to a record column."""

    form: Form
    name: str
    column: str  # record field; "" for site_name
    kind: str
    optional: bool
    choices: tuple[str, ...] = ()

    @property
    def checkbox(self) -> bool:
        return self.kind == "tuple" and bool(self.choices)

    def columns(self) -> list[str]:
        """Export columns: one per checkbox option, else the field name."""
        if self.checkbox:
            return [f"{self.name}___{i}" for i in range(1, len(self.choices) + 1)]
        return [self.name]


def _fields() -> list[_Field]:
    out = []
    for form in FORMS:
        ent = form.ent
        for spec in ent.specs:
            key = (form.entity, spec.name)
            out.append(
                _Field(
                    form,
                    form.field_name(spec.name),
                    spec.name,
                    spec.kind,
                    spec.optional,
                    CHOICES.get(key, ()),
                )
            )
            if form.entity == "patients" and spec.name == "site":
                out.append(_Field(form, SITE_NAME, "", "str", True))
    return out


FIELDS: tuple[_Field, ...] = tuple(_fields())
_BY_NAME = {f.name: f for f in FIELDS}
_BY_COLUMN = {col: f for f in FIELDS for col in f.columns()}


# --------------------------------------------------------------------------- dictionary
def data_dictionary() -> list[dict[str, str]]:
    """The data dictionary as rows of the 18 REDCap columns."""
    rows = []
    for f in FIELDS:
        key = (f.form.entity, f.column)
        row = dict.fromkeys(DICTIONARY_COLUMNS, "")
        row["Variable / Field Name"] = f.name
        row["Form Name"] = f.form.name
        label = _label(f.column or SITE_NAME).capitalize()
        row["Field Label"] = "Study ID" if f.name == RECORD_ID else label
        row["Field Note"] = _NOTES.get(key, "")
        if f.choices:
            row["Field Type"] = "checkbox" if f.checkbox else "dropdown"
            row["Choices, Calculations, OR Slider Labels"] = _choices_text(f.choices)
        elif f.kind == "bool":
            row["Field Type"] = "yesno"
        elif f.kind in ("tuple", "mapping"):
            row["Field Type"] = "notes"
        else:
            row["Field Type"] = "text"
            validation = {"date": "date_ymd", "float": "number", "int": "integer"}.get(f.kind)
            if validation:
                row["Text Validation Type OR Show Slider Number"] = validation
            if key in RANGES:
                lo, hi = RANGES[key]
                row["Text Validation Min"] = _num(lo)
                row["Text Validation Max"] = _num(hi)
        row["Identifier?"] = "y" if key in _IDENTIFIERS else ""
        row["Required Field?"] = "" if f.optional or f.kind in ("bool", "tuple") else "y"
        row["Field Annotation"] = (
            f"@immunoreset:{f.form.entity}.{f.column}" if f.column else "@immunoreset:sites.name"
        )
        rows.append(row)
    return rows


def write_dictionary(path: str | Path) -> int:
    """Write the data dictionary CSV (UTF-8); returns the number of fields."""
    rows = data_dictionary()
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=DICTIONARY_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return len(rows)


# --------------------------------------------------------------------------- records out
def record_columns() -> list[str]:
    """Header of a records export: keys, fields in dictionary order, ``<form>_complete``."""
    cols = [RECORD_ID, REPEAT_INSTRUMENT, REPEAT_INSTANCE]
    for form in FORMS:
        cols += [
            col for f in FIELDS if f.form is form and f.name != RECORD_ID for col in f.columns()
        ]
        cols.append(f"{form.name}_complete")
    return cols


def _format(f: _Field, value: Any, labels: bool) -> dict[str, str]:
    if f.checkbox:
        chosen = set(value)
        return {
            col: (
                ("Checked" if w in chosen else "Unchecked")
                if labels
                else ("1" if w in chosen else "0")
            )
            for col, w in zip(f.columns(), f.choices, strict=True)
        }
    if value is None:
        return {f.name: ""}
    if f.choices:
        return {f.name: _label(value) if labels else str(f.choices.index(value) + 1)}
    if f.kind == "bool":
        return {f.name: ("Yes" if value else "No") if labels else ("1" if value else "0")}
    if f.kind == "date":
        return {f.name: value.isoformat()}
    if f.kind == "float":
        return {f.name: repr(float(value))}
    if f.kind == "tuple":
        return {f.name: s.encode_tuple(value)}
    if f.kind == "mapping":
        return {f.name: s.encode_mapping(value) if value else ""}
    return {f.name: str(value)}


_FORM_FIELDS = {form.name: [f for f in FIELDS if f.form is form] for form in FORMS}


def record_rows(
    courses: Iterable[c.Course],
    *,
    sites: Mapping[str, str] | None = None,
    labels: bool = False,
) -> Iterable[dict[str, str]]:
    """Rows of a flat records export (raw codes, or labels), one record per course."""
    names = sites or {}
    complete = "Complete" if labels else _COMPLETE
    for co in courses:
        sid = co.study_id
        base: dict[str, str] = {RECORD_ID: sid, REPEAT_INSTRUMENT: "", REPEAT_INSTANCE: ""}
        for f in _FORM_FIELDS["enrolment"]:
            if f.name == SITE_NAME:
                base[SITE_NAME] = names.get(co.patient.site, co.patient.site)
            elif f.name != RECORD_ID:
                base.update(_format(f, getattr(co.patient, f.column), labels))
        base["enrolment_complete"] = complete
        if co.followup is not None:
            for f in _FORM_FIELDS["follow_up"]:
                base.update(_format(f, getattr(co.followup, f.column), labels))
            base["follow_up_complete"] = complete
        yield base
        for form in FORMS:
            if not form.repeating:
                continue
            recs = getattr(co, form.ent.course_attr)
            ffs = _FORM_FIELDS[form.name]
            for i, rec in enumerate(recs, start=1):
                row = {RECORD_ID: sid, REPEAT_INSTRUMENT: form.name, REPEAT_INSTANCE: str(i)}
                for f in ffs:
                    row.update(_format(f, getattr(rec, f.column), labels))
                row[f"{form.name}_complete"] = complete
                yield row


_NEEDS_QUOTES = re.compile(r'[",\r\n]')


def _q(text: str) -> str:
    """One CSV cell as :mod:`csv` writes it (excel dialect, minimal quoting)."""
    if _NEEDS_QUOTES.search(text) is None:
        return text
    return '"' + text.replace('"', '""') + '"'


def _cell_writer(f: _Field, labels: bool) -> Callable[[Any], str]:
    """value -> the field's CSV text (its cells joined by commas), as :func:`_format` + csv."""
    if f.checkbox:
        on, off = ("Checked", "Unchecked") if labels else ("1", "0")
        choices = f.choices

        def checkbox(value: Any) -> str:
            chosen = set(value)
            return ",".join(on if w in chosen else off for w in choices)

        return checkbox
    if f.choices:
        table = {w: (_q(_label(w)) if labels else str(i)) for i, w in enumerate(f.choices, start=1)}
        return lambda v: "" if v is None else table[v]
    if f.kind == "bool":
        yes, no = ("Yes", "No") if labels else ("1", "0")
        return lambda v: "" if v is None else (yes if v else no)
    if f.kind == "date":
        return lambda v: "" if v is None else v.isoformat()
    if f.kind == "float":
        return lambda v: "" if v is None else repr(float(v))
    if f.kind == "int":
        return lambda v: "" if v is None else str(v)
    if f.kind == "tuple":
        return lambda v: "" if v is None else _q(s.encode_tuple(v))
    if f.kind == "mapping":
        return lambda v: _q(s.encode_mapping(v)) if v else ""
    return lambda v: "" if v is None else _q(str(v))


def _row_writer(form: Form, cols: Sequence[str], labels: bool) -> Callable[[str, int, Any], str]:
    """(quoted study ID, instance, record) -> the CSV line of one repeating instance.

    The instrument's cells are contiguous in the header, so a line is the keys, a run of
    empty cells, the instrument's cells, ``<form>_complete`` and another run of empty cells.
    """
    ffs = _FORM_FIELDS[form.name]
    first = cols.index(ffs[0].columns()[0])
    done = cols.index(f"{form.name}_complete")
    before = "," * (first - 3)
    after = "," * (len(cols) - done - 1)
    getters = [(f.column, _cell_writer(f, labels)) for f in ffs]
    tail = ("Complete" if labels else _COMPLETE) + after + "\r\n"
    name = _q(form.name)

    def line(sid: str, i: int, rec: Any) -> str:
        cells = ",".join([fmt(getattr(rec, col)) for col, fmt in getters])
        return f"{sid},{name},{i},{before}{cells},{tail}"

    return line


def _single_writer(
    cols: Sequence[str], labels: bool, sites: Mapping[str, str]
) -> Callable[[c.Course], str]:
    """course -> the CSV line of its non-repeating instruments (enrolment, follow-up)."""
    index = {col: i for i, col in enumerate(cols)}
    single = {
        form.name: [(f, _cell_writer(f, labels)) for f in _FORM_FIELDS[form.name]]
        for form in FORMS
        if not form.repeating
    }
    complete = "Complete" if labels else _COMPLETE

    def line(co: c.Course) -> str:
        base = [""] * len(cols)
        base[0] = _q(co.study_id)
        for f, fmt in single["enrolment"]:
            if f.name == SITE_NAME:
                base[index[SITE_NAME]] = _q(sites.get(co.patient.site, co.patient.site))
            elif f.name != RECORD_ID:
                base[index[f.columns()[0]]] = fmt(getattr(co.patient, f.column))
        base[index["enrolment_complete"]] = complete
        if co.followup is not None:
            for f, fmt in single["follow_up"]:
                base[index[f.columns()[0]]] = fmt(getattr(co.followup, f.column))
            base[index["follow_up_complete"]] = complete
        return ",".join(base) + "\r\n"

    return line


def write_records(
    courses: Iterable[c.Course],
    path: str | Path,
    *,
    sites: Mapping[str, str] | None = None,
    labels: bool = False,
    encoding: str = "utf-8",
) -> int:
    """Write the flat records CSV; returns the number of records (courses).

    The same bytes as :func:`record_rows` through :class:`csv.DictWriter` (tested), written
    line by line from per-instrument templates: a records export is ≈ 120 columns wide and
    each repeating line fills only one instrument's. (The export reads the repeating
    instruments column-wise instead, :mod:`immunoreset.interop._redcap_columns`: the same
    bytes, tested.)
    """
    from immunoreset.registry.repository import gc_paused

    cols = record_columns()
    repeating = [
        (form.ent.course_attr, _row_writer(form, cols, labels)) for form in FORMS if form.repeating
    ]
    single = _single_writer(cols, labels, sites or {})
    n = 0
    with gc_paused(), Path(path).open("w", newline="", encoding=encoding) as fh:
        fh.write(",".join(_q(col) for col in cols) + "\r\n")
        write = fh.write
        for co in courses:
            n += 1
            sid = _q(co.study_id)
            lines = [single(co)]
            for attr, line in repeating:
                lines += [line(sid, i, rec) for i, rec in enumerate(getattr(co, attr), start=1)]
            write("".join(lines))
    return n


def export_redcap(
    registry: Any,
    actor: Any,
    out: str | Path,
    *,
    labels: bool = False,
    study_ids: Sequence[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write ``dictionary.csv`` and ``records.csv`` of the visible courses; audited export.

    The courses are loaded for the actor (site scope) without their repeating records, which
    are read column-wise for exactly those patients
    (:mod:`immunoreset.interop._redcap_columns`; the same bytes as :func:`write_records`)."""
    from immunoreset.interop._redcap_columns import REPEATING, write_records_columns
    from immunoreset.registry.repository import gc_paused

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    sites = dict(registry.list_sites())
    nfields = write_dictionary(folder / "dictionary.csv")
    with gc_paused():
        courses = list(
            registry.iter_courses(actor, study_ids=study_ids, progress=progress, skip=REPEATING)
        )
        write_records_columns(registry, courses, folder / "records.csv", sites=sites, labels=labels)
    done = [co.study_id for co in courses]
    registry.record_export(
        actor, "redcap", str(folder), done, detail={"labels": labels, "pseudonymised": True}
    )
    return {"fields": nfields, "records": len(done)}


# --------------------------------------------------------------------------- records in
def _read_text(path: Path, encoding: str | None) -> tuple[str, str]:
    """The file's text and the encoding used: UTF-8 (with or without BOM), else cp1252."""
    data = path.read_bytes()
    tried = [encoding] if encoding else ["utf-8-sig", "cp1252"]
    for enc in tried:
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    raise InvalidInput(
        "encoding", encoding or "utf-8 / cp1252", "the file's text encoding", file=path.name
    )


def _decoder(f: _Field, dictionary: Mapping[str, dict[str, str]] | None) -> dict[str, str]:
    """Raw code or label -> word, for a choice field (the site's dictionary codes if given)."""
    out = {}
    for i, w in enumerate(f.choices, start=1):
        out[str(i)] = w
        out[_label(w)] = w
        out[w] = w
    if dictionary and f.name in dictionary:
        for code, label in dictionary[f.name].items():
            word = out.get(label.strip()) or out.get(label.strip().replace(" ", "_"))
            if word is not None:
                out[code] = word
    return out


def read_dictionary(path: str | Path, *, encoding: str | None = None) -> dict[str, dict[str, str]]:
    """A site's data dictionary (file columns or the API's snake_case names): field ->
    {code: label}; refuses a dictionary with fields this registry does not know."""
    p = Path(path)
    text, _ = _read_text(p, encoding)
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    if tuple(header[:2]) == API_COLUMNS[:2]:
        names = API_COLUMNS
    elif tuple(header[:2]) == DICTIONARY_COLUMNS[:2]:
        names = DICTIONARY_COLUMNS
    else:
        raise InvalidInput(
            "header", header[:2], "a REDCap data dictionary (18 columns)", row=1, file=p.name
        )
    out: dict[str, dict[str, str]] = {}
    errors = []
    for lineno, cells in enumerate(reader, start=2):
        if not cells:
            continue
        if len(cells) < 6:  # up to the choices column: a cut row, never guessed
            errors.append(
                InvalidInput(
                    "row",
                    len(cells),
                    f"{len(names)} cells like the header",
                    row=lineno,
                    file=p.name,
                )
            )
            continue
        row = dict(zip(names, cells, strict=False))
        name = row[names[0]]
        if name not in _BY_NAME:
            errors.append(
                InvalidInput(
                    "field",
                    name,
                    "a field of the immunoreset dictionary",
                    row=lineno,
                    column=names[0],
                    file=p.name,
                    message=f"field {name!r} (form {row[names[1]]!r}) is not in the immunoreset "
                    "data dictionary",
                )
            )
            continue
        choices = row[names[5]]
        out[name] = {}
        for part in choices.split("|") if choices else ():
            code, _, label = part.partition(",")
            out[name][code.strip()] = label.strip()
    if errors:
        raise ImportRefused(errors, what="REDCap dictionary")
    return out


@dataclass(frozen=True)
class ParsedRecords:
    """The courses of a records export, validated; nothing written yet."""

    courses: list[c.Course]
    sites: list[tuple[str, str]]
    encoding: str
    rows: int


def read_records(
    path: str | Path,
    *,
    dictionary: str | Path | None = None,
    encoding: str | None = None,
) -> ParsedRecords:
    """Parse and validate a REDCap flat records export; raise :class:`ImportRefused` listing
    every problem (record, instrument, instance, field, value)."""
    from immunoreset.registry.repository import gc_paused

    with gc_paused():
        return _read_records(Path(path), dictionary, encoding)


def _read_records(p: Path, dictionary: str | Path | None, encoding: str | None) -> ParsedRecords:
    from immunoreset.registry.csvio import build_record

    codes = read_dictionary(dictionary) if dictionary is not None else None
    text, used = _read_text(p, encoding)
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    errors: list[InvalidInput] = []
    fname = p.name

    def err(
        lineno: int,
        record: str,
        form: str,
        inst: str,
        field_: str,
        value: Any,
        message: str,
        allowed: str = "",
    ) -> None:
        where = f"record {record}"
        if form:
            where += f", instrument {form}" + (f" #{inst}" if inst else "")
        errors.append(
            InvalidInput(
                field_,
                value,
                allowed or message,
                row=lineno,
                column=field_,
                file=fname,
                message=f"{where}, field {field_}: {message}",
            )
        )

    if RECORD_ID not in header:
        raise ImportRefused(
            [InvalidInput("header", header[:3], f"a {RECORD_ID} column", row=1, file=fname)],
            what="REDCap import",
        )
    known = set(_BY_COLUMN) | {RECORD_ID, REPEAT_INSTRUMENT, REPEAT_INSTANCE, *IGNORED_COLUMNS}
    known |= {f"{form.name}_complete" for form in FORMS}
    unknown = [h for h in header if h not in known]
    # per instrument: the header's columns that belong to other instruments
    others = {
        form.name: [
            h
            for h in header
            if h in _BY_COLUMN and h != RECORD_ID and _BY_COLUMN[h].form is not form
        ]
        for form in FORMS
    }
    decoders = {f.name: _decoder(f, codes) for f in FIELDS if f.choices}
    patients: dict[str, dict[str, str]] = {}
    first_line: dict[str, int] = {}
    records: dict[str, dict[str, list[tuple[int, str, dict[str, str]]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    nrows = 0
    for lineno, cells in enumerate(reader, start=2):
        if not any(x.strip() for x in cells):
            continue
        nrows += 1
        if len(cells) != len(header):
            err(
                lineno,
                "?",
                "",
                "",
                "row",
                len(cells),
                f"must have {len(header)} cells like the header",
            )
            continue
        row = dict(zip(header, cells, strict=True))
        rid = row[RECORD_ID].strip()
        form_name = row.get(REPEAT_INSTRUMENT, "").strip()
        inst = row.get(REPEAT_INSTANCE, "").strip()
        for col in unknown:
            if row[col].strip():
                err(
                    lineno,
                    rid,
                    form_name,
                    inst,
                    col,
                    row[col],
                    "is not a field of the data dictionary (unknown field)",
                    "a field of the data dictionary",
                )
        if form_name and (form_name not in _FORMS or not _FORMS[form_name].repeating):
            err(
                lineno,
                rid,
                form_name,
                inst,
                REPEAT_INSTRUMENT,
                form_name,
                "names no repeating instrument of the dictionary (unknown instrument); "
                "allowed: " + ", ".join(f.name for f in FORMS if f.repeating),
                "a repeating instrument",
            )
            continue
        if form_name:
            form = _FORMS[form_name]
            stray = [
                k
                for k in others[form_name]
                if row[k]
                and row[k].strip()
                and not (_BY_COLUMN[k].checkbox and row[k].strip() in ("0", "Unchecked"))
            ]
            for col in stray:
                err(
                    lineno,
                    rid,
                    form_name,
                    inst,
                    col,
                    row[col],
                    f"belongs to instrument {_BY_COLUMN[col].form.name}, not {form_name}",
                )
            records[rid][form_name].append((lineno, inst, row))
        else:
            if rid in patients:
                err(
                    lineno,
                    rid,
                    "enrolment",
                    "",
                    RECORD_ID,
                    rid,
                    "appears on two non-repeating rows (one per record)",
                )
                continue
            patients[rid] = row
            first_line[rid] = lineno
    for rid in records:
        if rid not in patients:
            line = records[rid][next(iter(records[rid]))][0][0]
            err(
                line,
                rid,
                "enrolment",
                "",
                RECORD_ID,
                rid,
                "has repeating instances but no enrolment row",
            )

    def values(
        form: Form, row: Mapping[str, str], lineno: int, rid: str, inst: str
    ) -> dict[str, str] | None:
        out: dict[str, str] = {}
        ok = True
        for f in _FORM_FIELDS[form.name]:
            if not f.column:
                continue
            if f.checkbox:
                words = []
                for col, w in zip(f.columns(), f.choices, strict=True):
                    v = row.get(col, "").strip()
                    if v in ("1", "Checked"):
                        words.append(w)
                    elif v not in ("", "0", "Unchecked"):
                        err(
                            lineno, rid, form.name, inst, col, v, "must be 1/0 or Checked/Unchecked"
                        )
                        ok = False
                out[f.column] = ";".join(words)
                continue
            raw = row.get(f.name, "").strip() if f.name != RECORD_ID else rid
            if f.choices and raw:
                word = decoders[f.name].get(raw)
                if word is None:
                    allowed = ", ".join(f"{i} ({w})" for i, w in enumerate(f.choices, 1))
                    err(
                        lineno,
                        rid,
                        form.name,
                        inst,
                        f.name,
                        raw,
                        f"must be one of: {allowed}; got {raw!r}",
                        "one of the choices",
                    )
                    ok = False
                    continue
                raw = word
            out[f.column] = raw
        return out if ok else None

    def build(form: Form, vals: dict[str, str], lineno: int, rid: str, inst: str) -> Any:
        try:
            return build_record(form.ent, vals, lineno, fname)
        except InvalidInput as e:
            column = form.field_name(e.column or e.field) if e.column else e.field
            col_field = _BY_NAME.get(column)
            raw = e.value
            err(
                lineno,
                rid,
                form.name,
                inst,
                column if col_field else e.field,
                raw,
                e.message,
                e.allowed,
            )
            return None

    courses = []
    sites: dict[str, str] = {}
    for rid, prow in patients.items():
        lineno = first_line[rid]
        pvals = values(_FORMS["enrolment"], prow, lineno, rid, "")
        patient = None if pvals is None else build(_FORMS["enrolment"], pvals, lineno, rid, "")
        if patient is not None:
            sites.setdefault(patient.site, prow.get(SITE_NAME, "").strip() or patient.site)
        followup = None
        fu_form = _FORMS["follow_up"]
        if any(prow.get(f.name, "").strip() for f in _FORM_FIELDS["follow_up"]):
            fvals = values(fu_form, prow, lineno, rid, "")
            followup = None if fvals is None else build(fu_form, fvals, lineno, rid, "")
        parts: dict[str, list[Any]] = {}
        bad = patient is None
        for form_name, rows in records.get(rid, {}).items():
            form = _FORMS[form_name]
            seen_inst: set[str] = set()
            recs = []
            for line, inst, row in rows:
                if inst in seen_inst or not inst.isdigit():
                    err(
                        line,
                        rid,
                        form_name,
                        inst,
                        REPEAT_INSTANCE,
                        inst,
                        "must be a whole number used once per instrument",
                    )
                    bad = True
                    continue
                seen_inst.add(inst)
                vals = values(form, row, line, rid, inst)
                rec = None if vals is None else build(form, vals, line, rid, inst)
                if rec is None:
                    bad = True
                else:
                    recs.append(rec)
            parts[form.ent.course_attr] = recs
        if bad:
            continue
        try:
            courses.append(
                c.Course(
                    patient=patient, followup=followup, **{k: tuple(v) for k, v in parts.items()}
                )
            )
        except InvalidInput as e:
            err(lineno, rid, "", "", e.field, e.value, e.message, e.allowed)
    if errors:
        raise ImportRefused(errors, what="REDCap import")
    return ParsedRecords(courses=courses, sites=sorted(sites.items()), encoding=used, rows=nrows)


def import_redcap(
    registry: Any,
    actor: Any,
    path: str | Path,
    *,
    dictionary: str | Path | None = None,
    encoding: str | None = None,
    reason: str = "REDCap import",
) -> Any:
    """Import a REDCap records export through the shared import path: all of it or nothing."""
    from immunoreset.registry.csvio import import_courses

    actor.require_write("import data")
    check_choice(
        "encoding", encoding or "auto", ("auto", "utf-8", "utf-8-sig", "cp1252", "latin-1")
    )
    parsed = read_records(path, dictionary=dictionary, encoding=encoding)
    return import_courses(
        registry, actor, parsed.courses, sites=parsed.sites, reason=f"{reason}: {Path(path).name}"
    )
