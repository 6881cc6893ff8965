"""FHIR R4 bundles out and in: one collection Bundle per treatment course.

Resources and what they carry (the full field-by-field mapping is in ``docs/interop.md``;
codes and units come from ``codes.yaml``):

| course record | FHIR R4 resource |
|---|---|
| Patient (study ID, sex, birth year-month, synthetic tag) | Patient (+ Organization = site) |
| diagnosis, ICD-10, diagnosis date, prior lines | Condition |
| anthropometrics | Observation (vital-signs: body weight 29463-7, height 8302-2) |
| apheresis | Procedure (leukapheresis) |
| batches, bags | BiologicallyDerivedProduct (bag.parent = batch) |
| lymphodepletion | MedicationAdministration |
| infusion | Procedure (CAR T infusion, usedReference = bags) |
| daily assessment | Observation panel (ASTCT fields) + temperature (8310-5) + ICE / CAPD |
|   tocilizumab / corticosteroids given that day | MedicationAdministration |
| labs | Observation (laboratory; LOINC where one exists + local code; UCUM) |
| disease assessments | Observation (survey; total + one component per item) |
| medications | MedicationStatement |
| adverse events (CRS, ICANS, ICAHT, IEC-HS, …) | AdverseEvent (grade as extension) |
| infections (site, organism, CTCAE grade …) | AdverseEvent (category infection, coded site) |
| long-term follow-up visits | Encounter (class AMB / VR, type = visit code, collected items) |
| follow-up | Observation (vital status on last contact) |

Models come from ``fhir.resources.R4B`` (the package's default is R5; R4B is wire-compatible
with R4 for these resources). Validating with the models costs ≈ 0.3 ms a resource, so
:func:`course_bundle` builds plain JSON dicts and :func:`validate_bundle` checks them on
request (every test does; the CLI does with ``--validate``).

Resource ids are UUID 5 of (study ID, record key): the same course always gives the same
bundle, so export → import into an empty registry → export reproduces the files byte for byte.

:func:`export_fhir` writes the lab Observations (four in five resources) column-wise
(:mod:`immunoreset.interop._fhir_columns`) and splices them between the entries these writers
give (:func:`_bundle_parts`): the same bytes as :func:`bundle_json` over whole courses (tested).

To add a record type: add a writer to ``_WRITERS`` and a reader branch to ``_READERS``
(keyed by resource type and code).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from immunoreset import course as c
from immunoreset import vocab
from immunoreset.errors import ImportRefused, InvalidInput
from immunoreset.interop._codes import codes, infection_term, local_system

__all__ = [
    "ParsedBundles",
    "bundle_json",
    "course_bundle",
    "export_fhir",
    "import_fhir",
    "read_bundles",
    "validate_bundle",
    "write_bundles",
]

_NS = uuid.UUID("6f1c7d3e-2b7a-5c1e-9a1d-1e2c3b4a5d6f")
_NS_BYTES = _NS.bytes
_C = codes()
SYS = _C["systems"]
LOCAL = SYS["local"]
EXT = SYS["extension"]
UCUM = SYS["ucum"]
LOINC = SYS["loinc"]
_REVERSE_LOINC = {v["loinc"]: k for k, v in _C["analytes"].items() if v["loinc"]}
_VITAL_LOINC = {v["loinc"]: k for k, v in _C["vitals"].items() if v["loinc"]}
_DOSE_UCUM = _C["dose_units"]
_DOSE_FROM_UCUM = {v: k for k, v in _DOSE_UCUM.items()}
_GENDER = {k: v["fhir"] for k, v in _C["sex"].items()}
_SEX = {v: k for k, v in _GENDER.items()}
_CANONICAL_UCUM = {a: _C["analytes"][a]["ucum"] for a in vocab.ANALYTES}


# --------------------------------------------------------------------------- small builders
_dumps = json.JSONEncoder(
    ensure_ascii=False, check_circular=False, separators=(",", ":"), allow_nan=False
).encode


def _uid(*parts: Any) -> str:
    """UUID 5 of the parts joined by ``|`` (RFC 4122 name-based, SHA-1) — as
    :func:`uuid.uuid5` gives it (tested), ≈ 6× faster."""
    return _uuid5_text(_sha1(_NS_BYTES + "|".join(map(str, parts)).encode()).hexdigest())


_sha1 = hashlib.sha1
#: RFC 4122 variant: the 17th hex digit's top two bits become 10.
_VARIANT = {x: "89ab"[int(x, 16) & 3] for x in "0123456789abcdef"}


def _uuid5_text(h: str) -> str:
    """The UUID text of a SHA-1 hex digest: its first 128 bits with version 5 and the
    RFC 4122 variant set."""
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def _local(kind: str, code: str, display: str | None = None) -> dict[str, Any]:
    return _coding(local_system(kind), code, display)


def _concept(*codings: dict[str, Any], text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"coding": list(codings)}
    if text:
        out["text"] = text
    return out


def _qty(value: float, unit: str, code: str | None = None) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": code or unit}


def _ext(name: str, key: str, value: Any) -> dict[str, Any]:
    return {"url": EXT + name, key: value}


def _category(code: str) -> list[dict[str, Any]]:
    return [_concept(_coding(SYS["observation_category"], code))]


def _id(kind: str, value: str) -> list[dict[str, Any]]:
    return [{"system": f"{SYS['record_id']}/{kind}", "value": value}]


# --------------------------------------------------------------------------- export
class _Bundle:
    """Collects the entries of one course's bundle, each already as JSON text.

    Serialising entry by entry (and the labs, four in five resources, from a template) keeps a
    10,000-patient export within its time budget; :func:`course_bundle` parses the text back.
    """

    def __init__(self, course: c.Course) -> None:
        self.sid = course.study_id
        self.entries: list[str] = []
        self.patient_url = "urn:uuid:" + _uid(self.sid, "Patient")
        self.subject = {"reference": self.patient_url}
        self.subject_json = _dumps(self.subject)
        self.urls: dict[tuple[str, str], str] = {}
        self.obs_name = _NS_BYTES + f"{self.sid}|Observation|".encode()

    def obs_id(self, tail: str) -> str:
        """The id of an Observation keyed ``tail`` (``_uid(sid, "Observation", *key)`` with
        the key already joined by ``|``)."""
        return _uuid5_text(_sha1(self.obs_name + tail.encode()).hexdigest())

    def add(self, resource: dict[str, Any], *key: Any) -> str:
        rid = _uid(self.sid, resource["resourceType"], *key)
        resource["id"] = rid
        url = "urn:uuid:" + rid
        self.entries.append(_dumps({"fullUrl": url, "resource": resource}))
        return url

    def obs(
        self, key: tuple[Any, ...], category: str, code: dict[str, Any], when: dt.date, **value: Any
    ) -> str:
        res = {
            "resourceType": "Observation",
            "status": "final",
            "category": _category(category),
            "code": code,
            "subject": self.subject,
            "effectiveDateTime": when.isoformat(),
            **value,
        }
        return self.add(res, *key)

    def obs_text(self, key: str, head: str, day: str, body: str) -> str:
        """An Observation from its template (the same text as :meth:`obs`): ``key`` its
        record key joined by ``|`` (:meth:`obs_id`), ``head`` the JSON text up to the code
        (:func:`_obs_head`), ``body`` that of the value members."""
        rid = self.obs_id(key)
        url = "urn:uuid:" + rid
        self.entries.append(
            f'{{"fullUrl":"{url}","resource":{{{head},"subject":{self.subject_json},'
            f'"effectiveDateTime":"{day}",{body},"id":"{rid}"}}}}'
        )
        return url


def _obs_head(category: str, code: dict[str, Any]) -> str:
    """JSON text of an Observation's members before ``subject`` (see :meth:`_Bundle.obs`)."""
    return (
        '"resourceType":"Observation","status":"final","category":'
        + _dumps(_category(category))
        + ',"code":'
        + _dumps(code)
    )


def _patient(b: _Bundle, co: c.Course, site_name: str | None) -> None:
    p = co.patient
    org_url = b.add(
        {
            "resourceType": "Organization",
            "identifier": [{"system": SYS["site"], "value": p.site}],
            "name": site_name or p.site,
        },
        "site",
        p.site,
    )
    res: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": SYS["study_id"], "value": p.study_id}],
        "gender": _GENDER[p.sex],
        "birthDate": f"{p.birth_year:04d}-{p.birth_month:02d}",
        "managingOrganization": {
            "reference": org_url,
            "identifier": {"system": SYS["site"], "value": p.site},
        },
    }
    if p.sex == "X":
        res["extension"] = [_ext("sex", "valueCode", "X")]
    if p.synthetic:
        res["meta"] = {"tag": [_coding(SYS["act_reason"], "HTEST", "test health data")]}
    if co.followup is not None and co.followup.status == "dead":
        res["deceasedBoolean"] = True
    res["id"] = b.patient_url[len("urn:uuid:") :]
    b.entries.insert(0, _dumps({"fullUrl": b.patient_url, "resource": res}))
    b.add(
        {
            "resourceType": "Condition",
            "code": _concept(
                _coding(SYS["icd10"], p.icd10),
                _local("diagnosis", p.diagnosis, vocab.DIAGNOSES[p.diagnosis]),
            ),
            "subject": b.subject,
            "onsetDateTime": p.diagnosis_date.isoformat(),
            "extension": [_ext("prior-therapy-lines", "valueInteger", p.prior_therapy_lines)],
        },
        "diagnosis",
    )


def _num_json(value: Any) -> str:
    """JSON text of a number, as the encoder writes it (``int.__repr__`` / ``float.__repr__``)."""
    kind = type(value)
    if kind is float and value - value == 0.0:  # finite (inf − inf and NaN are NaN)
        return float.__repr__(value)
    if kind is int:
        return int.__repr__(value)
    return _dumps(value)


def _vital_templates() -> dict[str, tuple[str, str]]:
    """Per vital sign: the JSON text of an Observation up to the subject, and of its unit."""
    out = {}
    for name, v in _C["vitals"].items():
        if not v.get("loinc"):
            continue
        code = _concept(_coding(LOINC, v["loinc"], v["display"]), _local("vital", name))
        head = _obs_head("vital-signs", code)
        unit = _dumps({"unit": v["ucum"], "system": UCUM, "code": v["ucum"]})[1:-1]
        out[name] = (head, unit)
    return out


def _vital(b: _Bundle, name: str, day: str, value: float) -> str:
    """A vital-sign Observation on ``day`` (ISO date) from its template (the same text as
    :meth:`_Bundle.obs`)."""
    head, unit = _VITAL_TEMPLATES[name]
    rid = b.obs_id(f"{name}|{day}")
    url = "urn:uuid:" + rid
    b.entries.append(
        f'{{"fullUrl":"{url}","resource":{{{head},"subject":{b.subject_json},'
        f'"effectiveDateTime":"{day}","valueQuantity":{{"value":{_num_json(value)},{unit}}},'
        f'"id":"{rid}"}}}}'
    )
    return url


def _anthropometrics(b: _Bundle, co: c.Course) -> None:
    for a in co.anthropometrics:
        day = a.date.isoformat()
        _vital(b, "weight_kg", day, a.weight_kg)
        if a.height_cm is not None:
            _vital(b, "height_cm", day, a.height_cm)


def _manufacturing(b: _Bundle, co: c.Course) -> None:
    for ap in co.apheresis:
        b.add(
            {
                "resourceType": "Procedure",
                "identifier": _id("apheresis", ap.apheresis_id),
                "status": "completed",
                "code": _concept(_local("procedure", "apheresis", "Leukapheresis")),
                "subject": b.subject,
                "performedDateTime": ap.date.isoformat(),
                "extension": [
                    _ext("cd3-cells", "valueQuantity", _qty(ap.cd3_cells, "cells", "{cells}")),
                    _ext("volume", "valueQuantity", _qty(ap.volume_ml, "mL")),
                ],
            },
            "apheresis",
            ap.apheresis_id,
        )
    batch_urls: dict[str, str] = {}
    for bt in co.batches:
        period = {"start": bt.process_start.isoformat()}
        if bt.harvest_date is not None:
            period["end"] = bt.harvest_date.isoformat()
        batch_urls[bt.batch_id] = b.add(
            {
                "resourceType": "BiologicallyDerivedProduct",
                "identifier": _id("batch", bt.batch_id),
                "productCategory": "cells",
                "productCode": _concept(_local("product", "car-t-batch", "CAR T batch")),
                "status": "available" if bt.status == "released" else "unavailable",
                "collection": {"source": b.subject},
                "processing": [{"description": bt.platform, "timePeriod": period}],
                "extension": [
                    _ext("apheresis-id", "valueString", bt.apheresis_id),
                    _ext("operator", "valueString", bt.operator),
                    _ext("batch-status", "valueCode", bt.status),
                ],
            },
            "batch",
            bt.batch_id,
        )
    for bag in co.bags:
        res: dict[str, Any] = {
            "resourceType": "BiologicallyDerivedProduct",
            "identifier": _id("bag", bag.bag_id),
            "productCategory": "cells",
            "productCode": _concept(_local("product", "car-t-bag", "CAR T drug-product bag")),
            "collection": {"source": b.subject},
            "status": "available"
            if bag.status in ("released", "stored_for_redosing")
            else "unavailable",
            "extension": [
                _ext("batch-id", "valueString", bag.batch_id),
                _ext("car-t-cells", "valueQuantity", _qty(bag.car_t_cells, "cells", "{cells}")),
                _ext("volume", "valueQuantity", _qty(bag.volume_ml, "mL")),
                _ext("bag-status", "valueCode", bag.status),
            ],
        }
        if bag.batch_id in batch_urls:
            res["parent"] = [{"reference": batch_urls[bag.batch_id]}]
        if bag.location is not None:
            res["storage"] = [{"description": bag.location}]
        if bag.expiry is not None:
            res["extension"].append(_ext("expiry", "valueDate", bag.expiry.isoformat()))
        b.urls[("bag", bag.bag_id)] = b.add(res, "bag", bag.bag_id)


def _medication_admin(
    b: _Bundle,
    key: tuple[Any, ...],
    drug: str,
    kind: str,
    when: dt.date,
    dose: dict[str, Any] | None = None,
) -> None:
    res: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "status": "completed",
        "medicationCodeableConcept": _concept(_local("drug", drug), text=drug),
        "subject": b.subject,
        "category": _concept(_local("administration", kind)),
        "effectiveDateTime": when.isoformat(),
    }
    if dose is not None:
        res["dosage"] = {"dose": dose}
    b.add(res, *key)


def _treatment(b: _Bundle, co: c.Course) -> None:
    for ld in co.lymphodepletion:
        _medication_admin(
            b,
            ("ld", ld.date, ld.drug),
            ld.drug,
            "lymphodepletion",
            ld.date,
            _qty(ld.dose_mg_m2, "mg/m2"),
        )
    bag_urls = {k: u for (kind, k), u in b.urls.items() if kind == "bag"}
    for inf in co.infusions:
        used = []
        for bag_id in inf.bag_ids:
            ref: dict[str, Any] = {"identifier": _id("bag", bag_id)[0]}
            if bag_id in bag_urls:
                ref["reference"] = bag_urls[bag_id]
            used.append(ref)
        b.add(
            {
                "resourceType": "Procedure",
                "status": "completed",
                "code": _concept(_local("procedure", "car-t-infusion", "CAR T cell infusion")),
                "subject": b.subject,
                "performedDateTime": inf.date.isoformat(),
                "usedReference": used,
                "extension": [
                    _ext(
                        "dose-per-kg",
                        "valueQuantity",
                        _qty(inf.dose_cells_per_kg, "CAR+ T cells/kg", "{cells}/kg"),
                    )
                ],
            },
            "infusion",
            inf.date,
        )


def _component(name: str, **value: Any) -> dict[str, Any]:
    return {"code": _concept(_local("daily", name)), **value}


def _word(kind: str, word: str) -> dict[str, Any]:
    return {"valueCodeableConcept": _concept(_local(kind, word))}


_COMPONENTS: dict[tuple[str, str, Any], str] = {}


def _comp(name: str, kind: str, value: Any) -> str:
    """JSON text of a daily-panel component (cached: the values come from small vocabularies)."""
    key = (name, kind, value)
    text = _COMPONENTS.get(key)
    if text is None:
        extra = {"valueBoolean": value} if kind == "" else _word(kind, value)
        text = _COMPONENTS[key] = _dumps(_component(name, **extra))
    return text


_PANEL_HEAD = _obs_head(
    "exam", _concept(_local("panel", "daily-assessment", "CAR T daily CRS/ICANS assessment"))
)
_FLOW_CODE = _dumps(_concept(_local("daily", "oxygen_flow_l_min")))
_FLOW_UNIT = _dumps(_qty(0, "L/min"))[len('{"value":0,') : -1]


_PANELS: dict[tuple[Any, ...], str] = {}


def _panel_components(d: c.DailyAssessment) -> str:
    """JSON text of a daily panel's coded components (cached: a few hundred combinations)."""
    key = (
        d.hypotension,
        d.vasopressors,
        d.oxygen_device,
        d.unable_to_assess,
        d.consciousness,
        d.seizure,
        d.motor_weakness,
        d.cerebral_edema,
    )
    text = _PANELS.get(key)
    if text is None:
        text = _PANELS[key] = ",".join(
            [
                _comp("hypotension", "", d.hypotension),
                *(_comp("vasopressor", "vasopressor", v) for v in d.vasopressors),
                _comp("oxygen_device", "oxygen-device", d.oxygen_device),
                _comp("unable_to_assess", "", d.unable_to_assess),
                _comp("consciousness", "consciousness", d.consciousness),
                _comp("seizure", "seizure", d.seizure),
                _comp("motor_weakness", "", d.motor_weakness),
                _comp("cerebral_edema", "cerebral-edema", d.cerebral_edema),
            ]
        )
    return text


_NEURO_HEADS = {
    name: _obs_head("survey", _concept(_local("neuro", name, _C["neuro"][name]["display"])))
    for name in ("ice_score", "capd_score")
}


def _daily(b: _Bundle, co: c.Course) -> None:
    subject = b.subject_json
    for d in co.daily_assessments:
        comps = _panel_components(d)
        if d.oxygen_flow_l_min is not None:
            comps += (
                f',{{"code":{_FLOW_CODE},"valueQuantity":{{"value":'
                f"{_num_json(d.oxygen_flow_l_min)},{_FLOW_UNIT}}}}}"
            )
        members = []
        day = d.date.isoformat()
        if d.temperature_max_c is not None:
            members.append(_vital(b, "temperature_max_c", day, d.temperature_max_c))
        for name in ("ice_score", "capd_score"):
            score = getattr(d, name)
            if score is not None:
                body = '"valueInteger":' + _num_json(score)
                members.append(b.obs_text(f"{name}|{day}", _NEURO_HEADS[name], day, body))
        rid = b.obs_id(f"daily|{day}")
        has = (
            ',"hasMember":[' + ",".join(f'{{"reference":"{u}"}}' for u in members) + "]"
            if members
            else ""
        )
        b.entries.append(
            f'{{"fullUrl":"urn:uuid:{rid}","resource":{{{_PANEL_HEAD},"subject":{subject},'
            f'"effectiveDateTime":"{day}","component":[{comps}]{has},'
            f'"id":"{rid}"}}}}'
        )
        if d.tocilizumab:
            _medication_admin(b, ("toci", d.date), "tocilizumab", "daily", d.date)
        if d.corticosteroids:
            _medication_admin(b, ("steroid", d.date), "corticosteroid", "daily", d.date)
        for flag in _EXTRA_DAILY_DRUGS:  # fever-masking drugs of issue #12
            if getattr(d, flag):
                _medication_admin(b, (flag, d.date), flag, "daily", d.date)


def _lab_templates() -> dict[str, tuple[str, str]]:
    """Per analyte: the JSON text of an entry up to the value, and of its Quantity's unit."""
    out = {}
    for analyte, a in _C["analytes"].items():
        local = _local("analyte", analyte, vocab.ANALYTES[analyte][2])
        codings = [_coding(LOINC, a["loinc"]), local] if a["loinc"] else [local]
        unit = _dumps({"unit": vocab.ANALYTES[analyte][0], "system": UCUM, "code": a["ucum"]})
        out[analyte] = (_obs_head("laboratory", {"coding": codings}), unit[1:-1])
    return out


def _labs(b: _Bundle, co: c.Course) -> None:
    subject = _dumps(b.subject)
    sid = b.sid
    append = b.entries.append
    templates = _LAB_TEMPLATES
    lloq_url = _dumps(EXT + "lloq")
    name = _NS_BYTES + f"{sid}|Observation|lab|".encode()  # _uid(sid, "Observation", "lab", …)
    sha1, variant = _sha1, _VARIANT
    for r in co.labs:
        head, unit = templates[r.analyte]
        day = r.date.isoformat()
        h = sha1(name + f"{day}|{r.analyte}".encode()).hexdigest()
        rid = f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{variant[h[16]]}{h[17:20]}-{h[20:32]}"
        comparator = ',"comparator":"<"' if r.below_lloq else ""
        ext = (
            ""
            if r.lloq is None
            else f',"extension":[{{"url":{lloq_url},"valueQuantity":{{"value":'
            f"{float(r.lloq)!r},{unit}}}}}]"
        )
        append(
            f'{{"fullUrl":"urn:uuid:{rid}","resource":{{{head},"subject":{subject},'
            f'"effectiveDateTime":"{day}","valueQuantity":{{"value":{float(r.value)!r}'
            f'{comparator},{unit}}}{ext},"id":"{rid}"}}}}'
        )


_INSTRUMENT_HEADS: dict[str, str] = {}
_ITEM_HEADS: dict[tuple[str, str], str] = {}
_SCORE_UNIT = _dumps({"unit": "{score}", "system": UCUM, "code": "{score}"})[1:-1]


def _instrument_head(instrument: str) -> str:
    head = _INSTRUMENT_HEADS.get(instrument)
    if head is None:
        display = vocab.INSTRUMENTS[instrument][2]
        code = _concept(_local("instrument", instrument, display))
        head = _INSTRUMENT_HEADS[instrument] = _obs_head("survey", code)
    return head


def _item_head(instrument: str, item: str) -> str:
    """JSON text of an item component up to its value."""
    head = _ITEM_HEADS.get((instrument, item))
    if head is None:
        code = _dumps({"code": _concept(_coding(local_system(f"item/{instrument}"), item))})
        head = _ITEM_HEADS[instrument, item] = code[:-1] + ',"valueQuantity":{"value":'
    return head


def _disease(b: _Bundle, co: c.Course) -> None:
    """Disease assessments (survey Observations: total + one component per item), from
    templates — the text of :meth:`_Bundle.obs` with ``valueQuantity`` and ``component``."""
    for d in co.disease_assessments:
        body = f'"valueQuantity":{{"value":{_num_json(d.score)},{_SCORE_UNIT}}}'
        if d.items:
            items = sorted(d.items.items())
            body += (
                ',"component":['
                + ",".join(_item_head(d.instrument, k) + _num_json(v) + "}}" for k, v in items)
                + "]"
            )
        day = d.date.isoformat()
        b.obs_text(f"disease|{day}|{d.instrument}", _instrument_head(d.instrument), day, body)


def _medications(b: _Bundle, co: c.Course) -> None:
    for m in co.medications:
        period = {"start": m.start.isoformat()}
        if m.stop is not None:
            period["end"] = m.stop.isoformat()
        b.add(
            {
                "resourceType": "MedicationStatement",
                "status": "active" if m.stop is None else "completed",
                "category": _concept(_local("drug-class", m.drug_class)),
                "medicationCodeableConcept": _concept(_local("drug", m.drug), text=m.drug),
                "subject": b.subject,
                "effectivePeriod": period,
                "dosage": [
                    {
                        "doseAndRate": [
                            {"doseQuantity": _qty(m.dose, m.dose_unit, _DOSE_UCUM[m.dose_unit])}
                        ]
                    }
                ],
            },
            "medication",
            m.drug,
            m.start,
        )


def _adverse_events(b: _Bundle, co: c.Course) -> None:
    for ae in co.adverse_events:
        ext = [
            _ext("ctcae-grade", "valueInteger", ae.grade),
            _ext("related", "valueBoolean", ae.related),
        ]
        if ae.resolution is not None:
            ext.append(_ext("resolution-date", "valueDate", ae.resolution.isoformat()))
        outcome = "fatal" if ae.grade == 5 else ("resolved" if ae.resolution else "ongoing")
        b.add(
            {
                "resourceType": "AdverseEvent",
                "actuality": "actual",
                "category": [_concept(_local("ae-category", ae.category))],
                "event": {"text": ae.term},
                "subject": b.subject,
                "date": ae.onset.isoformat(),
                "seriousness": _concept(
                    _coding(SYS["ae_seriousness"], "serious" if ae.serious else "non-serious")
                ),
                "outcome": _concept(_coding(SYS["ae_outcome"], outcome)),
                "extension": ext,
            },
            "ae",
            ae.term,
            ae.onset,
        )


def _infections(b: _Bundle, co: c.Course) -> None:
    """Infections (Hill 2018 reporting) as AdverseEvent: category ``infection``, the event
    coded by site in the local ``infection-site`` system (what marks it as an infection record
    on import), organism class, organism, CTCAE grade and BMT CTN severity as extensions."""
    for inf in co.infections:
        text = infection_term(inf)
        ext = [
            _ext("ctcae-grade", "valueInteger", inf.ctcae_grade),
            _ext("organism-class", "valueCode", inf.organism_class),
        ]
        if inf.organism is not None:
            ext.append(_ext("organism", "valueString", inf.organism))
        if inf.bmtctn_severity is not None:
            ext.append(_ext("bmtctn-severity", "valueCode", inf.bmtctn_severity))
        b.add(
            {
                "resourceType": "AdverseEvent",
                "actuality": "actual",
                "category": [_concept(_local("ae-category", "infection"))],
                "event": _concept(_local("infection-site", inf.site), text=text),
                "subject": b.subject,
                "date": inf.onset.isoformat(),
                "extension": ext,
            },
            "infection",
            inf.onset,
            inf.site,
            inf.organism_class,
        )


#: Encounter.class (HL7 v3 ActCode) of a follow-up visit's contact, and back.
_CONTACT_CLASS = {"visit": ("AMB", "ambulatory"), "remote": ("VR", "virtual")}
_CLASS_CONTACT = {code: contact for contact, (code, _) in _CONTACT_CLASS.items()}


def _followup_visits(b: _Bundle, co: c.Course) -> None:
    """Long-term follow-up visits as finished Encounters: class AMB (in person) or VR
    (remote), type the visit code (local ``ltfu-visit``), one ``collected-item`` extension per
    item collected (vocabulary order)."""
    for v in co.followup_visits:
        code, display = _CONTACT_CLASS[v.contact]
        b.add(
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": _coding(SYS["act_code"], code, display),
                "type": [
                    _concept(
                        _local("ltfu-visit", v.visit), text=f"Long-term follow-up visit {v.visit}"
                    )
                ],
                "subject": b.subject,
                "period": {"start": v.date.isoformat(), "end": v.date.isoformat()},
                "extension": [_ext("collected-item", "valueCode", i) for i in v.items],
            },
            "ltfu-visit",
            v.visit,
        )


def _followup(b: _Bundle, co: c.Course) -> None:
    f = co.followup
    if f is None:
        return
    code = _concept(_local("panel", "follow-up", "Vital status at last contact"))
    b.obs(("followup",), "survey", code, f.last_contact, **_word("vital-status", f.status))


_LAB_TEMPLATES = _lab_templates()
_VITAL_TEMPLATES = _vital_templates()
#: Daily flags of fever-masking drugs beyond tocilizumab/corticosteroids (local drug codes).
_EXTRA_DAILY_DRUGS: tuple[str, ...] = (
    "anakinra",
    "siltuximab",
    "other_anticytokine",
    "antipyretic",
)

#: The writers, in bundle order. A new record type adds one function here.
_WRITERS: tuple[Callable[[_Bundle, c.Course], None], ...] = (
    _anthropometrics,
    _manufacturing,
    _treatment,
    _daily,
    _labs,
    _disease,
    _medications,
    _adverse_events,
    _infections,
    _followup_visits,
    _followup,
)


def bundle_json(course: c.Course, *, site_name: str | None = None) -> str:
    """One course as the JSON text of a FHIR R4 collection Bundle (pseudonymous).

    The patient appears only by study ID, sex and birth year-month; ``site_name`` labels the
    site's Organization (default: the site code).
    """
    head, before, after = _bundle_parts(course, site_name)
    return head[:-1] + ',"entry":[' + ",".join(before + after) + "]}"


def _bundle_parts(course: c.Course, site_name: str | None) -> tuple[str, list[str], list[str]]:
    """The Bundle's JSON text without entries, and the entries' texts written before the
    labs and from the labs on (the column-wise export splices its lab entries in between)."""
    b = _Bundle(course)
    _patient(b, course, site_name)
    split = 0
    for write in _WRITERS:
        if write is _labs:
            split = len(b.entries)
        write(b, course)
    head = _dumps(
        {
            "resourceType": "Bundle",
            "id": _uid(course.study_id, "Bundle"),
            "identifier": {"system": SYS["study_id"], "value": course.study_id},
            "type": "collection",
        }
    )
    return head, b.entries[:split], b.entries[split:]


def course_bundle(course: c.Course, *, site_name: str | None = None) -> dict[str, Any]:
    """One course as a FHIR R4 collection Bundle (a JSON dict; see :func:`bundle_json`)."""
    result: dict[str, Any] = json.loads(bundle_json(course, site_name=site_name))
    return result


def validate_bundle(bundle: Mapping[str, Any]) -> None:
    """Validate a bundle and every resource in it with the ``fhir.resources`` R4B models.

    Raises :class:`InvalidInput` naming the entry and the first problem pydantic reports.
    """
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    try:
        get_fhir_model_class("Bundle").model_validate(dict(bundle))
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise InvalidInput(
            where or "Bundle", first.get("input"), f"valid FHIR R4B ({first['msg']})"
        ) from None


def write_bundles(
    courses: Iterable[c.Course],
    out: str | Path,
    *,
    sites: Mapping[str, str] | None = None,
    validate: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Write one ``<study_id>.json`` bundle per course into folder ``out``; return study IDs."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    from immunoreset.registry.repository import gc_paused

    done = []
    names = sites or {}
    with gc_paused():
        for co in courses:
            _write_one(co, folder, names, validate)
            done.append(co.study_id)
            if progress:
                progress(1)
    return done


def _write_one(co: c.Course, folder: Path, names: Mapping[str, str], validate: bool) -> None:
    text = bundle_json(co, site_name=names.get(co.patient.site))
    if validate:
        validate_bundle(json.loads(text))
    (folder / f"{co.study_id}.json").write_text(text, encoding="utf-8")


def export_fhir(
    registry: Any,
    actor: Any,
    out: str | Path,
    *,
    study_ids: Sequence[str] | None = None,
    validate: bool = False,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Export the actor's visible courses (or ``study_ids``) as bundles; audited as an export.

    The labs are read and written column-wise (``_fhir_columns.write_bundles_columns``).
    ``workers`` > 1 splits the patients (from 200 on) over that many processes, each loading
    and writing its share (the registry is only read).
    """
    from immunoreset.errors import NotFound, check_range

    check_range("workers", workers, 1, 32, integer=True)
    sites = dict(registry.list_sites())
    visible = [p.study_id for p in registry.list_patients(actor)]
    if study_ids is not None:
        known = set(visible)
        missing = sorted(set(study_ids) - known)
        if missing:
            raise NotFound("patient", missing[0])
        visible = [sid for sid in visible if sid in set(study_ids)]
    from immunoreset.interop._fhir_columns import write_bundles_columns

    if workers == 1 or len(visible) < 200:
        done = write_bundles_columns(
            registry, actor, visible, out, sites=sites, validate=validate, progress=progress
        )
    else:
        from immunoreset.interop._workers import start

        url = registry.engine.url.render_as_string(hide_password=False)
        size = -(-len(visible) // workers)  # contiguous shares load by ID range (fast path)
        parts = [visible[i : i + size] for i in range(0, len(visible), size)]
        collect = start(
            _export_part,
            [(url, actor, part, str(out), sites, validate) for part in parts],
            what="FHIR export",
        )
        done = sorted(sid for r in collect() for sid in r)
        if progress:
            progress(len(done))
    registry.record_export(actor, "fhir", str(out), done, detail={"pseudonymised": True})
    return done


def _export_part(
    url: str, actor: Any, study_ids: list[str], out: str, sites: dict[str, str], validate: bool
) -> list[str]:
    """One export process: load its patients' courses and write their bundles."""
    from immunoreset.interop._fhir_columns import write_bundles_columns
    from immunoreset.registry import Registry

    with Registry(url) as reg:
        return write_bundles_columns(reg, actor, study_ids, out, sites=sites, validate=validate)


# --------------------------------------------------------------------------- import
@dataclass
class _Draft:
    """The records of one patient gathered from one or more bundles."""

    patient: c.Patient | None = None
    records: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    daily: dict[dt.date, dict[str, Any]] = field(default_factory=dict)
    weights: dict[dt.date, float] = field(default_factory=dict)
    heights: dict[dt.date, float] = field(default_factory=dict)
    followup: c.FollowUp | None = None


@dataclass(frozen=True)
class ParsedBundles:
    """What bundles hold: courses per study ID (patients may be None = already registered)."""

    drafts: dict[str, _Draft]
    sites: list[tuple[str, str]]
    resources: int


#: What reading a resource of the wrong JSON shape raises (a list for an object, a number for a
#: code …); each becomes a located refusal instead of a traceback.
_MALFORMED = (KeyError, TypeError, AttributeError, ValueError, IndexError)


class _Where:
    """Location of the resource being read, for error messages."""

    def __init__(self, file: str, entry: int, res: Mapping[str, Any]) -> None:
        self.file = file
        self.entry = entry
        self.label = f"{res.get('resourceType', '?')}/{res.get('id', '?')}"

    def error(self, field_: str, value: Any, allowed: str) -> InvalidInput:
        return InvalidInput(
            field_,
            value,
            allowed,
            row=self.entry,
            column=field_,
            file=self.file,
            message=f"entry {self.entry} ({self.label}): {field_} must be {allowed}; got {value!r}",
        )

    def malformed(self, err: Exception) -> InvalidInput:
        """A resource whose structure is not FHIR's (a field of the wrong JSON type …)."""
        what = f"{type(err).__name__}: {str(err)[:80]}"
        return InvalidInput(
            "resource", self.label, "a FHIR R4 resource of the shapes immunoreset reads",
            row=self.entry, file=self.file,
            message=f"entry {self.entry} ({self.label}): malformed resource ({what}); "
            "check it against FHIR R4 (or import with validation on)",
        )  # fmt: skip

    def wrap(self, err: InvalidInput) -> InvalidInput:
        return InvalidInput(
            err.field,
            err.value,
            err.allowed,
            row=self.entry,
            column=err.field,
            file=self.file,
            message=f"entry {self.entry} ({self.label}): {err.message}",
        )


def _date_of(w: _Where, name: str, value: Any) -> dt.date:
    if not isinstance(value, str) or len(value) < 10:
        raise w.error(name, value, "a full date (YYYY-MM-DD…)")
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise w.error(name, value, "a full date (YYYY-MM-DD…)") from None


def _exts(res: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for e in res.get("extension", ()):
        url = e.get("url", "")
        if url.startswith(EXT):
            out[url[len(EXT) :]] = next((v for k, v in e.items() if k.startswith("value")), None)
    return out


def _codes_of(concept: Mapping[str, Any] | None) -> dict[str, str]:
    """system -> code of a CodeableConcept."""
    if not concept:
        return {}
    return {cd.get("system", ""): cd.get("code", "") for cd in concept.get("coding", ())}


def _local_code(concept: Mapping[str, Any] | None, kind: str) -> str | None:
    return _codes_of(concept).get(local_system(kind))


def _need(w: _Where, name: str, value: Any, allowed: str) -> Any:
    if value is None:
        raise w.error(name, value, allowed)
    return value


def _number(w: _Where, name: str, q: Any) -> float:
    if not isinstance(q, Mapping) or isinstance(q.get("value"), bool):
        raise w.error(name, q, "a Quantity with a numeric value")
    v = q.get("value")
    if not isinstance(v, int | float):
        raise w.error(name, v, "a number")
    return v


def _record_id_of(res: Mapping[str, Any], kind: str) -> str | None:
    for ident in res.get("identifier", ()):
        if ident.get("system") == f"{SYS['record_id']}/{kind}":
            return str(ident.get("value"))
    return None


class _Reader:
    """Reads the entries of bundles into per-patient drafts, collecting every error."""

    def __init__(self) -> None:
        self.drafts: dict[str, _Draft] = {}
        self.sites: dict[str, str] = {}
        self.errors: list[InvalidInput] = []
        self.resources = 0

    # -- patients and references
    def read(self, bundle: Mapping[str, Any], file: str) -> None:
        if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
            self.errors.append(
                InvalidInput(
                    "resourceType", _get(bundle, "resourceType"), "a FHIR Bundle", file=file
                )
            )
            return
        kind = bundle.get("type")
        if kind not in ("collection", "transaction", "batch", "searchset", "document"):
            self.errors.append(
                InvalidInput(
                    "type",
                    kind,
                    "a collection, transaction, batch, searchset or document Bundle",
                    file=file,
                )
            )
            return
        entries = list(bundle.get("entry", ()))
        by_ref: dict[str, Mapping[str, Any]] = {}
        for e in entries:
            res = e.get("resource") or {}
            if e.get("fullUrl"):
                by_ref[e["fullUrl"]] = res
            if res.get("id"):
                by_ref[f"{res.get('resourceType')}/{res['id']}"] = res
        patients: dict[int, str] = {}
        for i, e in enumerate(entries, start=1):
            res = e.get("resource") or {}
            if res.get("resourceType") == "Patient":
                w = _Where(file, i, res)
                sid = _study_id_of(res)
                if sid is not None:  # map it first: its other resources are still checked
                    patients[id(res)] = sid
                try:
                    self._patient(w, res, by_ref)
                except InvalidInput as err:
                    self.errors.append(err if err.file else w.wrap(err))
                except _MALFORMED as err:
                    self.errors.append(w.malformed(err))
        for i, e in enumerate(entries, start=1):
            res = e.get("resource") or {}
            rtype = res.get("resourceType")
            if rtype in ("Patient", "Organization"):
                self.resources += 1
                continue
            w = _Where(file, i, res)
            reader = _READERS.get(rtype)
            if reader is None:
                self.errors.append(
                    w.error(
                        "resourceType",
                        rtype,
                        "one of: " + ", ".join(["Patient", "Organization", *_READERS]),
                    )
                )
                continue
            try:
                sid = self._subject(w, res, by_ref, patients)
                reader(self, w, res, self.drafts.setdefault(sid, _Draft()), by_ref)
                self.resources += 1
            except InvalidInput as err:
                self.errors.append(err if err.message.startswith("entry ") else w.wrap(err))
            except _MALFORMED as err:
                self.errors.append(w.malformed(err))

    def _patient(self, w: _Where, res: Mapping[str, Any], by_ref: Mapping[str, Any]) -> str:
        sid = next(
            (
                i.get("value")
                for i in res.get("identifier", ())
                if i.get("system") == SYS["study_id"]
            ),
            None,
        )
        if sid is None:
            raise w.error(
                "identifier",
                res.get("identifier"),
                f"an identifier with system {SYS['study_id']} (the study ID)",
            )
        org = res.get("managingOrganization") or {}
        site = (org.get("identifier") or {}).get("value")
        target = by_ref.get(org.get("reference", ""))
        if target is not None:
            for ident in target.get("identifier", ()):
                if ident.get("system") == SYS["site"]:
                    site = ident.get("value")
                    self.sites.setdefault(site, target.get("name") or site)
        site = _need(w, "managingOrganization", site, "the site (Organization identifier)")
        gender = res.get("gender")
        ext = _exts(res)
        sex = ext.get("sex") or _SEX.get(gender)
        if sex is None:
            raise w.error("gender", gender, "one of: " + ", ".join(_SEX))
        birth = res.get("birthDate")
        if not isinstance(birth, str) or len(birth) < 7:
            raise w.error("birthDate", birth, "a birth year-month (YYYY-MM)")
        draft = self.drafts.setdefault(sid, _Draft())
        draft_patient = {
            "study_id": sid,
            "site": site,
            "sex": sex,
            "birth_year": int(birth[:4]),
            "birth_month": int(birth[5:7]),
            "synthetic": any(
                t.get("code") == "HTEST" for t in (res.get("meta") or {}).get("tag", ())
            ),
        }
        draft.records["_patient"].append((w, draft_patient))
        return str(sid)

    def _subject(
        self,
        w: _Where,
        res: Mapping[str, Any],
        by_ref: Mapping[str, Any],
        patients: Mapping[int, str],
    ) -> str:
        ref = res.get("subject") or res.get("patient") or _get(res.get("collection"), "source")
        ref = ref or {}
        target = by_ref.get(ref.get("reference", ""))
        if target is not None and id(target) in patients:
            return patients[id(target)]
        ident = ref.get("identifier") or {}
        if ident.get("system") == SYS["study_id"] and ident.get("value"):
            return str(ident["value"])
        text = ref.get("reference", "")
        prefix = f"Patient?identifier={SYS['study_id']}|"
        if text.startswith(prefix):
            return text[len(prefix) :]
        raise w.error("subject", ref, "a reference to a Patient in the bundle or by study ID")


def _study_id_of(res: Mapping[str, Any]) -> str | None:
    for ident in res.get("identifier", ()):
        if ident.get("system") == SYS["study_id"] and ident.get("value"):
            return str(ident["value"])
    return None


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else None


# -- readers per resource type
def _read_condition(r: _Reader, w: _Where, res: Mapping[str, Any], d: _Draft, _: Any) -> None:
    codes_ = _codes_of(res.get("code"))
    icd = _need(w, "code", codes_.get(SYS["icd10"]), "an ICD-10 coding")
    diag = _need(
        w,
        "code",
        codes_.get(local_system("diagnosis")),
        "a diagnosis coding (" + local_system("diagnosis") + ")",
    )
    onset = _date_of(w, "onsetDateTime", res.get("onsetDateTime"))
    d.records["_condition"].append(
        (
            w,
            {
                "icd10": icd,
                "diagnosis": diag,
                "diagnosis_date": onset,
                "prior_therapy_lines": _exts(res).get("prior-therapy-lines", 0),
            },
        )
    )


def _read_observation(r: _Reader, w: _Where, res: Mapping[str, Any], d: _Draft, _: Any) -> None:
    concept = res.get("code")
    cods = _codes_of(concept)
    when = _date_of(w, "effectiveDateTime", res.get("effectiveDateTime"))
    analyte = cods.get(local_system("analyte"))
    if analyte is None:
        analyte = next(
            (_REVERSE_LOINC[v] for k, v in cods.items() if k == LOINC and v in _REVERSE_LOINC), None
        )
    if analyte is not None:
        q = res.get("valueQuantity")
        value = _number(w, "valueQuantity", q)
        lloq_q = _exts(res).get("lloq")
        lloq = None if lloq_q is None else _number(w, "lloq", lloq_q)
        below = q.get("comparator") == "<"
        if below and lloq is None:
            lloq = value
        unit = _lab_unit(analyte, q)
        try:
            if unit == vocab.ANALYTES.get(analyte, ("",))[0]:
                rec = c.LabResult(
                    date=when, analyte=analyte, value=value, unit=unit, lloq=lloq, below_lloq=below
                )
            else:
                rec = c.LabResult.create(
                    date=when, analyte=analyte, value=value, unit=unit, lloq=lloq, below_lloq=below
                )
        except InvalidInput as err:
            raise w.wrap(err) from None
        d.records["labs"].append(rec)
        return
    vital = cods.get(local_system("vital"))
    if vital is None:
        vital = next(
            (_VITAL_LOINC[v] for k, v in cods.items() if k == LOINC and v in _VITAL_LOINC), None
        )
    if vital is not None:
        value = _number(w, "valueQuantity", res.get("valueQuantity"))
        unit = res["valueQuantity"].get("code")
        wanted = _C["vitals"][vital]["ucum"]
        if unit is not None and unit != wanted:  # never guess a conversion (°F, lb)
            raise w.error("valueQuantity.code", unit, f"the UCUM unit {wanted}")
        if vital == "weight_kg":
            d.weights[when] = value
        elif vital == "height_cm":
            d.heights[when] = value
        elif vital == "temperature_max_c":
            day = d.daily.setdefault(when, {})
            day["temperature_max_c"] = max(value, day.get("temperature_max_c", value))
        else:
            d.daily.setdefault(when, {})[vital] = value
        return
    neuro = cods.get(local_system("neuro"))
    if neuro is not None:
        d.daily.setdefault(when, {})[neuro] = _need(
            w, "valueInteger", res.get("valueInteger"), "a whole-number score"
        )
        return
    instrument = cods.get(local_system("instrument"))
    if instrument is not None:
        items = {}
        for comp in res.get("component", ()):
            cc = comp.get("code", {}).get("coding", [{}])[0]
            items[cc.get("code")] = _number(w, "component.valueQuantity", comp.get("valueQuantity"))
        try:
            rec = c.DiseaseAssessment(
                date=when,
                instrument=instrument,
                score=_number(w, "valueQuantity", res.get("valueQuantity")),
                items=items,
            )
        except InvalidInput as err:
            raise w.wrap(err) from None
        d.records["disease_assessments"].append(rec)
        return
    panel = cods.get(local_system("panel"))
    if panel == "daily-assessment":
        day = d.daily.setdefault(when, {})
        day["_panel"] = True
        vaso = []
        for comp in res.get("component", ()):
            name = _local_code(comp.get("code"), "daily")
            if name is None:
                raise w.error("component.code", comp.get("code"), "a daily-assessment component")
            if name == "vasopressor":
                vaso.append(_local_code(comp.get("valueCodeableConcept"), "vasopressor"))
            elif "valueBoolean" in comp:
                day[name] = comp["valueBoolean"]
            elif "valueQuantity" in comp:
                day[name] = _number(w, name, comp["valueQuantity"])
            else:
                kind = name.replace("_", "-")
                day[name] = _local_code(comp.get("valueCodeableConcept"), kind)
        day["vasopressors"] = tuple(vaso)
        return
    if panel == "follow-up":
        status = _local_code(res.get("valueCodeableConcept"), "vital-status")
        try:
            d.followup = c.FollowUp(last_contact=when, status=status)  # type: ignore[arg-type]
        except InvalidInput as err:
            raise w.wrap(err) from None
        return
    raise w.error(
        "code",
        concept,
        "a known lab (LOINC or local analyte), vital sign, score, "
        "disease instrument, daily-assessment or follow-up code",
    )


def _lab_unit(analyte: str, q: Mapping[str, Any]) -> str:
    """The registry unit of a received Quantity: canonical when its UCUM code is, else its
    code or unit text as a lab spelling (``10*9/L``, ``mg/L`` …) for conversion."""
    code = q.get("code")
    if code is not None and code == _CANONICAL_UCUM.get(analyte):
        return vocab.ANALYTES[analyte][0]
    from immunoreset.units import ALIASES

    for cand in (code, q.get("unit")):
        if isinstance(cand, str) and ALIASES.get(cand):
            return cand
    return str(q.get("unit") or code)


def _read_procedure(r: _Reader, w: _Where, res: Mapping[str, Any], d: _Draft, _: Any) -> None:
    kind = _local_code(res.get("code"), "procedure")
    when = _date_of(w, "performedDateTime", res.get("performedDateTime"))
    ext = _exts(res)
    try:
        if kind == "apheresis":
            d.records["apheresis"].append(
                c.Apheresis(
                    apheresis_id=_need(
                        w, "identifier", _record_id_of(res, "apheresis"), "the apheresis ID"
                    ),
                    date=when,
                    cd3_cells=_number(w, "cd3-cells", ext.get("cd3-cells")),
                    volume_ml=_number(w, "volume", ext.get("volume")),
                )
            )
        elif kind == "car-t-infusion":
            bags = tuple(
                (u.get("identifier") or {}).get("value") or u.get("reference", "")
                for u in res.get("usedReference", ())
            )
            d.records["infusions"].append(
                c.Infusion(
                    date=when,
                    bag_ids=bags,
                    dose_cells_per_kg=_number(w, "dose-per-kg", ext.get("dose-per-kg")),
                )
            )
        else:
            raise w.error("code", res.get("code"), "the apheresis or car-t-infusion procedure")
    except InvalidInput as err:
        raise err if err.message.startswith("entry ") else w.wrap(err) from None


def _read_product(r: _Reader, w: _Where, res: Mapping[str, Any], d: _Draft, _: Any) -> None:
    kind = _local_code(res.get("productCode"), "product")
    ext = _exts(res)
    try:
        if kind == "car-t-batch":
            proc = (res.get("processing") or [{}])[0]
            period = proc.get("timePeriod") or {}
            d.records["batches"].append(
                c.Batch(
                    batch_id=_need(w, "identifier", _record_id_of(res, "batch"), "the batch ID"),
                    apheresis_id=ext.get("apheresis-id"),  # type: ignore[arg-type]
                    platform=proc.get("description"),  # type: ignore[arg-type]
                    process_start=_date_of(w, "processing.timePeriod.start", period.get("start")),
                    harvest_date=None
                    if period.get("end") is None
                    else _date_of(w, "processing.timePeriod.end", period["end"]),
                    operator=ext.get("operator"),  # type: ignore[arg-type]
                    status=ext.get("batch-status", "in_process"),
                )
            )
        elif kind == "car-t-bag":
            storage = (res.get("storage") or [{}])[0]
            d.records["bags"].append(
                c.Bag(
                    bag_id=_need(w, "identifier", _record_id_of(res, "bag"), "the bag ID"),
                    batch_id=ext.get("batch-id"),  # type: ignore[arg-type]
                    car_t_cells=_number(w, "car-t-cells", ext.get("car-t-cells")),
                    volume_ml=_number(w, "volume", ext.get("volume")),
                    status=ext.get("bag-status", "quarantined"),
                    location=storage.get("description"),
                    expiry=None
                    if ext.get("expiry") is None
                    else _date_of(w, "expiry", ext["expiry"]),
                )
            )
        else:
            raise w.error("productCode", res.get("productCode"), "a car-t-batch or car-t-bag")
    except InvalidInput as err:
        raise err if err.message.startswith("entry ") else w.wrap(err) from None


def _drug_of(res: Mapping[str, Any]) -> str | None:
    concept = res.get("medicationCodeableConcept") or {}
    return _local_code(concept, "drug") or concept.get("text")


def _read_administration(r: _Reader, w: _Where, res: Mapping[str, Any], d: _Draft, _: Any) -> None:
    drug = _drug_of(res)
    when = _date_of(w, "effectiveDateTime", res.get("effectiveDateTime"))
    if drug == "tocilizumab":
        d.daily.setdefault(when, {})["tocilizumab"] = True
    elif drug == "corticosteroid":
        d.daily.setdefault(when, {})["corticosteroids"] = True
    elif drug in _EXTRA_DAILY_DRUGS:
        d.daily.setdefault(when, {})[drug] = True
    elif drug in c.LYMPHODEPLETION_DRUGS:
        dose = (res.get("dosage") or {}).get("dose")
        try:
            d.records["lymphodepletion"].append(
                c.Lymphodepletion(date=when, drug=drug, dose_mg_m2=_number(w, "dosage.dose", dose))
            )
        except InvalidInput as err:
            raise w.wrap(err) from None
    else:
        raise w.error(
            "medicationCodeableConcept",
            drug,
            "tocilizumab, corticosteroid or one of: "
            + ", ".join((*_EXTRA_DAILY_DRUGS, *c.LYMPHODEPLETION_DRUGS)),
        )


def _read_statement(r: _Reader, w: _Where, res: Mapping[str, Any], d: _Draft, _: Any) -> None:
    period = res.get("effectivePeriod") or {}
    dose_q = (((res.get("dosage") or [{}])[0].get("doseAndRate") or [{}])[0]).get("doseQuantity")
    dose = _number(w, "dosage.doseQuantity", dose_q)
    unit = (
        dose_q.get("unit")
        if dose_q.get("unit") in _DOSE_UCUM
        else _DOSE_FROM_UCUM.get(dose_q.get("code"), dose_q.get("unit"))
    )
    try:
        d.records["medications"].append(
            c.Medication(
                drug=_drug_of(res),  # type: ignore[arg-type]
                drug_class=_local_code(res.get("category"), "drug-class") or "other",
                dose=dose,
                dose_unit=unit,  # type: ignore[arg-type]
                start=_date_of(w, "effectivePeriod.start", period.get("start")),
                stop=None
                if period.get("end") is None
                else _date_of(w, "effectivePeriod.end", period["end"]),
            )
        )
    except InvalidInput as err:
        raise err if err.message.startswith("entry ") else w.wrap(err) from None


def _read_adverse_event(r: _Reader, w: _Where, res: Mapping[str, Any], d: _Draft, _: Any) -> None:
    ext = _exts(res)
    event = res.get("event") or {}
    site = _local_code(event, "infection-site")
    if site is not None:  # an infection record (see _infections)
        _read_infection(w, res, d, ext, site)
        return
    term = event.get("text") or next((x.get("display") for x in event.get("coding", ())), None)
    seriousness = _codes_of(res.get("seriousness")).get(SYS["ae_seriousness"])
    category = next(
        (cc for cc in (_local_code(x, "ae-category") for x in res.get("category", ())) if cc),
        "other",
    )
    try:
        d.records["adverse_events"].append(
            c.AdverseEvent(
                term=term,  # type: ignore[arg-type]
                category=category,
                grade=_need(w, "ctcae-grade", ext.get("ctcae-grade"), "the CTCAE grade 1–5"),
                onset=_date_of(w, "date", res.get("date")),
                resolution=None
                if ext.get("resolution-date") is None
                else _date_of(w, "resolution-date", ext["resolution-date"]),
                serious=seriousness == "serious",
                related=bool(ext.get("related", False)),
            )
        )
    except InvalidInput as err:
        raise err if err.message.startswith("entry ") else w.wrap(err) from None


def _read_infection(
    w: _Where, res: Mapping[str, Any], d: _Draft, ext: Mapping[str, Any], site: str
) -> None:
    try:
        d.records["infections"].append(
            c.Infection(
                onset=_date_of(w, "date", res.get("date")),
                site=site,
                organism_class=_need(
                    w, "organism-class", ext.get("organism-class"), "the organism class"
                ),
                ctcae_grade=_need(w, "ctcae-grade", ext.get("ctcae-grade"), "the CTCAE grade 1–5"),
                organism=ext.get("organism"),
                bmtctn_severity=ext.get("bmtctn-severity"),
            )
        )
    except InvalidInput as err:
        raise err if err.message.startswith("entry ") else w.wrap(err) from None


def _read_encounter(r: _Reader, w: _Where, res: Mapping[str, Any], d: _Draft, _: Any) -> None:
    """A long-term follow-up visit (see :func:`_followup_visits`); other encounters are refused."""
    visit = next(
        (v for v in (_local_code(t, "ltfu-visit") for t in res.get("type", ())) if v), None
    )
    if visit is None:
        raise w.error(
            "type",
            res.get("type"),
            f"a long-term follow-up visit code ({local_system('ltfu-visit')}: D28, M3 … Y30)",
        )
    if res.get("status") != "finished":
        raise w.error("status", res.get("status"), "finished (a visit that took place)")
    cls = res.get("class") or {}
    contact = _CLASS_CONTACT.get(cls.get("code")) if cls.get("system") == SYS["act_code"] else None
    if contact is None:
        raise w.error("class", cls, f"{SYS['act_code']} AMB (in person) or VR (remote)")
    items = [
        e.get("valueCode")
        for e in res.get("extension", ())
        if e.get("url") == EXT + "collected-item"
    ]
    try:
        d.records["followup_visits"].append(
            c.FollowUpVisit(
                visit=visit,
                date=_date_of(w, "period.start", (res.get("period") or {}).get("start")),
                contact=contact,
                items=tuple(items),
            )
        )
    except InvalidInput as err:
        raise err if err.message.startswith("entry ") else w.wrap(err) from None


_READERS: dict[str, Callable[..., None]] = {
    "Condition": _read_condition,
    "Observation": _read_observation,
    "Procedure": _read_procedure,
    "BiologicallyDerivedProduct": _read_product,
    "MedicationAdministration": _read_administration,
    "MedicationStatement": _read_statement,
    "AdverseEvent": _read_adverse_event,
    "Encounter": _read_encounter,
}

_DAILY_FIELDS = set(c.DailyAssessment.field_names())


def _finish(
    sid: str, d: _Draft, errors: list[InvalidInput], registered: c.Patient | None = None
) -> c.Course | None:
    """Build the validated course of one draft (errors appended; None if any)."""
    n = len(errors)
    patient = None
    parts = d.records.pop("_patient", [])
    cond = d.records.pop("_condition", [])
    if parts:
        w, pdata = parts[0]
        if cond:
            pdata = {**pdata, **cond[0][1]}
        else:
            errors.append(w.error("Condition", None, f"a Condition (diagnosis) for {sid}"))
            return None
        try:
            patient = c.Patient(**pdata)
        except InvalidInput as err:
            errors.append(w.wrap(err))
    anthro = []
    for when, kg in sorted(d.weights.items()):
        try:
            anthro.append(c.Anthropometric(date=when, weight_kg=kg, height_cm=d.heights.get(when)))
        except InvalidInput as err:
            errors.append(err.located(file=sid))
    for when in sorted(set(d.heights) - set(d.weights)):
        errors.append(
            InvalidInput("weight_kg", None, f"a body weight with the height of {when}", file=sid)
        )
    daily = []
    for when, vals in sorted(d.daily.items()):
        vals = {k: v for k, v in vals.items() if k in _DAILY_FIELDS}
        try:
            daily.append(c.DailyAssessment(date=when, **vals))
        except InvalidInput as err:
            errors.append(err.located(file=f"{sid} daily assessment {when}"))
    if len(errors) > n:
        return None
    kwargs = {k: tuple(v) for k, v in d.records.items()}
    try:
        return c.Course(
            patient=patient or registered,  # type: ignore[arg-type]
            anthropometrics=tuple(anthro),
            daily_assessments=tuple(daily),
            followup=d.followup,
            **kwargs,
        )
    except InvalidInput as err:
        errors.append(err.located(file=sid))
        return None


def _iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    for p in paths:
        p = Path(p)
        if p.is_dir():
            yield from sorted(p.glob("*.json"))
        elif p.exists():
            yield p
        else:
            raise InvalidInput("path", str(p), "an existing bundle file or folder of .json files")


def read_bundles(
    paths: Iterable[str | Path] | Iterable[Mapping[str, Any]],
    *,
    validate: bool = True,
) -> ParsedBundles:
    """Read bundles (files, folders of ``*.json`` or already-parsed dicts); nothing is written.

    Raises :class:`ImportRefused` listing every problem (file, entry, resource, field, value).
    """
    from immunoreset.registry.repository import gc_paused

    with gc_paused():  # millions of small acyclic dicts: the collector only costs time here
        return _read_bundles(paths, validate=validate)


def _read_bundles(
    paths: Iterable[str | Path] | Iterable[Mapping[str, Any]], *, validate: bool
) -> ParsedBundles:
    reader = _Reader()
    items: list[tuple[str, Any]] = []
    for p in paths:
        if isinstance(p, Mapping):
            items.append((f"bundle {len(items) + 1}", p))
            continue
        for f in _iter_files([p]):
            try:
                items.append((f.name, json.loads(f.read_text(encoding="utf-8-sig"))))
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                reader.errors.append(InvalidInput("file", f.name, f"JSON ({err})", file=f.name))
    for name, bundle in items:
        if validate:
            try:
                validate_bundle(bundle)
            except InvalidInput as err:
                reader.errors.append(err.located(file=name))
                continue
        try:
            reader.read(bundle, name)
        except _MALFORMED as err:
            reader.errors.append(
                InvalidInput(
                    "bundle",
                    name,
                    "a FHIR R4 Bundle (resourceType, type, entry[].resource)",
                    file=name,
                    message=f"{name}: not a FHIR R4 Bundle of resources ({type(err).__name__}: "
                    f"{str(err)[:80]})",
                )
            )
    if reader.errors:
        raise ImportRefused(reader.errors, what="FHIR import")
    return ParsedBundles(
        drafts=reader.drafts, sites=sorted(reader.sites.items()), resources=reader.resources
    )


def import_fhir(
    registry: Any,
    actor: Any,
    paths: Iterable[str | Path],
    *,
    validate: bool = True,
    reason: str = "FHIR import",
) -> Any:
    """Import bundles through the registry's shared import path: all of it or nothing.

    Patients referenced only by study ID must already be registered (their new records are
    added). Returns the :class:`~immunoreset.registry.repository.SaveStats`.
    """
    from immunoreset.registry.csvio import import_courses

    actor.require_write("import data")
    parsed = read_bundles(paths, validate=validate)
    missing = [sid for sid, d in parsed.drafts.items() if not d.records.get("_patient")]
    known = {p.study_id: p for p in registry.list_patients(actor)} if missing else {}
    errors: list[InvalidInput] = []
    courses = []
    for sid, draft in parsed.drafts.items():
        if sid in missing and sid not in known:
            errors.append(
                InvalidInput("subject", sid, "a Patient in the bundle or a registered study ID")
            )
            continue
        course = _finish(sid, draft, errors, known.get(sid))
        if course is not None:
            courses.append(course)
    if errors:
        raise ImportRefused(errors, what="FHIR import")
    return import_courses(registry, actor, courses, sites=parsed.sites, reason=reason)
