"""Audit trail page (#17 item 8): paged, filtered, readable old → new, CSV export, site scope."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from immunoreset.registry import Registry
from immunoreset.web.routers.audit import readable_value


@pytest.fixture
def changed(registry: Registry) -> Registry:
    """RM-001's day-0 temperature corrected by rosa; a formula-like reason by erik on ER-001."""
    rosa, erik = registry.actor_for("rosa"), registry.actor_for("erik")
    course = registry.load_course(rosa, "RM-001")
    day0 = next(a for a in course.daily_assessments if a.date == course.day0)
    registry.update_record(
        rosa, "RM-001", "daily_assessments", (day0.date,), {"temperature_max_c": 38.4},
        reason="source document re-read",
    )  # fmt: skip
    er = registry.load_course(erik, "ER-001")
    first = er.daily_assessments[0]
    registry.update_record(
        erik, "ER-001", "daily_assessments", (first.date,), {"temperature_max_c": 37.9},
        reason="=HYPERLINK(\"http://x\")",
    )  # fmt: skip
    return registry


def _table(html: str) -> str:
    return html[html.index('id="audit"') :]


def test_update_is_shown_old_to_new_not_as_json(client, as_user, changed) -> None:
    as_user("rosa")
    html = client.get("/audit", params={"study_id": "RM-001", "table": "daily_assessments"}).text
    table = _table(html)
    assert "temperature max c</strong>:" in table
    assert '<span class="new">38.4</span>' in table and "→" in table
    assert "source document re-read" in table
    # an insert shows its fields as "field: value", never a JSON object
    assert '{"' not in table and "<dt>" in table


def test_filters_user_table_patient_and_dates(client, as_user, changed) -> None:
    as_user("admin")
    by_erik = _table(client.get("/audit", params={"user": "erik"}).text)
    assert "ER-001" in by_erik and "RM-001" not in by_erik
    labs = _table(client.get("/audit", params={"table": "labs", "study_id": "RM-002"}).text)
    assert "RM-002/" in labs and "daily assessments" not in labs
    today = dt.datetime.now(dt.UTC).date()
    html = client.get("/audit", params={"since": today.isoformat(), "user": "rosa"}).text
    assert "1 entry" in html
    html = client.get("/audit", params={"until": (today - dt.timedelta(days=1)).isoformat()}).text
    assert "0 entries" in html and "No entries." in html
    bad = client.get("/audit", params={"since": "01/12/2023"})
    assert bad.status_code == 422 and "since must be a date as YYYY-MM-DD" in bad.text
    bad = client.get("/audit", params={"since": "2024-01-02", "until": "2024-01-01"})
    assert bad.status_code == 422 and "until" in bad.text


def test_paging_keeps_filters(client, as_user) -> None:
    as_user("rosa")
    first = client.get("/audit", params={"table": "labs"}).text
    assert "Entries 1–100 of" in first
    assert 'href="/audit?page=2&amp;table=labs" rel="next"' in first
    second = client.get("/audit", params={"table": "labs", "page": 2}).text
    assert "Entries 101–200 of" in second and 'rel="prev"' in second
    ids_1 = set(_ids(first))
    ids_2 = set(_ids(second))
    assert len(ids_1) == 100 and not ids_1 & ids_2  # no entry twice, newest first
    assert min(ids_1) > max(ids_2)


def _ids(html: str) -> list[int]:
    import re

    return [int(x) for x in re.findall(r'<tr id="audit-(\d+)"', html)]


def test_rome_user_never_sees_erlangen_rows(client, as_user, changed) -> None:
    as_user("rosa")
    html = client.get("/audit", params={"user": "erik"}).text
    assert "0 entries" in html and "ER-001" not in _table(html)
    everything = client.get("/audit", params={"page": 1}).text
    assert "ER-0" not in _table(everything)
    assert '<option value="erik"' not in everything  # not even as a filter choice
    assert client.get("/audit", params={"study_id": "ER-001"}).status_code == 404
    text = client.get("/audit.csv").text
    assert "ER-0" not in text and "erik" not in text
    assert client.get("/audit.csv", params={"study_id": "ER-001"}).status_code == 404
    # and the registry rule itself, not only the page
    entries, total = changed.page_audit(changed.actor_for("rosa"), limit=100_000)
    assert total == len(entries) and all((e["study_id"] or "").startswith("RM-") for e in entries)
    assert all(e["study_id"] is not None for e in entries)  # no user or site rows


def test_csv_export_neutralises_formulas_and_is_audited(client, as_user, changed) -> None:
    as_user("erik")
    resp = client.get("/audit.csv", params={"study_id": "ER-001", "table": "daily_assessments"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert resp.headers["content-disposition"] == 'attachment; filename="audit-ER-001.csv"'
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    update = next(r for r in rows if r["action"] == "update")
    assert update["reason"] == '\'=HYPERLINK("http://x")'  # a spreadsheet shows it as text
    assert update["field"] == "temperature_max_c" and update["new_value"] == "37.9"
    assert update["ts_utc"].endswith("Z") and all(r["study_id"] == "ER-001" for r in rows)
    trail = changed.audit_trail(changed.actor_for("erik"), study_id="ER-001", limit=1)[0]
    assert trail["action"] == "export" and trail["username"] == "erik"


def test_page_links_the_csv_of_the_same_selection(client, as_user) -> None:
    as_user("rosa")
    html = client.get("/audit", params={"study_id": "RM-001", "user": "system"}).text
    assert 'href="/audit.csv?study_id=RM-001&amp;user=system"' in html


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (None, None),
        ("38.4", "38.4"),
        ("true", "yes"),
        ('"2023-11-01"', "2023-11-01"),
        ('["dopamine", "epinephrine"]', "dopamine, epinephrine"),
        ('{"date": "2023-11-01", "ice_score": 10, "seizure": "none", "flow": null}',
         [("date", "2023-11-01"), ("ice score", "10"), ("seizure", "none")]),
        ("plain text export note", "plain text export note"),
    ],
)  # fmt: skip
def test_readable_value(raw, shown) -> None:  # type: ignore[no-untyped-def]
    assert readable_value(raw) == shown
