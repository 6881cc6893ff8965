"""Every export is site-scoped: a site's investigator exports only that site's patients, and
a monitor may export (read) but not import."""

from __future__ import annotations

import pandas as pd
import pytest

from immunoreset.errors import PermissionDenied
from immunoreset.interop import fhir, redcap, sdtm
from tests.interop.conftest import ADMIN


@pytest.fixture(scope="module")
def rome(demo_registry):
    name = "rome-investigator"
    if name not in {u["username"] for u in demo_registry.list_users()}:
        demo_registry.add_user(ADMIN, name, "investigator", ["ROME"])
    return demo_registry.actor_for(name)


def test_exports_hold_only_the_users_sites(demo_registry, rome, tmp_path) -> None:
    done = fhir.export_fhir(demo_registry, rome, tmp_path / "f")
    assert done and all(sid.startswith("RM-") for sid in done)
    redcap.export_redcap(demo_registry, rome, tmp_path / "r")
    records = pd.read_csv(tmp_path / "r" / "records.csv", dtype=str)
    assert set(records["record_id"].str[:3]) == {"RM-"}
    sdtm.export_sdtm(demo_registry, rome, tmp_path / "s")
    dm = pd.read_csv(tmp_path / "s" / "dm.csv", dtype=str)
    assert set(dm["SITEID"]) == {"ROME"}
    for name in sdtm.DOMAINS:  # the column-wise domains (LB …) too
        frame = pd.read_csv(tmp_path / "s" / f"{name.lower()}.csv", dtype=str)
        assert set(frame["USUBJID"].str[:15]) <= {"IMMUNORESET-RM-"}, name
    with pytest.raises(Exception, match="ER-001"):
        fhir.export_fhir(demo_registry, rome, tmp_path / "x", study_ids=["ER-001"])


def test_monitor_exports_but_cannot_import(demo_registry, tmp_path) -> None:
    name = "monitor-all"
    if name not in {u["username"] for u in demo_registry.list_users()}:
        demo_registry.add_user(ADMIN, name, "monitor", ["ROME", "ERLANGEN"])
    monitor = demo_registry.actor_for(name)
    out = tmp_path / "r"
    redcap.export_redcap(demo_registry, monitor, out)
    with pytest.raises(PermissionDenied):
        redcap.import_redcap(demo_registry, monitor, out / "records.csv")
