"""The manufacturing commands end to end on a SQLite registry (Typer CliRunner)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from immunoreset import course as c
from immunoreset.cli import app
from immunoreset.cli.manufacturing import parse_result
from immunoreset.errors import InvalidInput
from immunoreset.manufacturing import default_spec
from immunoreset.manufacturing.spec import spec_to_dict
from immunoreset.registry import Registry, system_actor
from tests.factories import day, small_course
from tests.manufacturing.factories import PASSING_RELEASE

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env=env or {}, catch_exceptions=False)


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "gmp.db")
    admin = system_actor()
    with Registry(path, upgrade=True) as reg:
        reg.add_site(admin, "ROME", "Bambino Gesù")
        reg.add_site(admin, "ERLANGEN", "Erlangen")
        reg.save_courses(
            admin, [small_course("RM-001"), small_course("ER-001", "ERLANGEN")], reason="entry"
        )
        batch = c.Batch(
            "BT-N", "AP-RM001", "CliniMACS Prodigy", day(-34), day(-22), "op", status="quarantined"
        )
        reg.add_record(admin, "RM-001", "batches", batch, reason="test")
        bag = c.Bag("BG-N-1", "BT-N", 4e7, 20.0, status="quarantined", expiry=day(300))
        reg.add_record(admin, "RM-001", "bags", bag, reason="test")
        reg.add_user(admin, "rosa", "investigator", ["ROME"], password="correct horse")
        for name, site in (("qa.rome", "ROME"), ("qa.rome2", "ROME"), ("qa.erlangen", "ERLANGEN")):
            reg.add_user(admin, name, "qa", [site], password="qa-rome-password")
    return path


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test users get cheap argon2 hashes (verification reads the cost from the hash)."""
    from argon2 import PasswordHasher

    from immunoreset.registry import users

    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def results_args(results: dict[str, float | str]) -> list[str]:
    out: list[str] = []
    for k, v in results.items():
        out += ["--result", f"{k}={v}"]
    return out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cd3_viability=92.5", ("cd3_viability", 92.5)),
        (" endotoxin = 0,5 ", ("endotoxin", 0.5)),
        ("sterility_interim=Negative", ("sterility_interim", "Negative")),
    ],
)
def test_parse_result(text: str, expected: tuple[str, float | str]) -> None:
    assert parse_result(text) == expected


@pytest.mark.parametrize("text", ["cd3_viability", "=5", "endotoxin=", "vcn=nan"])
def test_parse_result_refuses(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_result(text)


def test_help_lists_groups() -> None:
    out = run("--help").output
    for word in ("trace", "dose", "infuse", "batch", "he", "gmp"):
        assert word in out
    assert "spec" in run("batch", "--help").output


QA_PW = {"IMMUNORESET_PASSWORD": "qa-rome-password"}
ROSA_PW = {"IMMUNORESET_PASSWORD": "correct horse"}


def as_user(name: str) -> list[str]:
    return ["--user", name]


def _gmp_rows(db: str) -> list[list[tuple[object, ...]]]:
    from sqlalchemy import select

    from immunoreset.registry import schema as s

    with Registry(db) as reg, reg.engine.connect() as conn:
        return [
            [tuple(r) for r in conn.execute(select(t).order_by(t.c.id))]
            for t in (s.release_decisions, s.signatures, s.deviations, s.release_specs)
        ] + [[tuple(r) for r in conn.execute(select(s.ENTITIES["bags"].table))]]


def test_qc_release_infuse_trace(db: str) -> None:
    failing = {**PASSING_RELEASE, "endotoxin": 6.0}
    result = run("batch", "qc", "BT-N", *results_args(failing), "--db", db)
    assert result.exit_code == 0, result.output
    assert "not releasable" in result.output and "fail" in result.output
    refused = run(
        "batch", "release", "BT-N", "--date", day(-20).isoformat(), "--db", db,
        *as_user("qa.rome"), env=QA_PW,
    )  # fmt: skip
    assert refused.exit_code == 1
    assert "endotoxin 6 EU/mL is not < 5 EU/mL" in refused.output
    raised = run(
        "batch", "deviation", "raise", "BT-N", "--reason", "risk assessed", "--reference",
        "DEV-1", "--db", db, *as_user("rosa"), env=ROSA_PW,
    )  # fmt: skip
    assert raised.exit_code == 0, raised.output
    assert "deviation 1 raised for BT-N by rosa" in raised.output
    approved = run("batch", "deviation", "approve", "1", "--db", db, *as_user("qa.rome"), env=QA_PW)
    assert approved.exit_code == 0, approved.output
    assert "approved by qa.rome" in approved.output
    listed = run("batch", "deviation", "list", "BT-N", "--db", db).output
    assert "rosa" in listed and "approved by qa.rome" in listed
    released = run(
        "batch", "release", "BT-N", "--date", day(-20).isoformat(), "--db", db,
        *as_user("qa.rome"), env=QA_PW,
    )  # fmt: skip
    assert released.exit_code == 0, released.output
    assert "released with deviation" in released.output
    assert "released by qa.rome on" in released.output and "SHA-256" in released.output
    wrong = run(
        "infuse", "RM-001", "--bag", "BG-ER001-2", "--date", day(30).isoformat(), "--db", db
    )
    assert wrong.exit_code == 1 and "apheresis of ER-001" in wrong.output
    # RM-001 was infused on day 0: a second infusion needs a bag stored for a planned re-dose
    unplanned = run(
        "infuse", "RM-001", "--bag", "BG-N-1", "--date", day(30).isoformat(), "--db", db
    )
    assert unplanned.exit_code == 1 and "planned re-dose" in unplanned.output
    with Registry(db) as reg:
        assert len(reg.load_course(system_actor(), "RM-001").infusions) == 1
        reg.update_record(
            system_actor(),
            "RM-001",
            "bags",
            ("BG-N-1",),
            {"status": "stored_for_redosing"},
            reason="kept for the planned second dose",
        )
    ok = run("infuse", "RM-001", "--bag", "BG-N-1", "--date", day(30).isoformat(), "--db", db)
    assert ok.exit_code == 0, ok.output
    assert "1.04e+06 CAR+ T cells/kg" in ok.output
    traced = run("trace", "BG-N-1", "--db", db)
    assert traced.exit_code == 0
    assert "BG-N-1" in traced.output and "default-v1" in traced.output
    with Registry(db, upgrade=True) as reg:
        audit = reg.audit_trail(system_actor(), study_id="RM-001", limit=50)
    # the release refusal, the wrong-patient bag and the unplanned second infusion
    assert [e["action"] for e in audit].count("refused") == 3


@pytest.mark.parametrize(
    ("command", "user", "env", "message"),
    [
        # the local admin (no --user) is no qa user
        (["batch", "release", "BT-N"], None, {}, "signed by a qa user"),
        (["batch", "release", "BT-N"], "rosa", ROSA_PW, "qa role"),  # an investigator
        (["batch", "release", "BT-N"], "qa.erlangen", QA_PW, "not found"),  # another site
        (
            ["batch", "release", "BT-N"],
            "qa.rome",
            {"IMMUNORESET_PASSWORD": "bad-one-123"},
            "wrong password",
        ),
        (["batch", "deviation", "approve", "1"], "qa.rome", QA_PW, "four eyes"),  # the raiser
        (["batch", "deviation", "approve", "1"], "rosa", ROSA_PW, "qa role"),
        (["batch", "deviation", "approve", "1"], "qa.erlangen", QA_PW, "not found"),
    ],
)
def test_cli_signing_attacks_are_refused_and_change_nothing(
    db: str, command: list[str], user: str | None, env: dict[str, str], message: str
) -> None:
    failing = {**PASSING_RELEASE, "endotoxin": 6.0}
    assert run("batch", "qc", "BT-N", *results_args(failing), "--db", db).exit_code == 0
    raised = run(
        "batch", "deviation", "raise", "BT-N", "--reason", "risk", "--db", db,
        *as_user("qa.rome"), env=QA_PW,
    )  # fmt: skip
    assert raised.exit_code == 0, raised.output
    before = _gmp_rows(db)
    out = run(*command, "--db", db, *(as_user(user) if user else []), env=env)
    assert out.exit_code == 1 and message in out.output, out.output
    assert "Traceback" not in out.output
    assert _gmp_rows(db) == before


def test_cli_signature_needs_the_password_not_a_token(db: str) -> None:
    from immunoreset.registry.logins import issue_api_token

    run("batch", "qc", "BT-N", *results_args(PASSING_RELEASE), "--db", db)
    with Registry(db) as reg:
        token = issue_api_token(reg, "qa.rome", label="lims")
    before = _gmp_rows(db)
    only_token = run(
        "batch", "release", "BT-N", "--db", db, *as_user("qa.rome"),
        env={"IMMUNORESET_TOKEN": token},
    )  # fmt: skip
    assert only_token.exit_code == 1 and "an API token cannot sign" in only_token.output
    wrong = run(
        "batch", "release", "BT-N", "--db", db, *as_user("qa.rome"),
        env={"IMMUNORESET_TOKEN": token, "IMMUNORESET_PASSWORD": "not-the-password"},
    )  # fmt: skip
    assert wrong.exit_code == 1 and "signature refused" in wrong.output
    assert _gmp_rows(db) == before
    ok = run(
        "batch", "release", "BT-N", "--db", db, *as_user("qa.rome"),
        env={"IMMUNORESET_TOKEN": token, **QA_PW},
    )  # fmt: skip
    assert ok.exit_code == 0 and "released by qa.rome" in ok.output


def test_qc_show_and_site_rule(db: str) -> None:
    shown = run("batch", "qc", "BT-RM001", "--db", db)
    assert shown.exit_code == 0 and "pending" in shown.output
    hidden = run(
        "batch",
        "qc",
        "BT-ER001",
        "--db",
        db,
        "--user",
        "rosa",
        env={"IMMUNORESET_PASSWORD": "correct horse"},
    )
    assert hidden.exit_code == 1 and "not found" in hidden.output
    bad = run("batch", "qc", "BT-RM001", "--result", "viability=90", "--db", db)
    assert bad.exit_code == 1 and "cd3_viability" in bad.output


def test_spec_load_and_show(db: str, tmp_path: Path) -> None:
    data = spec_to_dict(default_spec())
    data.update(spec_id="rome", version=2)
    path = tmp_path / "rome.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert "default-v1" in run("batch", "spec", "show", "--db", db).output
    loaded = run("batch", "spec", "load", str(path), "--db", db, *as_user("qa.rome"), env=QA_PW)
    assert loaded.exit_code == 0 and "rome-v2 loaded (site ROME)" in loaded.output
    shown = run("batch", "spec", "show", "--site", "rome", "--db", db).output
    assert "rome-v2" in shown and "(ROME, current)" in shown
    program = run("batch", "spec", "show", "--db", db).output
    assert "rome-v2:" not in program  # the program-wide one is still the default
    assert run("batch", "spec", "show", "nope-v1", "--db", db).exit_code == 1
    wide = run("batch", "spec", "load", str(path), "--program-wide", "--db", db)
    assert wide.exit_code == 0 and "(program-wide)" in wide.output


@pytest.mark.parametrize(
    ("args", "user", "env", "message"),
    [
        ([], None, {}, "qa role"),  # the local admin loads program-wide only
        ([], "rosa", ROSA_PW, "qa role"),
        (["--site", "ERLANGEN"], "qa.rome", QA_PW, "not a member of site ERLANGEN"),
        (["--program-wide"], "qa.rome", QA_PW, "only an admin"),
    ],
)
def test_cli_spec_load_refusals_change_nothing(
    db: str, tmp_path: Path, args: list[str], user: str | None, env: dict[str, str], message: str
) -> None:
    data = spec_to_dict(default_spec())
    data.update(spec_id="er", version=1)
    path = tmp_path / "er.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    before = _gmp_rows(db)
    out = run("batch", "spec", "load", str(path), *args, "--db", db,
              *(as_user(user) if user else []), env=env)  # fmt: skip
    assert out.exit_code == 1 and message in out.output, out.output
    assert _gmp_rows(db) == before
    hidden = run("batch", "spec", "show", "--site", "ERLANGEN", "--db", db,
                 *as_user("qa.rome"), env=QA_PW)  # fmt: skip
    assert hidden.exit_code == 1 and "not a member of site ERLANGEN" in hidden.output


def test_dose(db: str) -> None:
    result = run("dose", "RM-001", "--weight", "20", "--date", day(30).isoformat(), "--db", db)
    assert result.exit_code == 0, result.output
    assert "BG-RM001-2" in result.output and "partial" in result.output
    assert "10.00" in result.output
    bad = run("dose", "RM-001", "--weight", "20", "--date", "30/04/2024", "--db", db)
    assert bad.exit_code == 1 and "YYYY-MM-DD" in bad.output


def test_hospital_exemption_and_overdue(db: str) -> None:
    add = run(
        "he",
        "add",
        "RM-001",
        "--authority",
        "AIFA",
        "--reference",
        "HE-7",
        "--requested",
        "2024-01-02",
        "--decision",
        "approved",
        "--decided",
        "2024-01-20",
        "--condition",
        "annual report",
        "--db",
        db,
    )
    assert add.exit_code == 0, add.output
    report = ("he", "report", "RM-001", "--kind", "annual_report", "--subject", "period 1")
    assert run(*report, "--due", "2025-01-20", "--db", db).exit_code == 0
    late = run("he", "overdue", "--today", "2025-02-01", "--db", db)
    assert "annual report (period 1)" in late.output and "1 overdue" in late.output
    done = run(*report, "--due", "2025-01-20", "--submitted", "2025-01-25", "--db", db)
    assert done.exit_code == 0
    assert "0 overdue" in run("he", "overdue", "--today", "2025-02-01", "--db", db).output
    args = ("--authority", "AIFA", "--reference", "HE-8", "--requested", "2024-01-02")
    bad = run("he", "add", "RM-001", *args, "--decision", "maybe", "--db", db)
    assert bad.exit_code == 1 and "decision" in bad.output


def test_metrics(db: str) -> None:
    run("batch", "qc", "BT-N", *results_args(PASSING_RELEASE), "--db", db)
    result = run("gmp", "metrics", "--db", db)
    assert result.exit_code == 0, result.output
    assert "2 released, 0 failed, 1 in process or quarantined" in result.output
    assert "cd3_viability" in result.output
