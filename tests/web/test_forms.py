"""Data-entry forms: saved through the repository (audited) or re-shown with the field message."""

from __future__ import annotations

import pytest

from immunoreset.registry import Registry

FEVER_DAY = {
    "date": "2023-12-01",
    "temperature_max_c": "38.6",
    "oxygen_device": "nasal_cannula",
    "oxygen_flow_l_min": "2",
    "ice_score": "10",
    "consciousness": "awake",
    "seizure": "none",
    "cerebral_edema": "none",
}


def test_assessment_is_saved_and_audited(client, as_user, registry: Registry) -> None:
    csrf = as_user("rosa")
    resp = client.post(
        "/patients/RM-001/assessments",
        data={**FEVER_DAY, "csrf_token": csrf, "reason": "bedside entry"},
        follow_redirects=False,
    )
    # day 31 is past the acute phase (days 0–14): the full grade table is opened
    assert resp.status_code == 303
    assert resp.headers["location"] == "/patients/RM-001?grades=all#day-31"
    course = registry.load_course(registry.actor_for("rosa"), "RM-001")
    day = next(a for a in course.daily_assessments if str(a.date) == "2023-12-01")
    assert day.temperature_max_c == 38.6 and day.oxygen_flow_l_min == 2.0
    entry = registry.audit_trail(registry.actor_for("rosa"), study_id="RM-001", limit=1)[0]
    assert entry["username"] == "rosa" and entry["reason"] == "bedside entry"
    page = client.get(resp.headers["location"]).text
    assert 'id="day-31"' in page and "low-flow nasal cannula" in page


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"temperature_max_c": "55"},
            "temperature_max_c",
            "temperature_max_c must be within 25–45 °C",
        ),
        ({"temperature_max_c": "hot"}, "temperature_max_c", "temperature_max_c must be a number"),
        ({"oxygen_flow_l_min": ""}, "oxygen_flow_l_min", "oxygen_flow_l_min must be a flow"),
        ({"ice_score": "11"}, "ice_score", "ice_score must be"),
        ({"date": ""}, "date", "date must be a date"),
        ({"oxygen_device": "tent"}, "oxygen_device", "oxygen_device must be one of"),
        ({"date": "2023-11-30"}, "date", "already exists"),
    ],
)
def test_bad_value_is_shown_beside_the_field_and_nothing_stored(
    client, as_user, registry: Registry, changes: dict[str, str], field: str, message: str
) -> None:
    csrf = as_user("rosa")
    before = registry.count_rows()
    resp = client.post(
        "/patients/RM-001/assessments", data={**FEVER_DAY, **changes, "csrf_token": csrf}
    )
    assert resp.status_code == 422
    html = resp.text
    box = html[html.index(f'id="field-{field}"') :]
    box = box[: box.index("</div>")]
    assert 'class="field invalid"' in html[html.index(f'id="field-{field}"') - 40 :][:80]
    assert message in box
    assert registry.count_rows() == before


def test_value_typed_is_kept_after_an_error(client, as_user) -> None:
    csrf = as_user("rosa")
    resp = client.post(
        "/patients/RM-001/assessments",
        data={**FEVER_DAY, "temperature_max_c": "55", "csrf_token": csrf},
    )
    assert 'value="55"' in resp.text and 'value="2"' in resp.text


def test_missing_csrf_token_is_rejected(client, as_user, registry: Registry) -> None:
    as_user("rosa")
    before = registry.count_rows()
    assert client.post("/patients/RM-001/assessments", data=FEVER_DAY).status_code == 403
    wrong = {**FEVER_DAY, "csrf_token": "forged"}
    assert client.post("/patients/RM-001/assessments", data=wrong).status_code == 403
    assert registry.count_rows() == before


def test_ice_score_refused_for_a_child_under_12(client, as_user, registry: Registry) -> None:
    csrf = as_user("rosa")
    page = client.get("/patients/RM-003/assessments/new").text
    assert "CAPD score" in page
    before = registry.count_rows()
    resp = client.post(
        "/patients/RM-003/assessments",
        data={
            "date": "2024-05-02",
            "temperature_max_c": "37",
            "ice_score": "9",
            "csrf_token": csrf,
        },
    )
    assert resp.status_code == 422 and 'data-error-for="ice_score">ice_score' in resp.text
    assert registry.count_rows() == before
    ok = client.post(
        "/patients/RM-003/assessments",
        data={
            "date": "2024-05-02",
            "temperature_max_c": "37",
            "capd_score": "4",
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert ok.status_code == 303


def test_other_site_form_post_is_not_found(client, as_user, registry: Registry) -> None:
    csrf = as_user("rosa")
    before = registry.count_rows()
    resp = client.post("/patients/ER-001/assessments", data={**FEVER_DAY, "csrf_token": csrf})
    assert resp.status_code == 404
    assert registry.count_rows() == before


def test_lab_is_saved_in_canonical_units(client, as_user, registry: Registry) -> None:
    csrf = as_user("dana")
    resp = client.post(
        "/patients/RM-001/labs",
        data={
            "csrf_token": csrf,
            "date": "2023-12-01",
            "analyte": "anc",
            "value": "1.2",
            "unit": "10^9/L",
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303
    course = registry.load_course(registry.actor_for("dana"), "RM-001")
    lab = next(r for r in course.labs if str(r.date) == "2023-12-01" and r.analyte == "anc")
    assert lab.value == pytest.approx(1200.0) and lab.unit == "cells/uL"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"value": "-1"}, "value", "value must be"),
        ({"value": ""}, "value", "value must be a number"),
        ({"unit": "furlongs"}, "unit", "unit must be"),
        ({"value": "999999999"}, "value", "value must be within"),
    ],
)
def test_lab_validation_message(
    client, as_user, registry: Registry, changes: dict[str, str], field: str, message: str
) -> None:
    csrf = as_user("rosa")
    before = registry.count_rows()
    data = {
        "csrf_token": csrf,
        "date": "2023-12-01",
        "analyte": "anc",
        "value": "800",
        "unit": "cells/uL",
        **changes,
    }
    resp = client.post("/patients/RM-001/labs", data=data)
    assert resp.status_code == 422
    assert f'data-error-for="{field}">{message}' in resp.text
    assert registry.count_rows() == before


def test_disease_score_saved_and_validated(client, as_user, registry: Registry) -> None:
    csrf = as_user("rosa")
    base = {"csrf_token": csrf, "date": "2023-12-01", "instrument": "sledai2k"}
    bad = client.post("/patients/RM-001/disease", data={**base, "score": "200"})
    assert (
        bad.status_code == 422 and 'data-error-for="score">score must be within 0–105' in bad.text
    )
    ok = client.post(
        "/patients/RM-001/disease", data={**base, "score": "4"}, follow_redirects=False
    )
    assert ok.status_code == 303
    course = registry.load_course(registry.actor_for("rosa"), "RM-001")
    assert any(d.score == 4 and str(d.date) == "2023-12-01" for d in course.disease_assessments)


def test_blank_assessment_is_not_assessed_and_cannot_be_saved(
    client, as_user, registry: Registry
) -> None:
    """Issue #12 item 4: a blank form shows "not assessed", never a green grade 0, and is
    refused (the repository's rule, so every writer applies it)."""
    csrf = as_user("rosa")
    form = client.get("/patients/RM-001/assessments/new").text
    assert "not assessed" in form and 'class="g g0"' not in form
    before = registry.count_rows()
    resp = client.post(
        "/patients/RM-001/assessments", data={"date": "2023-12-01", "csrf_token": csrf}
    )
    assert resp.status_code == 422 and "blank assessment cannot be saved" in resp.text
    assert registry.count_rows() == before
    live = client.post(
        "/api/v1/grade",
        json={"study_id": "RM-001", "date": "2023-12-01"},
        headers={"X-CSRF-Token": csrf},
    )
    assert live.status_code == 200, live.text
    body = live.json()
    assert (body["crs_grade"], body["icans_grade"]) == (None, None)
    assert "not assessed" in body["crs_reasons"][0]


def test_capd_answered_item_by_item_is_reverse_scored(client, as_user, registry: Registry) -> None:
    """Traube 2014 (issue #12 item 7): a calm child answering "always" to items 1–4 scores 0."""
    from immunoreset.clinical.icans import CAPD_ITEMS

    csrf = as_user("rosa")
    calm = {f"capd_{i}": "always" for i in CAPD_ITEMS[:4]}
    calm |= {f"capd_{i}": "never" for i in CAPD_ITEMS[4:]}
    resp = client.post(
        "/patients/RM-003/assessments",
        data={"date": "2024-06-30", "temperature_max_c": "37.0", "csrf_token": csrf, **calm},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text[:2000]
    course = registry.load_course(registry.actor_for("rosa"), "RM-003")
    day = next(a for a in course.daily_assessments if str(a.date) == "2024-06-30")
    assert day.capd_score == 0
    partial = client.post(
        "/patients/RM-003/assessments",
        data={"date": "2024-07-01", "temperature_max_c": "37.0", "csrf_token": csrf,
              "capd_restless": "often"},
    )  # fmt: skip
    assert partial.status_code == 422 and "capd_eye_contact" in partial.text
