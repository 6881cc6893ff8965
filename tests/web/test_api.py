"""The JSON API: bearer tokens, CSRF for cookie writes, 404/403/422, grading."""

from __future__ import annotations

import pytest

from immunoreset.registry import Registry
from immunoreset.web.security import issue_api_token, revoke_token

DAY = {
    "date": "2023-12-01",
    "temperature_max_c": 38.6,
    "oxygen_device": "nasal_cannula",
    "oxygen_flow_l_min": 2.0,
    "ice_score": 10,
}


@pytest.fixture
def bearer(registry: Registry):  # type: ignore[no-untyped-def]
    def _for(username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_api_token(registry, username, 'tests')}"}

    return _for


def test_list_and_get_course(client, bearer) -> None:
    h = bearer("rosa")
    patients = client.get("/api/v1/patients", headers=h).json()
    assert [p["study_id"] for p in patients] == ["RM-001", "RM-002", "RM-003", "RM-004", "RM-005"]
    course = client.get("/api/v1/patients/RM-001/course", headers=h).json()
    assert course["patient"]["study_id"] == "RM-001" and course["day0"] == "2023-10-31"
    assert len(course["records"]["daily_assessments"]) == 38
    assert client.get("/api/v1/patients?diagnosis=JDM", headers=h).status_code == 200


def test_grades(client, bearer) -> None:
    grades = client.get("/api/v1/patients/RM-001/grades", headers=bearer("rosa")).json()
    day5 = next(g for g in grades if g["study_day"] == 5)
    assert day5["crs_grade"] == 1 and day5["date"] == "2023-11-05"


def test_post_assessment_with_bearer_needs_no_csrf(client, bearer, registry: Registry) -> None:
    resp = client.post("/api/v1/patients/RM-001/assessments", json=DAY, headers=bearer("rosa"))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["crs_grade"] == 2 and body["study_day"] == 31
    assert "hypoxia requiring low-flow nasal cannula (2 L/min ≤ 6)" in body["crs_reasons"]
    entry = registry.audit_trail(registry.actor_for("rosa"), study_id="RM-001", limit=1)[0]
    assert entry["username"] == "rosa" and entry["reason"] == "entered through the API"


def test_cookie_write_needs_csrf_header(client, as_user, registry: Registry) -> None:
    csrf = as_user("rosa")
    before = registry.count_rows()
    assert client.post("/api/v1/patients/RM-001/assessments", json=DAY).status_code == 403
    bad = client.post(
        "/api/v1/patients/RM-001/assessments", json=DAY, headers={"X-CSRF-Token": "x"}
    )
    assert bad.status_code == 403
    assert registry.count_rows() == before
    ok = client.post(
        "/api/v1/patients/RM-001/assessments", json=DAY, headers={"X-CSRF-Token": csrf}
    )
    assert ok.status_code == 201


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"temperature_max_c": 55}, "temperature_max_c"),
        ({"oxygen_device": "tent"}, "oxygen_device"),
        ({"vasopressors": ["adrenaline"]}, "vasopressors"),
        ({"ice_score": 12}, "ice_score"),
        ({"temperature_max_c": "hot"}, "temperature_max_c"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_assessment_names_the_field(
    client, bearer, registry: Registry, changes: dict, field: str
) -> None:
    before = registry.count_rows()
    resp = client.post(
        "/api/v1/patients/RM-001/assessments", json={**DAY, **changes}, headers=bearer("rosa")
    )
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"][-1] == field
    assert registry.count_rows() == before


def test_other_site_and_monitor(client, bearer, registry: Registry) -> None:
    before = registry.count_rows()
    r = client.post("/api/v1/patients/ER-001/assessments", json=DAY, headers=bearer("rosa"))
    assert r.status_code == 404
    m = client.post("/api/v1/patients/RM-001/assessments", json=DAY, headers=bearer("mona"))
    assert m.status_code == 403
    assert client.get("/api/v1/patients/RM-001/course", headers=bearer("mona")).status_code == 200
    assert registry.count_rows() == before


def test_post_lab(client, bearer, registry: Registry) -> None:
    lab = {"date": "2023-12-01", "analyte": "crp", "value": 30, "unit": "mg/L"}
    resp = client.post("/api/v1/patients/RM-001/labs", json=lab, headers=bearer("rosa"))
    assert resp.status_code == 201 and resp.json()["value"] == pytest.approx(3.0)
    assert resp.json()["unit"] == "mg/dL"
    dup = client.post("/api/v1/patients/RM-001/labs", json=lab, headers=bearer("rosa"))
    assert dup.status_code == 422 and dup.json()["detail"][0]["loc"][-1] == "labs"
    bad = client.post(
        "/api/v1/patients/RM-001/labs", json={**lab, "unit": "furlongs"}, headers=bearer("rosa")
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "unit"


@pytest.mark.parametrize(
    ("body", "crs", "icans", "instrument"),
    [
        ({"study_id": "RM-001", **DAY}, 2, 0, "ice"),
        ({"study_id": "RM-001", "date": "2023-12-01", "temperature_max_c": 37.9}, 0, 0, "ice"),
        # CAPD ≥ 9 → 3; no temperature: CRS not gradable (Lee 2019, issue #12 item 4)
        ({"study_id": "RM-003", "date": "2024-05-02", "capd_score": 9}, None, 3, "capd"),
        (
            {"age_years": 30, "date": "2024-01-01", "temperature_max_c": 38.0, "ice_score": 6},
            1,
            2,
            "ice",
        ),
        (
            {
                "age_years": 5,
                "date": "2024-01-01",
                "hypotension": True,
                "vasopressors": ["norepinephrine", "vasopressin"],
                "temperature_max_c": 39,
            },
            3,
            0,
            "capd",
        ),
    ],
)
def test_grade_endpoint(
    client, bearer, body: dict, crs: int | None, icans: int, instrument: str
) -> None:
    resp = client.post("/api/v1/grade", json=body, headers=bearer("mona"))
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert (out["crs_grade"], out["icans_grade"], out["instrument"]) == (crs, icans, instrument)
    assert out["crs_reasons"]


def test_grade_endpoint_errors(client, bearer) -> None:
    h = bearer("rosa")
    no_age = client.post("/api/v1/grade", json={"date": "2024-01-01"}, headers=h)
    assert no_age.status_code == 422 and no_age.json()["detail"][0]["loc"][-1] == "age_years"
    child_ice = client.post(
        "/api/v1/grade",
        json={"study_id": "RM-003", "date": "2024-05-02", "ice_score": 8},
        headers=h,
    )
    assert child_ice.status_code == 422
    other = client.post("/api/v1/grade", json={"study_id": "ER-001", **DAY}, headers=h)
    assert other.status_code == 404


def test_revoked_token_is_refused(client, registry: Registry) -> None:
    token = issue_api_token(registry, "rosa", "short-lived")
    h = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/patients", headers=h).status_code == 200
    revoke_token(registry, token)
    assert client.get("/api/v1/patients", headers=h).status_code == 401


def test_token_for_unknown_user_or_bad_label(registry: Registry) -> None:
    from immunoreset.errors import InvalidInput, NotFound

    with pytest.raises(NotFound):
        issue_api_token(registry, "ghost", "x")
    with pytest.raises(InvalidInput):
        issue_api_token(registry, "rosa", "web-session")


def test_database_outage_is_503_with_retry_after(client, bearer, registry: Registry, caplog):  # type: ignore[no-untyped-def]
    """PostgreSQL down or restarting: 503 + Retry-After, no traceback, no SQL values logged."""
    import socket

    from immunoreset.registry.db import make_engine

    h = bearer("rosa")
    with socket.socket() as s:  # a port nobody listens on: the server is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    live = registry.engine
    registry.engine = make_engine(f"postgresql+psycopg://u@127.0.0.1:{port}/x", migrate=False)
    try:
        for path in ("/api/v1/patients", "/api/v1/patients/RM-001/course"):
            r = client.get(path, headers=h)
            assert r.status_code == 503 and r.headers["Retry-After"] == "5"
            assert "try again" in r.json()["detail"]
        r = client.get("/", headers={**h, "Accept": "text/html"})
        assert r.status_code in (503, 303)
    finally:
        registry.engine.dispose()
        registry.engine = live
    assert "RM-001" not in caplog.text and "Traceback" not in caplog.text
    assert client.get("/api/v1/patients", headers=h).status_code == 200  # back again
