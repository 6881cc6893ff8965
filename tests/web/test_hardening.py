"""Issue 13 item 7 on the web: paging, CSP, HSTS, audit reasons — refused, nothing stored."""

from __future__ import annotations

import pytest

from immunoreset.registry import Registry
from tests.web.conftest import login


@pytest.mark.parametrize("path", ["/", "/batches"])
@pytest.mark.parametrize("page", [str(10**20), str(10**6 + 1), "1e3", "ten"])
def test_absurd_page_numbers_are_refused_not_500(client, as_user, path: str, page: str) -> None:
    as_user("rosa")
    resp = client.get(path, params={"page": page})
    assert resp.status_code == 422
    assert "page" in resp.text


def test_csp_has_no_unsafe_eval_except_on_the_plotly_page(client, as_user) -> None:
    as_user("rosa")
    for path in ("/", "/batches", "/patients/RM-001/assessments/new", "/login"):
        assert "unsafe-eval" not in client.get(path).headers["content-security-policy"]
    plotly_page = client.get("/patients/RM-001").headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-eval'" in plotly_page


def test_hsts_only_when_configured(client, registry: Registry, settings) -> None:
    from fastapi.testclient import TestClient

    from immunoreset.web import create_app

    assert "strict-transport-security" not in client.get("/login").headers
    hsts = settings.model_copy(update={"hsts_seconds": 31536000})
    with TestClient(create_app(registry, hsts), base_url="https://testserver") as c:
        header = c.get("/login").headers["strict-transport-security"]
    assert header == "max-age=31536000; includeSubDomains"


@pytest.mark.parametrize("reason", ["x" * 1001, "typo\x00hidden", "bell\x07"])
def test_audit_reason_limits_on_the_api(client, registry: Registry, reason: str) -> None:
    from immunoreset.web.security import issue_api_token

    token = issue_api_token(registry, "rosa", "lab system")
    before = registry.load_course(registry.actor_for("admin"), "RM-001")
    n_audit = registry.count_rows()["audit_log"]
    resp = client.post(
        "/api/v1/patients/RM-001/labs",
        json={
            "date": "2023-11-20",
            "analyte": "crp",
            "value": 3.0,
            "unit": "mg/L",
            "reason": reason,
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status_code == 422, resp.text
    assert registry.load_course(registry.actor_for("admin"), "RM-001") == before
    assert registry.count_rows()["audit_log"] == n_audit


def test_throttled_login_answers_429_with_retry_after(client) -> None:
    codes = [login(client, "nobody", "guess guess").status_code for _ in range(8)]
    assert codes[:3] == [401, 401, 401] and 429 in codes  # delays double: soon one is hit
