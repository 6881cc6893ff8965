"""Release store: a qa user of the batch's site releases with a password-signed electronic
signature; failed attributes need a deviation raised by one registry user and approved
(signed) by another with the qa role (issue 13 item 4; 21 CFR Part 11 §11.50/§11.70)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

from immunoreset.errors import InvalidInput, NotFound, PermissionDenied
from immunoreset.manufacturing import ReleaseRefused
from immunoreset.registry import Actor, Registry
from immunoreset.registry import schema as s
from immunoreset.registry.gmp import Gmp
from tests.factories import day
from tests.manufacturing.factories import PASSING_POST, PASSING_RELEASE
from tests.registry.gmp.factories import (
    ADMIN,
    MONA,
    PASSWORD,
    QA,
    QA2,
    QA_ER,
    ROSA,
    add_batch,
    approved_deviation,
    last_audit,
    release,
)


def _gmp_state(registry: Registry, batch_id: str) -> tuple[Any, ...]:
    """Everything a signing could change: decisions, signatures, deviations, batch, bags."""
    with registry.engine.connect() as conn:
        rows = [
            [tuple(r) for r in conn.execute(select(t).order_by(t.c.id))]
            for t in (s.release_decisions, s.signatures, s.deviations)
        ]
    course = registry.load_course(ADMIN, "RM-001")
    return (
        rows,
        [b for b in course.batches if b.batch_id == batch_id],
        [b for b in course.bags if b.batch_id == batch_id],
    )


def _count(registry: Registry, table: Any) -> int:
    with registry.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


# --------------------------------------------------------------------------- QC and release
def test_release_refused_on_failed_attribute_unless_approved_deviation(
    registry: Registry, gmp: Gmp
) -> None:
    add_batch(registry, "BT-R", bags=(("BG-R-1", "quarantined", day(300)),))
    qc = gmp.record_qc(ADMIN, "BT-R", {**PASSING_RELEASE, "endotoxin": 5.0}, "QC report 1")
    assert qc.failed == ("endotoxin",)
    with pytest.raises(ReleaseRefused) as err:
        release(gmp, "BT-R")
    assert err.value.failed == ("endotoxin",)
    entry = last_audit(registry)
    assert (entry["action"], entry["table_name"]) == ("refused", "release_decisions")
    assert "endotoxin 5 EU/mL is not < 5 EU/mL" in entry["reason"]
    assert gmp.decision(ADMIN, "BT-R") is None
    assert [d["decision"] for d in gmp.decisions(ADMIN, "BT-R")] == ["refused"]
    # an open (unapproved) deviation does not allow release
    dev = gmp.raise_deviation(ROSA, "BT-R", "risk assessed", reference="DEV-7")
    with pytest.raises(ReleaseRefused):
        release(gmp, "BT-R")
    gmp.approve_deviation(QA, dev, PASSWORD)
    decision = release(gmp, "BT-R")
    assert decision.grade == "released_with_deviation"
    assert decision.released_by == "qa.rome"
    stored = gmp.decision(ADMIN, "BT-R")
    assert stored is not None and stored.deviation is not None
    assert (stored.deviation.raised_by, stored.deviation.approved_by) == ("rosa", "qa.rome")
    assert stored.deviation.attributes == ("endotoxin",) and stored.deviation.reference == "DEV-7"
    course = registry.load_course(ADMIN, "RM-001")
    assert {b.batch_id: b.status for b in course.batches}["BT-R"] == "released"
    assert {b.bag_id: b.status for b in course.bags}["BG-R-1"] == "released"
    tables = {e["table_name"] for e in registry.audit_trail(ADMIN, study_id="RM-001", limit=4)}
    assert tables == {"release_decisions", "batches", "bags", "signatures"}
    with pytest.raises(ReleaseRefused, match="already released"):
        release(gmp, "BT-R")


def test_release_writes_a_signature_bound_to_the_decision(registry: Registry, gmp: Gmp) -> None:
    add_batch(registry, "BT-S")
    gmp.record_qc(ADMIN, "BT-S", PASSING_RELEASE, "QC report")
    release(gmp, "BT-S", when=day(-20))
    last = gmp.decisions(ADMIN, "BT-S")[-1]
    sig = last["signature"]
    assert (sig.username, sig.meaning, sig.table_name) == (
        "qa.rome",
        "released",
        "release_decisions",
    )
    assert sig.record_key == "RM-001/BT-S" and len(sig.content_sha256) == 64
    assert sig.manifestation.startswith("released by qa.rome on ")
    assert gmp.verify_signature(ADMIN, sig.id)
    trail = registry.audit_trail(ADMIN, study_id="RM-001", limit=10)
    signed = [e for e in trail if e["table_name"] == "signatures"]
    assert signed and sig.content_sha256 in signed[0]["new_value"]
    # the signature is bound to the content: a changed decision no longer verifies
    t = s.release_decisions
    with registry.engine.begin() as conn:
        conn.execute(t.update().where(t.c.batch_id == "BT-S").values(qc_snapshot="{}"))
    assert not gmp.verify_signature(ADMIN, sig.id)
    with pytest.raises(NotFound):  # another site's user does not see it
        gmp.signature(QA_ER, sig.id)


def test_release_refused_while_release_results_pending(registry: Registry, gmp: Gmp) -> None:
    add_batch(registry, "BT-P")
    gmp.record_qc(ADMIN, "BT-P", {"cd3_viability": 90.0}, "partial report")
    with pytest.raises(ReleaseRefused) as err:
        release(gmp, "BT-P", when=day(-20))
    assert "cd3_purity" in err.value.pending
    assert last_audit(registry)["action"] == "refused"


def test_clean_release_and_post_release_results(registry: Registry, gmp: Gmp) -> None:
    add_batch(registry, "BT-C", bags=(("BG-C-1", "quarantined", day(300)),))
    gmp.record_qc(ADMIN, "BT-C", PASSING_RELEASE, "QC report")
    decision = release(gmp, "BT-C", when=day(-20))
    assert (decision.grade, decision.released_by) == ("released", "qa.rome")
    assert decision.post_release_pending == ("vcn", "sterility_final", "mycoplasma_final")
    qc = gmp.record_qc(ADMIN, "BT-C", PASSING_POST, "post-release results")
    assert qc.status == "pass"


def test_release_date_checks(registry: Registry, gmp: Gmp) -> None:
    add_batch(registry, "BT-D")
    gmp.record_qc(ADMIN, "BT-D", {**PASSING_RELEASE, "endotoxin": 5.0}, "QC report")
    with pytest.raises(InvalidInput, match="harvest"):
        release(gmp, "BT-D", when=day(-23))
    with pytest.raises(InvalidInput, match="on or before today"):
        release(gmp, "BT-D", when=dt.date.today() + dt.timedelta(days=2))
    approved_deviation(gmp, "BT-D")  # approved (signed) today, release recorded as of day -20
    decision = release(gmp, "BT-D", when=day(-20))
    assert decision.when == day(-20) and decision.grade == "released_with_deviation"


# --------------------------------------------------------------------------- attacks on signing
@pytest.mark.parametrize(
    ("actor", "password", "error", "why"),
    [
        (QA, "wrong-password-1", PermissionDenied, "signature refused"),
        (QA, "", InvalidInput, "password"),
        (ROSA, PASSWORD, PermissionDenied, "qa role"),  # an investigator
        (ADMIN, PASSWORD, PermissionDenied, "qa role"),  # an admin is not QA
        (MONA, PASSWORD, PermissionDenied, "qa role"),
        (QA_ER, PASSWORD, NotFound, "batch"),  # another site's qa: the batch does not exist
        (Actor("qa.ghost", "qa", frozenset({"ROME"})), PASSWORD, PermissionDenied, "refused"),
    ],
)
def test_release_signing_attacks_are_refused_and_change_nothing(
    registry: Registry, gmp: Gmp, actor: Actor, password: str, error: type, why: str
) -> None:
    add_batch(registry, "BT-A", bags=(("BG-A-1", "quarantined", day(300)),))
    gmp.record_qc(ADMIN, "BT-A", PASSING_RELEASE, "QC report")
    before = _gmp_state(registry, "BT-A")
    with pytest.raises(error, match=why):
        gmp.release(actor, "BT-A", password=password)
    assert _gmp_state(registry, "BT-A") == before


def test_a_qa_user_of_another_site_cannot_sign_even_if_the_batch_is_known(
    registry: Registry, gmp: Gmp
) -> None:
    """A qa user who is also a reader elsewhere: signing needs membership of the batch's site."""
    add_batch(registry, "BT-X")
    gmp.record_qc(ADMIN, "BT-X", PASSING_RELEASE, "QC report")
    before = _gmp_state(registry, "BT-X")
    for actor in (QA_ER,):
        with pytest.raises(NotFound):
            gmp.release(actor, "BT-X", password=PASSWORD)
    assert _gmp_state(registry, "BT-X") == before


@pytest.mark.parametrize(
    ("actor", "password", "error", "why"),
    [
        (QA, "wrong-password-1", PermissionDenied, "signature refused"),
        (ROSA, PASSWORD, PermissionDenied, "qa role"),  # the raiser, not qa
        (ADMIN, PASSWORD, PermissionDenied, "qa role"),
        (QA_ER, PASSWORD, NotFound, "deviation"),
    ],
)
def test_deviation_approval_attacks_are_refused_and_change_nothing(
    registry: Registry, gmp: Gmp, actor: Actor, password: str, error: type, why: str
) -> None:
    add_batch(registry, "BT-V")
    gmp.record_qc(ADMIN, "BT-V", {**PASSING_RELEASE, "endotoxin": 5.0}, "QC report")
    dev = gmp.raise_deviation(ROSA, "BT-V", "risk assessed")
    before = _gmp_state(registry, "BT-V")
    with pytest.raises(error, match=why):
        gmp.approve_deviation(actor, dev, password)
    assert _gmp_state(registry, "BT-V") == before
    assert gmp.deviations(ADMIN, "BT-V")[0]["status"] == "open"


def test_the_raiser_cannot_approve_their_own_deviation(registry: Registry, gmp: Gmp) -> None:
    add_batch(registry, "BT-E")
    gmp.record_qc(ADMIN, "BT-E", {**PASSING_RELEASE, "endotoxin": 5.0}, "QC report")
    dev = gmp.raise_deviation(QA, "BT-E", "risk assessed")  # raised by a qa user
    before = _gmp_state(registry, "BT-E")
    with pytest.raises(PermissionDenied, match="four eyes"):
        gmp.approve_deviation(QA, dev, PASSWORD)
    assert _gmp_state(registry, "BT-E") == before
    assert last_audit(registry)["action"] == "refused"
    result = gmp.approve_deviation(QA2, dev, PASSWORD)  # another qa user of the site
    assert gmp.verify_signature(ADMIN, result["signature_id"])
    row = gmp.deviations(ADMIN, "BT-E")[0]
    assert (row["status"], row["raised_by"], row["approved_by"]) == (
        "approved",
        "qa.rome",
        "qa.rome2",
    )
    assert row["signature"].meaning == "approved"
    with pytest.raises(InvalidInput, match="open deviation"):
        gmp.approve_deviation(QA2, dev, PASSWORD)


def test_raising_a_deviation_needs_failed_attributes_and_the_site(
    registry: Registry, gmp: Gmp
) -> None:
    add_batch(registry, "BT-F")
    gmp.record_qc(ADMIN, "BT-F", {**PASSING_RELEASE, "endotoxin": 5.0}, "QC report")
    n = _count(registry, s.deviations)
    with pytest.raises(InvalidInput, match="failed"):
        gmp.raise_deviation(ROSA, "BT-F", "why", attributes=["cd3_viability"])
    with pytest.raises(PermissionDenied):
        gmp.raise_deviation(MONA, "BT-F", "why")
    with pytest.raises(NotFound):
        gmp.raise_deviation(QA_ER, "BT-F", "why")
    assert _count(registry, s.deviations) == n


def test_wrong_signing_passwords_are_throttled_like_logins(registry: Registry, gmp: Gmp) -> None:
    add_batch(registry, "BT-W")
    gmp.record_qc(ADMIN, "BT-W", PASSING_RELEASE, "QC report")
    for _ in range(5):
        with pytest.raises(PermissionDenied, match="signature refused"):
            gmp.release(QA, "BT-W", password="wrong-password-1")
    with pytest.raises(PermissionDenied, match="wait"):  # even the right one must wait now
        gmp.release(QA, "BT-W", password=PASSWORD)
    assert gmp.decision(ADMIN, "BT-W") is None


def test_unsigned_release_only_in_a_synthetic_demo_registry(registry: Registry, gmp: Gmp) -> None:
    add_batch(registry, "BT-U")
    gmp.record_qc(ADMIN, "BT-U", PASSING_RELEASE, "QC report")
    before = _gmp_state(registry, "BT-U")
    with pytest.raises(PermissionDenied, match="SYNTHETIC demo registry"):
        gmp.release_synthetic_demo(ADMIN, "BT-U")  # this registry has user accounts
    assert _gmp_state(registry, "BT-U") == before
