"""Define-XML 2.1 for the SDTM datasets of :mod:`immunoreset.interop.sdtm`.

One ``ItemGroupDef`` per dataset (with ``def:Class``, ``def:Structure``, keys as
``KeySequence`` and its ``def:leaf`` pointing at the ``.xpt`` file), one ``ItemDef`` per
variable (data type, length as in the data, SAS name, label, origin), ``CodeList`` for every
variable with controlled terms, and the study-day derivation as a ``MethodDef``. Namespaces
and element names follow the CDISC Define-XML 2.1 specification (ODM 1.3.2 base).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from immunoreset.interop.sdtm import DOMAINS, SDTMIG_VERSION

__all__ = ["NS", "define_xml", "write_define"]

NS = {
    "odm": "http://www.cdisc.org/ns/odm/v1.3",
    "def": "http://www.cdisc.org/ns/def/v2.1",
    "xlink": "http://www.w3.org/1999/xlink",
}
ET.register_namespace("", NS["odm"])
ET.register_namespace("def", NS["def"])
ET.register_namespace("xlink", NS["xlink"])


def _o(tag: str) -> str:
    return f"{{{NS['odm']}}}{tag}"


def _d(tag: str) -> str:
    return f"{{{NS['def']}}}{tag}"


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    el = ET.SubElement(parent, tag)
    tt = ET.SubElement(
        el, _o("TranslatedText"), {"{http://www.w3.org/XML/1998/namespace}lang": "en"}
    )
    tt.text = text
    return el


def _length(frame: Any, name: str, kind: str) -> int:
    if kind == "Num":
        return 8
    if frame is None or len(frame) == 0:
        return 1
    import pandas as pd

    return max(1, *map(len, pd.unique(frame[name].astype(str).to_numpy())))


def define_xml(
    datasets: Mapping[str, Any],
    *,
    study: str = "IMMUNORESET",
    lengths: Mapping[str, Mapping[str, int]] | None = None,
) -> ET.ElementTree:
    """The Define-XML 2.1 document describing ``datasets`` (domain -> DataFrame).

    ``lengths`` (domain -> variable -> longest text) may give the text lengths already known
    to the caller; missing ones are measured in the data.
    """
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    odm = ET.Element(
        _o("ODM"),
        {
            "FileType": "Snapshot",
            "FileOID": f"DEFINE.{study}.SDTM",
            "ODMVersion": "1.3.2",
            "CreationDateTime": now,
            "Originator": "immunoreset",
            _d("Context"): "Other",
        },
    )
    st = ET.SubElement(odm, _o("Study"), {"OID": f"STUDY.{study}"})
    gv = ET.SubElement(st, _o("GlobalVariables"))
    for tag, text in (
        ("StudyName", study),
        ("StudyDescription", "Point-of-care CD19 CAR T in refractory autoimmune disease"),
        ("ProtocolName", study),
    ):
        ET.SubElement(gv, _o(tag)).text = text
    mdv = ET.SubElement(
        st,
        _o("MetaDataVersion"),
        {
            "OID": f"MDV.{study}.SDTMIG.{SDTMIG_VERSION}",
            "Name": f"{study} SDTM tabulations",
            _d("DefineVersion"): "2.1.0",
        },
    )
    stds = ET.SubElement(mdv, _d("Standards"))
    ET.SubElement(
        stds,
        _d("Standard"),
        {
            "OID": "STD.SDTMIG",
            "Name": "SDTMIG",
            "Type": "IG",
            "Version": SDTMIG_VERSION,
            "Status": "Final",
        },
    )
    items: list[ET.Element] = []
    codelists: list[ET.Element] = []
    methods: dict[str, ET.Element] = {}
    for name, frame in datasets.items():
        dom = DOMAINS[name]
        known = (lengths or {}).get(name, {})
        ig = ET.SubElement(
            mdv,
            _o("ItemGroupDef"),
            {
                "OID": f"IG.{name}",
                "Name": name,
                "Repeating": "No" if name == "DM" else "Yes",
                "IsReferenceData": "No",
                "SASDatasetName": name,
                "Domain": name,
                "Purpose": "Tabulation",
                _d("Structure"): dom.structure,
                _d("StandardOID"): "STD.SDTMIG",
                _d("ArchiveLocationID"): f"LF.{name}",
            },
        )
        _text(ig, _o("Description"), dom.label)
        for i, v in enumerate(dom.variables, start=1):
            oid = f"IT.{name}.{v.name}"
            attrs = {
                "ItemOID": oid,
                "OrderNumber": str(i),
                "Mandatory": "Yes" if v.core == "Req" else "No",
            }
            if v.name in dom.keys:
                attrs["KeySequence"] = str(dom.keys.index(v.name) + 1)
            if v.method:
                attrs["MethodOID"] = "MT.STUDYDAY"
                methods.setdefault("MT.STUDYDAY", _method(v.method))
            ET.SubElement(ig, _o("ItemRef"), attrs)
            kind = (
                "float"
                if v.type == "Num"
                else ("date" if v.name.endswith("DTC") and v.name != "BRTHDTC" else "text")
            )
            if v.name.endswith("SEQ") or v.name.endswith("DY") or v.name == "AGE":
                kind = "integer"
            item = ET.Element(
                _o("ItemDef"),
                {
                    "OID": oid,
                    "Name": v.name,
                    "DataType": kind,
                    "Length": str(
                        known[v.name]
                        if v.type != "Num" and v.name in known
                        else _length(frame, v.name, v.type)
                    ),
                    "SASFieldName": v.name,
                },
            )
            _text(item, _o("Description"), v.label)
            if v.codelist:
                cl_oid = f"CL.{name}.{v.name}"
                ET.SubElement(item, _o("CodeListRef"), {"CodeListOID": cl_oid})
                cl = ET.Element(
                    _o("CodeList"), {"OID": cl_oid, "Name": f"{name} {v.name}", "DataType": "text"}
                )
                for term in v.codelist:
                    ET.SubElement(cl, _o("EnumeratedItem"), {"CodedValue": term})
                codelists.append(cl)
            origin = ET.SubElement(item, _d("Origin"), {"Type": v.origin})
            if v.origin == "Collected":
                origin.set("Source", "Investigator")
            elif v.origin == "Assigned":
                origin.set("Source", "Sponsor")
            items.append(item)
        cls = ET.SubElement(ig, _d("Class"), {"Name": dom.cls})
        del cls
        leaf = ET.SubElement(
            ig, _d("leaf"), {"ID": f"LF.{name}", f"{{{NS['xlink']}}}href": f"{name.lower()}.xpt"}
        )
        ET.SubElement(leaf, _d("title")).text = f"{name.lower()}.xpt"
    mdv.extend(items)
    mdv.extend(codelists)
    mdv.extend(methods.values())
    ET.indent(odm)
    return ET.ElementTree(odm)


def _method(text: str) -> ET.Element:
    m = ET.Element(
        _o("MethodDef"), {"OID": "MT.STUDYDAY", "Name": "Study day", "Type": "Computation"}
    )
    _text(m, _o("Description"), text)
    return m


def write_define(
    datasets: Mapping[str, Any],
    path: str | Path,
    *,
    study: str = "IMMUNORESET",
    lengths: Mapping[str, Mapping[str, int]] | None = None,
) -> None:
    """Write ``define.xml`` (UTF-8, XML declaration)."""
    define_xml(datasets, study=study, lengths=lengths).write(
        path, encoding="UTF-8", xml_declaration=True
    )
