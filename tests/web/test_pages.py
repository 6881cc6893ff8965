"""Every page: content, site scoping (404), monitor read-only (no save button, 403)."""

from __future__ import annotations

import pytest

from immunoreset.registry import Registry


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "RM-001"),
        ("/patients/RM-001", "Daily grades"),
        ("/patients/RM-001", "Chain of identity"),
        ("/patients/RM-001", "Medications"),
        ("/patients/RM-001/assessments/new", "Grade as entered"),
        ("/patients/RM-001/labs/new", "Lab value"),
        ("/patients/RM-001/disease/new", "Disease score"),
        ("/batches", "RM-001-B1"),
        ("/batches/RM-001-B1", "Release testing"),
        ("/audit", "demo cohort"),
        ("/audit?study_id=RM-001", "RM-001"),
        ("/reports", "Case series"),
        ("/api/docs", "/api/v1/patients/{study_id}/assessments"),
    ],
)
def test_page_renders(client, as_user, path: str, expected: str) -> None:
    as_user("rosa")
    resp = client.get(path)
    assert resp.status_code == 200, resp.text
    assert expected in resp.text
    assert resp.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in resp.headers["content-security-policy"]


def test_no_external_assets(client, as_user) -> None:
    as_user("rosa")
    for path in ("/", "/patients/RM-001", "/patients/RM-001/assessments/new", "/api/docs"):
        html = client.get(path).text
        assert "http://" not in html.replace("http://testserver", "")
        assert "https://" not in html


def test_static_assets(client) -> None:
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200 and "plotly" in js.text[:2000].lower()
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/static/assessment.js").status_code == 200


def test_dashboard_is_site_scoped(client, as_user) -> None:
    as_user("rosa")
    html = client.get("/").text
    assert "RM-001" in html and "ER-001" not in html
    assert "5 patients" in html


def test_admin_sees_every_site(client, as_user) -> None:
    as_user("admin")
    html = client.get("/").text
    assert "RM-001" in html and "ER-001" in html and "8 patients" in html


@pytest.mark.parametrize(
    "path",
    [
        "/patients/ER-001",
        "/patients/ER-001/assessments/new",
        "/batches/ER-001-B1",
        "/audit?study_id=ER-001",
        "/patients/ZZ-999",
    ],
)
def test_other_site_patient_is_not_found(client, as_user, path: str) -> None:
    as_user("rosa")
    assert client.get(path).status_code == 404


@pytest.mark.parametrize(
    "path",
    ["/api/v1/patients/ER-001/course", "/api/v1/patients/ER-001/grades"],
)
def test_other_site_patient_is_not_found_in_api(client, as_user, path: str) -> None:
    as_user("rosa")
    assert client.get(path).status_code == 404


def test_monitor_sees_no_save_buttons(client, as_user) -> None:
    as_user("mona")
    html = client.get("/patients/RM-001").text
    assert "Enter daily assessment" not in html and "Add lab value" not in html
    assert "read-only access" in html


@pytest.mark.parametrize("kind", ["assessments", "labs", "disease"])
def test_monitor_gets_no_form(client, as_user, kind: str) -> None:
    as_user("mona")
    assert client.get(f"/patients/RM-001/{kind}/new").status_code == 403


def test_monitor_write_is_forbidden(client, as_user, registry: Registry) -> None:
    csrf = as_user("mona")
    before = registry.count_rows()["daily_assessments"]
    resp = client.post(
        "/patients/RM-001/assessments",
        data={"csrf_token": csrf, "date": "2023-12-01", "temperature_max_c": "38.6"},
    )
    assert resp.status_code == 403
    api = client.post(
        "/api/v1/patients/RM-001/assessments",
        json={"date": "2023-12-01", "temperature_max_c": 38.6},
        headers={"X-CSRF-Token": csrf},
    )
    assert api.status_code == 403
    assert registry.count_rows()["daily_assessments"] == before


def test_unknown_form_kind(client, as_user) -> None:
    as_user("rosa")
    assert client.get("/patients/RM-001/surgery/new").status_code == 404


def test_dashboard_alerts(client, as_user, registry: Registry) -> None:
    csrf = as_user("rosa")
    resp = client.post(
        "/api/v1/patients/RM-001/assessments",
        json={
            "date": "2023-12-01",
            "temperature_max_c": 38.6,
            "oxygen_device": "nasal_cannula",
            "oxygen_flow_l_min": 2.0,
            "ice_score": 10,
        },
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status_code == 201
    html = client.get("/?alerts_only=true").text
    assert "grade 2 CRS today (day 31)" in html
    assert "RM-002" not in html


def test_bag_expiring_alert(client, as_user, registry: Registry, app) -> None:
    import datetime as dt

    app.state.settings.today = dt.date(2024, 10, 1)  # RM-001's stored bags expire 2024-10-12
    as_user("rosa")
    html = client.get("/").text
    assert "bag RM-001-B1-02 expires 2024-10-12" in html


def test_dashboard_pages(client, as_user, app) -> None:
    app.state.settings.page_size = 5
    as_user("admin")
    first, second = client.get("/?page=1").text, client.get("/?page=2").text
    assert "page 1 of 2" in first and "ER-001" in first
    assert "RM-004" in second and "ER-001" not in second
    assert "RM-001" in client.get("/?page=9&site=ROME").text


def test_batch_qc_evaluation(client, as_user) -> None:
    csrf = as_user("rosa")
    page = client.get("/batches/RM-001-B1")
    assert "cd3 viability" in page.text
    resp = client.post(
        "/batches/RM-001-B1/qc",
        data={"csrf_token": csrf, "cd3_viability": "92.5", "endotoxin": "9"},
    )
    assert resp.status_code == 200
    assert "Not releasable" in resp.text and "endotoxin" in resp.text
    bad = client.post("/batches/RM-001-B1/qc", data={"csrf_token": csrf, "cd3_viability": "x"})
    assert bad.status_code == 422 and "cd3_viability must be a number" in bad.text


def test_batch_qc_needs_csrf(client, as_user) -> None:
    as_user("rosa")
    assert client.post("/batches/RM-001-B1/qc", data={"cd3_viability": "90"}).status_code == 403


def test_report_download(client, as_user) -> None:
    as_user("rosa")
    resp = client.get("/reports/case-series.html")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-disposition"] == 'attachment; filename="case-series.html"'
    assert resp.text.startswith("<!DOCTYPE html>") and "ER-001" not in resp.text
    assert client.get("/reports/case-series.docx").status_code == 404


def test_patient_summary_of_another_site_is_not_found(client, as_user) -> None:
    as_user("rosa")
    assert client.get("/reports/case-series.html?patient=ER-001").status_code == 404


def test_api_docs_and_schema(client, as_user) -> None:
    as_user("rosa")
    schema = client.get("/api/openapi.json").json()
    assert "/api/v1/grade" in schema["paths"]
    assert "GradeRequest" in client.get("/api/docs").text


def test_patient_page_shows_the_safety_follow_up(client, as_user) -> None:
    """Issue #12: IgG against the age-specific LLN, IVIG, infections, LTFU schedule."""
    as_user("rosa")
    html = client.get("/patients/RM-003").text
    assert 'id="safety"' in html and 'id="igg"' in html and 'id="ltfu"' in html
    assert "Mayo Clinic Laboratories" in html and "IVIG episodes" in html
    assert 'id="infections"' in html and "upper respiratory" in html
    assert "T-ICAHT" in html


def test_dashboard_lists_overdue_ltfu_visits() -> None:
    """An LTFU visit whose window closed without a visit is an alert on the dashboard."""
    import datetime as dt

    from immunoreset import demo
    from immunoreset.web.views import dashboard_row

    course = demo.published_cohort()[0]
    late = course.followup.last_contact + dt.timedelta(days=400)
    row = dashboard_row(course, today=late)
    assert any(a.startswith("LTFU visit") and "overdue" in a for a in row.alerts)
    on_time = dashboard_row(course, today=course.day0 + dt.timedelta(days=20))
    assert not any(a.startswith("LTFU visit") for a in on_time.alerts)
