"""Define-XML 2.1: well-formed, one ItemGroupDef per dataset, every variable named in order."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from immunoreset.interop import sdtm
from immunoreset.interop.define import NS


def test_define_xml_names_every_variable(exported) -> None:
    out, data = exported
    root = ET.parse(out / "define.xml").getroot()  # well-formed
    odm = f"{{{NS['odm']}}}"
    dfn = f"{{{NS['def']}}}"
    assert root.tag == odm + "ODM"
    mdv = root.find(f"{odm}Study/{odm}MetaDataVersion")
    assert mdv.get(f"{dfn}DefineVersion") == "2.1.0"
    items = {i.get("OID"): i for i in mdv.findall(f"{odm}ItemDef")}
    codelists = {c.get("OID") for c in mdv.findall(f"{odm}CodeList")}
    groups = {g.get("Name"): g for g in mdv.findall(f"{odm}ItemGroupDef")}
    assert set(groups) == set(sdtm.DOMAINS)
    for name, group in groups.items():
        refs = group.findall(f"{odm}ItemRef")
        names = [items[r.get("ItemOID")].get("Name") for r in refs]
        assert names == list(data[name].columns), name
        leaf = group.find(f"{dfn}leaf")
        assert (out / leaf.get(f"{{{NS['xlink']}}}href")).exists()
        for r in refs:
            item = items[r.get("ItemOID")]
            ref = item.find(f"{odm}CodeListRef")
            if ref is not None:
                assert ref.get("CodeListOID") in codelists
            length = int(item.get("Length"))
            if item.get("DataType") in ("text", "date"):
                assert data[name][item.get("Name")].str.len().max() <= length
        keys = sorted(int(r.get("KeySequence")) for r in refs if r.get("KeySequence"))
        assert keys == list(range(1, len(keys) + 1))
