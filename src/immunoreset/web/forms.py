"""Turning submitted form fields (text) into domain records, with the field that was wrong.

The field kinds are data (:data:`ASSESSMENT_FIELDS` …); parsing an empty box gives ``None``, a
number that does not parse raises :class:`~immunoreset.errors.InvalidInput` naming the field, and
the domain constructor then checks ranges and vocabularies, so the web form shows exactly the
messages the CLI and the importers show.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from immunoreset import course as c
from immunoreset.clinical.icans import CAPD_ITEMS, score_capd_answers
from immunoreset.errors import InvalidInput
from immunoreset.manufacturing.spec import ReleaseSpec

__all__ = [
    "ASSESSMENT_FIELDS",
    "DISEASE_FIELDS",
    "LAB_FIELDS",
    "QC_FORM_EXTRA",
    "FormData",
    "parse_assessment",
    "parse_disease",
    "parse_lab",
    "parse_qc",
]

FormData = Mapping[str, Any]  # field -> str, or list of str for multi-valued fields


def _one(form: FormData, name: str) -> str:
    value = form.get(name, "")
    if isinstance(value, list):
        value = value[-1] if value else ""
    return str(value).strip()


def _date(form: FormData, name: str) -> dt.date | None:
    raw = _one(form, name)
    if not raw:
        raise InvalidInput(name, raw, "a date (YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(name, raw, "a date (YYYY-MM-DD)") from None


def _float(form: FormData, name: str) -> float | None:
    raw = _one(form, name).replace(",", ".")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise InvalidInput(name, raw, "a number") from None


def _int(form: FormData, name: str) -> int | None:
    raw = _one(form, name)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(name, raw, "a whole number") from None


def _bool(form: FormData, name: str) -> bool:
    return _one(form, name).lower() in {"on", "true", "1", "yes"}


def _text(form: FormData, name: str) -> str:
    return _one(form, name)


def _text_or_none(form: FormData, name: str) -> str | None:
    return _one(form, name) or None


def _many(form: FormData, name: str) -> tuple[str, ...]:
    value = form.get(name, ())
    items = value if isinstance(value, list | tuple) else [value]
    return tuple(str(v) for v in items if str(v).strip())


_PARSERS: dict[str, Callable[[FormData, str], Any]] = {
    "date": _date,
    "float": _float,
    "int": _int,
    "bool": _bool,
    "text": _text,
    "text_or_none": _text_or_none,
    "many": _many,
}

#: Daily-assessment form field -> kind.
ASSESSMENT_FIELDS: dict[str, str] = {
    "date": "date",
    "temperature_max_c": "float",
    "hypotension": "bool",
    "vasopressors": "many",
    "oxygen_device": "text",
    "oxygen_flow_l_min": "float",
    "ice_score": "int",
    "capd_score": "int",
    "unable_to_assess": "bool",
    "consciousness": "text",
    "seizure": "text",
    "motor_weakness": "bool",
    "cerebral_edema": "text",
    "tocilizumab": "bool",
    "corticosteroids": "bool",
    "anakinra": "bool",
    "siltuximab": "bool",
    "other_anticytokine": "bool",
    "antipyretic": "bool",
}
LAB_FIELDS: dict[str, str] = {
    "date": "date",
    "analyte": "text",
    "value": "float",
    "unit": "text",
    "lloq": "float",
    "below_lloq": "bool",
}
DISEASE_FIELDS: dict[str, str] = {"date": "date", "instrument": "text", "score": "float"}


def _values(form: FormData, spec: Mapping[str, str]) -> dict[str, Any]:
    return {name: _PARSERS[kind](form, name) for name, kind in spec.items()}


def parse_assessment(form: FormData) -> c.DailyAssessment:
    """A :class:`~immunoreset.course.DailyAssessment` from form fields (raises InvalidInput)."""
    values = _values(form, ASSESSMENT_FIELDS)
    for name in ("oxygen_device", "consciousness", "seizure", "cerebral_edema"):
        if not values[name]:
            del values[name]  # the record's default
    answers = {item: _one(form, f"capd_{item}") or None for item in CAPD_ITEMS}
    if any(answers.values()):
        # the CAPD as the form asks it, item by item (items 1–4 reverse-scored)
        for item, answer in answers.items():
            if answer is None:
                raise InvalidInput(f"capd_{item}", "", "an answer (never … always)")
        try:
            total = score_capd_answers(answers)
        except InvalidInput as err:
            raise InvalidInput(f"capd_{err.field}", err.value, err.allowed) from None
        if values["capd_score"] is not None and values["capd_score"] != total:
            raise InvalidInput(
                "capd_score", values["capd_score"], f"empty or {total} (the items' total)"
            )
        values["capd_score"] = total
    return c.DailyAssessment(**values)


def parse_lab(form: FormData) -> c.LabResult:
    """A :class:`~immunoreset.course.LabResult` from form fields, converted to canonical units."""
    values = _values(form, LAB_FIELDS)
    if values["value"] is None:
        raise InvalidInput("value", "", "a number")
    if not values["unit"]:
        raise InvalidInput("unit", "", "the unit of the value")
    return c.LabResult.create(**values)


def parse_disease(form: FormData) -> c.DiseaseAssessment:
    """A :class:`~immunoreset.course.DiseaseAssessment` (total score only) from form fields."""
    values = _values(form, DISEASE_FIELDS)
    if values["score"] is None:
        raise InvalidInput("score", "", "a number")
    return c.DiseaseAssessment(**values)


#: Fields of the QC form that are not attribute results.
QC_FORM_EXTRA: frozenset[str] = frozenset({"csrf_token", "reason"})


def parse_qc(form: FormData, spec: ReleaseSpec) -> dict[str, float | str]:
    """QC results typed into the batch form: attribute name -> number or word.

    Empty boxes are left out (not yet entered). A numeric attribute must parse as a number
    (``,`` accepted as the decimal mark); names the specification lacks are passed on as typed,
    so the registry refuses them naming the allowed attributes. Limits and plausible ranges
    are the registry's to check (:meth:`immunoreset.registry.gmp.Gmp.record_qc`).

    Raises
    ------
    InvalidInput
        A numeric result that is not a number (field = the attribute), or no result at all
        (field ``results``).
    """
    if not isinstance(spec, ReleaseSpec):
        raise InvalidInput("spec", spec, "a ReleaseSpec")
    out: dict[str, float | str] = {}
    for name in form:
        if name in QC_FORM_EXTRA:
            continue
        raw = _one(form, name)
        if not raw:
            continue
        if name in spec.names and spec.attribute(name).numeric:
            out[name] = _float(form, name)  # type: ignore[assignment]
        else:
            out[name] = raw
    if not out:
        raise InvalidInput("results", "", "at least one QC result")
    return out
