"""Batch QC and release page: results stored and audited, release refused or accepted."""

from __future__ import annotations

import pytest

from immunoreset.registry import Registry
from immunoreset.registry.gmp import Gmp

BATCH = "RM-001-B1"
#: Release-stage results of default-v1 that all pass, except what a test changes.
PASSING = {
    "cd3_viability": "92.5",
    "cd3_purity": "95",
    "car_transduction": "30",
    "endotoxin": "0.5",
    "sterility_interim": "negative",
    "mycoplasma_interim": "negative",
    "dose_deviation": "3",
}
DEVIATION = {
    "deviation_reason": "endotoxin within the patient's weight-based limit; risk assessed",
    "deviation_raised_by": "gmp.rossi",
    "deviation_approved_by": "qp.bianchi",
    "deviation_reference": "DEV-2023-07",
}


def _stored(registry: Registry) -> dict[str, object]:
    qc = Gmp(registry).evaluate(registry.actor_for("rosa"), BATCH)
    return {a.attribute: a.value for a in qc.attributes if a.value is not None}


def _post_qc(client, csrf: str, **values: str):  # type: ignore[no-untyped-def]
    return client.post(
        f"/batches/{BATCH}/qc", data={"csrf_token": csrf, **values}, follow_redirects=False
    )


def test_page_shows_every_attribute_pending_with_limit_and_unit(client, as_user) -> None:
    as_user("rosa")
    html = client.get(f"/batches/{BATCH}").text
    row = html[html.index('id="qc-row-endotoxin"') :]
    row = row[: row.index("</tr>")]
    assert "&lt; 5 EU/mL" in row and "pending" in row and "EU/mL" in row
    assert "No release decision recorded." in html
    assert "default version 1" in html


def test_qc_results_are_stored_and_audited_with_the_user(client, as_user, registry) -> None:
    csrf = as_user("rosa")
    resp = _post_qc(client, csrf, cd3_viability="92,5", endotoxin="9", reason="QC report 41")
    assert resp.status_code == 303 and resp.headers["location"] == f"/batches/{BATCH}?saved=qc"
    assert _stored(registry) == {"cd3_viability": 92.5, "endotoxin": 9.0}
    trail = registry.audit_trail(registry.actor_for("rosa"), study_id="RM-001", limit=2)
    assert {e["table_name"] for e in trail} == {"qc_results"}
    assert {e["username"] for e in trail} == {"rosa"}
    assert {e["reason"] for e in trail} == {"QC report 41"}
    html = client.get(resp.headers["location"]).text
    assert "QC results saved" in html
    row = html[html.index('id="qc-row-endotoxin"') :]
    row = row[: row.index("</tr>")]
    assert "9 EU/mL" in row and ">fail<" in row
    viability = html[html.index('id="qc-row-cd3_viability"') :]
    assert ">pass<" in viability[: viability.index("</tr>")]
    assert "Not releasable" in html and "failed: endotoxin" in html


def test_a_new_result_replaces_the_old_one(client, as_user, registry) -> None:
    csrf = as_user("dana")
    assert _post_qc(client, csrf, cd3_viability="70").status_code == 303
    assert _post_qc(client, csrf, cd3_viability="85").status_code == 303
    assert _stored(registry) == {"cd3_viability": 85.0}
    entry = registry.audit_trail(registry.actor_for("dana"), study_id="RM-001", limit=1)[0]
    assert entry["action"] == "update" and entry["username"] == "dana"


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"cd3_viability": "150"}, "cd3_viability", "cd3_viability must be within"),
        ({"cd3_viability": "x"}, "cd3_viability", "cd3_viability must be a number"),
        ({"cd3_purity": "95", "cd3_viability": "150"}, "cd3_viability", "must be within"),
        ({"sterility_interim": "cloudy"}, "sterility_interim", "sterility_interim must be one of"),
        ({"colour": "red"}, "results", "an attribute of default-v1"),
        ({"cd3_purity": "95", "colour": "red"}, "results", "cd3_viability"),
        ({"cd3_viability": ""}, "results", "at least one QC result"),
    ],
)
def test_invalid_value_is_shown_beside_the_field_and_nothing_stored(
    client, as_user, registry, values: dict[str, str], field: str, message: str
) -> None:
    csrf = as_user("rosa")
    before = registry.count_rows()["audit_log"]
    resp = _post_qc(client, csrf, **values)
    assert resp.status_code == 422
    box = resp.text[resp.text.index(f'data-error-for="{field}"') :]
    assert message in box[: box.index("</")]
    assert _stored(registry) == {}
    assert registry.count_rows()["audit_log"] == before
    if field != "results":  # the typed value is kept for correction
        assert f'value="{values[field]}"' in resp.text


def test_monitor_sees_no_form_and_cannot_post(client, as_user, registry) -> None:
    csrf = as_user("mona")
    html = client.get(f"/batches/{BATCH}").text
    assert "Release testing" in html and "pending" in html
    assert f'action="/batches/{BATCH}/qc"' not in html
    assert f'action="/batches/{BATCH}/release"' not in html
    assert "Save QC results" not in html and "Release batch" not in html
    assert _post_qc(client, csrf, cd3_viability="90").status_code == 403
    release = client.post(f"/batches/{BATCH}/release", data={"csrf_token": csrf})
    assert release.status_code == 403
    assert _stored(registry) == {}
    assert Gmp(registry).decisions(registry.actor_for("mona"), BATCH) == []


@pytest.mark.parametrize("path", ["qc", "release"])
def test_missing_or_wrong_csrf_is_rejected(client, as_user, registry, path: str) -> None:
    as_user("rosa")
    assert client.post(f"/batches/{BATCH}/{path}", data=PASSING).status_code == 403
    forged = {**PASSING, "csrf_token": "forged"}
    assert client.post(f"/batches/{BATCH}/{path}", data=forged).status_code == 403
    assert _stored(registry) == {}
    assert Gmp(registry).decisions(registry.actor_for("rosa"), BATCH) == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/batches/ER-001-B1"),
        ("post", "/batches/ER-001-B1/qc"),
        ("post", "/batches/ER-001-B1/release"),
        ("get", "/batches/ZZ-999-B1"),
        ("get", "/batches/RM-001"),  # a study ID is not a batch
    ],
)
def test_batch_of_another_site_is_not_found(client, as_user, method: str, path: str) -> None:
    csrf = as_user("rosa")
    kwargs = {"data": {"csrf_token": csrf, "cd3_viability": "90"}} if method == "post" else {}
    assert getattr(client, method)(path, **kwargs).status_code == 404


def test_release_refused_on_failed_attribute_then_accepted_with_deviation(
    client, as_user, registry
) -> None:
    csrf = as_user("rosa")
    assert _post_qc(client, csrf, **{**PASSING, "endotoxin": "9"}).status_code == 303
    refused = client.post(f"/batches/{BATCH}/release", data={"csrf_token": csrf})
    assert refused.status_code == 409
    assert "Release refused — failed: endotoxin." in refused.text
    assert "endotoxin 9 EU/mL is not &lt; 5 EU/mL" in refused.text
    gmp = Gmp(registry)
    rosa = registry.actor_for("rosa")
    assert gmp.decision(rosa, BATCH) is None
    assert [d["decision"] for d in gmp.decisions(rosa, BATCH)] == ["refused"]
    entry = registry.audit_trail(rosa, study_id="RM-001", limit=1)[0]
    assert entry["action"] == "refused" and entry["username"] == "rosa"

    ok = client.post(
        f"/batches/{BATCH}/release",
        data={"csrf_token": csrf, **DEVIATION},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"] == f"/batches/{BATCH}?saved=release"
    decision = gmp.decision(rosa, BATCH)
    assert decision is not None and decision.grade == "released_with_deviation"
    assert decision.released_by == "rosa" and decision.spec_key == "default-v1"
    assert decision.deviation is not None and decision.deviation.attributes == ("endotoxin",)
    assert str(decision.when) == "2023-12-01"
    html = client.get(ok.headers["location"]).text
    assert "Batch released." in html and "released with deviation" in html
    assert "approved by qp.bianchi" in html and "DEV-2023-07" in html
    assert "default version 1" in html
    assert f'action="/batches/{BATCH}/release"' not in html  # no second release


def test_clean_batch_is_released_without_deviation(client, as_user, registry) -> None:
    csrf = as_user("rosa")
    assert _post_qc(client, csrf, **PASSING).status_code == 303
    ok = client.post(f"/batches/{BATCH}/release", data={"csrf_token": csrf}, follow_redirects=False)
    assert ok.status_code == 303
    decision = Gmp(registry).decision(registry.actor_for("rosa"), BATCH)
    assert decision is not None and decision.grade == "released"
    html = client.get(f"/batches/{BATCH}").text
    assert "Released by</dt><dd>rosa" in html and "post-release results awaited" in html


def test_release_refused_while_results_are_pending(client, as_user, registry) -> None:
    csrf = as_user("rosa")
    assert _post_qc(client, csrf, cd3_viability="90").status_code == 303
    resp = client.post(f"/batches/{BATCH}/release", data={"csrf_token": csrf})
    assert resp.status_code == 409 and "release results pending for" in resp.text
    assert "Release refused." in resp.text


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"deviation_approved_by": "gmp.rossi"},
            "deviation_approved_by",
            "approved_by must be someone other than raised_by",
        ),
        ({"deviation_raised_by": ""}, "deviation_raised_by", "raised_by must be a non-empty"),
    ],
)
def test_incomplete_deviation_is_a_field_error(
    client, as_user, registry, changes: dict[str, str], field: str, message: str
) -> None:
    csrf = as_user("rosa")
    assert _post_qc(client, csrf, **{**PASSING, "endotoxin": "9"}).status_code == 303
    resp = client.post(
        f"/batches/{BATCH}/release", data={"csrf_token": csrf, **DEVIATION, **changes}
    )
    assert resp.status_code == 422
    box = resp.text[resp.text.index(f'data-error-for="{field}"') :]
    assert message in box[: box.index("</")]
    assert Gmp(registry).decisions(registry.actor_for("rosa"), BATCH) == []


def test_deviation_without_a_failed_attribute_is_refused(client, as_user, registry) -> None:
    csrf = as_user("rosa")
    assert _post_qc(client, csrf, **PASSING).status_code == 303
    resp = client.post(f"/batches/{BATCH}/release", data={"csrf_token": csrf, **DEVIATION})
    assert resp.status_code == 422 and "no attribute failed" in resp.text
    assert Gmp(registry).decision(registry.actor_for("rosa"), BATCH) is None
