"""Patient page (#17 item 7): summary box, medications with stop dates, one disease panel per
instrument, the grade table on the acute phase, the forecast band from a configured fit."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from immunoreset.report.tables.patients import table_patients
from immunoreset.web.views import figures, patient_summary
from tests.web.conftest import TODAY


def _figures(html: str) -> dict:
    found = re.search(
        r'<script type="application/json" id="figures"[^>]*>(.*?)</script>', html, re.S
    )
    assert found
    return json.loads(found.group(1))


def test_summary_box_reuses_the_case_series_row(client, as_user, registry) -> None:
    as_user("rosa")
    html = client.get("/patients/RM-002").text
    box = html[html.index('id="summary"') : html.index('id="grades"')]
    course = registry.load_course(registry.actor_for("rosa"), "RM-002")
    row = table_patients([course]).iloc[0]
    assert f"{row['Dose']} × 10⁶ CAR⁺ T cells/kg" in box
    assert "Flu 90 mg/m² (3 d) + Cy 1000 mg/m² (2 d)" in box  # the report's regimen text
    assert "DORIS yes, LLDAS yes" in box  # SLE response as the report states it
    assert row["Response"] in box and "Anti-dsDNA" in box
    for item in ("CRS episodes", "ICANS episodes", "ICAHT", "IEC-HS", "Infections",
                 "Follow-up", "Visits", "Off therapy"):  # fmt: skip
        assert f"<dt>{item}</dt>" in box


def test_summary_values_for_rm001(registry) -> None:
    course = registry.load_course(registry.actor_for("rosa"), "RM-001")
    s = patient_summary(course, TODAY)
    assert s is not None
    assert s["crs"].startswith("grade 1, days 5–7 (3 d)")  # RM-001's fever days 5–7
    assert s["icans"] == "none"
    assert s["row"]["Response"] == "TIS major (M12)"  # JDM: TIS as the report
    assert s["off_therapy"] == course.date_of_day(s["off_therapy_day"])
    # on TODAY (day 31) the day-28 LTFU visit … whatever its state, it comes from the schedule
    assert s["next_visit"] is None or s["next_visit"].visit.due > TODAY


def test_not_infused_has_no_summary(registry) -> None:
    import dataclasses

    course = registry.load_course(registry.actor_for("rosa"), "RM-001")
    assert patient_summary(dataclasses.replace(course, infusions=()), TODAY) is None


def test_medications_show_stop_dates(client, as_user, registry) -> None:
    as_user("rosa")
    html = client.get("/patients/RM-001").text
    meds = html[html.index('id="medications"') :]
    meds = meds[: meds.index("</table>")]
    course = registry.load_course(registry.actor_for("rosa"), "RM-001")
    stopped = [m for m in course.medications if m.stop]
    assert stopped
    for m in stopped:
        assert f'{m.stop.isoformat()} <span class="muted">(day {course.study_day(m.stop)})' in meds
    assert f"{len(stopped)} of {len(course.medications)} stopped" in html


def test_one_disease_panel_per_instrument_on_its_scale(client, as_user, registry) -> None:
    as_user("rosa")
    html = client.get("/patients/RM-002").text
    figs = _figures(html)
    course = registry.load_course(registry.actor_for("rosa"), "RM-002")
    instruments = {d.instrument for d in course.disease_assessments}
    assert len(instruments) >= 2
    assert {k for k in figs if k.startswith("disease-")} == {f"disease-{i}" for i in instruments}
    sledai = figs["disease-sledai2k"]
    assert sledai["layout"]["yaxis"]["range"] == [0, 105] and len(sledai["data"]) == 1
    assert sledai["data"][0]["name"] == "SLEDAI-2K"
    for key in figs:
        assert f'id="plot-{key}"' in html
    assert "anti_dsdna" not in json.dumps([t["name"] for f in figs.values() for t in f["data"]])


def test_grade_table_opens_on_the_acute_phase(client, as_user) -> None:
    as_user("rosa")
    html = client.get("/patients/RM-001").text
    table = html[html.index('id="timeline"') :]
    table = table[: table.index("</table>")]
    days = [int(d) for d in re.findall(r'<tr id="day-(-?\d+)"', table)]
    assert days and min(days) == 0 and max(days) == 14
    assert 'href="/patients/RM-001?grades=all#grades"' in html
    full = client.get("/patients/RM-001", params={"grades": "all"}).text
    table = full[full.index('id="timeline"') :]
    days = [int(d) for d in re.findall(r'<tr id="day-(-?\d+)"', table[: table.index("</table>")])]
    assert max(days) == 30 and len(days) == 31
    assert "Show the acute phase only" in full


def test_no_forecast_without_a_fit(client, as_user) -> None:
    as_user("rosa")
    html = client.get("/patients/RM-001").text
    assert "data-forecast" not in html
    body = client.get("/patients/RM-001/forecast.json").json()
    assert body == {
        "available": False,
        "message": "no population fit configured (IMMUNORESET_FIT_DIR)",
    }


def _write_fit(folder: Path, model: str, registry) -> Path:  # type: ignore[no-untyped-def]
    """A fit.json at the model's default parameters (what `immunoreset fit` writes, unfitted:
    the page shows whatever fit the folder holds; estimation is tested in tests/model/fit)."""
    from immunoreset.interop.nonmem import apply_default_lloq, patient_frame
    from immunoreset.model.fit.data import prepare_data
    from immunoreset.model.fit.foce import ErrorSpec, FitSpec, ParameterSpec, Problem

    spec = FitSpec(
        model,
        (ParameterSpec("f_dist", None, 0.3), ParameterSpec("c50", None, 0.3)),
        (ErrorSpec(2, "log", 0.3), ErrorSpec(4, "log", 0.3)),
    )
    frame = apply_default_lloq(patient_frame(registry, registry.actor_for("rosa"), "RM-001"),
                               {4: 1.0})  # fmt: skip
    x = Problem(spec, prepare_data(frame, cmts=(2, 4))).initial_x()
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"format": "immunoreset-fit/1", "model": model, "spec": spec.to_dict(), "x": x.tolist()}
    (folder / "fit.json").write_text(json.dumps(doc))
    return folder


@pytest.mark.slow
def test_forecast_band_from_the_configured_fit(client, as_user, app, registry, tmp_path) -> None:
    fit = _write_fit(tmp_path / "fit", "immune_reset", registry)
    app.state.settings.fit_dir = fit
    as_user("rosa")
    html = client.get("/patients/RM-001").text
    assert 'data-forecast="/patients/RM-001/forecast.json"' in html
    # B cells of 0.0 without an LLOQ cannot enter a log-scale likelihood: said in one line
    body = client.get("/patients/RM-001/forecast.json").json()
    assert body["available"] is False and "LLOQ" in body["message"]
    app.state.settings.fit_lloq = "4=1.0"
    body = client.get("/patients/RM-001/forecast.json").json()
    assert body["available"] is True and body["output"] == "b_cells" and body["level"] == 0.9
    assert body["interval"] == "prediction"  # parameter uncertainty + residual error
    low, med, high = body["low"], body["median"], body["high"]
    assert len(body["days"]) == len(med) == 121 and body["days"][0] == 0
    assert all(lo <= m <= hi for lo, m, hi in zip(low, med, high, strict=True))
    assert body["n_observations"] > 0
    again = client.get("/patients/RM-001/forecast.json").json()
    assert again == body  # cached: same answer, no new solve
    # site scope holds for the band too
    assert client.get("/patients/ER-001/forecast.json").status_code == 404


def test_forecast_refuses_a_pk_fit_and_a_missing_one(
    client, as_user, app, registry, tmp_path
) -> None:
    app.state.settings.fit_dir = tmp_path / "nowhere"
    as_user("rosa")
    body = client.get("/patients/RM-001/forecast.json").json()
    assert body["available"] is False and "no population fit at" in body["message"]
    from immunoreset.model.fit.foce import ErrorSpec, FitSpec, ParameterSpec

    folder = tmp_path / "pk"
    folder.mkdir()
    pk = FitSpec("pk_1cmt_oral", (ParameterSpec("ka", 1.5, 0.5),), (ErrorSpec(2, "additive", 0.7),))
    doc = {"format": "immunoreset-fit/1", "spec": pk.to_dict(), "x": [0.4, -1.0, -0.36]}
    (folder / "fit.json").write_text(json.dumps(doc))
    app.state.settings.fit_dir = folder
    body = client.get("/patients/RM-001/forecast.json").json()
    assert body["available"] is False and "pk_1cmt_oral" in body["message"]
    (folder / "fit.json").write_text(json.dumps({"format": "immunoreset-fit/1", "spec": {}}))
    body = client.get("/patients/RM-001/forecast.json").json()
    assert body["available"] is False and "a complete fit.json (missing key" in body["message"]


def test_figure_traces_have_reader_names(registry) -> None:
    figs = figures(registry.load_course(registry.actor_for("rosa"), "RM-001"))
    names = {t["name"] for f in figs.values() for t in f["data"]}
    assert "CD19⁺ B cells" in names and "cd19_b_cells" not in names
