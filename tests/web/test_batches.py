"""Batch QC and release page: results stored and audited, release refused or accepted."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from immunoreset.registry import Registry
from immunoreset.registry import schema as s
from immunoreset.registry.gmp import Gmp
from tests.web.conftest import PASSWORD

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


@pytest.mark.parametrize(
    "path", ["qc", "release", "deviations", "deviations/1/approve", "post-release"]
)
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
        ("post", "/batches/ER-001-B1/deviations"),
        ("post", "/batches/ER-001-B1/deviations/1/approve"),
        ("post", "/batches/ER-001-B1/post-release"),
        ("get", "/batches/ZZ-999-B1"),
        ("get", "/batches/RM-001"),  # a study ID is not a batch
    ],
)
def test_batch_of_another_site_is_not_found(client, as_user, method: str, path: str) -> None:
    csrf = as_user("rosa")
    kwargs = {"data": {"csrf_token": csrf, "cd3_viability": "90"}} if method == "post" else {}
    assert getattr(client, method)(path, **kwargs).status_code == 404


def _gmp_rows(registry: Registry) -> list[list[tuple[object, ...]]]:
    with registry.engine.connect() as conn:
        return [
            [tuple(r) for r in conn.execute(select(t).order_by(t.c.id))]
            for t in (
                s.release_decisions,
                s.signatures,
                s.deviations,
                s.qc_post_release,
                s.ENTITIES["bags"].table,
                s.ENTITIES["batches"].table,
            )
        ]


def _release(client, csrf: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return client.post(
        f"/batches/{BATCH}/release",
        data={"csrf_token": csrf, "password": password},
        follow_redirects=False,
    )


def _raise_deviation(client, as_user) -> int:  # type: ignore[no-untyped-def]
    csrf = as_user("rosa")
    assert _post_qc(client, csrf, **{**PASSING, "endotoxin": "9"}).status_code == 303
    resp = client.post(
        f"/batches/{BATCH}/deviations",
        data={"csrf_token": csrf, **DEVIATION},
        follow_redirects=False,
    )
    assert resp.status_code == 303 and resp.headers["location"].endswith("saved=deviation")
    return 1


def _approve(client, csrf: str, dev: int, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return client.post(
        f"/batches/{BATCH}/deviations/{dev}/approve",
        data={"csrf_token": csrf, "password": password},
        follow_redirects=False,
    )


def test_release_refused_on_failed_attribute_then_accepted_with_signed_deviation(
    client, as_user, registry
) -> None:
    dev = _raise_deviation(client, as_user)
    html = client.get(f"/batches/{BATCH}").text
    assert "awaiting qa approval" in html and f'action="/batches/{BATCH}/release"' not in html
    csrf = as_user("quinn")
    refused = _release(client, csrf)
    assert refused.status_code == 409
    assert "Release refused — failed: endotoxin." in refused.text
    assert "endotoxin 9 EU/mL is not &lt; 5 EU/mL" in refused.text
    gmp = Gmp(registry)
    quinn = registry.actor_for("quinn")
    assert gmp.decision(quinn, BATCH) is None
    assert [d["decision"] for d in gmp.decisions(quinn, BATCH)] == ["refused"]
    entry = registry.audit_trail(quinn, study_id="RM-001", limit=1)[0]
    assert entry["action"] == "refused" and entry["username"] == "quinn"
    page = client.get(f"/batches/{BATCH}").text
    assert f'action="/batches/{BATCH}/deviations/{dev}/approve"' in page
    assert _approve(client, csrf, dev).status_code == 303
    ok = _release(client, csrf)
    assert ok.status_code == 303 and ok.headers["location"] == f"/batches/{BATCH}?saved=release"
    decision = gmp.decision(quinn, BATCH)
    assert decision is not None and decision.grade == "released_with_deviation"
    assert decision.released_by == "quinn" and decision.spec_key == "default-v1"
    assert decision.deviation is not None and decision.deviation.attributes == ("endotoxin",)
    assert (decision.deviation.raised_by, decision.deviation.approved_by) == ("rosa", "quinn")
    assert str(decision.when) == "2023-12-01"
    html = client.get(ok.headers["location"]).text
    assert "Batch released and signed." in html and "released with deviation" in html
    assert "approved by quinn" in html and "DEV-2023-07" in html and "released by quinn" in html
    assert "default version 1" in html
    assert f'action="/batches/{BATCH}/release"' not in html  # no second release
    assert 'type="password"' not in html.split('id="deviations"')[0]


def test_clean_batch_is_released_with_a_signature(client, as_user, registry) -> None:
    csrf = as_user("rosa")
    assert _post_qc(client, csrf, **PASSING).status_code == 303
    csrf = as_user("quinn")
    ok = _release(client, csrf)
    assert ok.status_code == 303
    gmp = Gmp(registry)
    decision = gmp.decision(registry.actor_for("quinn"), BATCH)
    assert decision is not None and decision.grade == "released"
    sig = gmp.decisions(registry.actor_for("quinn"), BATCH)[-1]["signature"]
    assert sig.username == "quinn" and sig.meaning == "released"
    html = client.get(f"/batches/{BATCH}").text
    assert "Released by</dt><dd>quinn" in html and "post-release results awaited" in html
    assert sig.content_sha256[:16] in html


@pytest.mark.parametrize(
    ("user", "password", "status", "message"),
    [
        ("quinn", "wrong password 1", 403, "signature refused"),
        ("quinn", "", 422, "password"),
        ("rosa", PASSWORD, 403, "qa role"),  # an investigator
        ("dana", PASSWORD, 403, "qa role"),
        ("admin", PASSWORD, 403, "qa role"),
        ("elke", PASSWORD, 404, ""),  # Erlangen's qa: the batch does not exist for her
    ],
)
def test_release_attacks_are_refused_and_change_nothing(
    client, as_user, registry, user: str, password: str, status: int, message: str
) -> None:
    csrf = as_user("rosa")
    assert _post_qc(client, csrf, **PASSING).status_code == 303
    before = _gmp_rows(registry)
    csrf = as_user(user)
    resp = _release(client, csrf, password)
    assert resp.status_code == status and message in resp.text
    assert _gmp_rows(registry) == before
    assert password not in resp.text or not password


@pytest.mark.parametrize(
    ("user", "password", "status", "message"),
    [
        ("quinn", "wrong password 1", 403, "signature refused"),
        ("rosa", PASSWORD, 403, "qa role"),  # the raiser, not qa
        ("admin", PASSWORD, 403, "qa role"),
        ("elke", PASSWORD, 404, ""),
    ],
)
def test_deviation_approval_attacks_are_refused_and_change_nothing(
    client, as_user, registry, user: str, password: str, status: int, message: str
) -> None:
    dev = _raise_deviation(client, as_user)
    before = _gmp_rows(registry)
    resp = _approve(client, as_user(user), dev, password)
    assert resp.status_code == status and message in resp.text
    assert _gmp_rows(registry) == before


def test_a_qa_raiser_cannot_approve_their_own_deviation(client, as_user, registry) -> None:
    csrf = as_user("quinn")
    assert _post_qc(client, csrf, **{**PASSING, "endotoxin": "9"}).status_code == 303
    data = {"csrf_token": csrf, **DEVIATION}
    assert client.post(f"/batches/{BATCH}/deviations", data=data).status_code == 200
    before = _gmp_rows(registry)
    resp = _approve(client, csrf, 1)
    assert resp.status_code == 403 and "four eyes" in resp.text
    assert _gmp_rows(registry) == before
    assert _approve(client, as_user("quentin"), 1).status_code == 303


def test_post_release_result_form_adds_and_qa_clears_the_quarantine(
    client, as_user, registry
) -> None:
    csrf = as_user("rosa")
    assert _post_qc(client, csrf, **PASSING).status_code == 303
    assert _release(client, as_user("quinn")).status_code == 303
    gmp = Gmp(registry)
    rosa = registry.actor_for("rosa")
    bags_before = {b.bag_id: b.status for b in registry.load_course(rosa, "RM-001").bags}
    csrf = as_user("rosa")
    html = client.get(f"/batches/{BATCH}").text
    assert f'action="/batches/{BATCH}/post-release"' in html
    assert f'action="/batches/{BATCH}/qc"' not in html  # released results are read-only
    resp = client.post(
        f"/batches/{BATCH}/post-release",
        data={"csrf_token": csrf, "post_sterility_final": "positive", "reason": "day-14 read"},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
    post = gmp.post_release_results(rosa, BATCH)
    assert [(p["attribute"], p["status"], p["entered_by"]) for p in post] == [
        ("sterility_final", "fail", "rosa")
    ]
    assert gmp.evaluate(rosa, BATCH).result("cd3_viability").value == 92.5  # not overwritten
    dev = gmp.deviations(rosa, BATCH)[-1]
    assert dev["kind"] == "post_release" and dev["status"] == "open"
    course = registry.load_course(rosa, "RM-001")
    flagged = set(dev["flagged_bags"])
    assert flagged and all(b.status == "quarantined" for b in course.bags if b.bag_id in flagged)
    # rosa (not qa) cannot clear it; quinn signs and the bags return to their status
    before = _gmp_rows(registry)
    assert _approve(client, csrf, dev["id"]).status_code == 403
    assert _gmp_rows(registry) == before
    ok = _approve(client, as_user("quinn"), dev["id"])
    assert ok.status_code == 303
    after = {b.bag_id: b.status for b in registry.load_course(rosa, "RM-001").bags}
    assert {k: after[k] for k in flagged} == {k: bags_before[k] for k in flagged}
    page = client.get(f"/batches/{BATCH}").text
    assert "approved by quinn" in page


def test_post_release_form_refusals_store_nothing(client, as_user, registry) -> None:
    csrf = as_user("rosa")
    assert _post_qc(client, csrf, **PASSING).status_code == 303
    before = _gmp_rows(registry)
    resp = client.post(  # not released yet
        f"/batches/{BATCH}/post-release",
        data={"csrf_token": csrf, "post_vcn": "1.5"},
    )
    assert resp.status_code == 422 and "released batch" in resp.text
    assert _release(client, as_user("quinn")).status_code == 303
    before = _gmp_rows(registry)
    csrf = as_user("rosa")
    for data, message in (({"post_vcn": "x"}, "number"), ({}, "at least one QC result")):
        resp = client.post(f"/batches/{BATCH}/post-release", data={"csrf_token": csrf, **data})
        assert resp.status_code == 422 and message in resp.text
    mona = as_user("mona")
    resp = client.post(
        f"/batches/{BATCH}/post-release", data={"csrf_token": mona, "post_vcn": "1.5"}
    )
    assert resp.status_code == 403
    assert _gmp_rows(registry) == before


def test_release_refused_while_results_are_pending(client, as_user, registry) -> None:
    csrf = as_user("rosa")
    assert _post_qc(client, csrf, cd3_viability="90").status_code == 303
    resp = _release(client, as_user("quinn"))
    assert resp.status_code == 409 and "release results pending for" in resp.text
    assert "Release refused." in resp.text


def test_deviation_without_a_failed_attribute_is_refused(client, as_user, registry) -> None:
    csrf = as_user("rosa")
    assert _post_qc(client, csrf, **PASSING).status_code == 303
    resp = client.post(f"/batches/{BATCH}/deviations", data={"csrf_token": csrf, **DEVIATION})
    assert resp.status_code == 422 and "none failed" in resp.text
    assert Gmp(registry).deviations(registry.actor_for("rosa"), BATCH) == []
