"""Issue 13 item 5 on the web: a record dated after today or before the patient's birth month
is refused beside the date field (form) or as a 422 naming the field (API); nothing stored."""

from __future__ import annotations

import datetime as dt

import pytest

from immunoreset.registry import Registry
from immunoreset.web.security import issue_api_token
from tests.web.test_forms import FEVER_DAY

LAB = {"analyte": "anc", "value": "1.2", "unit": "10^9/L"}


def _before_birth(registry: Registry) -> str:
    p = registry.load_course(registry.actor_for("rosa"), "RM-001").patient
    return (dt.date(p.birth_year, p.birth_month, 1) - dt.timedelta(days=1)).isoformat()


def _rows(registry: Registry) -> dict[str, int]:
    return registry.count_rows()


@pytest.mark.parametrize(
    ("form", "when"),
    [
        ("assessments", "2083-01-01"),
        ("labs", "2031-01-01"),
        ("labs", "before-birth"),
    ],
)
def test_form_refuses_an_implausible_date_beside_the_field(
    client, as_user, registry: Registry, form: str, when: str
) -> None:
    when = _before_birth(registry) if when == "before-birth" else when
    data = FEVER_DAY if form == "assessments" else LAB
    csrf = as_user("rosa")
    before = _rows(registry)
    resp = client.post(f"/patients/RM-001/{form}", data={**data, "date": when, "csrf_token": csrf})
    assert resp.status_code == 422
    box = resp.text[resp.text.index('data-error-for="date"') :]
    assert when in box[: box.index("</")]
    assert _rows(registry) == before


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "assessments",
            {"date": "2083-01-01", "temperature_max_c": 37.0, "ice_score": 10},
        ),
        ("labs", {"date": "2031-01-01", "analyte": "crp", "value": 3, "unit": "mg/dL"}),
    ],
)
def test_api_refuses_an_implausible_date_naming_the_field(
    client, registry: Registry, path: str, body: dict
) -> None:
    headers = {"Authorization": f"Bearer {issue_api_token(registry, 'rosa', 'tests')}"}
    before = _rows(registry)
    resp = client.post(f"/api/v1/patients/RM-001/{path}", json=body, headers=headers)
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"][0]
    assert detail["loc"][-1] == "date" and "after today" in detail["msg"]
    assert _rows(registry) == before
