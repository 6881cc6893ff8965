"""Dashboard paging from the database, totals, HE-report and bag alerts; report downloads."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from immunoreset import demo
from immunoreset.manufacturing.authorisation import RequiredReport
from immunoreset.registry import Registry, system_actor
from immunoreset.registry.gmp import Gmp
from immunoreset.web.views import dashboard_row
from tests.web.conftest import TODAY


@pytest.mark.parametrize(
    ("user", "query", "shown", "hidden", "note"),
    [
        ("admin", "?page=1", ["ER-001", "RM-001"], ["RM-003"], "patients 1–5 of 8"),
        ("admin", "?page=2", ["RM-003", "RM-005"], ["ER-001"], "patients 6–8 of 8"),
        ("admin", "?page=9", ["RM-005"], ["ER-001"], "patients 6–8 of 8"),  # clamped
        ("admin", "?page=0", ["ER-001"], ["RM-005"], "patients 1–5 of 8"),
        ("admin", "?site=ROME", ["RM-001", "RM-005"], ["ER-001"], "patients 1–5 of 5"),
        ("rosa", "", ["RM-001", "RM-005"], ["ER-001"], "patients 1–5 of 5"),
        ("rosa", "?site=ERLANGEN", [], ["ER-001", "RM-001"], "of 0"),
    ],
)
def test_dashboard_pages_and_totals(
    client, as_user, app, user: str, query: str, shown, hidden, note: str
) -> None:
    app.state.settings.page_size = 5
    as_user(user)
    html = client.get("/" + query).text
    table = html[html.index('id="cohort"') :]
    for sid in shown:
        assert sid in table
    for sid in hidden:
        assert sid not in table
    assert note in html
    assert "Alerts are computed for the patients on this page" in html


def test_previous_and_next_links_keep_the_filters(client, as_user, app) -> None:
    app.state.settings.page_size = 5
    as_user("admin")
    first = client.get("/?alerts_only=true").text
    assert 'href="/?page=2&amp;alerts_only=true" rel="next"' in first
    assert 'rel="prev"' not in first and "page 1 of 2" in first
    second = client.get("/?page=2").text
    assert 'href="/?page=1" rel="prev"' in second and 'rel="next"' not in second
    single = client.get("/?site=ROME").text
    assert 'rel="next"' not in single and "page 1 of" not in single


def test_dashboard_reads_only_the_page(client, as_user, app, registry, monkeypatch) -> None:
    app.state.settings.page_size = 5
    asked: list[list[str]] = []
    original = Registry.iter_courses

    def spy(self, actor, **kw):  # type: ignore[no-untyped-def]
        asked.append(list(kw.get("study_ids") or []))
        return original(self, actor, **kw)

    monkeypatch.setattr(Registry, "iter_courses", spy)
    monkeypatch.setattr(
        Registry, "list_patients", lambda *a, **k: pytest.fail("list_patients called")
    )
    as_user("admin")
    asked.clear()  # logging in opened page 1
    assert client.get("/?page=2").status_code == 200
    assert asked == [["RM-003", "RM-004", "RM-005"]]


def _report(study_id: str, due: dt.date, submitted: dt.date | None = None) -> RequiredReport:
    return RequiredReport(study_id, "annual_report", "year 1", due, submitted=submitted)


def test_overdue_he_report_alert(client, as_user, registry: Registry) -> None:
    gmp = Gmp(registry)
    root = system_actor()
    gmp.add_report(root, _report("RM-001", TODAY - dt.timedelta(days=1)))  # past due
    gmp.add_report(root, _report("RM-002", TODAY))  # due today: not overdue yet
    gmp.add_report(root, _report("RM-003", dt.date(2023, 1, 1), submitted=dt.date(2023, 1, 5)))
    gmp.add_report(root, _report("ER-001", dt.date(2023, 6, 1)))
    as_user("rosa")
    html = client.get("/?alerts_only=true").text
    assert "HE report overdue: annual report (year 1), due 2023-11-30" in html
    table = html[html.index('id="cohort"') :]
    assert "RM-002" not in table and "RM-003" not in table and "ER-001" not in table


def test_overdue_he_alert_of_other_site_is_not_shown(client, as_user, registry) -> None:
    Gmp(registry).add_report(system_actor(), _report("RM-001", dt.date(2023, 6, 1)))
    as_user("erik")
    assert "HE report overdue" not in client.get("/").text
    client.cookies.clear()
    as_user("admin")
    assert "HE report overdue: annual report (year 1), due 2023-06-01" in client.get("/").text


@pytest.fixture(scope="module")
def rm001():  # type: ignore[no-untyped-def]
    return next(co for co in demo.published_cohort() if co.study_id == "RM-001")


@pytest.mark.parametrize(
    ("status", "today", "expected"),
    [
        ("stored_for_redosing", dt.date(2024, 9, 12), "expires 2024-10-12"),  # 30 days: inside
        ("stored_for_redosing", dt.date(2024, 9, 11), None),  # 31 days: outside
        ("released", dt.date(2024, 10, 13), "expired 2024-10-12"),
        # in stock awaiting release: QA must know it is about to expire (issue #17 item 6)
        ("quarantined", dt.date(2024, 10, 1), "expires 2024-10-12"),
        ("quarantined", dt.date(2024, 10, 20), "expired 2024-10-12"),
        ("discarded", dt.date(2024, 10, 1), None),  # not in stock
        ("expired", dt.date(2024, 10, 20), None),  # written off: not in stock
        ("infused", dt.date(2024, 10, 20), None),
    ],
)
def test_bag_expiring_rule(rm001, status: str, today: dt.date, expected: str | None) -> None:
    bags = tuple(
        dataclasses.replace(b, status=status if b.status != "infused" else "infused")
        for b in rm001.bags
    )
    course = dataclasses.replace(rm001, bags=bags)
    alerts = dashboard_row(course, today=today, bag_warning_days=30).alerts
    found = [a for a in alerts if a.startswith("bag ")]
    assert found == ([] if expected is None else [f"bag RM-001-B1-02 {expected}"])


def test_he_rule_uses_only_the_patients_reports(rm001) -> None:
    mine = _report("RM-001", dt.date(2023, 11, 1))
    other = _report("RM-002", dt.date(2023, 10, 1))
    two = RequiredReport("RM-001", "sae_notification", "CRS grade 3", dt.date(2023, 11, 20))
    row = dashboard_row(rm001, today=TODAY, overdue_reports=[other, two, mine])
    assert "HE report overdue: annual report (year 1), due 2023-11-01 (+1 more)" in row.alerts
    assert not any("HE" in a for a in dashboard_row(rm001, today=TODAY).alerts)


@pytest.mark.parametrize("days", [-1, 366, 1.5, "30", True])
def test_dashboard_row_refuses_bad_warning_days(rm001, days) -> None:  # type: ignore[no-untyped-def]
    from immunoreset.errors import InvalidInput

    with pytest.raises(InvalidInput, match="bag_warning_days"):
        dashboard_row(rm001, today=TODAY, bag_warning_days=days)


@pytest.mark.parametrize(
    ("fmt", "start", "media"),
    [("html", b"<!DOCTYPE html>", "text/html"), ("pdf", b"%PDF", "application/pdf")],
)
def test_report_download_formats(client, as_user, fmt: str, start: bytes, media: str) -> None:
    as_user("rosa")
    resp = client.get(f"/reports/case-series.{fmt}")
    assert resp.status_code == 200, resp.text[:300]
    assert resp.content.startswith(start)
    assert resp.headers["content-type"].startswith(media)
    assert resp.headers["content-disposition"] == f'attachment; filename="case-series.{fmt}"'


def test_patient_summary_pdf(client, as_user) -> None:
    as_user("rosa")
    resp = client.get("/reports/case-series.pdf?patient=RM-001")
    assert resp.status_code == 200 and resp.content.startswith(b"%PDF")
    assert resp.headers["content-disposition"] == 'attachment; filename="patient-RM-001.pdf"'


def test_infused_bags_past_expiry_never_alert(rm001) -> None:
    """The demo's infused bag expires before the stored ones: a year on, only stock alerts."""
    later = dt.date(2025, 1, 1)
    infused = [b for b in rm001.bags if b.status == "infused"]
    assert infused and all(b.expiry and b.expiry < later for b in infused)
    only_infused = dataclasses.replace(rm001, bags=tuple(infused))
    assert not [a for a in dashboard_row(only_infused, today=later).alerts if "bag" in a]


def test_crs_now_is_today_or_the_last_assessed_day(rm001) -> None:
    # RM-001: infused 2023-10-31, assessed days 0–30; grade 1 on days 5–7
    on_day6 = dashboard_row(rm001, today=dt.date(2023, 11, 6))
    assert on_day6.current_crs == 1 and on_day6.current_on == dt.date(2023, 11, 6)
    assert on_day6.current_is_today and on_day6.max_crs == 1
    # day 6's row is "now" on day 6 even though later days (grade 0) are recorded
    assert on_day6.last_assessment == dt.date(2023, 11, 6)
    day31 = dashboard_row(rm001, today=TODAY)  # no assessment today: the last day, dated
    assert day31.current_on == dt.date(2023, 11, 30) and not day31.current_is_today
    assert day31.current_crs == 0 and day31.last_assessment == dt.date(2023, 11, 30)
    before = dashboard_row(rm001, today=dt.date(2023, 10, 1))  # before the infusion
    assert before.current_crs is None and before.current_on is None


def test_dashboard_shows_the_date_of_now_and_the_last_assessment(client, as_user) -> None:
    as_user("rosa")
    html = client.get("/").text
    row = html[html.index('href="/patients/RM-001"') :]
    row = row[: row.index("</tr>")]
    assert "on 2023-11-30" in row  # CRS/ICANS "now" is day 30's, dated
    assert '<td class="last-assessment">2023-11-30</td>' in row
    assert "Last assessment" in html


@pytest.mark.parametrize(
    ("user", "q", "shown", "hidden"),
    [
        ("rosa", "RM-003", ["RM-003"], ["RM-001", "RM-005"]),
        ("rosa", "rm-00", ["RM-001", "RM-005"], ["ER-001"]),  # case-insensitive
        ("rosa", "  003 ", ["RM-003"], ["RM-001"]),
        ("rosa", "ER-001", [], ["ER-001", "RM-001"]),  # other site: still invisible
        ("rosa", "%", [], ["RM-001"]),  # a wildcard is a plain character
        ("rosa", "_M", [], ["RM-001"]),
        ("admin", "-001", ["ER-001", "RM-001"], ["RM-002"]),
    ],
)
def test_study_id_search(client, as_user, user: str, q: str, shown, hidden) -> None:
    as_user(user)
    html = client.get("/", params={"q": q}).text
    assert 'id="q"' in html and 'role="search"' in html
    table = html[html.index('id="cohort"') :]
    for sid in shown:
        assert f'href="/patients/{sid}"' in table
    for sid in hidden:
        assert f'href="/patients/{sid}"' not in table
    if not shown:
        assert "No patients whose study ID contains" in table


def test_search_is_kept_by_the_pager(client, as_user, app) -> None:
    app.state.settings.page_size = 5
    as_user("admin")
    html = client.get("/", params={"q": "-00"}).text
    assert "Study IDs containing" in html and "&amp;q=-00" in html
